//! Hold expiry without a sweeper: the executor's durable consumer sees each `hold_placed`
//! (hold side) and, while the hold's time has not come, asks JetStream to redeliver it
//! shortly before the expiry (`Nak` with a delay); the last second or two it waits itself
//! ([`Verdict::Later`]). When the hold is due, the executor submits `ExpireHold`, which voids
//! the hold only if it is still placed. The pending redelivery *is* the timer: it survives
//! restarts of the executor without any state of its own (ADR 0005).
//!
//! Each time the timer comes back before the hold is due, the executor asks the writer
//! whether the hold is still placed (an `ExpireHold` not due changes nothing): the timer of a
//! hold captured or voided meanwhile is dropped then, within an hour, rather than kept
//! pending until the hold's expiry, up to 30 days later. So the holds awaiting expiry, which
//! the consumer's `max_ack_pending` bounds, are the holds still placed.
//!
//! A hold is never given up on for a transient failure: its money would stay reserved for
//! ever. The executor tries again, less and less often, until the hold is voided.

use super::{Verdict, retry_pause_after};
use crate::domain::{Command, ExpireHold, Outcome};
use crate::writer::{Answered, Submission, Writer};
use chrono::{DateTime, Utc};
use events::{Envelope, Event, HoldStatus};
use std::time::Duration;

/// The principal the executor acts as.
pub const PRINCIPAL: &str = "tally-hold-expiry";

/// Holds decided at once: each due hold is one small command, as a payment is.
pub const CONCURRENCY: usize = super::payments::CONCURRENCY;

/// Longest single wait: a redelivery at least this often keeps long holds visible as pending
/// work and bounds the damage of a clock jump.
const WAIT_MAX: Duration = Duration::from_secs(3600);

pub async fn process(writer: Writer, payload: bytes::Bytes, delivered: i64) -> Verdict {
    let envelope = match Envelope::from_json(&payload) {
        Ok(envelope) => envelope,
        Err(e) => {
            tracing::error!(error = %e, "hold expiry: undecodable message terminated");
            return Verdict::Terminate("undecodable");
        }
    };
    let (Event::HoldPlaced(placed), Some(_)) = (&envelope.event, envelope.event.hold_state())
    else {
        return Verdict::Ack;
    };
    let Some(expires_at) = placed.expires_at else {
        return Verdict::Ack;
    };
    let now = Utc::now();
    // Delivered for the first time, the hold was just placed: its timer starts.
    if expires_at > now && delivered == 1 {
        return Verdict::Later(until(expires_at, now));
    }
    let Some(actor) = super::system_actor(PRINCIPAL) else {
        return Verdict::Terminate("unprocessable");
    };
    let submission = Submission {
        actor: actor.clone(),
        command: Command::ExpireHold(ExpireHold {
            hold_id: placed.hold_id,
            account_id: placed.account_id.clone(),
            now,
        }),
        job_id: envelope.job_id,
        idempotency: None,
    };
    match writer.submit(submission).await {
        Ok(Ok(reply)) => match reply.answer {
            // Still placed: not due yet.
            Answered::Decided(Outcome::HoldChanged { hold, .. })
                if hold.status == HoldStatus::Placed =>
            {
                Verdict::Later(until(expires_at, now))
            }
            // Voided now, or captured or voided before: the timer is done.
            _ => Verdict::Ack,
        },
        Ok(Err(e)) => {
            tracing::error!(error = %e, hold_id = %placed.hold_id, "hold cannot be expired");
            Verdict::Terminate("unprocessable")
        }
        // Not due: whether it is still placed can be asked next time.
        Err(_) if expires_at > now => Verdict::Later(until(expires_at, now)),
        Err(failure) => {
            tracing::warn!(error = %failure, hold_id = %placed.hold_id, "hold expiry will be retried");
            let overdue = (now - expires_at).to_std().unwrap_or_default();
            Verdict::Later(retry_pause_after(overdue))
        }
    }
}

/// The pause until `expires_at`, at most [`WAIT_MAX`].
fn until(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (expires_at - now)
        .to_std()
        .unwrap_or_default()
        .min(WAIT_MAX)
}
