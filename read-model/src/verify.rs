//! What `projector verify` reads back: the stored rows exactly as they are.
//!
//! Ids and names stay the text the table holds (not parsed into newtypes): verify exists to
//! find rows that are wrong, so a malformed one must come back as drift to report, not as a
//! decoding error that hides the rest.

use crate::rows::to_i64;
use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

/// A stored history row.
#[derive(Debug, Clone, FromRow)]
pub struct StoredEntry {
    pub account_id: String,
    pub version: i64,
    pub seq: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub entry_type: String,
    pub amount: i64,
    pub balance_after: i64,
    pub held_after: i64,
    pub counterparty_account_id: Option<String>,
    pub transfer_id: Option<Uuid>,
    pub order_id: Option<Uuid>,
    pub hold_id: Option<Uuid>,
    pub job_id: Uuid,
    pub reference: Option<String>,
    pub metadata: Option<serde_json::Value>,
    pub occurred_at: DateTime<Utc>,
}

/// The history rows of the journal messages `first ..= last` (one journal page).
pub async fn entries_by_seq(
    pool: &PgPool,
    first: u64,
    last: u64,
) -> Result<Vec<StoredEntry>, sqlx::Error> {
    sqlx::query_as(
        "SELECT account_id, version, seq, event_id, event_type, entry_type, amount, balance_after,
                held_after, counterparty_account_id, transfer_id, order_id, hold_id, job_id,
                reference, metadata, occurred_at
         FROM account_entries WHERE seq BETWEEN $1 AND $2 ORDER BY seq, account_id",
    )
    .bind(to_i64(first))
    .bind(to_i64(last))
    .fetch_all(pool)
    .await
}

/// A stored account row.
#[derive(Debug, Clone, FromRow)]
pub struct StoredAccount {
    pub account_id: String,
    pub owner_id: String,
    pub currency: String,
    pub balance: i64,
    pub held: i64,
    pub overdraft_limit: i64,
    pub version: i64,
    pub status: String,
    pub last_seq: i64,
}

/// Every account row. Memory grows with the number of accounts, as verify's fold does anyway.
pub async fn accounts(pool: &PgPool) -> Result<Vec<StoredAccount>, sqlx::Error> {
    sqlx::query_as(
        "SELECT account_id, owner_id, currency, balance, held, overdraft_limit, version, status,
                last_seq FROM accounts",
    )
    .fetch_all(pool)
    .await
}
