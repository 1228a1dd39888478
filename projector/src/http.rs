//! The projector's own endpoints: `/healthz`, `/readyz`, `/metrics` (on :8082 by default).

use crate::consume::{Role, Status};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;
use sqlx::PgPool;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// What the endpoints read.
#[derive(Debug, Clone)]
pub struct Probe {
    pub status: Arc<Status>,
    pub pool: PgPool,
    pub nats: async_nats::Client,
    pub stream: String,
}

/// How long a probe may wait for Postgres or JetStream.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router(probe: Probe) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(probe)
}

/// Alive — and not stopped on an event it cannot apply (that needs an operator).
async fn healthz(State(probe): State<Probe>) -> impl IntoResponse {
    match probe.status.failure() {
        None => (StatusCode::OK, axum::Json(json!({"status": "ok"}))),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "failed", "reason": reason})),
        ),
    }
}

/// Postgres and NATS reachable, the stream present.
async fn readyz(State(probe): State<Probe>) -> impl IntoResponse {
    let db = tokio::time::timeout(PROBE_TIMEOUT, read_model::schema::ping(&probe.pool))
        .await
        .is_ok_and(|r| r.is_ok());
    let stream = tokio::time::timeout(
        PROBE_TIMEOUT,
        ledger_nats::stream::stream_last_seq(&probe.nats, &probe.stream),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    let role = role_word(probe.status.role());
    let body = json!({"postgres": db, "stream": stream, "role": role});
    let ready = db && stream && probe.status.role() != Role::Failed;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body))
}

/// Prometheus text: checkpoint, stream last sequence, lag, applied events and role.
async fn metrics(State(probe): State<Probe>) -> impl IntoResponse {
    let checkpoint = probe.status.checkpoint.load(Ordering::Relaxed);
    let last_seq = tokio::time::timeout(
        PROBE_TIMEOUT,
        ledger_nats::stream::stream_last_seq(&probe.nats, &probe.stream),
    )
    .await
    .ok()
    .and_then(Result::ok);
    let mut text = String::new();
    let mut gauge = |name: &str, help: &str, kind: &str, value: u64| {
        let _ = writeln!(
            text,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    gauge(
        "ledger_projector_checkpoint",
        "Last stream sequence applied to the read model.",
        "gauge",
        checkpoint,
    );
    if let Some(last_seq) = last_seq {
        gauge(
            "ledger_stream_last_seq",
            "Last stream sequence in the journal.",
            "gauge",
            last_seq,
        );
        gauge(
            "ledger_projector_lag",
            "Journal messages not yet applied (stream last seq - checkpoint).",
            "gauge",
            last_seq.saturating_sub(checkpoint),
        );
    }
    gauge(
        "ledger_projector_applied_events_total",
        "Journal messages applied by this process.",
        "counter",
        probe.status.applied_events.load(Ordering::Relaxed),
    );
    gauge(
        "ledger_projector_applied_batches_total",
        "Transactions committed by this process.",
        "counter",
        probe.status.applied_batches.load(Ordering::Relaxed),
    );
    gauge(
        "ledger_projector_active",
        "1 while this process holds the projection lock.",
        "gauge",
        u64::from(probe.status.role() == Role::Active),
    );
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    )
}

fn role_word(role: Role) -> &'static str {
    match role {
        Role::Standby => "standby",
        Role::Active => "active",
        Role::Failed => "failed",
    }
}
