//! `GET /v1/jobs/{id}`: a command's status. A synchronous command's job is complete once an
//! entry carries its id (no row per job is kept for those: the entries are the record).

use super::db;
use crate::AppState;
use crate::read_model;
use axum::Json;
use axum::extract::State;
use http_edge::{ApiError, ApiPath, Caller, Problem};
use serde_json::{Value, json};

#[utoipa::path(
    get,
    path = "/v1/jobs/{id}",
    tag = "jobs",
    operation_id = "get_job",
    summary = "A command's job and its status",
    params(("id" = uuid::Uuid, Path, description = "the job id")),
    responses(
        (status = 200, description = "the job", body = crate::http::openapi::Job),
        (status = 404, description = "`job_not_found`: no such job, or not the caller's", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_one(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let not_found = || {
        ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "job_not_found",
            "no such job",
        )
    };
    let job_id = super::uuid_id(&raw, "job")?;
    // An order's job: queued until the payment executor decides it.
    if let Some(order) = read_model::order_by_job(&app.pool, job_id)
        .await
        .map_err(db)?
    {
        if !caller.admin && order.owner_id != caller.principal.as_str() {
            return Err(not_found());
        }
        let status = match order.status.as_str() {
            "paid" => "completed",
            "rejected" => "rejected",
            _ => "queued",
        };
        let mut body = json!({
            "job_id": job_id,
            "kind": "order",
            "status": status,
            "account_id": order.account_id,
            "order_id": order.order_id,
            "submitted_at": order.created_at,
        });
        if status != "queued" {
            body["completed_at"] = json!(order.updated_at);
        }
        if let Some(reason) = &order.reason {
            body["error"] =
                json!({"code": reason, "detail": format!("the order was rejected: {reason}")});
        }
        return Ok(Json(body));
    }
    let Some(job) = read_model::job(&app.pool, job_id).await.map_err(db)? else {
        // Not (yet) applied: a queued or rejected asynchronous job?
        let row = read_model::queued_job(&app.pool, job_id)
            .await
            .map_err(db)?
            .filter(|row| caller.admin || row.owner_id == caller.principal.as_str())
            .ok_or_else(not_found)?;
        let mut body = json!({
            "job_id": job_id,
            "kind": row.kind,
            "status": row.status,
            "account_id": row.account_id,
            "batch_id": row.batch_id,
            "submitted_at": row.submitted_at,
            "completed_at": row.completed_at,
        });
        if let (Some(code), Some(detail)) = (row.error_code, row.error_detail) {
            body["error"] = json!({"code": code, "detail": detail});
        }
        return Ok(Json(body));
    };
    if !caller.admin && job.owner_id != caller.principal.as_str() {
        return Err(not_found());
    }
    let kind = match job.event_type.as_str() {
        "account_opened" => "open_account",
        "funds_deposited" => "deposit",
        "funds_withdrawn" => "withdrawal",
        "transfer_sent" | "transfer_received" => "transfer",
        "balance_set" => "balance_set",
        other => other,
    };
    Ok(Json(json!({
        "job_id": job_id,
        "kind": kind,
        "status": "completed",
        "account_id": job.account_id,
        "seq": job.seq,
        "submitted_at": job.occurred_at,
        "completed_at": job.occurred_at,
    })))
}
