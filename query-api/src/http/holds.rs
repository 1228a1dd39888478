//! `GET /v1/holds/{id}`: a hold's status (`placed`, `captured`, `voided`, `expired`).

use super::db;
use crate::AppState;
use crate::read_model;
use axum::Json;
use axum::extract::State;
use http_edge::{ApiError, ApiPath, Caller, Problem};
use serde_json::{Value, json};

#[utoipa::path(
    get,
    path = "/v1/holds/{id}",
    tag = "holds",
    operation_id = "get_hold",
    summary = "A hold",
    params(("id" = uuid::Uuid, Path, description = "the hold id")),
    responses(
        (status = 200, description = "the hold", body = crate::http::openapi::Hold),
        (status = 404, description = "`hold_not_found`: no such hold, or not the caller's", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_one(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let hold_id = super::uuid_id(&raw, "hold")?;
    let row = read_model::hold(&app.pool, hold_id)
        .await
        .map_err(db)?
        .filter(|row| caller.admin || row.owner_id == caller.principal.as_str())
        .ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "hold_not_found",
                "no such hold",
            )
        })?;
    Ok(Json(json!({
        "hold_id": row.hold_id,
        "account_id": row.account_id,
        "amount": row.amount,
        "captured": row.captured,
        "status": row.status,
        "expires_at": row.expires_at,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    })))
}
