//! Hold expiry without a sweeper: the executor's durable consumer sees each `hold_placed`
//! (hold side) and, while the hold's time has not come, asks JetStream to redeliver it
//! shortly before the expiry (`Nak` with a delay); the last second or two it waits itself
//! ([`Verdict::Later`]). When the hold is due, the executor submits `ExpireHold`, which voids
//! the hold only if it is still placed. The pending redelivery *is* the timer: it survives
//! restarts of the executor without any state of its own (ADR 0005).
//!
//! A hold is never given up on for a transient failure: its money would stay reserved for
//! ever. The executor tries again, less and less often, until the hold is voided.

use super::{Verdict, retry_pause_after};
use crate::domain::{Command, ExpireHold};
use crate::writer::{Submission, Writer};
use chrono::Utc;
use events::{Envelope, Event};
use std::time::Duration;

/// The principal the executor acts as.
pub const PRINCIPAL: &str = "tally-hold-expiry";

/// Holds decided at once: each due hold is one small command, as a payment is.
pub const CONCURRENCY: usize = super::payments::CONCURRENCY;

/// Longest single wait: a redelivery at least this often keeps long holds visible as pending
/// work and bounds the damage of a clock jump.
const WAIT_MAX: Duration = Duration::from_secs(3600);

pub async fn process(writer: Writer, payload: bytes::Bytes, _delivered: i64) -> Verdict {
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
    if expires_at > now {
        let wait = (expires_at - now)
            .to_std()
            .unwrap_or_default()
            .min(WAIT_MAX);
        return Verdict::Later(wait);
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
        Ok(Ok(_)) => Verdict::Ack,
        Ok(Err(e)) => {
            tracing::error!(error = %e, hold_id = %placed.hold_id, "hold cannot be expired");
            Verdict::Terminate("unprocessable")
        }
        Err(failure) => {
            tracing::warn!(error = %failure, hold_id = %placed.hold_id, "hold expiry will be retried");
            let overdue = (now - expires_at).to_std().unwrap_or_default();
            Verdict::Later(retry_pause_after(overdue))
        }
    }
}
