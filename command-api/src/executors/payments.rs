//! The payment executor: for every `order_placed`, one atomic batch with either `order_paid` +
//! `order_charged` or `order_rejected`. The order's expected sequence (it has only the placing
//! message while undecided) makes the outcome exactly-once: a redelivery — say after a crash
//! between the append and the ack — finds the order decided and journals nothing.

use crate::domain::{Actor, Command, Outcome, PayOrder};
use crate::writer::{Rejection, Rendered, Submission, WriteFailure, Writer};
use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{Consumer, pull};
use events::{Envelope, Event, OwnerId};
use futures::StreamExt;
use serde_json::json;
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// The principal the executor acts as (it may charge any account, as an admin).
pub const PRINCIPAL: &str = "tally-payments";

/// What to tell JetStream about a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Done (paid, rejected, or nothing to do).
    Ack,
    /// A transient failure: deliver again after this pause.
    Retry(Duration),
    /// Cannot ever be processed: stop redelivering (and say so in the log).
    Terminate,
}

/// Longest pause before a redelivery after transient failures.
const RETRY_PAUSE_MAX: Duration = Duration::from_secs(30);

/// Processes one journaled message (any message on `ledger.order.*`).
pub async fn process(writer: &Writer, payload: &[u8], delivered: i64) -> Verdict {
    let envelope = match Envelope::from_json(payload) {
        Ok(envelope) => envelope,
        Err(e) => {
            tracing::error!(error = %e, "payment executor: undecodable message terminated");
            return Verdict::Terminate;
        }
    };
    let Event::OrderPlaced(placed) = envelope.event else {
        // The executor's own order_paid / order_rejected: nothing to do.
        return Verdict::Ack;
    };
    let Ok(principal) = OwnerId::parse(PRINCIPAL) else {
        return Verdict::Terminate;
    };
    let submission = Submission {
        actor: Actor {
            principal,
            admin: true,
        },
        command: Command::PayOrder(PayOrder {
            order_id: placed.order_id,
            account_id: placed.state.account_id.clone(),
        }),
        // The order's job: paying it completes the job the customer was given.
        job_id: envelope.job_id,
        idempotency: None,
        render: render_decision,
    };
    match writer.submit(submission).await {
        Ok(Ok(_)) => Verdict::Ack,
        Ok(Err(Rejection::Domain(e))) => {
            tracing::error!(error = %e, order_id = %placed.order_id, "order cannot be paid");
            Verdict::Terminate
        }
        Ok(Err(Rejection::IdempotencyKeyReused)) => Verdict::Ack,
        Err(
            failure @ (WriteFailure::Conflict
            | WriteFailure::Overloaded
            | WriteFailure::Unavailable(_)),
        ) => {
            let pause = Duration::from_millis(100)
                .saturating_mul(1 << delivered.clamp(0, 8))
                .min(RETRY_PAUSE_MAX);
            tracing::warn!(error = %failure, order_id = %placed.order_id, ?pause, "payment will be retried");
            Verdict::Retry(pause)
        }
    }
}

fn render_decision(_: &Actor, outcome: &Outcome, job_id: Uuid) -> Rendered {
    match outcome {
        Outcome::OrderDecided { order_id, state } => Rendered {
            status: 200,
            body: json!({"order_id": order_id, "job_id": job_id, "status": state.status}),
        },
        _ => Rendered {
            status: 200,
            body: json!({"job_id": job_id}),
        },
    }
}

/// Consumes until `stop` turns true; reconnects with back-off after stream errors.
pub async fn run(
    consumer: Consumer<pull::Config>,
    writer: Writer,
    mut stop: watch::Receiver<bool>,
) {
    let mut failures: u32 = 0;
    loop {
        let mut messages = match consumer.messages().await {
            Ok(messages) => messages,
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::warn!(error = %e, "payment executor: cannot pull; retrying");
                let pause = Duration::from_millis(100).saturating_mul(1 << failures.min(6));
                tokio::select! {
                    () = tokio::time::sleep(pause) => continue,
                    _ = stop.changed() => return,
                }
            }
        };
        loop {
            let next = tokio::select! {
                next = messages.next() => next,
                _ = stop.changed() => return,
            };
            let message = match next {
                Some(Ok(message)) => message,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "payment executor: pull failed");
                    break;
                }
                None => break,
            };
            failures = 0;
            let delivered = message.info().map(|i| i.delivered).unwrap_or(1);
            let verdict = process(&writer, &message.payload, delivered).await;
            let acked = match verdict {
                Verdict::Ack => message.ack().await,
                Verdict::Retry(pause) => message.ack_with(AckKind::Nak(Some(pause))).await,
                Verdict::Terminate => message.ack_with(AckKind::Term).await,
            };
            if let Err(e) = acked {
                // Not acknowledged: JetStream redelivers, and the order's state makes the
                // second attempt a no-op.
                tracing::warn!(error = %e, "payment executor: ack failed");
            }
        }
    }
}
