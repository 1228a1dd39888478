//! `/healthz` (alive) and `/readyz` (Postgres reachable, read models present).

use crate::AppState;
use crate::read_model;
use axum::Json;
use axum::extract::State;
use http_edge::ApiError;
use serde_json::{Value, json};
use std::time::Duration;

const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

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
