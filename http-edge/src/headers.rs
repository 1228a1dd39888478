//! The HTTP headers Tally's APIs define, spelled once for the services, their tests and their
//! clients (the chaos audit, the benchmark).

use axum::http::HeaderName;

/// On every command answer: the journal sequence of the commit (a query may wait for it); on
/// every query answer: the read model's checkpoint.
pub const LEDGER_SEQ: HeaderName = HeaderName::from_static("ledger-seq");

/// On a query: wait until the read model has applied this sequence (read-your-writes).
pub const LEDGER_MIN_SEQ: HeaderName = HeaderName::from_static("ledger-min-seq");

/// On a command: the caller's key, honoured forever, under which a repeat replays the answer.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// On an answer replayed from an idempotency record: `true`.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// A caller's id for a whole conversation of requests, logged with each and echoed back.
pub const CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");
