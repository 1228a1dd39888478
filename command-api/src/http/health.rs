//! `/readyz` (NATS reachable, stream present); `/healthz` is `http_edge::probes::healthz`.

use super::state::AppState;
use axum::Json;
use axum::extract::State;
use http_edge::ApiError;
use http_edge::probes::{Ready, probe};

pub async fn readyz(State(app): State<AppState>) -> Result<Json<Ready>, ApiError> {
    if app.nats.connection_state() != async_nats::connection::State::Connected {
        return Err(ApiError::unavailable("NATS is not connected"));
    }
    let last_seq = probe(
        "the journal stream",
        ledger_nats::stream::stream_last_seq(&app.nats, &app.stream),
    )
    .await?;
    Ok(Json(Ready {
        last_seq: Some(last_seq),
        ..Ready::new()
    }))
}
