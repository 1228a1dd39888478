//! The write protocol: commit one atomic batch and settle its fate, whatever the server says.
//!
//! [`commit_atomic`] publishes the batch ([`crate::batch::publish_atomic`]) and turns every
//! answer into one of four fates: stored (with the batch's sequences), a conflict (an
//! expected-sequence check failed; nothing is stored, the caller may re-decide), refused
//! (nothing is stored, re-deciding will not help), or unknown (no evidence either way; the
//! caller must not re-decide). Two answers are not taken at their word:
//!
//! - "wrong last sequence" is confirmed by looking up what follows the expected sequences,
//!   the stream's and the subjects' ([`settle_conflict`]);
//! - no answer (time-out, lost connection, duplicate message id) is settled by the same
//!   look-ups and by resending the identical batch ([`resolve`]).
//!
//! Both rules were found by the chaos audit on a cluster; their comments say how.

use crate::api::ApiError;
use crate::batch::{BatchAck, Outbound, PublishError, publish_atomic};
use crate::direct::{self, DirectGetError, Stored};
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
/// resolved by looking up what follows the places its checks pin, and by resending the
/// identical batch (same message ids, same checks) — which the server can store at most once.
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
        Err(PublishError::WrongLastSequence(refusal)) => {
            settle_conflict(client, messages, options, &refusal).await
        }
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
/// the first answer wins, and re-deciding wrote one chaos-run transfer seven times. So the
/// places the batch pins are looked up (from the leader) until one of them is evidence
/// ([`inspect`]); without any, after a few tries the outcome is unknown (503).
///
/// The places the refusal points at ([`likely_witnesses`]) are looked up first, and every
/// place only if they show nothing: a batch of a few hundred transfers pins a few hundred
/// places, and looking them all up for every conflict cost nats-server more than the
/// commits themselves when two command APIs wrote at once (`docs/benchmarks.md`).
async fn settle_conflict(
    client: &Client,
    messages: &[Outbound],
    options: &CommitOptions,
    refusal: &ApiError,
) -> Commit {
    let pins = pins(messages);
    let likely = likely_witnesses(client, &options.stream, &pins, refusal).await;
    for attempt in 0..options.conflict_lookups {
        let evidence = match inspect(client, &options.stream, &likely, messages.len()).await {
            Evidence::Nothing => inspect(client, &options.stream, &pins, messages.len()).await,
            evidence => evidence,
        };
        match evidence {
            Evidence::Stored(ack) => {
                tracing::warn!(seq = ack.seq, "refused, yet the batch was stored");
                return Commit::Stored(ack);
            }
            Evidence::Conflict => return Commit::Conflict,
            Evidence::Nothing => tokio::time::sleep(backoff(attempt + 2)).await,
        }
    }
    tracing::warn!("a refusal could not be confirmed as a conflict");
    Commit::Unknown("a refusal could not be confirmed as a conflict".into())
}

