//! The live projection: one active projector per read model (Postgres advisory lock), reading
//! the journal in order from `checkpoint + 1` and applying it in batches.

use crate::apply;
use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull::OrderedConfig};
use events::Envelope;
use futures::{FutureExt, StreamExt};
use read_model::schema::{lock_connection, try_lock};
use read_model::{ApplyError, Rows};
use sqlx::PgPool;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::watch;

/// What the projector is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Role {
    /// Waiting for the lock: another projector is active.
    Standby = 0,
    Active = 1,
    /// Stopped on an event it cannot apply; needs an operator.
    Failed = 2,
}

/// Shared, observable state of the projector (health and metrics read it).
#[derive(Debug, Default)]
pub struct Status {
    role: AtomicU8,
    pub checkpoint: AtomicU64,
    pub applied_events: AtomicU64,
    pub applied_batches: AtomicU64,
    failure: Mutex<Option<String>>,
}

impl Status {
    pub fn role(&self) -> Role {
        match self.role.load(Ordering::Relaxed) {
            1 => Role::Active,
            2 => Role::Failed,
            _ => Role::Standby,
        }
    }

    fn set_role(&self, role: Role) {
        self.role.store(role as u8, Ordering::Relaxed);
    }

    pub fn failure(&self) -> Option<String> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }

    fn fail(&self, reason: String) {
        if let Ok(mut failure) = self.failure.lock() {
            *failure = Some(reason);
        }
        self.set_role(Role::Failed);
    }
}

/// What the projection loop needs.
#[derive(Debug, Clone)]
pub struct Projection {
    pub nats: async_nats::Client,
    pub stream: String,
    pub pool: PgPool,
    pub database_url: String,
    /// Checkpoint name (and advisory-lock key).
    pub name: String,
    /// Most messages applied in one transaction.
    pub batch_len_max: usize,
    /// Channel notified of each new checkpoint (for the query API's read-your-writes).
    pub notify_channel: Option<String>,
}

#[derive(Debug, Error)]
enum StopReason {
    /// Retry from the checkpoint after a pause (NATS or Postgres trouble, lost ownership).
    #[error("{0}")]
    Transient(String),
    /// An event that cannot be applied: stop and say so.
    #[error("{0}")]
    Poison(String),
    /// The journal ends before the checkpoint: it lost messages the read model has.
    #[error("{0}")]
    JournalLost(String),
    #[error("shutting down")]
    Shutdown,
}

/// First pause after a transient failure; doubled per failure in a row, capped.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long one pull request of the ordered consumer lasts; the client asks for idle
/// heartbeats at half of it and recreates the consumer after two missed ones. The consumer is
/// an R1 ephemeral on one node: when that node dies or is cut off, this is what notices. The
/// client's default (30 s, heartbeats every 15 s) left the read model still for 20–45 s after
/// a node's death while writes had resumed; 2 s costs one idle pull every 2 s.
const PULL_EXPIRES: std::time::Duration = std::time::Duration::from_secs(2);

/// How long the live loop waits for a message before it checks that the journal has not moved
/// on without it: a stuck consumer is replaced after this much silence. Idle, it costs one
/// stream-info request per period.
const STALL_CHECK: Duration = Duration::from_secs(3);

/// A run of the projection longer than this counts as a success: the back-off after the next
/// interruption starts small again.
const HEALTHY_RUN: Duration = Duration::from_secs(30);

/// How often a standby tries the lock: the take-over delay after the active one dies.
const STANDBY_POLL: Duration = Duration::from_millis(250);

