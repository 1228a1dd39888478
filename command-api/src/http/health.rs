//! `/healthz` (the process is alive) and `/readyz` (NATS reachable, stream present).

use crate::AppState;
use crate::http::ApiError;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use std::time::Duration;

/// How long a readiness probe may wait for JetStream.
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
    summary = "NATS is connected and the journal stream answers",
    responses(
        (status = 200, description = "ready", body = crate::http::openapi::Ready),
        (status = 503, description = "`unavailable`: NATS or the stream is not available", body = http_edge::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn readyz(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    if app.nats.connection_state() != async_nats::connection::State::Connected {
        return Err(ApiError::unavailable("NATS is not connected"));
    }
    let probe = ledger_nats::stream::stream_last_seq(&app.nats, &app.stream);
    match tokio::time::timeout(READY_TIMEOUT, probe).await {
        Ok(Ok(last_seq)) => Ok(Json(json!({"status": "ready", "last_seq": last_seq}))),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: stream check failed");
            Err(ApiError::unavailable("the journal stream is not available"))
        }
        Err(_) => Err(ApiError::unavailable("JetStream did not answer in time")),
    }
}
