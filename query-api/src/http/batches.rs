//! `GET /v1/batches/{id}`: a balance batch's progress.

use super::db;
use crate::AppState;
use crate::read_model;
use axum::Json;
use axum::extract::State;
use http_edge::{ApiError, ApiPath, Caller, Problem};
use serde_json::{Value, json};

#[utoipa::path(
    get,
    path = "/v1/batches/{id}",
    tag = "batches",
    operation_id = "get_batch",
    summary = "A balance batch's progress",
    params(("id" = uuid::Uuid, Path, description = "the batch id")),
    responses(
        (status = 200, description = "the batch", body = crate::http::openapi::Batch),
        (status = 404, description = "`batch_not_found`: no such batch, or not the caller's", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_one(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let batch_id = super::uuid_id(&raw, "batch")?;
    let row = read_model::batch(&app.pool, batch_id)
        .await
        .map_err(db)?
        .filter(|row| caller.admin || row.owner_id == caller.principal.as_str())
        .ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "batch_not_found",
                "no such batch",
            )
        })?;
    let finished = row.completed + row.rejected + row.failed;
    Ok(Json(json!({
        "batch_id": row.batch_id,
        "total": row.total,
        "completed": row.completed,
        "rejected": row.rejected,
        "failed": row.failed,
        "status": if finished >= row.total { "done" } else { "running" },
        "submitted_at": row.submitted_at,
        "updated_at": row.updated_at,
    })))
}
