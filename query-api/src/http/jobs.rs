//! `GET /v1/jobs/{id}`: a command's status. A synchronous command's job is complete once an
//! entry carries its id (no row per job is kept for those: the entries are the record).

use super::access::{JOB_NOT_FOUND, QueryCall};
use super::params::{db, stored_word, uuid_id};
use axum::Json;
use chrono::{DateTime, Utc};
use events::AccountId;
use http_edge::{ApiError, ApiPath};
use read_model::query::jobs::{self, AppliedJob, AsyncJob};
use read_model::query::orders::{self, Order};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Completed,
    Rejected,
    Failed,
}

/// Why a job was rejected or failed.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobError {
    code: String,
    detail: String,
}

/// A command's job. Which fields appear depends on the kind of job: `account_id`,
/// `batch_id` and `completed_at` may be absent or `null`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Job {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, value_type = Option<AccountId>)]
    account_id: Option<Option<AccountId>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, value_type = Option<Uuid>)]
    batch_id: Option<Option<Uuid>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, value_type = Option<DateTime<Utc>>)]
    completed_at: Option<Option<DateTime<Utc>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    error: Option<JobError>,
    job_id: Uuid,
    /// `deposit`, `withdrawal`, `transfer`, `open_account`, `balance_set`, `order`, …
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    order_id: Option<Uuid>,
    /// The stream sequence of the job's first event, once applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    seq: Option<i64>,
    status: JobStatus,
    submitted_at: DateTime<Utc>,
}

impl Job {
    /// An order's job: queued until the payment executor decides it.
    fn of_order(job_id: Uuid, order: Order) -> Self {
        // Paid, then perhaps refunded: the placing job completed either way.
        let status = match order.status.as_str() {
            "new" => JobStatus::Queued,
            "rejected" => JobStatus::Rejected,
            _ => JobStatus::Completed,
        };
        Self {
            account_id: Some(Some(order.account_id)),
            batch_id: None,
            completed_at: (status != JobStatus::Queued).then_some(Some(order.updated_at)),
            error: order.reason.map(|reason| JobError {
                detail: format!("the order was rejected: {reason}"),
                code: reason,
            }),
            job_id,
            kind: "order".to_owned(),
            order_id: Some(order.order_id),
            seq: None,
            status,
            submitted_at: order.created_at,
        }
    }

    /// An asynchronous job not (yet) applied: queued, rejected or failed.
    fn of_async(job_id: Uuid, row: AsyncJob) -> Result<Self, ApiError> {
        Ok(Self {
            account_id: Some(row.account_id),
            batch_id: Some(row.batch_id),
            completed_at: Some(row.completed_at),
            error: match (row.error_code, row.error_detail) {
                (Some(code), Some(detail)) => Some(JobError { code, detail }),
                _ => None,
            },
            job_id,
            kind: row.kind,
            order_id: None,
            seq: None,
            status: stored_word(&row.status)?,
            submitted_at: row.submitted_at,
        })
    }

    /// A job whose first entry is in the history: complete.
    fn of_applied(job_id: Uuid, job: AppliedJob) -> Self {
        let kind = match job.event_type.as_str() {
            "account_opened" => "open_account",
            "funds_deposited" => "deposit",
            "funds_withdrawn" => "withdrawal",
            "transfer_sent" | "transfer_received" => "transfer",
            "reversal_sent" | "reversal_received" => "reversal",
            "refund_credited" => "refund",
            "balance_set" => "balance_set",
            other => other,
        };
        Self {
            account_id: Some(Some(job.account_id)),
            batch_id: None,
            completed_at: Some(Some(job.occurred_at)),
            error: None,
            job_id,
            kind: kind.to_owned(),
            order_id: None,
            seq: Some(job.seq),
            status: JobStatus::Completed,
            submitted_at: job.occurred_at,
        }
    }
}

fn job_not_found() -> ApiError {
    ApiError::new(JOB_NOT_FOUND, JOB_NOT_FOUND.meaning)
}

http_edge::problems!(JobHidden: [JOB_NOT_FOUND]);

/// A command's job and its status
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}",
    params(("id" = uuid::Uuid, Path, description = "the job id")),
    responses(
        (status = 200, description = "the job", body = Job),
        JobHidden,
    )
)]
pub async fn get_job(
    call: QueryCall,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<Job>, ApiError> {
    let job_id = uuid_id(&raw, "job")?;
    if let Some(order) = orders::order_by_job(&call.app.pool, job_id)
        .await
        .map_err(db)?
    {
        if !call.may_see(Some(&order.owner_id)) {
            return Err(job_not_found());
        }
        return Ok(Json(Job::of_order(job_id, order)));
    }
    let Some(job) = jobs::applied_job(&call.app.pool, job_id)
        .await
        .map_err(db)?
    else {
        let row = jobs::async_job(&call.app.pool, job_id).await.map_err(db)?;
        let row = call.visible(row).ok_or_else(job_not_found)?;
        return Ok(Json(Job::of_async(job_id, row)?));
    };
    let job = call.visible(Some(job)).ok_or_else(job_not_found)?;
    Ok(Json(Job::of_applied(job_id, job)))
}
