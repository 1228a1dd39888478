//! The projector's own endpoints: `/healthz`, `/readyz`, `/metrics` (on :8082 by default).

use crate::consume::{Role, Status};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;
use sqlx::PgPool;
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

/// The projector's metrics: their names and meanings are what dashboards (`deploy/grafana`)
/// and the scrape configurations (`deploy/otelcol`) read, so they stay as they are.
const CHECKPOINT: &str = "ledger_projector_checkpoint";
const STREAM_LAST_SEQ: &str = "ledger_stream_last_seq";
const LAG: &str = "ledger_projector_lag";
const APPLIED_EVENTS: &str = "ledger_projector_applied_events_total";
const APPLIED_BATCHES: &str = "ledger_projector_applied_batches_total";
const ACTIVE: &str = "ledger_projector_active";
const REPLICAS_BEHIND: &str = "ledger_stream_replicas_behind";
const REPLICA_LAG: &str = "ledger_stream_replica_lag";

/// Installs the process's recorder and says what each of the projector's metrics means.
pub fn describe_metrics() {
    telemetry::metrics::recorder();
    metrics::describe_gauge!(
        CHECKPOINT,
        "Last stream sequence applied to the read model."
    );
    metrics::describe_gauge!(STREAM_LAST_SEQ, "Last stream sequence in the journal.");
    metrics::describe_gauge!(
        LAG,
        "Journal messages not yet applied (stream last seq - checkpoint)."
    );
    metrics::describe_counter!(APPLIED_EVENTS, "Journal messages applied by this process.");
    metrics::describe_counter!(APPLIED_BATCHES, "Transactions committed by this process.");
    metrics::describe_gauge!(ACTIVE, "1 while this process holds the projection lock.");
    metrics::describe_gauge!(
        REPLICAS_BEHIND,
        "Replicas of the journal that are offline or not current with its leader (0 on a \
         single server). Above 0 for minutes: one more node lost stops writes."
    );
    metrics::describe_gauge!(
        REPLICA_LAG,
        "Operations a follower of the journal's leader trails by, per replica."
    );
}

/// `GET /metrics`: the projection's state, read from [`Status`] and the stream as the scrape
/// comes, recorded through the process's recorder and rendered with everything else it holds.
/// (One projector per process: a second one in the same process would share these names.)
async fn metrics(State(probe): State<Probe>) -> impl IntoResponse {
    let checkpoint = probe.status.checkpoint.load(Ordering::Relaxed);
    // The stream's info, from its leader: where the journal ends and how its copies stand.
    let placement = tokio::time::timeout(
        PROBE_TIMEOUT,
        ledger_nats::stream::placement(&probe.nats, &probe.stream),
    )
    .await
    .ok()
    .and_then(Result::ok);
    metrics::gauge!(CHECKPOINT).set(checkpoint as f64);
    // Left at their last value when the stream cannot be read (`/readyz` says so).
    if let Some(placement) = placement {
        let last_seq = placement.last_seq;
        metrics::gauge!(STREAM_LAST_SEQ).set(last_seq as f64);
        metrics::gauge!(LAG).set(last_seq.saturating_sub(checkpoint) as f64);
        // A replica that stops applying (a store error) keeps answering reads short and
        // leaves the journal one node from stalling; nothing else shows it (ADR 0010).
        metrics::gauge!(REPLICAS_BEHIND).set(placement.behind() as f64);
        for replica in &placement.replicas {
            metrics::gauge!(REPLICA_LAG, "replica" => replica.name.clone()).set(replica.lag as f64);
        }
    }
    metrics::counter!(APPLIED_EVENTS).absolute(probe.status.applied_events.load(Ordering::Relaxed));
    metrics::counter!(APPLIED_BATCHES)
        .absolute(probe.status.applied_batches.load(Ordering::Relaxed));
    metrics::gauge!(ACTIVE).set(f64::from(u8::from(probe.status.role() == Role::Active)));
    (
        [(
            axum::http::header::CONTENT_TYPE,
            telemetry::metrics::CONTENT_TYPE,
        )],
        telemetry::metrics::render(),
    )
}

fn role_word(role: Role) -> &'static str {
    match role {
        Role::Standby => "standby",
        Role::Active => "active",
        Role::Failed => "failed",
    }
}
