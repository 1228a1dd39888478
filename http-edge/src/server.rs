//! Serving an API: the layers every API wears, and a server task with graceful shutdown.

use crate::auth::Auth;
use crate::problem::{ApiError, UNSUPPORTED_MEDIA_TYPE};
use crate::rate_limit::{self, RateLimit};
use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::http::{Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::propagate_header::PropagateHeaderLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use crate::headers::CORRELATION_ID;

/// Longest correlation id logged: a caller's id is theirs to choose, the log line is ours
/// (header values that are text at all are ASCII, so the cut falls between characters).
const CORRELATION_ID_LEN_MAX: usize = 128;

/// Request ids (`x-request-id`, generated unless given, echoed back) and correlation ids
/// (`x-correlation-id`, echoed back); a `request` span per request that continues the
/// caller's `traceparent` and names all three ids in every log line; responses compressed
/// as the client accepts (`Accept-Encoding`: gzip, br); a whole-request time
/// limit answered as a 503 problem; and the per-caller rate limit (inside the time limit,
/// outside everything the API itself does: a refused request costs nothing).
pub fn with_edge_layers<S>(
    router: Router<S>,
    request_timeout: Duration,
    rate_limit: RateLimit,
    auth: &Auth,
) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    rate_limit::apply(router, rate_limit, auth.clone()).layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(PropagateHeaderLayer::new(CORRELATION_ID))
            .layer(TraceLayer::new_for_http().make_span_with(request_span))
            .layer(PropagateRequestIdLayer::x_request_id())
            // gzip or brotli when the client accepts it; the default predicate leaves
            // `text/event-stream` (the live feed), images and tiny bodies alone.
            .layer(CompressionLayer::new())
            .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                ApiError::unavailable("the request took too long")
            }))
            .timeout(request_timeout),
    )
}

/// A route whose request bodies may come gzip-compressed (`Content-Encoding: gzip`): the
/// handler reads them inflated, and the route's body limit (`DefaultBodyLimit`) counts the
/// inflated bytes, so a small body that inflates without end is a `413`, never read whole.
/// Another encoding is a `415` problem.
pub fn accepting_gzip<S>(route: MethodRouter<S>) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    route
        .layer(RequestDecompressionLayer::new().gzip(true))
        .layer(axum::middleware::map_response(encoding_problem))
}

/// tower-http refuses an encoding it cannot undo with a bare `415`; the API's refusals are
/// problems.
async fn encoding_problem(response: Response) -> Response {
    let bare = response.headers().get(header::CONTENT_TYPE).is_none();
    if response.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE && bare {
        return ApiError::new(
            UNSUPPORTED_MEDIA_TYPE,
            "the body must be sent as it is or with Content-Encoding: gzip",
        )
        .into_response();
    }
    response
}

fn request_span<B>(request: &Request<B>) -> tracing::Span {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let correlation_id = header(CORRELATION_ID.as_str()).map(|mut id| {
        id.truncate(CORRELATION_ID_LEN_MAX);
        id
    });
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = header("x-request-id").as_deref(),
        correlation_id = correlation_id.as_deref(),
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
    );
    telemetry::trace::continue_trace(&span, header("traceparent").as_deref());
    if let Some((trace_id, span_id)) = telemetry::trace::trace_and_span_ids(&span) {
        span.record("trace_id", trace_id.as_str());
        span.record("span_id", span_id.as_str());
    }
    span
}

/// New connections the kernel completes and queues for a server before it accepts them.
/// Rust's listeners ask for 128, and a burst larger than that finds the queue full: the
/// kernel drops the SYNs, and each client tries again only after a second (then two more,
/// then four). A back-end caller's pool of a few hundred connections opens them at once (a
/// deploy, a failover); 512 opened back to back against a freshly started API waited 1–2 s
/// for SYNs dropped that way. 4096 is Linux's own cap (`net.core.somaxconn`) since 5.4; a
/// lower cap set there wins.
pub const LISTEN_BACKLOG_LEN: u32 = 4096;

/// Binds a server's listener on `host:port` with a queue of [`LISTEN_BACKLOG_LEN`] new
/// connections (port 0: one the system picks).
pub fn bind(host: IpAddr, port: u16) -> std::io::Result<TcpListener> {
    let addr = SocketAddr::new(host, port);
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does: a restarted server takes its port back at once, without
    // waiting out the previous one's closing connections.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG_LEN)
}

/// A server task; sending on (or dropping) `stop` lets in-flight requests finish, then ends it.
#[derive(Debug)]
pub struct Server {
    pub stop: oneshot::Sender<()>,
    pub task: JoinHandle<std::io::Result<()>>,
}

/// Serves `router` on `listener` in a task until stopped.
pub fn spawn(listener: TcpListener, router: Router) -> Server {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(
        // The peer address is the rate limit's key for requests without a valid token.
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        })
        .into_future(),
    );
    Server { stop, task }
}

impl Server {
    /// Stops accepting, lets in-flight requests finish, and waits for the task.
    pub async fn shut_down(self) -> std::io::Result<()> {
        let _ = self.stop.send(());
        self.task
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// More than Rust's default queue of 128 holds.
    const BURST: usize = 300;

    #[tokio::test]
    async fn a_burst_of_new_connections_waits_in_the_queue_until_accepted() {
        let cap: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|cap| cap.trim().parse().ok())
            .unwrap_or(usize::MAX);
        assert!(
            cap > BURST,
            "net.core.somaxconn is {cap}: this kernel caps every listen queue below {BURST}"
        );
        let listener = bind(IpAddr::from([127, 0, 0, 1]), 0).expect("a free port");
        let addr = listener.local_addr().expect("the bound address");
        // Nothing accepts: a connection completes only while the queue has room for it;
        // one without room waits a second for its SYN to be sent again.
        let mut queued = Vec::with_capacity(BURST);
        for n in 0..BURST {
            let connecting = tokio::net::TcpStream::connect(addr);
            let connected = tokio::time::timeout(Duration::from_millis(500), connecting)
                .await
                .unwrap_or_else(|_| panic!("connection {n} found the queue full"));
            queued.push(connected.expect("a connection"));
        }
    }
}
