//! `/readyz` (Postgres reachable, read models present); `/healthz` is the shared one of
//! `http_edge::probes`.

use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use http_edge::ApiError;
use http_edge::probes::{READY_TIMEOUT, Ready};
use read_model::schema::{live_checkpoint, read_models_exist};

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "probes",
    operation_id = "readyz",
    summary = "PostgreSQL answers and the read models exist",
    responses(
        (status = 200, description = "ready", body = Ready),
        (status = 503, description = "`unavailable`: PostgreSQL or the read models are not available", body = http_edge::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn readyz(State(app): State<AppState>) -> Result<Json<Ready>, ApiError> {
    match tokio::time::timeout(READY_TIMEOUT, read_models_exist(&app.pool)).await {
        Ok(Ok(true)) => {
            let checkpoint = live_checkpoint(&app.pool).await.unwrap_or(0);
            Ok(Json(Ready {
                checkpoint: Some(checkpoint),
                ..Ready::new()
            }))
        }
        Ok(Ok(false)) => Err(ApiError::unavailable("the read models do not exist yet")),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: Postgres failed");
            Err(ApiError::unavailable("PostgreSQL is not available"))
        }
        Err(_) => Err(ApiError::unavailable("PostgreSQL did not answer in time")),
    }
}
