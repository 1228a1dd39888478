//! `GET /v1/batches/{id}`: a balance batch's progress.

use super::access::{BATCH_NOT_FOUND, QueryCall};
use super::params::{db, uuid_id};
use axum::Json;
use chrono::{DateTime, Utc};
use http_edge::{ApiError, ApiPath};
use read_model::query::batches;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    Running,
    Done,
}

/// A balance batch's progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct Batch {
    batch_id: Uuid,
    #[schema(minimum = 0)]
    completed: i32,
    #[schema(minimum = 0)]
    failed: i32,
    #[schema(minimum = 0)]
    rejected: i32,
    status: BatchStatus,
    submitted_at: DateTime<Utc>,
    #[schema(minimum = 0)]
    total: i32,
    updated_at: DateTime<Utc>,
}

http_edge::problems!(BatchHidden: [BATCH_NOT_FOUND]);

/// A balance batch's progress
#[utoipa::path(
    get,
    path = "/v1/batches/{id}",
    params(("id" = uuid::Uuid, Path, description = "the batch id")),
    responses(
        (status = 200, description = "the batch", body = Batch),
        BatchHidden,
    )
)]
pub async fn get_batch(
    call: QueryCall,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<Batch>, ApiError> {
    let batch_id = uuid_id(&raw, "batch")?;
    let row = batches::batch(&call.app.pool, batch_id).await.map_err(db)?;
    let row = call.visible_or(row, BATCH_NOT_FOUND)?;
    Ok(Json(Batch {
        status: if row.is_done() {
            BatchStatus::Done
        } else {
            BatchStatus::Running
        },
        batch_id: row.batch_id,
        completed: row.completed,
        failed: row.failed,
        rejected: row.rejected,
        submitted_at: row.submitted_at,
        total: row.total,
        updated_at: row.updated_at,
    }))
}
