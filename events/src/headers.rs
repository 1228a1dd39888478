//! Headers every journaled message carries. They repeat routing facts of the JSON payload so
//! that operators (`nats stream view`) and consumers can route without decoding the body.
//! The server's own `Nats-*` headers are named in `ledger_nats::headers`.

/// The event's `type`, e.g. `funds_deposited`.
pub const EVENT_TYPE: &str = "Ledger-Event-Type";
/// The job (command) that produced the event.
pub const JOB_ID: &str = "Ledger-Job-Id";
/// W3C trace context of the request that produced the event.
pub const TRACEPARENT: &str = "traceparent";
/// Payload media type.
pub const CONTENT_TYPE: &str = "Content-Type";
/// The only payload media type in the journal.
pub const JSON: &str = "application/json";
