//! The command API's HTTP edge: routes' handlers, their answers, and the document.
//!
//! Imports run one way: handlers (one file per resource: [`accounts`], [`transfers`], [`bulk`],
//! [`holds`], [`balances`], [`orders`], [`journal`], [`health`]) use [`exchange`] (extractors, submitting to
//! the writer, turning its reply into a response), [`answers`] (the typed answers), [`render`]
//! (the one renderer of an outcome) and [`state`]; [`openapi`] lists the handlers' paths; `lib.rs` builds the router.
//! No handler imports another, the router or the document.

pub mod accounts;
pub mod answers;
pub mod balances;
pub mod bulk;
pub mod exchange;
pub mod health;
pub mod holds;
pub mod journal;
pub mod openapi;
pub mod orders;
pub mod problem;
pub mod render;
pub mod state;
pub mod transfers;
