//! Facts a handler reads from the journal before its command can name every aggregate it
//! touches: a reversal's transfer (its two accounts) and a refund's order (its account).
//! These facts never change once journaled, so reading them outside the writer is safe; the
//! writer loads the aggregates' current states itself, guarded by expected sequences.
//!
//! A transfer is two account messages and has no subject of its own until its first
//! reversal (ADR 0018). Before that, the read model is asked where its `transfer_sent` is
//! (an index lookup), and the journal is read only past what the read model has applied:
//! transfer ids are UUIDv7 minted by this API just before the writer decides the transfer, so
//! its `transfer_sent` was stored within [`COMMIT_WINDOW`] after the id's instant (give or take
//! [`CLOCK_SKEW`]); the journal is read from there — or from the read model's checkpoint, when
//! that is later — account subjects only, up to the first match. Without the read model (not
//! configured, or not answering) the whole window is read: a cost of up to two minutes of
//! account messages for an id that does not exist, which the read model bounds by its lag.

use chrono::{DateTime, Duration, Utc};
use events::{Envelope, Event, OrderState, TransferState, headers, subjects};
use ledger_nats::direct::{self, DirectGetError, Journal, Stored, TimeWindow};
use read_model::query::transfers::Located;
use sqlx::PgPool;
use thiserror::Error;
use uuid::Uuid;

/// How far the clock of the instance that minted a transfer id may be off the journal
/// server's: hosts kept by NTP agree to milliseconds; 2 s covers a badly kept one without
/// making every first reversal read much more.
pub const CLOCK_SKEW: Duration = Duration::seconds(2);

/// How long after its id was minted a transfer may be stored: the handler's wait for room in
/// the writer's queue (`ENQUEUE_TIMEOUT_MS`, 1 s) and for its answer (`ANSWER_TIMEOUT_MS`,
/// 20 s; a command whose caller stopped waiting is not decided), plus the settling of a
/// commit of unknown outcome (`COMMIT_TIMEOUT_MS` × look-ups, under 20 s by default). Raising
/// those settings past this window would let a late transfer go unfound: keep it above them.
pub const COMMIT_WINDOW: Duration = Duration::seconds(60);

/// How long before its request a client may mint the transfer id it supplies (bulk transfers'
/// `transfer_id`): time to build and send a large batch. The bulk endpoint refuses ids minted
/// earlier (or later than [`CLOCK_SKEW`] ahead), so that every accepted id lies in its window.
pub const CLIENT_ID_LEAD: Duration = Duration::seconds(60);

/// Whether a client-supplied transfer id can be found again by [`window_of`] when it is
/// committed for a request taken at `now`: a UUIDv7 minted at most [`CLIENT_ID_LEAD`] before
/// `now` and at most [`CLOCK_SKEW`] after it.
pub fn findable_client_id(id: Uuid, now: DateTime<Utc>) -> bool {
    minted_at(id).is_some_and(|minted| minted >= now - CLIENT_ID_LEAD && minted <= now + CLOCK_SKEW)
}

/// How long a look-up waits for the read models before it reads the journal without them: the
/// indexed read takes about a millisecond, so a read model that has not answered in half a
/// second is in trouble (a stalled Postgres would otherwise hold every first reversal until
/// the request's time-out).
pub const READ_MODEL_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// How long a look-up that must read its whole window waits for one of the instance's
/// [`WindowReads`] before it is refused: a window read takes up to a few seconds, so a queue
/// longer than this is a flood (made-up ids while the read models are down), not a burst.
pub const WINDOW_READ_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Debug, Error)]
pub enum LookupError {
    #[error(transparent)]
    Journal(#[from] DirectGetError),
    #[error("message {0} of the journal cannot be decoded")]
    Undecodable(u64),
    #[error(
        "every window read of this instance is taken (waited {} ms)",
        WINDOW_READ_WAIT.as_millis()
    )]
    Busy,
}