/// Settles a commit of unknown outcome. Only positive evidence ends it ([`inspect`]). Without
/// any, the identical batch is sent again (same message ids, same checks), which the server
/// can store at most once. A resend refused with "wrong last sequence" proves nothing by
/// itself — a subject or the stream may have moved because *our* first attempt was applied
/// meanwhile — so the look-up is repeated; and a look-up that finds nothing after such a
/// refusal cannot be trusted either (a leader that was frozen and does not know yet that it
/// was deposed answers from its old state). Without evidence the outcome stays unknown
/// (503): re-deciding the commands would write a second copy of any that was stored.
async fn resolve(client: &Client, messages: &[Outbound], options: &CommitOptions) -> Commit {
    let pins = pins(messages);
    if pins.is_empty() {
        return Commit::Unknown("a batch without checks cannot be settled".into());
    }
    let mut resend_conflicted = false;
    for attempt in 0..options.unknown_outcome_retries_max {
        match inspect(client, &options.stream, &pins, messages.len()).await {
            Evidence::Stored(ack) => return Commit::Stored(ack),
            Evidence::Conflict => return Commit::Conflict,
            Evidence::Nothing if resend_conflicted => {
                tokio::time::sleep(backoff(attempt + 4)).await;
            }
            Evidence::Nothing => match publish_atomic(client, messages, options.timeout).await {
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
        }
    }
    Commit::Unknown("the commit's outcome could not be determined".into())
}

/// The pins a "wrong last sequence" refusal points at: the stream check's, and the subject
/// check of the subject whose last message the refusal names. nats-server answers a failed
/// check with where the stream or the subject now ends (`wrong last sequence: N`); the
/// message at `N` names its subject. Each pin is evidence on its own (a stored batch shows
/// itself at every place it pins; someone else's message at any of them means it never
/// will be), so a witness found among these settles the conflict in two look-ups instead
/// of one per subject. Empty when the refusal names no place or the look-up fails.
pub async fn likely_witnesses<'a>(
    client: &Client,
    stream: &str,
    pins: &[Pin<'a>],
    refusal: &ApiError,
) -> Vec<Pin<'a>> {
    let mut likely: Vec<Pin<'a>> = pins
        .iter()
        .filter(|pin| matches!(pin.after, After::Stream(_)))
        .copied()
        .collect();
    let Some(ends_at) = refused_at(refusal) else {
        return likely;
    };
    match direct::at_seq(client, stream, ends_at).await {
        Ok(Some(found)) => likely.extend(
            pins.iter()
                .filter(|pin| matches!(pin.after, After::Subject(subject, _) if subject == found.subject))
                .copied(),
        ),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "looking up the place a refusal names failed"),
    }
    likely
}

/// The stream sequence a "wrong last sequence" refusal names (`wrong last sequence: N`), if
/// it names one above 0: the server's constant form of the refusal (a subject already in
/// flight) names none.
fn refused_at(refusal: &ApiError) -> Option<u64> {
    let (_, number) = refusal.description.rsplit_once(':')?;
    number.trim().parse().ok().filter(|seq| *seq > 0)
}

/// What the places a batch pins show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Evidence {
    /// Our message follows a pinned place: the batch is stored (contiguously, so its ack
    /// follows from that message's place in it).
    Stored(BatchAck),
    /// Someone else's message follows a pinned place: ours expected that place and the
    /// journal is append-only, so ours can never be stored.
    Conflict,
    /// Nothing follows any place yet, or the look-ups went unanswered.
    Nothing,
}

/// Looks up, from the leader, what follows each place `pins` name. A stored batch shows
/// itself at every place, so "ours" anywhere wins over "someone else's".
async fn inspect(client: &Client, stream: &str, pins: &[Pin<'_>], count: usize) -> Evidence {
    let lookups = pins.iter().map(|pin| pin.what_follows(client, stream));
    let found = futures::future::join_all(lookups).await;
    let mut evidence = Evidence::Nothing;
    for (pin, found) in pins.iter().zip(found) {
        match found {
            Ok(Some(m)) if pin.is_ours(&m) => {
                return Evidence::Stored(found_at(m.seq - pin.index, count as u64));
            }
            Ok(Some(_)) => evidence = Evidence::Conflict,
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "looking up a pinned place failed"),
        }
    }
    evidence
}

/// A place in the journal a batch's check pins: the batch's message at `index` goes right
/// after `after` or not at all.
#[derive(Debug, Clone, Copy)]
pub struct Pin<'a> {
    message: &'a Outbound,
    index: u64,
    after: After<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After<'a> {
    /// The stream's last sequence (`Nats-Expected-Last-Sequence`).
    Stream(u64),
    /// A subject's last sequence (`Nats-Expected-Last-Subject-Sequence`; 0: none yet).
    Subject(&'a str, u64),
}

