//! `GET /v1/admin/journal` (admin): the journal's most recent messages, newest first, for
//! operators and the console's Journal page.
//!
//! Read with direct gets by sequence (any replica answers; a follower may trail the leader by
//! a few messages, which a view of the recent past can bear). Admin only: a user is answered
//! `403 forbidden`, like a user's balance batch.

use super::problem::FORBIDDEN;
use super::state::AppState;
use axum::Json;
use axum::extract::State;
use http_edge::{ApiError, ApiQuery, Caller, PageLen};
use ledger_nats::direct::{self, Stored};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// Messages per page. At most 100: a journal message is mostly under 1 KB, but a balance
/// batch's `batch_submitted` chunk carries up to 1,000 items (~50 KB), and 100 of those keep a
/// page under ~5 MB, while 100 ordinary events fill a long screen. 20 when the client does not
/// say: a screenful.
pub const PAGE_LEN: PageLen = PageLen {
    default: 20,
    max: 100,
};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JournalQuery {
    /// Only messages with a lower stream sequence (`next_before_seq` of the previous page);
    /// by default the newest. Signed like every sequence the APIs take (`Ledger-Min-Seq`,
    /// `after_seq`): the documents' integers are `int64`.
    #[param(minimum = 1)]
    before_seq: Option<i64>,
    /// Messages per page.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

/// One journal message as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct JournalMessage {
    /// The JSON body (an event, an idempotency record, a batch's progress).
    #[schema(value_type = Object)]
    data: serde_json::Value,
    /// Every header, the server's (`Nats-*`) and Tally's (`Ledger-*`, `traceparent`); a
    /// header given more than once has its values joined with `, `.
    headers: BTreeMap<String, String>,
    /// The stream sequence.
    #[schema(minimum = 1)]
    seq: u64,
    subject: String,
    /// The W3C trace context of the request that wrote it, when it was traced.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    traceparent: Option<String>,
    /// `Ledger-Event-Type` (e.g. `funds_deposited`); `null` if the message has none.
    #[serde(rename = "type")]
    event_type: Option<String>,
}

impl JournalMessage {
    fn from_stored(message: Stored) -> Self {
        let mut headers = BTreeMap::new();
        for (name, values) in message.headers.iter() {
            let joined = values
                .iter()
                .map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            headers.insert(name.to_string(), joined);
        }
        let data = serde_json::from_slice(&message.payload).unwrap_or_else(|_| {
            // Only JSON is journaled; anything else is shown as text rather than hidden.
            serde_json::Value::String(String::from_utf8_lossy(&message.payload).into_owned())
        });
        Self {
            traceparent: message
                .header(events::headers::TRACEPARENT)
                .map(str::to_owned),
            event_type: message
                .header(events::headers::EVENT_TYPE)
                .map(str::to_owned),
            seq: message.seq,
            subject: message.subject,
            headers,
            data,
        }
    }
}

/// A page of the journal, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct JournalPage {
    items: Vec<JournalMessage>,
    /// The journal's last stream sequence when the page was read.
    #[schema(minimum = 0)]
    last_seq: u64,
    /// Pass as `before_seq` for the next (older) page; `null` on the last.
    #[schema(minimum = 1)]
    next_before_seq: Option<u64>,
}

http_edge::problems!(JournalProblems: [FORBIDDEN]);

/// The journal's recent messages, newest first (admin)
#[utoipa::path(
    get,
    path = "/v1/admin/journal",
    params(JournalQuery),
    responses(
        (status = 200, description = "a page of journal messages", body = JournalPage),
        JournalProblems,
    )
)]
pub async fn list_journal(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<JournalQuery>,
) -> Result<Json<JournalPage>, ApiError> {
    if !caller.admin {
        return Err(ApiError::forbidden("only admins read the journal"));
    }
    let limit = PAGE_LEN.of(query.limit)?;
    let limit = limit.unsigned_abs();
    let before_seq = match query.before_seq {
        None => None,
        Some(n) if n >= 1 => Some(n.unsigned_abs()),
        Some(_) => {
            return Err(ApiError::invalid_request(
                "before_seq counts from 1 (the journal's first sequence)",
            ));
        }
    };
    let last_seq = ledger_nats::stream::stream_last_seq(&app.nats, &app.stream)
        .await
        .map_err(|e| unreachable_journal(&e))?;
    // Nothing lies beyond the end: a later `before_seq` reads from the end.
    let before = before_seq
        .unwrap_or(u64::MAX)
        .min(last_seq.saturating_add(1));
    let from = before.saturating_sub(limit).max(1);
    let mut items = if before > from {
        // `before - from` is at most `limit` (≤ 100).
        let len = usize::try_from(before - from).unwrap_or(1);
        direct::range(&app.nats, &app.stream, from, len)
            .await
            .map_err(|e| unreachable_journal(&e))?
    } else {
        Vec::new()
    };
    // A range reads forward from `from` and may run past `before` if the journal had a gap.
    items.retain(|m| m.seq < before);
    items.reverse();
    let next_before_seq = items.last().map(|m| m.seq).filter(|&seq| seq > 1);
    Ok(Json(JournalPage {
        items: items.into_iter().map(JournalMessage::from_stored).collect(),
        last_seq,
        next_before_seq,
    }))
}

/// NATS not answering is an outage, not the client's fault: logged, answered `503`.
fn unreachable_journal(e: &dyn std::error::Error) -> ApiError {
    tracing::warn!(error = %e, "reading the journal failed");
    ApiError::unavailable("the journal does not answer; try again").retry_after(1)
}
