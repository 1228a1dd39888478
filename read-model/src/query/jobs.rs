//! Jobs: a command's job as its first history entry shows it, and the rows of asynchronous
//! jobs (balance batch items) that are queued, rejected or failed.

use super::Owned;
use chrono::{DateTime, Utc};
use events::{AccountId, OwnerId};
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

/// A command's job, as its first history entry shows it.
#[derive(Debug, Clone, FromRow)]
pub struct AppliedJob {
    pub account_id: AccountId,
    pub owner_id: OwnerId,
    pub event_type: String,
    pub seq: i64,
    pub occurred_at: DateTime<Utc>,
}

impl Owned for AppliedJob {
    fn owner_id(&self) -> Option<&OwnerId> {
        Some(&self.owner_id)
    }
}

/// The job whose first entry carries `job_id`, with the account's owner.
pub async fn applied_job(pool: &PgPool, job_id: Uuid) -> Result<Option<AppliedJob>, sqlx::Error> {
    sqlx::query_as(
        "SELECT e.account_id, a.owner_id, e.event_type, e.seq, e.occurred_at
         FROM account_entries e JOIN accounts a USING (account_id)
         WHERE e.job_id = $1 ORDER BY e.seq LIMIT 1",
    )
    .bind(job_id)
    .fetch_optional(pool)
    .await
}

/// An asynchronous job's row (batch items: queued until applied or rejected; failed jobs).
#[derive(Debug, Clone, FromRow)]
pub struct AsyncJob {
    pub kind: String,
    pub status: String,
    /// `None` for a job that failed before an owner was recorded (stored as `''`, see
    /// `write::fail_jobs`).
    pub owner_id: Option<OwnerId>,
    pub account_id: Option<AccountId>,
    pub batch_id: Option<Uuid>,
    pub error_code: Option<String>,
    pub error_detail: Option<String>,
    pub submitted_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl Owned for AsyncJob {
    fn owner_id(&self) -> Option<&OwnerId> {
        self.owner_id.as_ref()
    }
}

pub async fn async_job(pool: &PgPool, job_id: Uuid) -> Result<Option<AsyncJob>, sqlx::Error> {
    sqlx::query_as(
        "SELECT kind, status, NULLIF(owner_id, '') AS owner_id, account_id, batch_id, error_code, error_detail,
                submitted_at, completed_at
         FROM jobs WHERE job_id = $1",
    )
    .bind(job_id)
    .fetch_optional(pool)
    .await
}
