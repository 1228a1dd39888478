//! Headers every journaled message carries. They repeat routing facts of the JSON payload so
//! that operators (`nats stream view`) and consumers can route without decoding the body.

/// JetStream de-duplication id: always the event's `event_id`.
pub const MSG_ID: &str = "Nats-Msg-Id";
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
