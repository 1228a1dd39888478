//! `GET /v1/batches/{id}`: a balance batch's progress.

use super::access::visible;
use super::params::{db, uuid_id};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use http_edge::{ApiError, ApiPath, Caller, Problem};
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

#[utoipa::path(
    get,
    path = "/v1/batches/{id}",
    tag = "batches",
    operation_id = "get_batch",
    summary = "A balance batch's progress",
    params(("id" = uuid::Uuid, Path, description = "the batch id")),
    responses(
        (status = 200, description = "the batch", body = Batch),
        (status = 404, description = "`batch_not_found`: no such batch, or not the caller's", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_one(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<Batch>, ApiError> {
    let batch_id = uuid_id(&raw, "batch")?;
    let row = batches::batch(&app.pool, batch_id).await.map_err(db)?;
    let row = visible(&caller, row).ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "batch_not_found",
            "no such batch",
        )
    })?;
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
