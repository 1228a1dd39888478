//! `GET /v1/accounts/{id}/events`: an account's changes as Server-Sent Events, live.
//!
//! Each event is one history entry: `id` is its journal sequence, `event` its history type,
//! `data` the entry with the account's balance, held and available amounts after it. A feed
//! starts after `Last-Event-ID` (what a reconnecting `EventSource` sends), else after
//! `?after_seq=`, else with `?from=now` at the present, else at the start of the history; it
//! reads the read model up to where the hub took over (the catch-up), then passes on what the
//! hub hands it, skipping anything already sent: every entry once, in order, without a gap.
//! A subscriber the hub cut off for reading too slowly gets a final `event: lagged`.

use super::access::{ACCOUNT_NOT_FOUND, ProblemKind, QueryCall};
use super::entries::Entry;
use crate::consistency::PROJECTION_LAGGING;
use crate::feed::{Hub, PAGE_LEN, Refused, Subscription};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use events::AccountId;
use http_edge::openapi::AccountIdParam;
use http_edge::problem::UNAVAILABLE;
use http_edge::{ApiError, ApiPath, ApiQuery};
use read_model::query::feed::{self as rows, FeedEntry};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::convert::Infallible;
use tokio::time::Instant;
use utoipa::{IntoParams, ToSchema};

/// The header a reconnecting `EventSource` sends: the `id` of the last event it received.
pub const LAST_EVENT_ID: &str = "Last-Event-ID";
/// The largest sequence a client may name: the read model keeps sequences as `bigint`.
pub const SEQ_MAX: u64 = i64::MAX as u64;
/// The path of the feed, as the document names it.
pub const PATH: &str = "/v1/accounts/{id}/events";
/// Seconds a client refused for want of a slot is asked to wait: feeds are long-lived, so a
/// slot frees up when some client leaves, not within milliseconds.
const FULL_RETRY_AFTER_S: u32 = 5;

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FromWhere {
    Now,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// Start after this journal sequence (an event's `id`); `Last-Event-ID` takes precedence.
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    after_seq: Option<u64>,
    /// `now`: only what happens from now on (not with `after_seq`).
    #[param(value_type = Option<FromWhere>)]
    from: Option<String>,
}

/// One event of the stream as `text/event-stream` frames it (heartbeats are comments, not
/// events). Only the document uses this type: the stream writes the fields itself.
#[derive(Debug, ToSchema)]
pub struct StreamEvent {
    /// The entry's journal sequence; resume after it with `Last-Event-ID` (none on `lagged`).
    #[schema(pattern = "^[0-9]+$")]
    pub id: Option<String>,
    /// The entry's history type (`opening`, `deposit`, `withdrawal`, `transfer`,
    /// `adjustment`, `payment`, `hold`, `reversal`, `refund`), or `lagged` for the last event
    /// of a cut-off stream.
    pub event: String,
    /// JSON: a `FeedEvent`, or for `lagged` `{"last_seq", "detail"}`.
    #[schema(content_media_type = "application/json")]
    pub data: String,
}

/// One change of the account, as the `data` of its event: the history entry with the
/// account's figures after it.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedEvent {
    account_id: AccountId,
    /// `balance - held` after the change (`null` only if that would overflow).
    #[schema(required = true)]
    available: Option<i64>,
    /// The balance after the change (the entry's `balance_after`).
    balance: i64,
    /// Minor units reserved by holds after the change.
    held: i64,
    #[serde(flatten)]
    entry: Entry,
}

impl FeedEvent {
    fn from_row(row: &FeedEntry) -> Result<Self, ApiError> {
        Ok(Self {
            account_id: row.account_id.clone(),
            available: row.entry.balance_after.checked_sub(row.held_after),
            balance: row.entry.balance_after,
            held: row.held_after,
            entry: Entry::from_row(row.entry.clone())?,
        })
    }
}

/// Every live feed slot of this instance is taken (or it is shutting down).
pub const FEED_FULL: ProblemKind = ProblemKind::new(
    StatusCode::SERVICE_UNAVAILABLE,
    "feed_full",
    "every live feed slot of this instance is taken; retry (Retry-After)",
)
.retried();

http_edge::problems!(FeedProblems: [ACCOUNT_NOT_FOUND, FEED_FULL, UNAVAILABLE, PROJECTION_LAGGING]);

/// An account's changes, live (Server-Sent Events)
///
/// A `text/event-stream` that stays open: one event per history entry (`id`: its journal sequence,
/// `event`: its history type, `data`: a `FeedEvent`), heartbeat comments while quiet, and a final
/// `event: lagged` if the client reads too slowly (resume with `Last-Event-ID`). An event is sent
/// only once a query with `Ledger-Min-Seq` equal to its `id` would see it.
#[utoipa::path(
    get,
    path = PATH,
    params(
        AccountIdParam,
        FeedQuery,
    ),
    responses(
        (status = 200, description = "the stream of events, one `StreamEvent` each", content_type = "text/event-stream", body = StreamEvent),
        FeedProblems,
    )
)]
pub async fn stream_account_events(
    call: QueryCall,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<FeedQuery>,
) -> Result<Response, ApiError> {
    let start = start_of(&headers, &query)?;
    let account = call.account(id).await?;
    let subscription = call
        .app
        .feed
        .subscribe(account.account_id)
        .map_err(|refused| {
            let detail = match refused {
                Refused::Full => "every live feed slot of this instance is taken; retry shortly",
                Refused::Closed => "the service is shutting down; retry shortly",
            };
            ApiError::new(FEED_FULL, detail).retry_after(FULL_RETRY_AFTER_S)
        })?;
    let after = start.unwrap_or(subscription.live_from);
    let limits = call.app.feed.limits();
    let reader = Reader {
        hub: call.app.feed.clone(),
        backlog: VecDeque::new(),
        catching_up: true,
        last_sent: after,
        ends_at: Instant::now() + limits.stream_max,
        done: false,
        subscription,
    };
    let events = futures::stream::unfold(reader, |mut reader| async move {
        let event = reader.next().await?;
        Some((Ok::<_, Infallible>(event), reader))
    });
    let keep_alive = KeepAlive::new()
        .interval(limits.heartbeat)
        .text("heartbeat");
    Ok(Sse::new(events).keep_alive(keep_alive).into_response())
}

