//! `/readyz` (NATS reachable, stream present); `/healthz` is `http_edge::probes::healthz`.

use super::state::AppState;
use axum::Json;
use axum::extract::State;
use http_edge::ApiError;
use http_edge::probes::{READY_TIMEOUT, Ready};

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "probes",
    operation_id = "readyz",
    summary = "NATS is connected and the journal stream answers",
    responses(
        (status = 200, description = "ready", body = Ready),
        (status = 503, description = "`unavailable`: NATS or the stream is not available", body = http_edge::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn readyz(State(app): State<AppState>) -> Result<Json<Ready>, ApiError> {
    if app.nats.connection_state() != async_nats::connection::State::Connected {
        return Err(ApiError::unavailable("NATS is not connected"));
    }
    let probe = ledger_nats::stream::stream_last_seq(&app.nats, &app.stream);
    match tokio::time::timeout(READY_TIMEOUT, probe).await {
        Ok(Ok(last_seq)) => Ok(Json(Ready {
            last_seq: Some(last_seq),
            ..Ready::new()
        })),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: stream check failed");
            Err(ApiError::unavailable("the journal stream is not available"))
        }
        Err(_) => Err(ApiError::unavailable("JetStream did not answer in time")),
    }
}
