//! What makes a journal message expensive for nats-server: the 1000-message durable atomic
//! ceiling repeated with one more of Tally's traits per step, and nats-server's CPU time per
//! message at each step. Tally's own batches cost the server ~3× the ceiling's per message;
//! this scenario says which trait the difference comes from.
//!
//! Steps (each keeps the ones before): the ceiling's shape (350-byte payload, `Nats-Msg-Id`,
//! 1,000 subjects reused every batch); an expected-last-subject-sequence check on every
//! message; Tally's other headers (event type, job id, content type, `traceparent`); a
//! payload of a transfer event's size; subjects spread over 100,000 accounts (Tally's shape:
//! its journal is uncompressed, ADR 0021); S2 compression. Then Tally's shape (without S2)
//! with its concurrency check made once per batch instead of once per subject — a
//! `Nats-Expected-Last-Sequence` on the first message, which the server checks against the
//! stream's last sequence without reading any subject's last message — and with no check.

use crate::cpu::Meter;
use crate::report::Report;
use bytes::Bytes;
use harness::NatsServer;
use ledger_nats::batch::{Outbound, publish_atomic};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long each step publishes: long enough for a steady CPU reading at 10 ms ticks.
const MEASURE_FOR: Duration = Duration::from_secs(6);

/// Messages per batch: the server's maximum, as in the ceiling.
const BATCH_LEN: usize = 1000;

/// Accounts the wide steps spread their subjects over (the bulk scenario's order of size).
const WIDE_SUBJECTS: usize = 100_000;

/// A `transfer_sent` envelope is ~450 bytes of JSON.
const EVENT_LEN: usize = 450;

/// A message shape: which of Tally's traits the step's messages have.
#[derive(Clone, Copy)]
struct Shape {
    checks: Checks,
    headers: bool,
    payload_len: usize,
    subjects: usize,
    compression: bool,
}

/// How a batch's messages say what they expect to find in the stream.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Checks {
    None,
    /// `Nats-Expected-Last-Subject-Sequence` on every message, as Tally's writer sends them.
    PerSubject,
    /// `Nats-Expected-Last-Sequence` on the batch's first message only.
    PerBatch,
}

/// The ceiling's shape (`ceilings.rs`): 350-byte payloads, a message id, 1,000 subjects.
const CEILING: Shape = Shape {
    checks: Checks::None,
    headers: false,
    payload_len: 350,
    subjects: BATCH_LEN,
    compression: false,
};

/// A step's name and the trait it adds.
type Step = (&'static str, fn(&mut Shape));

/// Each step adds one trait to the shape the steps before it left.
const STEPS: [Step; 8] = [
    ("as the ceiling", |_| {}),
    ("+ expected-sequence check on each", |s| {
        s.checks = Checks::PerSubject
    }),
    ("+ Tally's headers", |s| s.headers = true),
    ("+ event-sized payload", |s| s.payload_len = EVENT_LEN),
    ("+ 100k subjects", |s| s.subjects = WIDE_SUBJECTS),
    ("+ S2 compression", |s| s.compression = true),
    ("Tally's shape, one stream check per batch", |s| {
        s.compression = false;
        s.checks = Checks::PerBatch;
    }),
    ("Tally's shape without checks", |s| s.checks = Checks::None),
];

pub async fn run(report: &mut Report, quick: bool) -> anyhow::Result<()> {
    let mut shape = CEILING;
    for (name, step) in STEPS {
        step(&mut shape);
        let per_message = measure(shape, quick).await?;
        report.add(
            &format!("message shape: {name}"),
            "nats-server µs per message",
            per_message,
            "µs/msg",
        );
    }
    Ok(())
}

async fn measure(shape: Shape, quick: bool) -> anyhow::Result<f64> {
    let nats = NatsServer::start();
    let client = nats.client().await;
    let config = serde_json::json!({
        "name": "SHAPES", "subjects": ["shapes.>"], "storage": "file", "retention": "limits",
        "allow_atomic": true, "allow_direct": true, "duplicate_window": 30_000_000_000_u64,
        "num_replicas": 1, "discard": "old", "max_msgs": -1, "max_bytes": -1, "max_age": 0,
        "compression": if shape.compression { "s2" } else { "none" },
    });
    ledger_nats::stream::create(&client, &config).await?;
    let payload = Bytes::from(vec![b'x'; shape.payload_len]);
    let mut last_seq: HashMap<usize, u64> = HashMap::new();
    let mut next_subject = 0_usize;
    // The stream's last sequence: this is its only publisher.
    let mut stream_last_seq = 0_u64;
    let mut batch_of =
        |last_seq: &HashMap<usize, u64>, stream_last_seq: u64| -> (Vec<usize>, Vec<Outbound>) {
            let subjects: Vec<usize> = (0..BATCH_LEN)
                .map(|_| {
                    next_subject = (next_subject + 1) % shape.subjects;
                    next_subject
                })
                .collect();
            let messages = subjects
                .iter()
                .enumerate()
                .map(|(offset, subject)| Outbound {
                    subject: format!("shapes.account.{subject:06}"),
                    msg_id: uuid::Uuid::now_v7().to_string(),
                    headers: if shape.headers {
                        tally_headers()
                    } else {
                        vec![]
                    },
                    payload: payload.clone(),
                    expected_last_subject_seq: (shape.checks == Checks::PerSubject)
                        .then(|| last_seq.get(subject).copied().unwrap_or(0)),
                    expected_last_seq: (shape.checks == Checks::PerBatch && offset == 0)
                        .then_some(stream_last_seq),
                })
                .collect();
            (subjects, messages)
        };
    // The wide steps first give every subject a message, as a journal of opened accounts has.
    let fill = if quick { BATCH_LEN } else { shape.subjects };
    for _ in 0..fill.div_ceil(BATCH_LEN) {
        let (subjects, messages) = batch_of(&last_seq, stream_last_seq);
        stream_last_seq = publish(&client, subjects, &messages, &mut last_seq).await?;
    }
    let cpu = Meter::start("");
    let started = Instant::now();
    let mut sent = 0_usize;
    let measure_for = if quick {
        Duration::from_millis(500)
    } else {
        MEASURE_FOR
    };
    while started.elapsed() < measure_for {
        let (subjects, messages) = batch_of(&last_seq, stream_last_seq);
        stream_last_seq = publish(&client, subjects, &messages, &mut last_seq).await?;
        sent += messages.len();
    }
    Ok(cpu.nats_seconds() * 1e6 / sent as f64)
}

/// Publishes one batch, records where each of its subjects now ends, and returns the stream's
/// last sequence.
async fn publish(
    client: &async_nats::Client,
    subjects: Vec<usize>,
    messages: &[Outbound],
    last_seq: &mut HashMap<usize, u64>,
) -> anyhow::Result<u64> {
    let ack = publish_atomic(client, messages, Duration::from_secs(30)).await?;
    for (offset, subject) in subjects.into_iter().enumerate() {
        last_seq.insert(subject, ack.first_seq() + offset as u64);
    }
    Ok(ack.seq)
}

/// The headers Tally's writer adds to a transfer leg besides the message id.
fn tally_headers() -> Vec<(&'static str, String)> {
    use events::headers::{CONTENT_TYPE, EVENT_TYPE, JOB_ID, JSON, TRACEPARENT};
    vec![
        (EVENT_TYPE, "transfer_sent".to_owned()),
        (JOB_ID, uuid::Uuid::now_v7().to_string()),
        (CONTENT_TYPE, JSON.to_owned()),
        (
            TRACEPARENT,
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
        ),
    ]
}
