//! Everything Tally says to NATS JetStream, in one adapter.
//!
//! - [`server`]: connects and refuses servers older than 2.12.1 (they ignore atomic batches
//!   and would write half a transfer);
//! - [`stream`]: creates or updates the `LEDGER` stream from `nats/ledger-stream.json` and
//!   refuses a server that does not echo `allow_atomic: true`;
//! - [`batch`]: publishes an atomic batch with per-subject expected-sequence checks and reads
//!   the pub ack into a typed outcome;
//! - [`commit`]: the write protocol on top of it — one call that publishes a batch and settles
//!   its fate (stored, conflict, refused, unknown), confirming refusals and resolving unknown
//!   outcomes by look-up and identical resend;
//! - [`headers`]: every `Nats-*` header name, spelled once;
//! - [`consumers`]: durable consumer definitions (`nats/*-consumer.json`) for the executors;
//! - [`startup`]: start-up's retries of a JetStream that does not answer yet (a fresh server,
//!   a cluster electing its leaders);
//! - [`direct`]: direct gets — the last message of many subjects at once, the next message on a
//!   subject after a sequence, and ranges of the stream.
//!
//! JetStream's error answers are read into one [`ApiError`] (`api.rs`).
//!
//! The command side writes through [`commit`] and reads current state through [`direct`]; the
//! stream's options are spelled only in the JSON file.

mod api;
pub mod batch;
pub mod commit;
pub mod consumers;
pub mod direct;
pub mod headers;
pub mod server;
pub mod startup;
pub mod stream;

pub use api::ApiError;
pub use batch::{BatchAck, Outbound, PublishError, publish_atomic};
pub use commit::{Commit, CommitOptions, commit_atomic};
pub use direct::{DirectGetError, Stored};
pub use server::{ConnectError, JournalArgs, connect};
pub use stream::{LEDGER_STREAM_JSON, StreamError, ensure_stream};
