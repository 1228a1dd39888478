//! Background executors inside the command API: durable pull consumers whose work goes through
//! the same append pipeline as HTTP commands. Each message's outcome is an ack, a delayed
//! redelivery (after a transient failure), a later decision (a timer not yet due), or a
//! termination.
//!
//! - [`batches`]: applies balance batches, chunk by chunk, exactly once;
//! - [`payments`]: pays or rejects each `order_placed` exactly once;
//! - [`hold_expiry`]: voids holds whose time has come.

pub mod batches;
pub mod hold_expiry;
pub mod payments;

use crate::election::Role;
use crate::writer::Writer;
use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{Consumer, pull};
use futures::{FutureExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tracing::Instrument;

/// What to tell JetStream about a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Done (paid, rejected, or nothing to do).
    Ack,
    /// A transient failure: deliver again after this pause. After [`DELIVERIES_MAX`]
    /// deliveries the message is given up on.
    Retry(Duration),
    /// Not due yet: decide again after this pause, however many times the message has been
    /// delivered (a timer is not a failure). A pause of up to [`WAIT_HERE_MAX`] is waited here,
    /// outside the places of the decisions being made; a longer one goes back to JetStream,
    /// to be delivered again [`LEAD`] before its time.
    Later(Duration),
    /// Cannot ever be processed: recorded as the job's failure (`job_failed`), then no
    /// longer redelivered. The code says why.
    Terminate(&'static str),
}

/// How long one pull request waits for messages before another is sent: an idle executor
/// asks again this often.
const PULL_WAIT: Duration = Duration::from_secs(10);

/// Deliveries of one message before an executor gives up on it: with the back-off below,
/// about a minute of retrying — long enough for a restart of NATS or a writer, short enough
/// that a stuck job is reported rather than retried for ever.
pub const DELIVERIES_MAX: i64 = 10;

/// Longest pause before a redelivery after transient failures.
const RETRY_PAUSE_MAX: Duration = Duration::from_secs(30);

/// The longest [`Verdict::Later`] an executor waits itself. JetStream's own redelivery comes
/// up to a few hundred milliseconds late when many messages are pending (it looks for due
/// ones in steps of 100 ms, ADR 0005), so a timer is finished here.
pub const WAIT_HERE_MAX: Duration = Duration::from_secs(2);

/// How much earlier than its time JetStream is asked to deliver a message that will then
/// wait here: more than JetStream's lateness, less than [`WAIT_HERE_MAX`].
pub const LEAD: Duration = Duration::from_secs(1);

/// Messages an executor keeps waiting at once (each is a pending acknowledgement, within
/// the consumer's `max_ack_pending`). When all these places are taken, a message waits in
/// JetStream instead, as a longer one does.
const WAITING_MAX: usize = 10_000;

/// The admin actor an executor acts as (`None` only if the name is not a valid principal).
pub fn system_actor(principal: &str) -> Option<crate::domain::Actor> {
    let principal = events::OwnerId::parse(principal).ok()?;
    Some(crate::domain::Actor {
        principal,
        admin: true,
    })
}

/// Exponential pause by delivery count, capped.
pub fn retry_pause(delivered: i64) -> Duration {
    Duration::from_millis(100)
        .saturating_mul(1 << delivered.clamp(0, 8))
        .min(RETRY_PAUSE_MAX)
}

/// The pause before another try at work that has been failing for `failing_for`: as long
/// again, so it doubles from try to try, from 0.1 s up to the longest retry pause. For work
/// whose delivery count says nothing of its failures (a timer is delivered many times).
pub fn retry_pause_after(failing_for: Duration) -> Duration {
    failing_for.clamp(Duration::from_millis(100), RETRY_PAUSE_MAX)
}

/// The places an executor's messages take: `deciding` bounds the decisions made at once,
/// `waiting` the messages waiting here for their time ([`Verdict::Later`]).
#[derive(Clone)]
struct Places {
    deciding: Arc<Semaphore>,
    waiting: Arc<Semaphore>,
}

/// Consumes until `stop` turns true; pulls again with back-off after stream errors.
///
/// Each pull request asks for as many messages as there are free places among the
/// `concurrency` being decided, so every message received is begun at once: none waits on
/// this instance where another could be executing it. The executor's commands share the
/// writer's group commits, so what it decides at once is how many of them one commit can
/// carry. A message waiting here for its time ([`Verdict::Later`]) gives up its place while
/// it waits, so timers never keep a decision from starting.
///
/// With a `role` (the instance takes part in electing a writer, ADR 0028), it pulls only while
/// no other instance holds the writer lease: the holder's executors do the work, through the
/// writer that then commits alone. When another instance takes the lease, or this one stops,
/// the messages being decided finish, any received but not begun are handed back for
/// immediate redelivery, and those waiting for their time are handed back to be redelivered
/// then. Only a crash leaves messages to their ack wait.
pub async fn consume<F, Fut>(
    name: &'static str,
    consumer: Consumer<pull::Config>,
    concurrency: usize,
    writer: Writer,
    mut role: Option<watch::Receiver<Role>>,
    mut stop: watch::Receiver<bool>,
    process: F,
) where
    F: Fn(Writer, bytes::Bytes, i64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Verdict> + Send + 'static,
{
    // Failed pulls in a row; each doubles the pause before the next (0.2 s up to 6.4 s). A
    // pull fails for a moment while a cluster starts or elects a stream leader ("no
    // responders"), and asking again at once only fills the log.
    let mut failures: u32 = 0;
    // Each message received, acknowledged by its own task once decided.
    let mut in_flight = tokio::task::JoinSet::new();
    let places = Places {
        deciding: Arc::new(Semaphore::new(concurrency)),
        waiting: Arc::new(Semaphore::new(WAITING_MAX)),
    };
    // Moved on whenever this instance stops executing: the messages received before then and
    // still waiting for their time go back to JetStream.
    let (hand_back_waiting, generation) = watch::channel(0_u64);
    let ack_wait = consumer.cached_info().config.ack_wait;
    loop {
        if failures > 0 {
            let pause = Duration::from_millis(100).saturating_mul(1 << failures.min(6));
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = stop.changed() => break,
            }
        }
        if !this_may_write(&mut role, &mut stop).await {
            break;
        }
        while in_flight.try_join_next().is_some() {}
        let free = places.deciding.available_permits();
        if free == 0 {
            tokio::select! {
                _ = places.deciding.acquire() => {}
                _ = stop.changed() => break,
            }
            continue;
        }
        let pulled = consumer
            .batch()
            .max_messages(free)
            .expires(PULL_WAIT)
            .messages()
            .await;
        let mut messages = match pulled {
            Ok(messages) => messages,
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::warn!(executor = name, error = %e, "executor cannot pull; retrying");
                continue;
            }
        };
        loop {
            let next = tokio::select! {
                next = messages.next() => next,
                () = another_writes(&mut role) => {
                    tracing::info!(executor = name, "another instance writes: pulling stops");
                    hand_back(name, &mut messages).await;
                    hand_back_waiting.send_modify(|g| *g += 1);
                    while in_flight.join_next().await.is_some() {}
                    break;
                }
                _ = stop.changed() => {
                    hand_back(name, &mut messages).await;
                    hand_back_waiting.send_modify(|g| *g += 1);
                    while in_flight.join_next().await.is_some() {}
                    return;
                }
            };
            let message = match next {
                Some(Ok(message)) => message,
                Some(Err(e)) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(executor = name, error = %e, "executor pull failed; retrying");
                    break;
                }
                // The request is answered: as many messages as asked for, or its wait ended.
                None => break,
            };
            failures = 0;
            // The executor's work continues the trace of the command that journaled the
            // message: its own commands' messages carry this span's context on.
            let span = tracing::info_span!("execute", executor = name, subject = %message.subject);
            let traceparent = message
                .headers
                .as_ref()
                .and_then(|h| h.get(events::headers::TRACEPARENT))
                .map(|v| v.as_str().to_owned());
            telemetry::trace::continue_trace(&span, traceparent.as_deref());
            // Free unless a message that waited for its time has just taken it back.
            let place = Arc::clone(&places.deciding)
                .acquire_owned()
                .await
                .expect("the places are never closed");
            let work = Work {
                name,
                writer: writer.clone(),
                message,
                ack_wait,
                places: places.clone(),
                place,
                generation: *generation.borrow(),
                handed_back: generation.clone(),
            };
            in_flight.spawn(handle(work, process.clone()).instrument(span));
        }
    }
    hand_back_waiting.send_modify(|g| *g += 1);
    while in_flight.join_next().await.is_some() {}
}

