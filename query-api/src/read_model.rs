//! The query API's SQL: every read of the read models lives here.

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{FromRow, PgPool};
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

/// The live projection's checkpoint name (as the projector writes it).
const PROJECTION: &str = "read_model";

pub async fn pool(database_url: &str, schema: &str, size: u32) -> Result<PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(database_url)?
        .application_name("tally-query-api")
        .options([("search_path", schema)]);
    PgPoolOptions::new()
        .max_connections(size.max(1))
        .acquire_timeout(Duration::from_secs(3))
        .connect_with(options)
        .await
}

/// The read model's checkpoint (0 before the projector's first batch, or before it exists).
pub async fn checkpoint(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let last: Option<i64> =
        sqlx::query_scalar("SELECT last_seq FROM projection_checkpoint WHERE name = $1")
            .bind(PROJECTION)
            .fetch_optional(pool)
            .await
            .or_else(|e| match &e {
                // The projector has not created the schema yet.
                sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01") => Ok(None),
                _ => Err(e),
            })?;
    Ok(last.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
}

#[derive(Debug, Clone, FromRow)]
pub struct AccountRow {
    pub account_id: String,
    pub owner_id: String,
    pub currency: String,
    pub balance: i64,
    pub held: i64,
    pub overdraft_limit: i64,
    pub version: i64,
    pub status: String,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const ACCOUNT_COLUMNS: &str = "account_id, owner_id, currency, balance, held, overdraft_limit, version, status, opened_at, updated_at";

pub async fn account(pool: &PgPool, account_id: &str) -> Result<Option<AccountRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE account_id = $1"
    )))
    .bind(account_id)
    .fetch_optional(pool)
    .await
}

/// Accounts ordered by id after `after`, of one owner (or everyone's).
pub async fn accounts(
    pool: &PgPool,
    owner_id: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<AccountRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts
         WHERE ($1::text IS NULL OR owner_id = $1) AND ($2::text IS NULL OR account_id > $2)
         ORDER BY account_id LIMIT $3"
    )))
    .bind(owner_id)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Balance as of the last entry at or before `instant`.
#[derive(Debug, Clone, FromRow)]
pub struct BalanceAt {
    pub balance_after: i64,
    pub held_after: i64,
    pub version: i64,
}

pub async fn balance_at(
    pool: &PgPool,
    account_id: &str,
    instant: DateTime<Utc>,
) -> Result<Option<BalanceAt>, sqlx::Error> {
    sqlx::query_as(
        "SELECT balance_after, held_after, version FROM account_entries
         WHERE account_id = $1 AND occurred_at <= $2 ORDER BY version DESC LIMIT 1",
    )
    .bind(account_id)
    .bind(instant)
    .fetch_optional(pool)
    .await
}

#[derive(Debug, Clone, FromRow)]
pub struct EntryRow {
    pub version: i64,
    pub seq: i64,
    pub entry_type: String,
    pub event_type: String,
    pub amount: i64,
    pub balance_after: i64,
    pub counterparty_account_id: Option<String>,
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

pub async fn entries(
    pool: &PgPool,
    account_id: &str,
    entry_type: Option<&str>,
    from: From,
    limit: i64,
) -> Result<Vec<EntryRow>, sqlx::Error> {
    let (below, offset) = match from {
        From::BelowVersion(v) => (v, 0),
        From::Offset(n) => (None, n),
    };
    sqlx::query_as(
        "SELECT version, seq, entry_type, event_type, amount, balance_after,
                counterparty_account_id, transfer_id, job_id, order_id, hold_id, reference,
                metadata, occurred_at
         FROM account_entries
         WHERE account_id = $1 AND ($2::text IS NULL OR entry_type = $2)
           AND ($3::int8 IS NULL OR version < $3)
         ORDER BY version DESC OFFSET $4 LIMIT $5",
    )
    .bind(account_id)
    .bind(entry_type)
    .bind(below)
    .bind(offset)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// A command's job, as its first history entry shows it.
#[derive(Debug, Clone, FromRow)]
pub struct JobRow {
    pub account_id: String,
    pub owner_id: String,
    pub event_type: String,
    pub seq: i64,
    pub occurred_at: DateTime<Utc>,
}

pub async fn job(pool: &PgPool, job_id: Uuid) -> Result<Option<JobRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT e.account_id, a.owner_id, e.event_type, e.seq, e.occurred_at
         FROM account_entries e JOIN accounts a USING (account_id)
         WHERE e.job_id = $1 ORDER BY e.seq LIMIT 1",
    )
    .bind(job_id)
    .fetch_optional(pool)
    .await
}

