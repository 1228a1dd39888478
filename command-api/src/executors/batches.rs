//! The balance-batch executor: applies each `batch_submitted` chunk in parts of up to 499
//! items, all parts submitted at once so that they share group commits. Each part's record
//! (expected sequence 0) makes it exactly-once across crashes and redeliveries.

use super::{Verdict, retry_pause};
use crate::domain::{ApplyBatchPart, Command};
use crate::writer::{Submission, Writer};
use events::batch::PART_LEN_MAX;
use events::{Envelope, Event};
use uuid::Uuid;

/// The principal the executor acts as.
pub const PRINCIPAL: &str = "tally-batches";

/// Chunks decided at once: each is up to a thousand items in parts of up to 499, so a few
/// chunks fill a group commit, and more would crowd out the HTTP commands sharing it.
pub const CONCURRENCY: usize = 8;

pub async fn process(writer: Writer, payload: bytes::Bytes, delivered: i64) -> Verdict {
    let envelope = match Envelope::from_json(&payload) {
        Ok(envelope) => envelope,
        Err(e) => {
            tracing::error!(error = %e, "batch executor: undecodable message terminated");
            return Verdict::Terminate("undecodable");
        }
    };
    let Event::BatchSubmitted(chunk) = envelope.event else {
        return Verdict::Ack;
    };
    let Some(actor) = super::system_actor(PRINCIPAL) else {
        return Verdict::Terminate("unprocessable");
    };
    let parts = chunk
        .items
        .chunks(PART_LEN_MAX)
        .enumerate()
        .map(|(index, items)| {
            let submission = Submission {
                actor: actor.clone(),
                command: Command::ApplyBatchPart(ApplyBatchPart {
                    batch_id: chunk.batch_id,
                    chunk: chunk.chunk,
                    part: u32::try_from(index).unwrap_or(u32::MAX),
                    items: items.to_vec(),
                }),
                job_id: Uuid::now_v7(),
                idempotency: None,
            };
            writer.submit(submission)
        });
    let answers = futures::future::join_all(parts).await;
    let mut verdict = Verdict::Ack;
    for answer in answers {
        match answer {
            Ok(Ok(_)) => {}
            Ok(Err(rejection)) => {
                tracing::error!(error = %rejection, batch_id = %chunk.batch_id, chunk = chunk.chunk,
                    "batch chunk cannot be applied");
                return Verdict::Terminate("unprocessable");
            }
            Err(failure) => {
                tracing::warn!(error = %failure, batch_id = %chunk.batch_id, chunk = chunk.chunk,
                    "batch chunk will be retried");
                verdict = Verdict::Retry(retry_pause(delivered));
            }
        }
    }
    verdict
}
