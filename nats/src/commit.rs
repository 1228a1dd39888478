//! The write protocol: commit one atomic batch and settle its fate, whatever the server says.
//!
//! [`commit_atomic`] publishes the batch ([`crate::batch::publish_atomic`]) and turns every
//! answer into one of four fates: stored (with the batch's sequences), a conflict (an
//! expected-sequence check failed; nothing is stored, the caller may re-decide), refused
//! (nothing is stored, re-deciding will not help), or unknown (no evidence either way; the
//! caller must not re-decide). Two answers are not taken at their word:
//!
//! - "wrong last sequence" is confirmed by looking up what follows the expected sequences
//!   ([`settle_conflict`]);
//! - no answer (time-out, lost connection, duplicate message id) is settled by looking for the
//!   batch's first message and by resending the identical batch ([`resolve`]).
//!
//! Both rules were found by the chaos audit on a cluster; their comments say how.

use crate::batch::{BatchAck, Outbound, PublishError, publish_atomic};
use crate::direct;
use async_nats::Client;
use std::time::Duration;

/// How a commit ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Commit {
    Stored(BatchAck),
    /// An expected-sequence check failed; nothing of the batch is stored.
    Conflict,
    /// Refused for another reason; nothing is stored.
    Refused(String),
    /// Still unknown after all retries.
    Unknown(String),
}

/// The limits of one commit; the caller's configuration says why they have their values.
#[derive(Debug, Clone)]
pub struct CommitOptions {
    pub stream: String,
    /// How long to wait for the pub ack of one publish (or resend).
    pub timeout: Duration,
    /// Look-ups (each possibly with an identical resend) that settle an unknown outcome.
    pub unknown_outcome_retries_max: u32,
    /// Rounds of look-ups that confirm a "wrong last sequence" answer, 8 ms to 500 ms apart
    /// (about 1.5 s in all with 7): a conflicting batch in flight is applied within
    /// milliseconds; a deposed leader learns of its successor within a second or so.
    pub conflict_lookups: u32,
}

/// First back-off between look-ups; doubled per retry, with jitter, capped at
/// [`BACKOFF_MAX`].
const BACKOFF_FIRST: Duration = Duration::from_millis(2);
const BACKOFF_MAX: Duration = Duration::from_millis(500);

/// Publishes `messages` as one atomic batch and settles its fate: an unknown outcome is
/// resolved by looking for the batch's first message, and by resending the identical batch
/// (same message ids, same expected sequences) — which the server can store at most once.
///
/// `on_unknown` is called once when the first answer leaves the outcome unknown (for the
/// caller's counters).
pub async fn commit_atomic(
    client: &Client,
    messages: &[Outbound],
    options: &CommitOptions,
    on_unknown: impl FnOnce(),
) -> Commit {
    match publish_atomic(client, messages, options.timeout).await {
        Ok(ack) => Commit::Stored(ack),
        Err(PublishError::WrongLastSequence(_)) => settle_conflict(client, messages, options).await,
        Err(e @ (PublishError::Refused(_) | PublishError::BadLength(_))) => {
            Commit::Refused(e.to_string())
        }
        Err(e @ (PublishError::DuplicateMessageId(_) | PublishError::Unknown(_))) => {
            on_unknown();
            tracing::warn!(error = %e, "commit outcome unknown; resolving");
            resolve(client, messages, options).await
        }
    }
}

/// Makes sure a "wrong last sequence" answer is a conflict before the round is re-decided.
/// The answer alone is not proof: right after a frozen leader resumes, it still believes
/// it leads and answers publishes from its old state while the new leader stores them —
/// the first answer wins, and re-deciding wrote one chaos-run transfer seven times. So
/// each subject the batch checks is looked up (from the leader) after its expected
/// sequence: our own message there proves the batch stored; another message there proves
/// the conflict (the journal is append-only, and ours expected that place); nothing, or
/// no answer, proves neither, and after a few tries the outcome is unknown (503).
async fn settle_conflict(
    client: &Client,
    messages: &[Outbound],
    options: &CommitOptions,
) -> Commit {
    let checked: Vec<&Outbound> = messages
        .iter()
        .filter(|m| m.expected_last_subject_seq.is_some())
        .collect();
    let count = messages.len() as u64;
    for attempt in 0..options.conflict_lookups {
        let lookups = checked.iter().map(|m| {
            direct::next_for_subject(
                client,
                &options.stream,
                &m.subject,
                m.expected_last_subject_seq.unwrap_or(0) + 1,
            )
        });
        let found = futures::future::join_all(lookups).await;
        for (ours, found) in checked.iter().zip(&found) {
            match found {
                Ok(Some(m)) if m.msg_id.as_deref() == Some(ours.msg_id.as_str()) => {
                    // The batch is stored contiguously; its last message is `count - 1`
                    // after this one's place in it.
                    let index = messages
                        .iter()
                        .position(|x| x.msg_id == ours.msg_id)
                        .unwrap_or(0) as u64;
                    tracing::warn!(seq = m.seq, "refused, yet the batch was stored");
                    return Commit::Stored(found_at(m.seq - index, count));
                }
                Ok(Some(_)) => return Commit::Conflict,
                Ok(None) | Err(_) => {}
            }
        }
        tokio::time::sleep(backoff(attempt + 2)).await;
    }
    tracing::warn!("a refusal could not be confirmed as a conflict");
    Commit::Unknown("a refusal could not be confirmed as a conflict".into())
}

