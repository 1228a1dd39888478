//! `GET /v1/accounts/{id}/entries`: an account's history, newest first.
//!
//! Cursor paging (`limit`, `cursor`) is keyed on the entry version, which never changes and
//! only grows: walking the pages while writes land yields every older entry exactly once.
//! Page paging (`page`, `page_size`) is offered for simple clients; its pages shift when new
//! entries arrive.

use super::access::{AccountHidden, QueryCall};
use super::params::{cursor_page, db, decode_cursor, page_len, stored_word};
use axum::Json;
use chrono::{DateTime, Utc};
use events::{AccountId, HISTORY_TYPES};
use http_edge::openapi::AccountIdParam;
use http_edge::{ApiError, ApiPath, ApiQuery};
use read_model::query::entries::{self, From, HistoryEntry};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// The kinds of history entry (`type`): the filter and the field use the same words.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryType {
    Opening,
    Deposit,
    Withdrawal,
    Transfer,
    Adjustment,
    Payment,
    Hold,
    Reversal,
    Refund,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EntriesQuery {
    /// Only entries of this kind.
    #[serde(rename = "type")]
    #[param(value_type = Option<EntryType>)]
    entry_type: Option<String>,
    /// Items per page (cursor paging; not with `page`/`page_size`).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page number from 1 (page paging; not with `limit`/`cursor`).
    #[param(minimum = 1)]
    page: Option<i64>,
    /// Items per page (page paging).
    #[param(minimum = 1, maximum = 200)]
    page_size: Option<i64>,
}

/// One change of an account: `balance_after(v) = balance_after(v-1) + amount(v)`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Entry {
    /// Signed: + credit, − debit.
    amount: i64,
    balance_after: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    counterparty_account_id: Option<AccountId>,
    /// The journal's name of the event (`funds_deposited`, `transfer_sent`, …).
    event_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    hold_id: Option<Uuid>,
    job_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, value_type = Object)]
    metadata: Option<serde_json::Value>,
    occurred_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    order_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    reference: Option<String>,
    /// The journal's stream sequence of the event.
    #[schema(minimum = 1)]
    seq: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    transfer_id: Option<Uuid>,
    #[serde(rename = "type")]
    entry_type: EntryType,
    #[schema(minimum = 1)]
    version: i64,
}

impl Entry {
    pub(crate) fn from_row(row: HistoryEntry) -> Result<Self, ApiError> {
        Ok(Self {
            amount: row.amount,
            balance_after: row.balance_after,
            counterparty_account_id: row.counterparty_account_id,
            event_type: row.event_type,
            hold_id: row.hold_id,
            job_id: row.job_id,
            metadata: row.metadata,
            occurred_at: row.occurred_at,
            order_id: row.order_id,
            reference: row.reference,
            seq: row.seq,
            transfer_id: row.transfer_id,
            entry_type: stored_word(&row.entry_type)?,
            version: row.version,
        })
    }
}

/// A page of history, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryPage {
    /// Page paging only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    has_more: Option<bool>,
    items: Vec<Entry>,
    /// Pass as `cursor` for the next page; `null` on the last.
    next_cursor: Option<String>,
    /// Page paging only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, minimum = 1)]
    page: Option<i64>,
    /// Page paging only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, minimum = 1, maximum = 200)]
    page_size: Option<i64>,
}

/// An account's history, newest first
#[utoipa::path(
    get,
    path = "/v1/accounts/{id}/entries",
    params(AccountIdParam, EntriesQuery),
    responses(
        (status = 200, description = "a page of entries", body = EntryPage),
        AccountHidden,
    )
)]
pub async fn list_entries(
    call: QueryCall,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<EntriesQuery>,
) -> Result<Json<EntryPage>, ApiError> {
    let account = call.account(id).await?;
    if let Some(t) = &query.entry_type
        && !HISTORY_TYPES.contains(&t.as_str())
    {
        return Err(ApiError::invalid_request(format!(
            "type must be one of {}",
            HISTORY_TYPES.join(", ")
        )));
    }
    let paged = query.page.is_some() || query.page_size.is_some();
    if paged && (query.cursor.is_some() || query.limit.is_some()) {
        return Err(ApiError::invalid_request(
            "use either limit/cursor or page/page_size, not both",
        ));
    }
    let (from, limit, page) = if paged {
        let page = query.page.unwrap_or(1);
        if page < 1 {
            return Err(ApiError::invalid_request("page counts from 1"));
        }
        let size = page_len(query.page_size)?;
        let offset = (page - 1)
            .checked_mul(size)
            .ok_or_else(|| ApiError::invalid_request("page is too large"))?;
        (From::Offset(offset), size, Some((page, size)))
    } else {
        let below = query.cursor.as_deref().map(version_cursor).transpose()?;
        (From::BelowVersion(below), page_len(query.limit)?, None)
    };
    let rows = entries::entries(
        &call.app.pool,
        &account.account_id,
        query.entry_type.as_deref(),
        from,
        limit + 1,
    )
    .await
    .map_err(db)?;
    let (rows, next_cursor) = cursor_page(rows, limit, |row| format!("v{}", row.version));
    Ok(Json(EntryPage {
        has_more: page.map(|_| next_cursor.is_some()),
        items: rows
            .into_iter()
            .map(Entry::from_row)
            .collect::<Result<_, _>>()?,
        next_cursor,
        page: page.map(|(page, _)| page),
        page_size: page.map(|(_, size)| size),
    }))
}

/// The version in a history cursor (`v<version>`).
fn version_cursor(raw: &str) -> Result<i64, ApiError> {
    decode_cursor(raw)?
        .strip_prefix('v')
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ApiError::invalid_request("cursor is not one this API gave out"))
}
