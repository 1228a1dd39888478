//! `/healthz` (alive) and `/readyz` (Postgres reachable, read models present).

use crate::AppState;
use crate::read_model;
use axum::Json;
use axum::extract::State;
use http_edge::ApiError;
use serde_json::{Value, json};
use std::time::Duration;

const READY_TIMEOUT: Duration = Duration::from_secs(2);

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "probes",
    operation_id = "healthz",
    summary = "The process is alive",
    responses((status = 200, description = "alive", body = crate::http::openapi::Alive))
)]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "probes",
    operation_id = "readyz",
    summary = "PostgreSQL answers and the read models exist",
    responses(
        (status = 200, description = "ready", body = crate::http::openapi::Ready),
        (status = 503, description = "`unavailable`: PostgreSQL or the read models are not available", body = http_edge::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn readyz(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let probe = sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE tablename = 'projection_checkpoint'
                        AND schemaname = current_schema())",
    )
    .fetch_one(&app.pool);
    match tokio::time::timeout(READY_TIMEOUT, probe).await {
        Ok(Ok(true)) => {
            let checkpoint = read_model::checkpoint(&app.pool).await.unwrap_or(0);
            Ok(Json(json!({"status": "ready", "checkpoint": checkpoint})))
        }
        Ok(Ok(false)) => Err(ApiError::unavailable("the read models do not exist yet")),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: Postgres failed");
            Err(ApiError::unavailable("PostgreSQL is not available"))
        }
        Err(_) => Err(ApiError::unavailable("PostgreSQL did not answer in time")),
    }
}