/// Settles a commit of unknown outcome. Only positive evidence ends it: our batch's first
/// message found where it would be (stored), or another message found in its place (ours
/// can never be stored: the journal is append-only and ours expected that place). A
/// resend refused with "wrong last sequence" proves nothing by itself — the subject may
/// have moved because *our* first attempt was applied meanwhile — so the look-up is
/// repeated; and a look-up that finds nothing after such a refusal cannot be trusted
/// either (a leader that was frozen and does not know yet that it was deposed answers
/// from its old state). Without evidence the outcome stays unknown (503): re-deciding the
/// commands would write a second copy of any that was stored.
async fn resolve(client: &Client, messages: &[Outbound], options: &CommitOptions) -> Commit {
    let Some(first) = messages.first() else {
        return Commit::Refused("empty batch".into());
    };
    // The first message is its subject's first in the batch, so it carries the check.
    let expected = first.expected_last_subject_seq.unwrap_or(0);
    let count = messages.len() as u64;
    let mut resend_conflicted = false;
    for attempt in 0..options.unknown_outcome_retries_max {
        let found =
            direct::next_for_subject(client, &options.stream, &first.subject, expected + 1).await;
        match found {
            // Stored: a batch is stored contiguously, so its last message follows.
            Ok(Some(m)) if m.msg_id.as_deref() == Some(first.msg_id.as_str()) => {
                return Commit::Stored(found_at(m.seq, count));
            }
            // Someone else's message follows the expected sequence: ours can never be
            // stored.
            Ok(Some(_)) => return Commit::Conflict,
            // Not found, though a resend saw the subject move: the answer is stale or
            // our batch is about to be applied; ask again.
            Ok(None) if resend_conflicted => {
                tokio::time::sleep(backoff(attempt + 4)).await;
            }
            Ok(None) => match publish_atomic(client, messages, options.timeout).await {
                Ok(ack) => return Commit::Stored(ack),
                Err(PublishError::WrongLastSequence(_)) => resend_conflicted = true,
                Err(PublishError::DuplicateMessageId(_)) => {}
                Err(e @ (PublishError::Refused(_) | PublishError::BadLength(_))) => {
                    return Commit::Refused(e.to_string());
                }
                Err(PublishError::Unknown(_)) => {
                    tokio::time::sleep(backoff(attempt + 4)).await;
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "looking up an unknown commit failed");
                tokio::time::sleep(backoff(attempt + 4)).await;
            }
        }
    }
    Commit::Unknown("the commit's outcome could not be determined".into())
}

/// The ack of a batch of `count` messages found stored from stream sequence `first_seq` on: a
/// batch is stored contiguously, so its last message is `count - 1` further.
pub fn found_at(first_seq: u64, count: u64) -> BatchAck {
    BatchAck {
        seq: first_seq + count - 1,
        count,
    }
}

/// Exponential back-off with full jitter: a random pause up to `2 ms · 2^attempt`, at most
/// [`BACKOFF_MAX`]. Jitter keeps instances that conflicted with each other from retrying in
/// step.
pub fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_FIRST
        .saturating_mul(1u32 << attempt.min(16))
        .min(BACKOFF_MAX);
    let millis = u64::try_from(ceiling.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    Duration::from_millis(rand::random_range(0..=millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_found_at_its_first_sequence_ends_count_minus_one_later() {
        let ack = found_at(10, 3);
        assert_eq!(ack, BatchAck { seq: 12, count: 3 });
        assert_eq!(ack.first_seq(), 10);
    }

    #[test]
    fn backoff_never_exceeds_its_cap() {
        for attempt in 0..40 {
            assert!(backoff(attempt) <= BACKOFF_MAX);
        }
    }
}
