//! Serving an API: the layers every API wears, and a server task with graceful shutdown.

use crate::auth::Auth;
use crate::problem::ApiError;
use crate::rate_limit::{self, RateLimit};
use axum::Router;
use axum::error_handling::HandleErrorLayer;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// Request ids (`x-request-id`, generated unless given, echoed back), request tracing, a
/// whole-request time limit answered as a 503 problem, and the per-caller rate limit (inside
/// the time limit, outside everything the API itself does: a refused request costs nothing).
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
            .layer(TraceLayer::new_for_http())
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                ApiError::unavailable("the request took too long")
            }))
            .timeout(request_timeout),
    )
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
