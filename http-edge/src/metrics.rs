//! Prometheus metrics: one recorder per process (the `metrics` facade, so any crate can
//! record), rendered as Prometheus text at `GET /metrics`, and a layer that times every
//! request by service, route template and status (`tally_http_request_duration_seconds`).

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

/// Latency buckets in seconds: from a cached read (~0.5 ms) to a request's whole time limit.
const SECONDS_BUCKETS: [f64; 14] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 25.0,
];

/// Group-commit sizes: a lone command (2–3 messages) up to the 1000-message batch limit.
const MESSAGES_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 10.0, 25.0, 100.0, 250.0, 500.0, 1000.0];

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's recorder on first use and returns its handle (`None` if another
/// recorder was installed first: metrics are then that recorder's business).
pub fn recorder() -> Option<PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("tally_writer_batch_messages".into()),
                        &MESSAGES_BUCKETS,
                    )
                });
            match builder.and_then(|b| b.install_recorder()) {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "no Prometheus recorder: /metrics will be empty");
                    None
                }
            }
        })
        .clone()
}

/// `GET /metrics`: every metric of the process, as Prometheus text.
pub async fn render() -> impl IntoResponse {
    let body = recorder().map(|handle| handle.render()).unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

/// Times a request (wear it with `Router::route_layer`, where the route template is known):
/// `tally_http_request_duration_seconds{service, route, status}`.
pub async fn track(State(service): State<&'static str>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    metrics::histogram!(
        "tally_http_request_duration_seconds",
        "service" => service,
        "route" => route,
        "status" => response.status().as_u16().to_string(),
    )
    .record(started.elapsed().as_secs_f64());
    response
}