/// The instance's cap on look-ups reading a transfer's whole window at once: the reads made
/// without the read models' bound (not configured, or not answering). Each may read two
/// minutes of account messages, so an unbounded number of them — a flood of made-up ids
/// during a Postgres outage — would take every core and the stream leader's attention.
#[derive(Debug)]
pub struct WindowReads(tokio::sync::Semaphore);

impl WindowReads {
    pub fn new(max: usize) -> Self {
        Self(tokio::sync::Semaphore::new(max))
    }

    /// A window read's turn, waiting at most [`WINDOW_READ_WAIT`].
    async fn turn(&self) -> Result<tokio::sync::SemaphorePermit<'_>, LookupError> {
        match tokio::time::timeout(WINDOW_READ_WAIT, self.0.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            // Never closed; a closed cap refuses like a full one.
            Ok(Err(_)) | Err(_) => {
                metrics::counter!("tally_transfer_lookups_refused_total").increment(1);
                Err(LookupError::Busy)
            }
        }
    }
}

/// Where a handler looks facts up: the journal, and the read model when it has one.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    pub nats: &'a async_nats::Client,
    pub stream: &'a str,
    /// The read models, asked where a transfer is before the journal is read for it.
    pub read_model: Option<&'a PgPool>,
    /// The cap on reads of a transfer's whole window.
    pub window_reads: &'a WindowReads,
}

/// What [`transfer`] found, and how many journal messages it read to find it out.
#[derive(Debug)]
pub struct FoundTransfer {
    pub transfer: Option<TransferState>,
    pub messages_read: u64,
}

/// The transfer `transfer_id`: its own subject's state once reversed, else its facts from its
/// `transfer_sent` (version 0, nothing reversed). `None`: no such transfer — checked against
/// the stream's leader, so that a transfer or reversal acknowledged before the call is never
/// reported missing because a trailing replica answered.
pub async fn transfer(
    sources: Sources<'_>,
    transfer_id: Uuid,
) -> Result<FoundTransfer, LookupError> {
    let Sources { nats, stream, .. } = sources;
    let found = |transfer, messages_read| {
        metrics::counter!("tally_transfer_lookup_messages_read_total").increment(messages_read);
        Ok(FoundTransfer {
            transfer,
            messages_read,
        })
    };
    let subject = subjects::transfer(&transfer_id);
    if let Some(stored) = last(nats, stream, &subject).await? {
        return found(transfer_state(&stored)?, 0);
    }
    let id = transfer_id.to_string();
    let indexed = match sources.read_model {
        Some(pool) => match indexed_transfer_sent(sources, pool, transfer_id, &id).await {
            Ok(indexed) => Some(indexed),
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    %transfer_id,
                    "the read model could not say where a transfer is; reading its whole window"
                );
                None
            }
        },
        None => None,
    };
    // Where the window's reading starts: `None`, nothing is left to read; `Some(0)`, the whole
    // window, with nothing the read models vouch for.
    let known_to = match indexed {
        Some(Indexed::Sent(stored)) => return found(Some(unreversed(&stored)?), 1),
        Some(Indexed::AppliedTo(checkpoint)) => Some(checkpoint),
        Some(Indexed::Absent) => None,
        None => Some(0),
    };
    let searched = match (known_to, window_of(transfer_id)) {
        (Some(known_to), Some((since, until))) => {
            // A read without the read models' bound waits for its turn.
            let _turn = if known_to == 0 {
                Some(sources.window_reads.turn().await?)
            } else {
                None
            };
            let window = TimeWindow {
                filter: subjects::ACCOUNTS,
                since,
                until,
                known_to,
            };
            direct::first_since(nats, stream, &window, |m| is_transfer_sent(m, &id)).await?
        }
        _ => direct::Searched {
            found: None,
            messages_read: 0,
        },
    };
    if let Some(stored) = searched.found {
        return found(Some(unreversed(&stored)?), searched.messages_read);
    }
    // Not in its window: a transfer from outside it can still have been reversed just now,
    // which a trailing replica may not show yet. The leader is the last word.
    let reversed = match direct::last_for_subject_from_leader(nats, stream, &subject).await? {
        Some(stored) => transfer_state(&stored)?,
        None => None,
    };
    found(reversed, searched.messages_read)
}

