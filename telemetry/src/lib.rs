//! What every Tally process reports, and how — spelled once for the two APIs, the writer and
//! its executors, and the projector:
//! - [`trace`]: logs to stderr, spans exported over OTLP, and the W3C `traceparent` that carries
//!   a trace across HTTP requests and journaled messages;
//! - [`metrics`]: the process's one Prometheus recorder (the `metrics` facade, so any crate can
//!   record) and its text rendering for `GET /metrics`;
//! - [`cli`]: the command-line flags every binary shares (log format, OTLP endpoint) and the
//!   in-process defaults tests and benchmarks start services with;
//! - [`shutdown_signal`]: Ctrl-C or SIGTERM, which every service waits for before it flushes,
//!   and [`stop_on`]: every service's `run`, which waits for it and then stops the service.

pub mod cli;
pub mod metrics;
pub mod trace;

pub use cli::{ServiceCli, TelemetryArgs};
pub use trace::Telemetry;

/// Resolves on Ctrl-C or SIGTERM: the moment a service stops taking work, finishes what it
/// has, and flushes its telemetry.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// A service's `run`: waits for `shutdown`, says so, then stops the `running` service with
/// `stop` (which lets it finish what it has taken) and returns what stopping returns.
pub async fn stop_on<T, F: Future>(
    running: T,
    shutdown: impl Future<Output = ()>,
    stop: impl FnOnce(T) -> F,
) -> F::Output {
    shutdown.await;
    tracing::info!("shutting down");
    stop(running).await
}
