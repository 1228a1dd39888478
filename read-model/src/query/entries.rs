//! An account's history, newest first, by cursor (below a version) or by offset.

use chrono::{DateTime, Utc};
use events::AccountId;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

/// The columns a [`HistoryEntry`] is read from, for every query that returns one.
macro_rules! history_columns {
    () => {
        "version, seq, entry_type, event_type, amount, balance_after, counterparty_account_id,
         transfer_id, job_id, order_id, hold_id, reference, metadata, occurred_at"
    };
}
pub(crate) use history_columns;

/// One history row as the query API shows it.
#[derive(Debug, Clone, FromRow)]
pub struct HistoryEntry {
    pub version: i64,
    pub seq: i64,
    /// The history word (`deposit`, `transfer`, …).
    pub entry_type: String,
    /// The journal's event name.
    pub event_type: String,
    /// Signed: + credit, − debit.
    pub amount: i64,
    pub balance_after: i64,
    pub counterparty_account_id: Option<AccountId>,
    pub transfer_id: Option<Uuid>,
    pub job_id: Uuid,
    pub order_id: Option<Uuid>,
    pub hold_id: Option<Uuid>,
    pub reference: Option<String>,
    pub metadata: Option<serde_json::Value>,
    pub occurred_at: DateTime<Utc>,
}

/// Where a page of history starts.
#[derive(Debug, Clone, Copy)]
pub enum From {
    /// Newest first, below this version (cursor paging: stable under concurrent writes).
    BelowVersion(Option<i64>),
    /// Newest first, skipping this many (page paging).
    Offset(i64),
}

/// Up to `limit` entries of the account from `from` on, only of `entry_type` if given.
pub async fn entries(
    pool: &PgPool,
    account_id: &AccountId,
    entry_type: Option<&str>,
    from: From,
    limit: i64,
) -> Result<Vec<HistoryEntry>, sqlx::Error> {
    let (below, offset) = match from {
        From::BelowVersion(v) => (v, 0),
        From::Offset(n) => (None, n),
    };
    sqlx::query_as(concat!(
        "SELECT ",
        history_columns!(),
        " FROM account_entries
         WHERE account_id = $1 AND ($2::text IS NULL OR entry_type = $2)
           AND ($3::int8 IS NULL OR version < $3)
         ORDER BY version DESC OFFSET $4 LIMIT $5"
    ))
    .bind(account_id.as_str())
    .bind(entry_type)
    .bind(below)
    .bind(offset)
    .bind(limit)
    .fetch_all(pool)
    .await
}
