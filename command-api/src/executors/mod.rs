//! Background executors inside the command API: durable pull consumers whose work goes through
//! the same append pipeline as HTTP commands. Each message's outcome is an ack, a delayed
//! redelivery (transient failure, or a timer not yet due), or a termination.
//!
//! - [`batches`]: applies balance batches, chunk by chunk, exactly once;
//! - [`payments`]: pays or rejects each `order_placed` exactly once;
//! - [`hold_expiry`]: voids holds whose time has come.

pub mod batches;
pub mod hold_expiry;
pub mod payments;

use crate::writer::Writer;
use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{Consumer, pull};
use futures::StreamExt;
use std::time::Duration;
use tokio::sync::watch;

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

/// Exponential pause by delivery count, capped.
pub fn retry_pause(delivered: i64) -> Duration {
    Duration::from_millis(100)
        .saturating_mul(1 << delivered.clamp(0, 8))
        .min(RETRY_PAUSE_MAX)
}

/// Consumes until `stop` turns true; reconnects with back-off after stream errors.
pub async fn consume<F, Fut>(
    name: &'static str,
    consumer: Consumer<pull::Config>,
    writer: Writer,
    mut stop: watch::Receiver<bool>,
    process: F,
) where
    F: Fn(Writer, bytes::Bytes, i64) -> Fut,
    Fut: Future<Output = Verdict>,
{
    let mut failures: u32 = 0;
    loop {
        let mut messages = match consumer.messages().await {
            Ok(messages) => messages,
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::warn!(executor = name, error = %e, "executor cannot pull; retrying");
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
                    tracing::warn!(executor = name, error = %e, "executor pull failed");
                    break;
                }
                None => break,
            };
            failures = 0;
            let delivered = message.info().map(|i| i.delivered).unwrap_or(1);
            let verdict = process(writer.clone(), message.payload.clone(), delivered).await;
            let acked = match verdict {
                Verdict::Ack => message.ack().await,
                Verdict::Retry(pause) => message.ack_with(AckKind::Nak(Some(pause))).await,
                Verdict::Terminate => message.ack_with(AckKind::Term).await,
            };
            if let Err(e) = acked {
                // Not acknowledged: JetStream redelivers, and the aggregate's state makes the
                // second attempt a no-op.
                tracing::warn!(executor = name, error = %e, "executor ack failed");
            }
        }
    }
}
