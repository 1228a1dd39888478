//! The append pipeline: one writer task per instance, group-committing commands into atomic
//! batches.
//!
//! Handlers [`Writer::submit`] a command over a bounded channel. The writer task takes
//! everything that is ready (up to the server's 1000 messages per batch), loads the states it
//! lacks with one multi-subject direct get, decides each command against a working state that
//! already includes the earlier commands of the same batch, and commits all resulting events
//! as one atomic batch. The first message per subject carries the subject's expected last
//! sequence, so a stale state — another instance wrote meanwhile — fails the whole batch with
//! "wrong last sequence"; the writer then reloads and decides again. While a batch is in
//! flight the next one accumulates in the channel, so batches grow with load.
//!
//! - `plan.rs`: the pure planner — a round's messages, post-states and tentative answers;
//! - `pipeline.rs`: the I/O shell — gather a round, load states, plan, commit (through
//!   `ledger_nats::commit_atomic`), cache, answer, count;
//! - `cache.rs`: the state cache;
//! - `checks.rs`: which checks a batch carries — per subject, or the stream's for subjects
//!   this instance wrote while no one else did.
//!
//! The domain names aggregates ([`AggregateKey`]); [`subject_of`] maps them to journal
//! subjects here. A command's answer is data ([`Answered`]): the outcome, or the answer an
//! idempotency record kept. The HTTP layer renders outcomes; it installs its renderer once,
//! at [`spawn`], because a record journals the rendered answer in the command's own batch
//! (ADR 0011).

pub mod cache;
pub mod checks;
mod pipeline;
pub mod plan;

use crate::domain::{Actor, AggregateKey, Command, DomainError, Outcome};
use events::{IdempotencyKey, subjects};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::Instrument;
use uuid::Uuid;

pub use pipeline::spawn;

/// Limits of the pipeline; see `Config` for their defaults and reasons.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    pub stream: String,
    /// The stream has more than one replica: a direct get may be answered by a follower that
    /// trails, so a rejection is confirmed with states read from the leader.
    pub replicated: bool,
    pub queue_len_max: usize,
    pub cache_len_max: usize,
    pub commit_timeout: Duration,
    pub conflict_retries_max: u32,
    pub unknown_outcome_retries_max: u32,
    /// How long a handler waits for room in the queue before answering 503.
    pub enqueue_timeout: Duration,
    /// How long a handler waits for its command's outcome before answering 503.
    pub answer_timeout: Duration,
}

/// A caller's claim on an `Idempotency-Key` (scoped to the caller) and the request
/// fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyClaim {
    pub key: IdempotencyKey,
    pub fingerprint: String,
    /// Which part of the request this command is (0: the request itself, or its first
    /// part): a bulk request committed in several journal batches records each part's
    /// answer under the same key and fingerprint (ADR 0017).
    pub part: u32,
}

/// The journal subject of an aggregate: where its events go and its state is read from.
pub fn subject_of(key: &AggregateKey) -> String {
    match key {
        AggregateKey::Account(id) => subjects::account(id),
        AggregateKey::Order(id) => subjects::order(id),
        AggregateKey::Hold(id) => subjects::hold(id),
        AggregateKey::Transfer(id) => subjects::transfer(id),
        AggregateKey::Batch(id) => subjects::batch(id),
        AggregateKey::BatchPart {
            batch_id,
            chunk,
            part,
        } => subjects::batch_part(batch_id, *chunk, *part),
        AggregateKey::Job(id) => subjects::job(id),
        AggregateKey::Idempotency {
            principal,
            key,
            part,
        } => subjects::idempotency_part(principal, key, *part),
    }
}

/// An answer as an idempotency record keeps it (status and JSON body), for replays.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub status: u16,
    pub body: Value,
}

/// Turns an outcome into the answer an idempotency record journals. Installed once by the
/// layer that answers (HTTP) when it starts the writer: the record is committed in the
/// command's own batch, before the answer leaves (ADR 0011).
pub type Render = fn(&Actor, &Outcome, Uuid) -> Rendered;

/// A command on its way to the writer.
#[derive(Debug)]
pub struct Submission {
    pub actor: Actor,
    pub command: Command,
    /// Shared by all events of the command; the answer names it.
    pub job_id: Uuid,
    pub idempotency: Option<IdempotencyClaim>,
}

impl Submission {
    /// The subject of the idempotency record this submission claims, if any.
    pub fn record_subject(&self) -> Option<String> {
        let claim = self.idempotency.as_ref()?;
        Some(subject_of(&AggregateKey::Idempotency {
            principal: self.actor.principal.clone(),
            key: claim.key.clone(),
            part: claim.part,
        }))
    }
}

