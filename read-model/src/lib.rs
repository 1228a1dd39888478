//! Tally's read models in PostgreSQL: the one crate that speaks SQL.
//!
//! Data flows one way through it: the projector turns journal messages into [`rows`] and hands
//! them to [`write`], which applies them and advances the checkpoint in one transaction;
//! [`rebuild`] and [`load`] replay into a fresh schema (entries with `COPY`) and swap it in; the query API reads through
//! [`query`] (one module per resource); `projector verify` reads back through [`verify`].
//!
//! - [`pool`]: connecting, with every pool limit named and explained;
//! - [`schema`]: the migrations (`migrations/` at the workspace root), schema names, the
//!   checkpoint, its notify channel, the projection lock and the probes;
//! - [`rows`]: what the projector writes, as typed rows;
//! - [`write`]: the batch writer, one `UNNEST` statement per table;
//! - [`rebuild`]: the fresh schema's indexes and keys, and the atomic swap;
//! - [`load`]: a rebuild's bulk load, history entries streamed with binary `COPY`;
//! - [`query`]: what the query API reads, as typed rows;
//! - [`verify`]: the stored rows `projector verify` compares with the journal.

pub mod load;
pub mod pool;
pub mod query;
pub mod rebuild;
pub mod rows;
pub mod schema;
pub mod verify;
pub mod write;

pub use pool::{ReadModelArgs, connect};
pub use rows::{Rows, to_i64, to_u64};
pub use schema::{MIGRATOR, PROJECTION, checkpoint, migrate, notify_channel};
pub use write::{ApplyError, apply};
