//! Write requests of an instance that does not hold the writer lease go to the one that does
//! (ADR 0028): the request as it came — headers, body, path — and its answer back as it was
//! given. Reads stay local.
//!
//! A holder that cannot be reached (connection refused or not made) has received nothing, so
//! the request is decided here instead. One that was reached but did not answer may have
//! committed it: the answer is a `503` saying the outcome is unknown, and a repeat with the
//! same `Idempotency-Key` — through any instance — finds out, as after any lost answer.

use crate::election::Role;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_edge::ApiError;
use http_edge::problem::PAYLOAD_TOO_LARGE;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// Marks a forwarded request: the instance receiving it decides it, whatever it believes
/// about the lease, so a request is forwarded at most once.
pub const FORWARDED_BY: HeaderName = HeaderName::from_static("tally-forwarded-by");

/// What the forwarding layer needs.
#[derive(Debug, Clone)]
pub struct Forwarder {
    pub role: watch::Receiver<Role>,
    /// This instance's id, sent along as [`FORWARDED_BY`].
    pub instance: String,
    pub client: reqwest::Client,
    /// The largest body any write route accepts: a larger one is refused here, as the
    /// writer would.
    pub body_bytes_max: usize,
}

impl Forwarder {
    pub fn new(role: watch::Receiver<Role>, instance: String, body_bytes_max: usize) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(500))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self {
            role,
            instance,
            client,
            body_bytes_max,
        }
    }
}

/// The middleware: forwards a write when another instance holds the lease.
pub async fn forward(State(forwarder): State<Forwarder>, request: Request, next: Next) -> Response {
    let is_write = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let role = forwarder.role.borrow().clone();
    let Role::Forward(url) = role else {
        return next.run(request).await;
    };
    if !is_write || request.headers().contains_key(FORWARDED_BY) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, forwarder.body_bytes_max).await else {
        return ApiError::new(
            PAYLOAD_TOO_LARGE,
            format!(
                "the request body is larger than {} bytes",
                forwarder.body_bytes_max
            ),
        )
        .into_response();
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut headers = end_to_end(&parts.headers);
    // The answer comes back plain and is compressed here, for the client this instance serves.
    headers.remove(header::ACCEPT_ENCODING);
    if let Ok(value) = forwarder.instance.parse() {
        headers.insert(FORWARDED_BY, value);
    }
    let sent = forwarder
        .client
        .request(parts.method.clone(), format!("{url}{path}"))
        .headers(headers)
        .body(body.clone())
        .send()
        .await;
    match sent {
        Ok(answer) => relay(answer).await,
        Err(e) if e.is_connect() => {
            metrics::counter!("command_api_forwards_total", "outcome" => "decided_here")
                .increment(1);
            if now_and_then() {
                tracing::warn!(writer = %url, error = %e, "the writer is not reachable: deciding here");
            }
            next.run(Request::from_parts(parts, Body::from(body))).await
        }
        Err(e) => {
            metrics::counter!("command_api_forwards_total", "outcome" => "unknown").increment(1);
            tracing::warn!(writer = %url, error = %e, "the writer did not answer a forwarded request");
            ApiError::unavailable(
                "the instance that writes did not answer; the request may or may not have been \
                 committed: repeat it with the same Idempotency-Key",
            )
            .retry_after(1)
            .into_response()
        }
    }
}

/// True at most once a second: a writer that went away meets every request until the
/// lease moves, and one line a second says so as well as thousands.
fn now_and_then() -> bool {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let second = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    LAST.swap(second, Ordering::Relaxed) != second
}

/// The writer's answer, as this instance's own.
async fn relay(answer: reqwest::Response) -> Response {
    let status = answer.status();
    let headers = end_to_end(answer.headers());
    match answer.bytes().await {
        Ok(body) => {
            metrics::counter!("command_api_forwards_total", "outcome" => "answered").increment(1);
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            response
        }
        Err(e) => {
            metrics::counter!("command_api_forwards_total", "outcome" => "unknown").increment(1);
            tracing::warn!(error = %e, "the writer's answer was cut off");
            ApiError::unavailable(
                "the answer of the instance that writes was cut off; the request may have been \
                 committed: repeat it with the same Idempotency-Key",
            )
            .retry_after(1)
            .into_response()
        }
    }
}

/// The headers that belong to the request or answer itself, without those of one connection
/// (RFC 9110 §7.6.1) and the lengths and host the next hop sets.
fn end_to_end(headers: &HeaderMap) -> HeaderMap {
    let mut kept = headers.clone();
    for name in [
        header::CONNECTION,
        header::HOST,
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::TE,
        header::TRAILER,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
    ] {
        kept.remove(name);
    }
    kept.remove("keep-alive");
    kept
}
