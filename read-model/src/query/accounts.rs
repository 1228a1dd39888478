//! Accounts: one, a page of one owner's (or everyone's), and a balance as of an instant.

use super::Owned;
use chrono::{DateTime, Utc};
use events::{AccountId, Currency, OwnerId};
use sqlx::{FromRow, PgPool};

/// An account's row.
#[derive(Debug, Clone, FromRow)]
pub struct Account {
    pub account_id: AccountId,
    pub owner_id: OwnerId,
    pub currency: Currency,
    pub balance: i64,
    pub held: i64,
    pub overdraft_limit: i64,
    pub version: i64,
    /// The journal's status word (`open`, …).
    pub status: String,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Owned for Account {
    fn owner_id(&self) -> Option<&OwnerId> {
        Some(&self.owner_id)
    }
}

const ACCOUNT_COLUMNS: &str = "account_id, owner_id, currency, balance, held, overdraft_limit, version, status, opened_at, updated_at";

pub async fn account(
    pool: &PgPool,
    account_id: &AccountId,
) -> Result<Option<Account>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE account_id = $1"
    )))
    .bind(account_id.as_str())
    .fetch_optional(pool)
    .await
}

/// An account's row and the checkpoint it was read at, from one snapshot: how far the row is
/// known to be current (what a cache of rows must know).
#[derive(Debug, Clone, FromRow)]
pub struct AccountAt {
    #[sqlx(flatten)]
    pub account: Account,
    pub read_at: i64,
}

/// The account with the live projection's checkpoint, read in one statement (one snapshot).
pub async fn account_at(
    pool: &PgPool,
    account_id: &AccountId,
) -> Result<Option<AccountAt>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ACCOUNT_COLUMNS},
                COALESCE((SELECT last_seq FROM projection_checkpoint WHERE name = $2), 0) AS read_at
         FROM accounts WHERE account_id = $1"
    )))
    .bind(account_id.as_str())
    .bind(crate::PROJECTION)
    .fetch_optional(pool)
    .await
}

/// The accounts that changed with the journal messages `after < seq <= up_to`, at most
/// `limit` of them (every change of an account is a history entry). A result of `limit`
/// rows may be cut short.
pub async fn changed_between(
    pool: &PgPool,
    after: i64,
    up_to: i64,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT account_id FROM account_entries WHERE seq > $1 AND seq <= $2 LIMIT $3",
    )
    .bind(after)
    .bind(up_to)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Up to `limit` accounts ordered by id after `after` (a page's last id), of one owner (or
/// everyone's).
pub async fn accounts(
    pool: &PgPool,
    owner_id: Option<&OwnerId>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Account>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts
         WHERE ($1::text IS NULL OR owner_id = $1) AND ($2::text IS NULL OR account_id > $2)
         ORDER BY account_id LIMIT $3"
    )))
    .bind(owner_id.map(OwnerId::as_str))
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Balance as of the last entry at or before an instant.
#[derive(Debug, Clone, FromRow)]
pub struct BalanceAt {
    pub balance_after: i64,
    pub held_after: i64,
    pub version: i64,
}

/// The balance after the account's last entry at or before `instant` (`None`: the account
/// did not exist yet).
pub async fn balance_at(
    pool: &PgPool,
    account_id: &AccountId,
    instant: DateTime<Utc>,
) -> Result<Option<BalanceAt>, sqlx::Error> {
    sqlx::query_as(
        "SELECT balance_after, held_after, version FROM account_entries
         WHERE account_id = $1 AND occurred_at <= $2 ORDER BY version DESC LIMIT 1",
    )
    .bind(account_id.as_str())
    .bind(instant)
    .fetch_optional(pool)
    .await
}