/// Runs the projection until `shutdown` turns true or an event cannot be applied.
pub async fn run(projection: Projection, status: Arc<Status>, mut shutdown: watch::Receiver<bool>) {
    let mut failures: u32 = 0;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let started = std::time::Instant::now();
        let outcome = run_locked(&projection, &status, &mut shutdown).await;
        if started.elapsed() > HEALTHY_RUN {
            failures = 0;
        }
        if status.role() != Role::Failed {
            status.set_role(Role::Standby);
        }
        match outcome {
            StopReason::Shutdown => return,
            StopReason::Poison(reason) => {
                tracing::error!(%reason, "projection stopped: an event cannot be applied; \
                    fix the cause and restart the projector");
                status.fail(reason);
                return;
            }
            StopReason::JournalLost(reason) => {
                tracing::error!(%reason, "projection stopped: the journal lost messages that \
                    the read model already holds; restore the journal or rebuild the read model");
                status.fail(reason);
                return;
            }
            StopReason::Transient(reason) => {
                failures = failures.saturating_add(1);
                let pause = BACKOFF_FIRST
                    .saturating_mul(1 << failures.min(6))
                    .min(BACKOFF_MAX);
                tracing::warn!(%reason, ?pause, "projection interrupted; resuming from the checkpoint");
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }
}

/// Takes the lock (waiting as a standby), then applies until something stops it.
async fn run_locked(
    projection: &Projection,
    status: &Status,
    shutdown: &mut watch::Receiver<bool>,
) -> StopReason {
    let mut lock = match lock_connection(&projection.database_url).await {
        Ok(conn) => conn,
        Err(e) => return StopReason::Transient(format!("lock connection: {e}")),
    };
    loop {
        match try_lock(&mut lock, &projection.name).await {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => return StopReason::Transient(format!("taking the lock: {e}")),
        }
        tokio::select! {
            () = tokio::time::sleep(STANDBY_POLL) => {}
            _ = shutdown.changed() => return StopReason::Shutdown,
        }
    }
    status.set_role(Role::Active);
    tracing::info!(projection = %projection.name, "projector active");
    let reason = apply_from_checkpoint(projection, status, shutdown).await;
    // Dropping `lock` closes its connection, which releases the lock.
    drop(lock);
    reason
}

async fn apply_from_checkpoint(
    projection: &Projection,
    status: &Status,
    shutdown: &mut watch::Receiver<bool>,
) -> StopReason {
    let checkpoint = match read_model::checkpoint(&projection.pool, &projection.name).await {
        Ok(seq) => seq,
        Err(e) => return StopReason::Transient(format!("reading the checkpoint: {e}")),
    };
    status.checkpoint.store(checkpoint, Ordering::Relaxed);
    // A journal that ends before the checkpoint lost what was projected (a store that lost
    // acknowledged writes): going on would skip or re-number events, so stop loudly.
    match ledger_nats::stream::stream_last_seq(&projection.nats, &projection.stream).await {
        Ok(last) if last < checkpoint => {
            return StopReason::JournalLost(format!(
                "the journal ends at sequence {last} but the read model holds events up to \
                 {checkpoint}: the journal lost acknowledged messages"
            ));
        }
        Ok(_) => {}
        Err(e) => return StopReason::Transient(format!("reading the journal's end: {e}")),
    }
    let js = jetstream::new(projection.nats.clone());
    let consumer = match js.get_stream(&projection.stream).await {
        Ok(stream) => {
            stream
                .create_consumer(OrderedConfig {
                    deliver_policy: DeliverPolicy::ByStartSequence {
                        start_sequence: checkpoint + 1,
                    },
                    max_expires: PULL_EXPIRES,
                    ..Default::default()
                })
                .await
        }
        Err(e) => return StopReason::Transient(format!("stream {}: {e}", projection.stream)),
    };
    let messages = match consumer {
        Ok(consumer) => match consumer.messages().await {
            Ok(messages) => messages,
            Err(e) => return StopReason::Transient(format!("consumer: {e}")),
        },
        Err(e) => return StopReason::Transient(format!("creating the consumer: {e}")),
    };
    // Reading and decoding the next transaction's messages overlaps the Postgres write of the
    // one before, so Postgres and the journal wait for each other less.
    let (built, to_apply) = tokio::sync::mpsc::channel(1);
    let reading = read_transactions(projection, checkpoint, messages, built, shutdown.clone());
    let applying = apply_transactions(projection, status, to_apply, shutdown.clone());
    tokio::pin!(applying);
    let stopped_reading = tokio::select! {
        reason = reading => reason,
        // Only a failure ends the writing while the reader runs.
        applied = &mut applying => return applied.err().unwrap_or(StopReason::Shutdown),
    };
    // What the reader handed over is whole (it ends on atomic-batch boundaries): it is
    // written before the projection stops for the reader's reason.
    match applying.await {
        Ok(()) => stopped_reading,
        Err(reason) => reason,
    }
}

/// One transaction's worth of the journal, decoded: the rows, the checkpoint it moves from,
/// and the trace spans that end when it commits.
struct Transaction {
    from: u64,
    rows: Rows,
    traced: Vec<(tracing::Span, tracing::Span)>,
}

/// Reads the journal from `read_to + 1` into transactions, each ending where one of the
/// journal's atomic batches ends, and hands them to the writer in order.
async fn read_transactions(
    projection: &Projection,
    mut read_to: u64,
    mut messages: jetstream::consumer::pull::Ordered,
    built: tokio::sync::mpsc::Sender<Transaction>,
    mut shutdown: watch::Receiver<bool>,
) -> StopReason {
    loop {
        let first = tokio::select! {
            next = messages.next() => next,
            _ = shutdown.changed() => return StopReason::Shutdown,
            () = tokio::time::sleep(STALL_CHECK) => {
                // Quiet for a while: fine if the journal is quiet too. If it moved on, the
                // consumer is stuck (its node died or was cut off, and the client's own
                // re-creation waits out time-outs and back-offs): start over from the
                // checkpoint with a new consumer.
                match ledger_nats::stream::stream_last_seq(&projection.nats, &projection.stream)
                    .await
                {
                    Ok(last) if last > read_to => {
                        return StopReason::Transient(format!(
                            "the consumer delivered nothing for {STALL_CHECK:?} while the \
                             journal is at {last} and the projection has read up to {read_to}"
                        ));
                    }
                    // The journal went back behind what was applied: lost, not quiet.
                    Ok(last) if last < read_to => {
                        return StopReason::JournalLost(format!(
                            "the journal ends at sequence {last} but the projection has read \
                             events up to {read_to}: the journal lost acknowledged messages"
                        ));
                    }
                    _ => continue,
                }
            }
        };
        let mut batch = Vec::with_capacity(projection.batch_len_max);
        let mut next = first;
        loop {
            match next {
                Some(Ok(message)) => batch.push(message),
                Some(Err(e)) => return StopReason::Transient(format!("reading the stream: {e}")),
                None => return StopReason::Transient("the stream's consumer ended".into()),
            }
            // A transaction ends only where one of the journal's atomic batches ends: ending
            // it inside one would let the query API show half a command (a transfer's sent
            // leg without its received leg, money that is nowhere). An atomic batch holds at
            // most 1000 messages, so a transaction holds at most `batch_len_max + 999`.
            let at_batch_end = batch
                .last()
                .is_some_and(|m| ledger_nats::batch::ends_atomic_batch(m.headers.as_ref()));
            if at_batch_end && batch.len() >= projection.batch_len_max {
                break;
            }
            // Take what is already here without waiting: batches grow with the backlog.
            match messages.next().now_or_never() {
                Some(more) => next = more,
                None if at_batch_end => break,
                // The rest of the atomic batch is stored (a batch is stored whole) and on its
                // way: wait for it.
                None => {
                    next = tokio::select! {
                        more = messages.next() => more,
                        _ = shutdown.changed() => return StopReason::Shutdown,
                    };
                }
            }
        }
        let mut transaction = Transaction {
            from: read_to,
            rows: Rows::default(),
            traced: Vec::new(),
        };
        for (expected, message) in (read_to + 1..).zip(batch.iter()) {
            let seq = match message.info() {
                Ok(info) => info.stream_sequence,
                Err(e) => return StopReason::Transient(format!("message metadata: {e}")),
            };
            // The stream denies deletes, so sequences are contiguous: a gap means a message
            // was missed, and applying past it would skip an event.
            if seq != expected {
                return StopReason::Transient(format!("expected sequence {expected}, got {seq}"));
            }
            if let Some(spans) = trace_spans(message, seq, batch.len()) {
                transaction.traced.push(spans);
            }
            match Envelope::from_json(&message.payload) {
                Ok(envelope) => apply::push(&mut transaction.rows, seq, &envelope),
                Err(e) => {
                    return StopReason::Poison(format!(
                        "message {seq} on {} cannot be decoded: {e}",
                        message.subject
                    ));
                }
            }
        }
        read_to = transaction.rows.last_seq;
        tokio::select! {
            sent = built.send(transaction) => {
                if sent.is_err() {
                    return StopReason::Transient("the read model's writer stopped".into());
                }
            }
            _ = shutdown.changed() => return StopReason::Shutdown,
        }
    }
}

/// Writes each transaction in order and moves the checkpoint with it, until the reader
/// stops and every transaction it handed over is written.
async fn apply_transactions(
    projection: &Projection,
    status: &Status,
    mut to_apply: tokio::sync::mpsc::Receiver<Transaction>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), StopReason> {
    while let Some(transaction) = to_apply.recv().await {
        let rows = &transaction.rows;
        apply_until_done(projection, transaction.from, rows, &mut shutdown).await?;
        // The spans end here: each covers its message's transaction.
        drop(transaction.traced);
        status.checkpoint.store(rows.last_seq, Ordering::Relaxed);
        // The journal's sequences are contiguous (checked as they are read).
        status
            .applied_events
            .fetch_add(rows.last_seq - transaction.from, Ordering::Relaxed);
        status.applied_batches.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// For a message that carries a `traceparent`: a `project` span continuing that trace and
/// its `postgres.write` child, both open until the transaction that applies the message
/// commits — so the command's trace ends with the write that made it visible. Nothing is
/// done when spans are not exported.
fn trace_spans(
    message: &jetstream::Message,
    seq: u64,
    transaction_len: usize,
) -> Option<(tracing::Span, tracing::Span)> {
    if !telemetry::trace::exporting() {
        return None;
    }
    let headers = message.headers.as_ref()?;
    let traceparent = headers.get(events::headers::TRACEPARENT)?.as_str();
    let event_type = headers
        .get(events::headers::EVENT_TYPE)
        .map_or("", |v| v.as_str());
    let project = tracing::info_span!("project", seq, event_type, subject = %message.subject);
    telemetry::trace::continue_trace(&project, Some(traceparent));
    let write = tracing::info_span!(parent: &project, "postgres.write", transaction_len);
    Some((project, write))
}

/// Applies one batch, retrying Postgres failures with back-off: a batch is never skipped.
async fn apply_until_done(
    projection: &Projection,
    checkpoint: u64,
    rows: &Rows,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), StopReason> {
    let mut failures: u32 = 0;
    loop {
        let applied = read_model::apply(
            &projection.pool,
            &projection.name,
            checkpoint,
            rows,
            projection.notify_channel.as_deref(),
        )
        .await;
        match applied {
            Ok(()) => return Ok(()),
            Err(e @ ApplyError::LostOwnership { .. }) => {
                return Err(StopReason::Transient(e.to_string()));
            }
            Err(ApplyError::Db(e)) => {
                failures = failures.saturating_add(1);
                // A while without Postgres may have cost the lock: start over from the
                // checkpoint (and the lock) rather than retrying for ever here.
                if failures > 8 {
                    return Err(StopReason::Transient(format!("applying: {e}")));
                }
                tracing::warn!(error = %e, failures, "applying a batch failed; retrying");
                let pause = BACKOFF_FIRST
                    .saturating_mul(1 << failures.min(6))
                    .min(BACKOFF_MAX);
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    _ = shutdown.changed() => return Err(StopReason::Shutdown),
                }
            }
        }
    }
}