/// The sequence to start after, or `None` for "now".
fn start_of(headers: &HeaderMap, query: &FeedQuery) -> Result<Option<u64>, ApiError> {
    let from_now = match query.from.as_deref() {
        None => false,
        Some("now") => true,
        Some(_) => return Err(ApiError::invalid_request("from must be `now`")),
    };
    if from_now && query.after_seq.is_some() {
        return Err(ApiError::invalid_request(
            "use either after_seq or from=now, not both",
        ));
    }
    // Checked whatever else the request says: a bad value is refused, never ignored.
    if query.after_seq.is_some_and(|seq| seq > SEQ_MAX) {
        return Err(ApiError::invalid_request(
            "after_seq must be an integer from 0 to 2^63 - 1",
        ));
    }
    if let Some(raw) = headers.get(LAST_EVENT_ID) {
        let seq = raw
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|seq| *seq <= SEQ_MAX)
            .ok_or_else(|| {
                ApiError::invalid_request(
                    "Last-Event-ID must be an event's id (an integer from 0 to 2^63 - 1)",
                )
            })?;
        // A reconnecting EventSource repeats the original URL: the header is where it was.
        return Ok(Some(seq));
    }
    match query.after_seq {
        Some(seq) => Ok(Some(seq)),
        None if from_now => Ok(None),
        None => Ok(Some(0)),
    }
}

/// One open feed: its catch-up from the read model, then what the hub hands it.
struct Reader {
    hub: Hub,
    subscription: Subscription,
    /// Catch-up rows read but not sent yet.
    backlog: VecDeque<FeedEntry>,
    catching_up: bool,
    /// The sequence of the last event sent (or the start): nothing at or below it is sent.
    last_sent: u64,
    ends_at: Instant,
    done: bool,
}

impl Reader {
    async fn next(&mut self) -> Option<Event> {
        loop {
            if self.done {
                return None;
            }
            if let Some(row) = self.backlog.pop_front() {
                return Some(self.send(&row));
            }
            if self.catching_up {
                self.catch_up().await;
                continue;
            }
            tokio::select! {
                entry = self.subscription.entries.recv() => match entry {
                    Some(entry) if seq_of(&entry) <= self.last_sent => {}
                    Some(entry) => return Some(self.send(&entry)),
                    None => {
                        self.done = true;
                        return self.subscription.lagged().then(|| lagged(self.last_sent));
                    }
                },
                () = tokio::time::sleep_until(self.ends_at) => return None,
            }
        }
    }

    /// Reads the next page of the account's entries up to where the hub took over.
    async fn catch_up(&mut self) {
        let up_to = self.subscription.live_from;
        if self.last_sent >= up_to {
            self.catching_up = false;
            return;
        }
        if self.hub.is_closed() {
            self.done = true;
            return;
        }
        let page = rows::entries_between(
            self.hub.pool(),
            Some(&self.subscription.account_id),
            i64::try_from(self.last_sent).unwrap_or(i64::MAX),
            i64::try_from(up_to).unwrap_or(i64::MAX),
            PAGE_LEN,
        )
        .await;
        match page {
            Ok(page) => {
                if (page.len() as i64) < PAGE_LEN {
                    self.catching_up = false;
                }
                self.backlog.extend(page);
            }
            Err(e) => {
                // The headers are sent; all that is left is to end the stream, and the client
                // resumes from the last event it got.
                tracing::error!(error = %e, "reading a feed's catch-up failed; ending the stream");
                self.done = true;
            }
        }
    }

    fn send(&mut self, row: &FeedEntry) -> Event {
        self.last_sent = seq_of(row);
        // An entry the answer cannot describe was logged as the internal error it is; the
        // event still carries its id, so the client's position stays right.
        let data = FeedEvent::from_row(row)
            .ok()
            .and_then(|event| serde_json::to_string(&event).ok())
            .unwrap_or_default();
        Event::default()
            .id(self.last_sent.to_string())
            .event(row.entry.entry_type.as_str())
            .data(data)
    }
}

fn seq_of(row: &FeedEntry) -> u64 {
    u64::try_from(row.entry.seq).unwrap_or(0)
}

/// The last event of a feed the hub cut off: where to resume.
fn lagged(last_seq: u64) -> Event {
    let data = serde_json::json!({
        "last_seq": last_seq,
        "detail": "the client read too slowly and was disconnected; resume with Last-Event-ID",
    });
    Event::default().event("lagged").data(data.to_string())
}
