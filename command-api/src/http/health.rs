//! `/healthz` (the process is alive) and `/readyz` (NATS reachable, stream present).

use super::state::AppState;
use axum::Json;
use axum::extract::State;
use http_edge::ApiError;
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;

/// How long a readiness probe may wait for JetStream.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /healthz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Alive {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// `GET /readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    #[schema(example = "ready")]
    pub status: &'static str,
    /// The journal's last stream sequence.
    #[schema(minimum = 0)]
    pub last_seq: u64,
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "probes",
    operation_id = "healthz",
    summary = "The process is alive",
    responses((status = 200, description = "alive", body = Alive))
)]
pub async fn healthz() -> Json<Alive> {
    Json(Alive { status: "ok" })
}

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
            status: "ready",
            last_seq,
        })),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: stream check failed");
            Err(ApiError::unavailable("the journal stream is not available"))
        }
        Err(_) => Err(ApiError::unavailable("JetStream did not answer in time")),
    }
}