impl Pin<'_> {
    /// The subject whose last sequence this place is (none: the stream's).
    pub fn subject(&self) -> Option<&str> {
        match self.after {
            After::Stream(_) => None,
            After::Subject(subject, _) => Some(subject),
        }
    }

    /// The message stored right after the pinned place, if any yet.
    async fn what_follows(
        &self,
        client: &Client,
        stream: &str,
    ) -> Result<Option<Stored>, DirectGetError> {
        match self.after {
            After::Stream(seq) => direct::at_seq(client, stream, seq + 1).await,
            After::Subject(subject, seq) => {
                direct::next_for_subject(client, stream, subject, seq + 1).await
            }
        }
    }

    fn is_ours(&self, found: &Stored) -> bool {
        found.msg_id.as_deref() == Some(self.message.msg_id.as_str())
    }
}

/// Every place `messages` pin: the stream check first (on the first message), then each
/// subject check in batch order.
pub fn pins(messages: &[Outbound]) -> Vec<Pin<'_>> {
    let stream = messages.first().and_then(|first| {
        let seq = first.expected_last_seq?;
        Some(Pin {
            message: first,
            index: 0,
            after: After::Stream(seq),
        })
    });
    let subjects = messages.iter().enumerate().filter_map(|(index, message)| {
        let seq = message.expected_last_subject_seq?;
        Some(Pin {
            message,
            index: index as u64,
            after: After::Subject(&message.subject, seq),
        })
    });
    stream.into_iter().chain(subjects).collect()
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

    fn refusal(description: &str) -> ApiError {
        ApiError {
            code: 400,
            err_code: crate::batch::err_code::WRONG_LAST_SEQUENCE,
            description: description.to_owned(),
        }
    }

    #[test]
    fn a_refusal_names_where_the_stream_or_subject_ends_unless_it_is_the_constant_form() {
        assert_eq!(
            refused_at(&refusal("wrong last sequence: 4242")),
            Some(4242)
        );
        assert_eq!(refused_at(&refusal("wrong last sequence")), None);
        assert_eq!(refused_at(&refusal("wrong last sequence: 0")), None);
        assert_eq!(refused_at(&refusal("wrong last sequence: x")), None);
    }

    #[test]
    fn a_batch_found_at_its_first_sequence_ends_count_minus_one_later() {
        let ack = found_at(10, 3);
        assert_eq!(ack, BatchAck { seq: 12, count: 3 });
        assert_eq!(ack.first_seq(), 10);
    }

    fn message(subject: &str, subject_check: Option<u64>, stream_check: Option<u64>) -> Outbound {
        Outbound {
            subject: subject.to_owned(),
            msg_id: format!("id-{subject}"),
            headers: vec![],
            payload: bytes::Bytes::new(),
            expected_last_subject_seq: subject_check,
            expected_last_seq: stream_check,
        }
    }

    fn places(messages: &[Outbound]) -> Vec<(u64, After<'_>)> {
        pins(messages)
            .into_iter()
            .map(|pin| (pin.index, pin.after))
            .collect()
    }

    #[test]
    fn the_stream_check_is_pinned_first_then_each_subject_check_in_order() {
        let batch = [
            message("a", None, Some(40)),
            message("b", Some(7), None),
            message("a", None, None),
            message("c", Some(0), None),
        ];
        assert_eq!(
            places(&batch),
            [
                (0, After::Stream(40)),
                (1, After::Subject("b", 7)),
                (3, After::Subject("c", 0)),
            ]
        );
    }

    #[test]
    fn a_first_message_with_both_checks_pins_both_places() {
        let batch = [message("a", Some(3), Some(40)), message("b", None, None)];
        assert_eq!(
            places(&batch),
            [(0, After::Stream(40)), (0, After::Subject("a", 3))]
        );
    }

    #[test]
    fn backoff_never_exceeds_its_cap() {
        for attempt in 0..40 {
            assert!(backoff(attempt) <= BACKOFF_MAX);
        }
    }
}