/// Gives the messages received but not begun back to JetStream for redelivery at once, so
/// that whichever instance executes next takes them now rather than after their ack wait.
/// The pull request ends when `messages` is dropped; a message already on its way then is
/// redelivered after its ack wait.
async fn hand_back(name: &'static str, messages: &mut pull::Batch) {
    let mut handed_back = 0_u32;
    while let Some(Some(Ok(message))) = messages.next().now_or_never() {
        match message.ack_with(AckKind::Nak(None)).await {
            Ok(()) => handed_back += 1,
            Err(e) => {
                tracing::warn!(executor = name, error = %e, "a pulled message was not handed back")
            }
        }
    }
    if handed_back > 0 {
        tracing::info!(
            executor = name,
            handed_back,
            "pulled messages handed back for redelivery"
        );
    }
}

/// Whether another instance holds the writer lease.
fn another_holds(role: &Role) -> bool {
    matches!(role, Role::Forward(_))
}

/// Waits while another instance holds the writer lease; `false` if told to stop meanwhile.
/// An ended election (the instance is stopping) lets it pull, as a lone instance would.
async fn this_may_write(
    role: &mut Option<watch::Receiver<Role>>,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let Some(role) = role else {
        return true;
    };
    tokio::select! {
        _ = role.wait_for(|r| !another_holds(r)) => true,
        _ = stop.changed() => false,
    }
}

