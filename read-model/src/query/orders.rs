//! Orders: one by id or by its job, and a page of one owner's (or everyone's), newest first.

use super::Owned;
use chrono::{DateTime, Utc};
use events::{AccountId, Amount, Currency, OwnerId};
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

/// An order's row.
#[derive(Debug, Clone, FromRow)]
pub struct Order {
    pub order_id: Uuid,
    pub owner_id: OwnerId,
    pub account_id: AccountId,
    pub amount: Amount,
    /// `None`: the order named no currency of its own (stored as `''`, see
    /// `write::upsert_orders`).
    pub currency: Option<Currency>,
    pub description: Option<String>,
    /// The journal's status word (`new`, `paid`, `rejected`, `partially_refunded`,
    /// `refunded`).
    pub status: String,
    pub reason: Option<String>,
    /// Minor units given back by refunds.
    pub refunded_total: i64,
    pub job_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Owned for Order {
    fn owner_id(&self) -> Option<&OwnerId> {
        Some(&self.owner_id)
    }
}

const ORDER_COLUMNS: &str = "order_id, owner_id, account_id, amount, NULLIF(currency, '') AS currency, description, status, reason, refunded_total, job_id, created_at, updated_at";

pub async fn order(pool: &PgPool, order_id: Uuid) -> Result<Option<Order>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE order_id = $1"
    )))
    .bind(order_id)
    .fetch_optional(pool)
    .await
}

/// The order placed with job `job_id`.
pub async fn order_by_job(pool: &PgPool, job_id: Uuid) -> Result<Option<Order>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE job_id = $1"
    )))
    .bind(job_id)
    .fetch_optional(pool)
    .await
}

/// Up to `limit` orders newest first after skipping `offset`, of one owner (or everyone's).
pub async fn orders(
    pool: &PgPool,
    owner_id: Option<&OwnerId>,
    offset: i64,
    limit: i64,
) -> Result<Vec<Order>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE ($1::text IS NULL OR owner_id = $1)
         ORDER BY created_at DESC, order_id DESC OFFSET $2 LIMIT $3"
    )))
    .bind(owner_id.map(OwnerId::as_str))
    .bind(offset)
    .bind(limit)
    .fetch_all(pool)
    .await
}
