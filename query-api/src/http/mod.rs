//! The query API's handlers, one file per resource. Each handler answers with a typed struct
//! (`Serialize + ToSchema`) declared beside it, and [`openapi`] derives the document from the
//! handlers alone; imports run one way: `openapi` → handlers → [`access`], [`params`] →
//! `crate::state`.
//!
//! Answer structs list their fields in alphabetical order: the answers used to be built as
//! JSON maps, which serialize their keys sorted, and keeping the order keeps them byte for
//! byte.

pub mod access;
pub mod accounts;
pub mod admin;
pub mod batches;
pub mod entries;
pub mod feed;
pub mod health;
pub mod holds;
pub mod jobs;
pub mod openapi;
pub mod orders;
pub mod params;
pub mod transfers;
