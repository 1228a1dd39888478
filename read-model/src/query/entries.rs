//! An account's history, newest first, by cursor (below a version) or by offset.

use super::parsed;
use chrono::{DateTime, Utc};
use events::AccountId;
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgPool, Row};
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
#[derive(Debug, Clone)]
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

impl FromRow<'_, PgRow> for HistoryEntry {
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        let counterparty: Option<String> = row.try_get("counterparty_account_id")?;
        Ok(Self {
            version: row.try_get("version")?,
            seq: row.try_get("seq")?,
            entry_type: row.try_get("entry_type")?,
            event_type: row.try_get("event_type")?,
            amount: row.try_get("amount")?,
            balance_after: row.try_get("balance_after")?,
            counterparty_account_id: counterparty
                .map(|id| parsed("counterparty_account_id", AccountId::parse(id)))
                .transpose()?,
            transfer_id: row.try_get("transfer_id")?,
            job_id: row.try_get("job_id")?,
            order_id: row.try_get("order_id")?,
            hold_id: row.try_get("hold_id")?,
            reference: row.try_get("reference")?,
            metadata: row.try_get("metadata")?,
            occurred_at: row.try_get("occurred_at")?,
        })
    }
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
