//! Balance batches: one by id, with its counts.

use super::Owned;
use chrono::{DateTime, Utc};
use events::OwnerId;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

/// A balance batch's row.
#[derive(Debug, Clone, FromRow)]
pub struct Batch {
    pub batch_id: Uuid,
    pub owner_id: OwnerId,
    pub total: i32,
    pub completed: i32,
    pub rejected: i32,
    pub failed: i32,
    pub submitted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Batch {
    /// Every item applied, rejected or failed.
    pub fn is_done(&self) -> bool {
        self.completed + self.rejected + self.failed >= self.total
    }
}

impl Owned for Batch {
    fn owner_id(&self) -> Option<&OwnerId> {
        Some(&self.owner_id)
    }
}

pub async fn batch(pool: &PgPool, batch_id: Uuid) -> Result<Option<Batch>, sqlx::Error> {
    sqlx::query_as(
        "SELECT batch_id, owner_id, total, completed, rejected, failed, submitted_at, updated_at
         FROM batches WHERE batch_id = $1",
    )
    .bind(batch_id)
    .fetch_optional(pool)
    .await
}
