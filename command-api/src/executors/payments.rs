//! The payment executor: for every `order_placed`, one atomic batch with either `order_paid` +
//! `order_charged` or `order_rejected`. The order's expected sequence (it has only the placing
//! message while undecided) makes the outcome exactly-once: a redelivery — say after a crash
//! between the append and the ack — finds the order decided and journals nothing.

use super::{Verdict, retry_pause};
use crate::domain::{Command, PayOrder};
use crate::writer::{Rejection, Submission, WriteFailure, Writer};
use events::{Envelope, Event};

/// The principal the executor acts as (it may charge any account, as an admin).
pub const PRINCIPAL: &str = "tally-payments";

/// Orders decided at once. Each payment is one small command of two messages, and a group
/// commit carries every command waiting: what the executor decides at once is what one commit
/// can pay. 256 payments fill about half of one atomic batch, leaving the rest to HTTP
/// commands. Eight at a time paid 550–650 orders/s here; 256, as fast as they were placed
/// (`bench --scenarios orders`, docs/benchmarks.md).
pub const CONCURRENCY: usize = 256;

/// Processes one journaled message (any message on `ledger.order.*`).
pub async fn process(writer: Writer, payload: bytes::Bytes, delivered: i64) -> Verdict {
    let envelope = match Envelope::from_json(&payload) {
        Ok(envelope) => envelope,
        Err(e) => {
            tracing::error!(error = %e, "payment executor: undecodable message terminated");
            return Verdict::Terminate("undecodable");
        }
    };
    let Event::OrderPlaced(placed) = envelope.event else {
        // The executor's own order_paid / order_rejected: nothing to do.
        return Verdict::Ack;
    };
    let Some(actor) = super::system_actor(PRINCIPAL) else {
        return Verdict::Terminate("unprocessable");
    };
    let submission = Submission {
        actor: actor.clone(),
        command: Command::PayOrder(PayOrder {
            order_id: placed.order_id,
            account_id: placed.state.account_id.clone(),
        }),
        // The order's job: paying it completes the job the customer was given.
        job_id: envelope.job_id,
        idempotency: None,
    };
    match writer.submit(submission).await {
        Ok(Ok(_)) => Verdict::Ack,
        Ok(Err(Rejection::Domain(e))) => {
            tracing::error!(error = %e, order_id = %placed.order_id, "order cannot be paid");
            Verdict::Terminate("unprocessable")
        }
        Ok(Err(Rejection::IdempotencyKeyReused)) => Verdict::Ack,
        Err(
            failure @ (WriteFailure::Conflict
            | WriteFailure::Overloaded
            | WriteFailure::Unavailable(_)),
        ) => {
            let pause = retry_pause(delivered);
            tracing::warn!(error = %failure, order_id = %placed.order_id, ?pause, "payment will be retried");
            Verdict::Retry(pause)
        }
    }
}
