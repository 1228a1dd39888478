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
//! See `pipeline.rs` for the loop and `cache.rs` for the state cache.

pub mod cache;
mod pipeline;

use crate::domain::{Actor, Command, DomainError, Outcome};
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

/// A caller's claim on an `Idempotency-Key`: the record's subject and the request fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyClaim {
    pub subject: String,
    pub fingerprint: String,
}

/// An HTTP answer as the idempotency record keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub status: u16,
    pub body: Value,
}

/// Turns an outcome into the HTTP answer: supplied by the handler, called by the writer so
/// that the answer can be journaled with the idempotency record in the same batch.
pub type Render = fn(&Actor, &Outcome, Uuid) -> Rendered;

/// A command on its way to the writer.
#[derive(Debug)]
pub struct Submission {
    pub actor: Actor,
    pub command: Command,
    /// Shared by all events of the command; the answer names it.
    pub job_id: Uuid,
    pub idempotency: Option<IdempotencyClaim>,
    pub render: Render,
}

/// A committed (or replayed) command's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    /// Stream sequence to wait for in the read model (`Ledger-Seq`).
    pub seq: u64,
    /// Answered from an idempotency record (`Idempotent-Replayed: true`).
    pub replayed: bool,
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
        let span = tracing::info_span!(
            "append",
            command = submission.command.kind(),
            job_id = %submission.job_id,
        );
        let traceparent = telemetry::trace::traceparent(&span);
        self.submit_traced(submission, traceparent)
            .instrument(span)
            .await
    }

    async fn submit_traced(&self, submission: Submission, traceparent: Option<String>) -> Answer {
        let (answer_tx, answer_rx) = oneshot::channel();
        let kind = submission.command.kind();
        match tokio::time::timeout(
            self.enqueue_timeout,
            self.inbox.send((submission, traceparent, answer_tx)),
        )
        .await
        {
            Err(_) => {
                metrics::counter!("tally_commands_total", "type" => kind, "outcome" => "overloaded")
                    .increment(1);
                return Err(WriteFailure::Overloaded);
            }
            Ok(Err(_)) => return Err(WriteFailure::Unavailable("writer stopped".into())),
            Ok(Ok(())) => {}
        }
        match tokio::time::timeout(self.answer_timeout, answer_rx).await {
            Err(_) => Err(WriteFailure::Unavailable(
                "timed out waiting for the commit".into(),
            )),
            Ok(Err(_)) => Err(WriteFailure::Unavailable("writer stopped".into())),
            Ok(Ok(answer)) => answer,
        }
    }

    pub fn stats(&self) -> &Arc<WriterStats> {
        &self.stats
    }
}

/// The running writer task; it ends once every [`Writer`] handle is dropped and the queue is
/// drained.
#[derive(Debug)]
pub struct WriterTask(pub JoinHandle<()>);
