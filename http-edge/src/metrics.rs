//! `GET /metrics` (the process's Prometheus recorder, see `telemetry::metrics`, as text) and a
//! layer that times every request by service, route template and status
//! (`tally_http_request_duration_seconds`).

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;

/// `GET /metrics`: every metric of the process, as Prometheus text.
pub async fn render() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, telemetry::metrics::CONTENT_TYPE)],
        telemetry::metrics::render(),
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
