//! Every `Nats-*` header name Tally writes or reads: the server's own vocabulary, spelled
//! once here. Tally's own headers (`Ledger-*`, `traceparent`) live in `events::headers`.

/// JetStream de-duplication id; Tally sends the event's `event_id`.
pub const MSG_ID: &str = "Nats-Msg-Id";
/// Sent with every message of an atomic batch; the server keeps it on the stored message.
pub const BATCH_ID: &str = "Nats-Batch-Id";
/// A message's 1-based place in its atomic batch.
pub const BATCH_SEQUENCE: &str = "Nats-Batch-Sequence";
/// `1` on an atomic batch's last message; the server keeps it on the stored message.
pub const BATCH_COMMIT: &str = "Nats-Batch-Commit";
/// The stream sequence the subject's last message must have (0: no message yet).
pub const EXPECTED_LAST_SUBJECT_SEQUENCE: &str = "Nats-Expected-Last-Subject-Sequence";
/// The sequence the stream's last message must have; only on an atomic batch's first message.
/// The writer does not send it (`bench --scenarios shapes` measures what it would cost).
pub const EXPECTED_LAST_SEQUENCE: &str = "Nats-Expected-Last-Sequence";
/// On a direct-get answer: the message's stream sequence.
pub const SEQUENCE: &str = "Nats-Sequence";
/// On a direct-get answer: the message's subject.
pub const SUBJECT: &str = "Nats-Subject";
/// On a direct-get answer: when the server stored the message (RFC 3339, UTC).
pub const TIME_STAMP: &str = "Nats-Time-Stamp";
