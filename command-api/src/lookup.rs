//! Facts a handler reads from the journal before its command can name every aggregate it
//! touches: a reversal's transfer (its two accounts) and a refund's order (its account).
//! These facts never change once journaled, so reading them outside the writer is safe; the
//! writer loads the aggregates' current states itself, guarded by expected sequences.
//!
//! A transfer is two account messages and has no subject of its own until its first
//! reversal (ADR 0018). Before that it is found by time: transfer ids are UUIDv7 minted by
//! this API just before the writer decides the transfer, so its `transfer_sent` was stored
//! within [`COMMIT_WINDOW`] after the id's instant (give or take [`CLOCK_SKEW`]); the journal
//! is read from there, account subjects only, up to the first match.

use chrono::{DateTime, Duration, Utc};
use events::{Envelope, Event, OrderState, TransferState, headers, subjects};
use ledger_nats::direct::{self, DirectGetError, Stored, TimeWindow};
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

#[derive(Debug, Error)]
pub enum LookupError {
    #[error(transparent)]
    Journal(#[from] DirectGetError),
    #[error("message {0} of the journal cannot be decoded")]
    Undecodable(u64),
}

/// The transfer `transfer_id`: its own subject's state once reversed, else its facts from its
/// `transfer_sent` (version 0, nothing reversed). `None`: no such transfer — checked against
/// the stream's leader, so that a transfer or reversal acknowledged before the call is never
/// reported missing because a trailing replica answered.
pub async fn transfer(
    client: &async_nats::Client,
    stream: &str,
    transfer_id: Uuid,
) -> Result<Option<TransferState>, LookupError> {
    let subject = subjects::transfer(&transfer_id);
    if let Some(stored) = last(client, stream, &subject).await? {
        return transfer_state(&stored);
    }
    let found = match window_of(transfer_id) {
        Some((since, until)) => {
            let id = transfer_id.to_string();
            let window = TimeWindow {
                filter: subjects::ACCOUNTS,
                since,
                until,
            };
            direct::first_since(client, stream, &window, |m| is_transfer_sent(m, &id)).await?
        }
        None => None,
    };
    if let Some(stored) = found {
        return Ok(match decoded(&stored)?.event {
            Event::TransferSent(leg) if leg.transfer_id == transfer_id => {
                Some(TransferState::unreversed(
                    leg.account_id,
                    leg.counterparty_account_id,
                    leg.amount,
                    leg.state.currency,
                ))
            }
            _ => None,
        });
    }
    // Not in its window: a transfer from outside it can still have been reversed just now,
    // which a trailing replica may not show yet. The leader is the last word.
    match direct::last_for_subject_from_leader(client, stream, &subject).await? {
        Some(stored) => transfer_state(&stored),
        None => Ok(None),
    }
}

/// The order `order_id` as its last message leaves it.
pub async fn order(
    client: &async_nats::Client,
    stream: &str,
    order_id: Uuid,
) -> Result<Option<OrderState>, LookupError> {
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