#[derive(Debug, Clone, FromRow)]
pub struct OrderRow {
    pub order_id: Uuid,
    pub owner_id: String,
    pub account_id: String,
    pub amount: i64,
    pub currency: String,
    pub description: Option<String>,
    pub status: String,
    pub reason: Option<String>,
    pub job_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const ORDER_COLUMNS: &str = "order_id, owner_id, account_id, amount, currency, description, status, reason, job_id, created_at, updated_at";

pub async fn order(pool: &PgPool, order_id: Uuid) -> Result<Option<OrderRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE order_id = $1"
    )))
    .bind(order_id)
    .fetch_optional(pool)
    .await
}

pub async fn order_by_job(pool: &PgPool, job_id: Uuid) -> Result<Option<OrderRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE job_id = $1"
    )))
    .bind(job_id)
    .fetch_optional(pool)
    .await
}

/// Orders newest first, of one owner (or everyone's).
pub async fn orders(
    pool: &PgPool,
    owner_id: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<Vec<OrderRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE ($1::text IS NULL OR owner_id = $1)
         ORDER BY created_at DESC, order_id DESC OFFSET $2 LIMIT $3"
    )))
    .bind(owner_id)
    .bind(offset)
    .bind(limit)
    .fetch_all(pool)
    .await
}

#[derive(Debug, Clone, FromRow)]
pub struct HoldRow {
    pub hold_id: Uuid,
    pub account_id: String,
    pub owner_id: String,
    pub amount: i64,
    pub captured: i64,
    pub status: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub async fn hold(pool: &PgPool, hold_id: Uuid) -> Result<Option<HoldRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT h.hold_id, h.account_id, a.owner_id, h.amount, h.captured, h.status, h.expires_at,
                h.created_at, h.updated_at
         FROM holds h JOIN accounts a USING (account_id) WHERE h.hold_id = $1",
    )
    .bind(hold_id)
    .fetch_optional(pool)
    .await
}

#[derive(Debug, Clone, FromRow)]
pub struct BatchRow {
    pub batch_id: Uuid,
    pub owner_id: String,
    pub total: i32,
    pub completed: i32,
    pub rejected: i32,
    pub failed: i32,
    pub submitted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub async fn batch(pool: &PgPool, batch_id: Uuid) -> Result<Option<BatchRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT batch_id, owner_id, total, completed, rejected, failed, submitted_at, updated_at
         FROM batches WHERE batch_id = $1",
    )
    .bind(batch_id)
    .fetch_optional(pool)
    .await
}

/// An asynchronous job's row (batch items; queued until applied or rejected).
#[derive(Debug, Clone, FromRow)]
pub struct QueuedJobRow {
    pub kind: String,
    pub status: String,
    pub owner_id: String,
    pub account_id: Option<String>,
    pub batch_id: Option<Uuid>,
    pub error_code: Option<String>,
    pub error_detail: Option<String>,
    pub submitted_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

pub async fn queued_job(pool: &PgPool, job_id: Uuid) -> Result<Option<QueuedJobRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT kind, status, owner_id, account_id, batch_id, error_code, error_detail,
                submitted_at, completed_at
         FROM jobs WHERE job_id = $1",
    )
    .bind(job_id)
    .fetch_optional(pool)
    .await
}
