//! Holds: one by id, with its account's owner.

use super::Owned;
use chrono::{DateTime, Utc};
use events::{AccountId, Amount, OwnerId};
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

/// A hold's row.
#[derive(Debug, Clone, FromRow)]
pub struct Hold {
    pub hold_id: Uuid,
    pub account_id: AccountId,
    pub owner_id: OwnerId,
    pub amount: Amount,
    pub captured: i64,
    /// `placed`, `captured`, `voided` or `expired`.
    pub status: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Owned for Hold {
    fn owner_id(&self) -> Option<&OwnerId> {
        Some(&self.owner_id)
    }
}

pub async fn hold(pool: &PgPool, hold_id: Uuid) -> Result<Option<Hold>, sqlx::Error> {
    sqlx::query_as(
        "SELECT h.hold_id, h.account_id, a.owner_id, h.amount, h.captured, h.status, h.expires_at,
                h.created_at, h.updated_at
         FROM holds h JOIN accounts a USING (account_id) WHERE h.hold_id = $1",
    )
    .bind(hold_id)
    .fetch_optional(pool)
    .await
}