/// What the read model says of a transfer never reversed.
enum Indexed {
    /// Its `transfer_sent`, read back from the journal at the sequence the read model gave.
    Sent(Stored),
    /// Not applied up to this journal sequence, short of the journal's end.
    AppliedTo(u64),
    /// Not in the journal: the read model has applied all of it.
    Absent,
}

#[derive(Debug, Error)]
enum IndexError {
    #[error(transparent)]
    ReadModel(#[from] sqlx::Error),
    #[error(transparent)]
    Journal(#[from] DirectGetError),
    #[error("the read model puts transfer {0} at message {1}, which is not its transfer_sent")]
    Drift(Uuid, u64),
    #[error("the read model did not answer within {} ms", READ_MODEL_WAIT.as_millis())]
    Slow,
    #[error(
        "the read model's checkpoint {checkpoint} is past the journal's end {end}: it was not made from this journal"
    )]
    OtherJournal { checkpoint: u64, end: u64 },
    #[error(transparent)]
    Stream(#[from] ledger_nats::stream::StreamError),
}

/// The read model's answer for `transfer_id`, checked against the journal: the read model
/// only says where to look, the journal's message is what the reversal is decided on.
async fn indexed_transfer_sent(
    sources: Sources<'_>,
    pool: &PgPool,
    transfer_id: Uuid,
    id: &str,
) -> Result<Indexed, IndexError> {
    let Located {
        sent_seq,
        checkpoint,
    } = tokio::time::timeout(
        READ_MODEL_WAIT,
        read_model::query::transfers::locate(pool, transfer_id),
    )
    .await
    .map_err(|_| IndexError::Slow)??;
    let Some(seq) = sent_seq else {
        // Trusted only if made from this journal: a read model of another (a schema named
        // for another stream, a journal started afresh) would hide every transfer.
        let end = ledger_nats::stream::stream_last_seq(sources.nats, sources.stream).await?;
        return match checkpoint.cmp(&end) {
            std::cmp::Ordering::Greater => Err(IndexError::OtherJournal { checkpoint, end }),
            // The end is the leader's, read after the transfer's caller was answered: nothing
            // is left to read.
            std::cmp::Ordering::Equal => Ok(Indexed::Absent),
            std::cmp::Ordering::Less => Ok(Indexed::AppliedTo(checkpoint)),
        };
    };
    // The replica answering may trail the projector, which reads from the leader.
    let on_replica = direct::range(sources.nats, sources.stream, seq, 1)
        .await?
        .into_iter()
        .find(|m| m.seq == seq);
    let message = match on_replica {
        Some(message) => Some(message),
        None => {
            direct::JetStream {
                nats: sources.nats,
                stream: sources.stream,
            }
            .leader_message(seq)
            .await?
        }
    };
    match message {
        Some(message) if is_transfer_sent(&message, id) => Ok(Indexed::Sent(message)),
        _ => Err(IndexError::Drift(transfer_id, seq)),
    }
}

/// The order `order_id` as its last message leaves it.
pub async fn order(
    sources: Sources<'_>,
    order_id: Uuid,
) -> Result<Option<OrderState>, LookupError> {
    let Sources {
        nats: client,
        stream,
        ..
    } = sources;
    let subject = subjects::order(&order_id);
    let stored = match last(client, stream, &subject).await? {
        Some(stored) => Some(stored),
        // A trailing replica may not show an order placed a moment ago; the leader does.
        None => direct::last_for_subject_from_leader(client, stream, &subject).await?,
    };
    let Some(stored) = stored else {
        return Ok(None);
    };
    Ok(decoded(&stored)?.event.order_state().cloned())
}

/// The stretch of the journal (server time) where the transfer `id` must be, if it exists:
/// only UUIDv7 ids carry the instant they were minted. A client may have minted it up to
/// [`CLIENT_ID_LEAD`] before its request, and the commit may settle up to [`COMMIT_WINDOW`]
/// after that.
pub fn window_of(id: Uuid) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let minted = minted_at(id)?;
    Some((
        minted - CLOCK_SKEW,
        minted + CLIENT_ID_LEAD + COMMIT_WINDOW + CLOCK_SKEW,
    ))
}

