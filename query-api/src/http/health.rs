//! `/readyz` (Postgres reachable, read models present); `/healthz` is the shared one of
//! `http_edge::probes`.

use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use http_edge::ApiError;
use http_edge::probes::{Ready, probe};
use read_model::schema::{live_checkpoint, read_models_exist};

pub async fn readyz(State(app): State<AppState>) -> Result<Json<Ready>, ApiError> {
    if !probe("PostgreSQL", read_models_exist(&app.pool)).await? {
        return Err(ApiError::unavailable("the read models do not exist yet"));
    }
    let checkpoint = live_checkpoint(&app.pool).await.unwrap_or(0);
    Ok(Json(Ready {
        checkpoint: Some(checkpoint),
        ..Ready::new()
    }))
}