/// A committed (or replayed) command's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub answer: Answered,
    /// Stream sequence to wait for in the read model (`Ledger-Seq`).
    pub seq: u64,
}

/// What a command amounted to.
#[derive(Debug, Clone, PartialEq)]
pub enum Answered {
    /// Decided now (committed, or nothing to write).
    Decided(Outcome),
    /// Answered from an idempotency record (`Idempotent-Replayed: true`): the first answer,
    /// byte for byte.
    Replayed(Rendered),
}

/// A business refusal: the command was decided and will not happen.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Rejection {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyKeyReused,
}

/// The writer could not tell the command's fate, or could not take it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WriteFailure {
    #[error("the command kept conflicting with concurrent writers")]
    Conflict,
    #[error("the writer's queue is full")]
    Overloaded,
    #[error("the journal is unavailable: {0}")]
    Unavailable(String),
}

/// What a handler gets back: an answer, a rejection, or a failure of the machinery.
pub type Answer = Result<Result<Reply, Rejection>, WriteFailure>;

/// Counters of the pipeline's work, for metrics and tests.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Atomic batches committed.
    pub batches: AtomicU64,
    /// Commands whose events were committed.
    pub commands: AtomicU64,
    /// Messages committed.
    pub messages: AtomicU64,
    /// Most commands in one committed batch.
    pub batch_commands_max: AtomicU64,
    /// Batches refused for a wrong last subject sequence.
    pub conflicts: AtomicU64,
    /// Committed batches checked by the stream's last sequence (this instance's own run,
    /// ADR 0026) rather than by every subject's.
    pub stream_checked: AtomicU64,
    /// Commits whose outcome was unknown at first (time-out, lost connection).
    pub unknown_outcomes: AtomicU64,
    /// Commands answered with a business rejection.
    pub rejections: AtomicU64,
    /// Commands answered from an idempotency record.
    pub replays: AtomicU64,
}

impl WriterStats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// The handlers' end of the pipeline.
#[derive(Debug, Clone)]
pub struct Writer {
    inbox: mpsc::Sender<pipeline::Queued>,
    stats: Arc<WriterStats>,
    enqueue_timeout: Duration,
    answer_timeout: Duration,
}

impl Writer {
    /// Hands `submission` to the writer task and waits for its answer, in an `append` span
    /// whose trace context the command's messages carry as `traceparent`.
    pub async fn submit(&self, submission: Submission) -> Answer {
        self.queue(submission).await?.answer().await
    }

    /// Hands `submission` to the writer task and returns, once it is queued, the wait for
    /// its answer. The writer decides submissions in the order they were queued, so a
    /// caller that queues several one after the other has them decided in that order.
    pub async fn queue(&self, submission: Submission) -> Result<Pending, WriteFailure> {
        let span = tracing::info_span!(
            "append",
            command = submission.command.kind(),
            job_id = %submission.job_id,
        );
        let traceparent = telemetry::trace::traceparent(&span);
        let (answer_tx, answer_rx) = oneshot::channel();
        let kind = submission.command.kind();
        let queued = tokio::time::timeout(
            self.enqueue_timeout,
            self.inbox.send((submission, traceparent, answer_tx)),
        )
        .instrument(span.clone())
        .await;
        match queued {
            Err(_) => {
                metrics::counter!("tally_commands_total", "type" => kind, "outcome" => "overloaded")
                    .increment(1);
                Err(WriteFailure::Overloaded)
            }
            Ok(Err(_)) => Err(WriteFailure::Unavailable("writer stopped".into())),
            Ok(Ok(())) => Ok(Pending {
                answer: answer_rx,
                span,
                answer_timeout: self.answer_timeout,
            }),
        }
    }

    pub fn stats(&self) -> &Arc<WriterStats> {
        &self.stats
    }
}

/// A queued submission's answer, to wait for.
#[derive(Debug)]
pub struct Pending {
    answer: oneshot::Receiver<Answer>,
    span: tracing::Span,
    answer_timeout: Duration,
}

impl Pending {
    /// Waits for the answer (dropping a `Pending` abandons the command if it is not decided
    /// yet).
    pub async fn answer(self) -> Answer {
        let waited = tokio::time::timeout(self.answer_timeout, self.answer)
            .instrument(self.span)
            .await;
        match waited {
            Err(_) => Err(WriteFailure::Unavailable(
                "timed out waiting for the commit".into(),
            )),
            Ok(Err(_)) => Err(WriteFailure::Unavailable("writer stopped".into())),
            Ok(Ok(answer)) => answer,
        }
    }
}

/// The running writer task; it ends once every [`Writer`] handle is dropped and the queue is
/// drained.
#[derive(Debug)]
pub struct WriterTask(pub JoinHandle<()>);