/// The instant a UUIDv7 was minted (other versions carry none).
fn minted_at(id: Uuid) -> Option<DateTime<Utc>> {
    if id.get_version_num() != 7 {
        return None;
    }
    let (seconds, nanos) = id.get_timestamp()?.to_unix();
    DateTime::from_timestamp(i64::try_from(seconds).ok()?, nanos)
}

/// Whether `message` is the `transfer_sent` of transfer `id`: the header and a plain byte
/// search first, so that the other messages of the window are not decoded.
fn is_transfer_sent(message: &Stored, id: &str) -> bool {
    message.header(headers::EVENT_TYPE) == Some("transfer_sent")
        && message
            .payload
            .windows(id.len())
            .any(|w| w == id.as_bytes())
        && matches!(
            Envelope::from_json(&message.payload).map(|e| e.event),
            Ok(Event::TransferSent(leg)) if leg.transfer_id.to_string() == id
        )
}

async fn last(
    client: &async_nats::Client,
    stream: &str,
    subject: &str,
) -> Result<Option<Stored>, LookupError> {
    let found = direct::last_for_subjects(client, stream, &[subject.to_owned()]).await?;
    Ok(found.into_iter().next())
}

/// The facts of a transfer never reversed, from its `transfer_sent`.
fn unreversed(sent: &Stored) -> Result<TransferState, LookupError> {
    match decoded(sent)?.event {
        Event::TransferSent(leg) => Ok(TransferState::unreversed(
            leg.account_id,
            leg.counterparty_account_id,
            leg.amount,
            leg.state.currency,
        )),
        _ => Err(LookupError::Undecodable(sent.seq)),
    }
}

fn transfer_state(stored: &Stored) -> Result<Option<TransferState>, LookupError> {
    Ok(decoded(stored)?.event.transfer_state().cloned())
}

fn decoded(stored: &Stored) -> Result<Envelope, LookupError> {
    Envelope::from_json(&stored.payload).map_err(|_| LookupError::Undecodable(stored.seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uuidv7_transfer_id_is_looked_for_around_its_instant() {
        let before = Utc::now();
        let id = Uuid::now_v7();
        let (since, until) = window_of(id).expect("a UUIDv7 has an instant");
        assert!(since <= before && before - since <= CLOCK_SKEW + Duration::milliseconds(5));
        assert_eq!(
            until - since,
            CLIENT_ID_LEAD + COMMIT_WINDOW + CLOCK_SKEW + CLOCK_SKEW
        );
    }

    #[test]
    fn a_client_transfer_id_is_findable_only_if_minted_shortly_before_the_request() {
        let now = Utc::now();
        assert!(findable_client_id(Uuid::now_v7(), now));
        let minted = |at: DateTime<Utc>| {
            let seconds = u64::try_from(at.timestamp()).expect("after 1970");
            Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, seconds, 0))
        };
        assert!(findable_client_id(minted(now - Duration::seconds(30)), now));
        assert!(!findable_client_id(
            minted(now - Duration::seconds(120)),
            now
        ));
        assert!(!findable_client_id(
            minted(now + Duration::seconds(60)),
            now
        ));
        assert!(!findable_client_id(Uuid::new_v4(), now));
    }

    #[test]
    fn other_uuids_name_no_window() {
        let v4 = Uuid::parse_str("6f9619ff-8b86-4d01-b42d-00cf4fc964ff").expect("a UUID");
        assert_eq!(window_of(v4), None);
        assert_eq!(window_of(Uuid::nil()), None);
    }
}