/// Resolves once another instance holds the writer lease; never without a role.
async fn another_writes(role: &mut Option<watch::Receiver<Role>>) {
    let Some(role) = role else {
        return std::future::pending().await;
    };
    if role.wait_for(another_holds).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// One message received, and what deciding it takes.
struct Work {
    name: &'static str,
    writer: Writer,
    message: async_nats::jetstream::Message,
    ack_wait: Duration,
    places: Places,
    /// The message's place among those being decided.
    place: OwnedSemaphorePermit,
    /// The hand-back generation the message was received in.
    generation: u64,
    /// Moves on from `generation` when the instance stops executing (see [`consume`]).
    handed_back: watch::Receiver<u64>,
}

/// Decides one message and tells JetStream the verdict. While it is being decided, JetStream
/// is told every third of `ack_wait` that work on it goes on, so that the ack wait can be
/// short: it is how long a message a crashed instance held waits for another.
///
/// A message not due for up to [`WAIT_HERE_MAX`] waits here, without its place among those
/// being decided, then is decided again. If the instance stops executing meanwhile, it goes
/// back to JetStream with the rest of its wait.
async fn handle<F, Fut>(work: Work, process: F)
where
    F: Fn(Writer, bytes::Bytes, i64) -> Fut,
    Fut: Future<Output = Verdict>,
{
    let Work {
        name,
        writer,
        message,
        ack_wait,
        places,
        place,
        generation,
        mut handed_back,
    } = work;
    let mut place = Some(place);
    let delivered = message.info().map(|i| i.delivered).unwrap_or(1);
    if let Ok(info) = message.info() {
        // Messages still waiting behind this one, as of its delivery.
        metrics::gauge!("tally_executor_pending", "consumer" => info.consumer.to_owned())
            .set(info.pending as f64);
    }
    let decided = loop {
        let decided = tokio::select! {
            verdict = process(writer.clone(), message.payload.clone(), delivered) => verdict,
            never = in_progress(&message, ack_wait) => match never {},
        };
        let Verdict::Later(pause) = decided else {
            break decided;
        };
        if pause > WAIT_HERE_MAX {
            break decided;
        }
        let Ok(waiting) = Arc::clone(&places.waiting).try_acquire_owned() else {
            break decided;
        };
        count_waiting(name, &places);
        place = None;
        let due = tokio::time::Instant::now() + pause;
        tokio::select! {
            () = tokio::time::sleep_until(due) => {}
            _ = handed_back.wait_for(|g| *g != generation) => {
                drop(waiting);
                count_waiting(name, &places);
                break Verdict::Later(due.saturating_duration_since(tokio::time::Instant::now()));
            }
            never = in_progress(&message, ack_wait) => match never {},
        }
        place = Some(
            Arc::clone(&places.deciding)
                .acquire_owned()
                .await
                .expect("the places are never closed"),
        );
        drop(waiting);
        count_waiting(name, &places);
    };
    let verdict = match decided {
        Verdict::Retry(_) if delivered >= DELIVERIES_MAX => Verdict::Terminate("retries_exhausted"),
        other => other,
    };
    let verdict = match verdict {
        Verdict::Terminate(code) => record_failure(name, &writer, &message, code).await,
        other => other,
    };
    let acked = match verdict {
        Verdict::Ack => message.ack().await,
        Verdict::Retry(pause) => message.ack_with(AckKind::Nak(Some(pause))).await,
        Verdict::Later(pause) => {
            message
                .ack_with(AckKind::Nak(Some(redelivery(pause))))
                .await
        }
        Verdict::Terminate(_) => message.ack_with(AckKind::Term).await,
    };
    drop(place);
    if let Err(e) = acked {
        // Not acknowledged: JetStream redelivers, and the aggregate's state makes the second
        // attempt a no-op.
        tracing::warn!(executor = name, error = %e, "executor ack failed");
    }
}

/// Reports how many messages wait in this instance for their time.
fn count_waiting(name: &'static str, places: &Places) {
    let waiting = WAITING_MAX - places.waiting.available_permits();
    metrics::gauge!("tally_executor_waiting", "executor" => name).set(waiting as f64);
}

/// When JetStream is to deliver again a message due after `pause`: early by [`LEAD`] if it
/// will then wait here, on time if it is already within the wait of one.
fn redelivery(pause: Duration) -> Duration {
    if pause > WAIT_HERE_MAX {
        pause - LEAD
    } else {
        pause
    }
}

/// Tells JetStream every third of `ack_wait` that the message is still being worked on;
/// never ends.
async fn in_progress(
    message: &async_nats::jetstream::Message,
    ack_wait: Duration,
) -> std::convert::Infallible {
    let period = (ack_wait / 3).max(Duration::from_millis(10));
    loop {
        tokio::time::sleep(period).await;
        if let Err(e) = message.ack_with(AckKind::Progress).await {
            tracing::debug!(error = %e, "an executor's progress was not told");
        }
    }
}

/// Journals `job_failed` for a message an executor gives up on (its job from the
/// `Ledger-Job-Id` header, which is readable even when the payload is not). If the record
/// cannot be written now, the message is retried instead of terminated: a failure is never
/// silent.
async fn record_failure(
    executor: &'static str,
    writer: &Writer,
    message: &async_nats::jetstream::Message,
    code: &'static str,
) -> Verdict {
    let info = message.info().ok();
    let seq = info.as_ref().map_or(0, |i| i.stream_sequence);
    let job_id = message
        .headers
        .as_ref()
        .and_then(|h| h.get(events::headers::JOB_ID))
        .and_then(|v| uuid::Uuid::parse_str(v.as_str()).ok())
        .unwrap_or_else(uuid::Uuid::now_v7);
    tracing::error!(executor, %job_id, seq, code, subject = %message.subject, "job failed");
    let Some(actor) = system_actor(&format!("tally-{executor}")) else {
        return Verdict::Retry(RETRY_PAUSE_MAX);
    };
    let failure = events::JobFailed {
        failed_job_id: job_id,
        executor: executor.to_owned(),
        subject: message.subject.to_string(),
        seq,
        code: code.to_owned(),
        detail: match code {
            "undecodable" => "the message is not a Tally event".to_owned(),
            "retries_exhausted" => format!("still failing after {DELIVERIES_MAX} attempts"),
            other => other.to_owned(),
        },
    };
    let submission = crate::writer::Submission {
        actor,
        command: crate::domain::Command::FailJob(failure),
        job_id,
        idempotency: None,
    };
    match writer.submit(submission).await {
        Ok(_) => Verdict::Terminate(code),
        Err(_) => Verdict::Retry(RETRY_PAUSE_MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_failing_for_longer_waits_longer_up_to_the_longest_pause() {
        let ms = Duration::from_millis;
        assert_eq!(retry_pause_after(Duration::ZERO), ms(100));
        assert_eq!(retry_pause_after(ms(100)), ms(100));
        // Each pause as long as the failing so far: the tries double apart.
        assert_eq!(retry_pause_after(ms(700)), ms(700));
        assert_eq!(
            retry_pause_after(Duration::from_secs(3600)),
            RETRY_PAUSE_MAX
        );
    }

    #[test]
    fn a_timer_that_will_wait_here_comes_back_early_by_the_lead() {
        let s = Duration::from_secs;
        assert_eq!(redelivery(s(3600)), s(3600) - LEAD);
        assert_eq!(
            redelivery(WAIT_HERE_MAX + s(1)),
            WAIT_HERE_MAX + s(1) - LEAD
        );
        // Within the wait of one: on time, as when handed back or with no place free.
        assert_eq!(redelivery(WAIT_HERE_MAX), WAIT_HERE_MAX);
        assert_eq!(
            redelivery(Duration::from_millis(300)),
            Duration::from_millis(300)
        );
        assert!(LEAD < WAIT_HERE_MAX, "what comes back early waits here");
    }
}
