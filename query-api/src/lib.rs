//! Tally's read side over HTTP.
//!
//! [`state::AppState`] is what the handlers reach; this module builds it and the router.
//! Requests pass through [`consistency`] — which honours `Ledger-Min-Seq` (read-your-writes)
//! and stamps every answer with `Ledger-Seq` — then the handlers in [`http`], which read the
//! Postgres read models through the `read-model` crate (which holds every SQL statement).
//! [`checkpoint`] follows the projector's checkpoint by `LISTEN`, so waiting for a sequence
//! costs no polling of the database.

pub mod checkpoint;
pub mod consistency;
pub mod http;
pub mod state;

use anyhow::Context;
use axum::Router;
use axum::routing::get;
use http_edge::Auth;
use http_edge::server::{Server, with_edge_layers};
pub use state::AppState;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Everything `query-api` needs. Every variable is in `.env.sample`.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Where the read models are (`DATABASE_URL`, `READ_MODEL_SCHEMA`).
    #[command(flatten)]
    pub read_model: read_model::ReadModelArgs,

    #[arg(long, env = "QUERY_API_HOST", default_value = "0.0.0.0")]
    pub host: IpAddr,

    /// Port to listen on (0: any free port).
    #[arg(long, env = "QUERY_API_PORT", default_value_t = 8081)]
    pub port: u16,

    /// HS256 secret for bearer tokens, at least 32 bytes (the command API's).
    #[arg(long, env = "LEDGER_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Longest wait for `Ledger-Min-Seq` before `503 projection_lagging`. Five seconds covers
    /// a busy projector; longer, and a client is better told to retry.
    #[arg(long, env = "MIN_SEQ_WAIT_MS", default_value_t = 5_000)]
    pub min_seq_wait_ms: u64,

    /// Postgres connections for queries: a couple per core serves thousands of point reads
    /// per second without crowding the projector.
    #[arg(long, env = "QUERY_POOL_SIZE", default_value_t = 8)]
    pub pool_size: u32,

    /// Whole-request time limit.
    #[arg(long, env = "QUERY_REQUEST_TIMEOUT_MS", default_value_t = 10_000)]
    pub request_timeout_ms: u64,

    /// Per-caller token buckets (`RATE_LIMIT_*`, `SERVICE_RATE_LIMIT_*`), as the command
    /// API's.
    #[command(flatten)]
    pub rate_limit: http_edge::RateLimit,
}

impl Config {
    /// Every setting at its default (or its environment variable), listening on
    /// `127.0.0.1:0`, with no rate limit (tests and benchmarks read as hard as they can with
    /// one token; a test of the limit sets its own): for tests and benchmarks that start the
    /// query API in-process.
    pub fn local(database_url: &str, jwt_secret: &str) -> Self {
        telemetry::cli::local_defaults(
            "query-api",
            &[
                "--database-url",
                database_url,
                "--jwt-secret",
                jwt_secret,
                "--rate-limit-per-second",
                "0",
            ],
        )
    }
}

/// The query API's name in Postgres's `pg_stat_activity`.
const APPLICATION_NAME: &str = "tally-query-api";

pub fn router(
    state: AppState,
    request_timeout: Duration,
    rate_limit: http_edge::RateLimit,
) -> Router {
    let router = Router::new()
        .route("/v1/accounts", get(http::accounts::list_accounts))
        .route("/v1/accounts/{id}", get(http::accounts::get_account))
        .route(
            "/v1/accounts/{id}/balance",
            get(http::accounts::get_balance),
        )
        .route(
            "/v1/accounts/{id}/entries",
            get(http::entries::list_entries),
        )
        .route("/v1/jobs/{id}", get(http::jobs::get_job))
        .route("/v1/holds/{id}", get(http::holds::get_hold))
        .route("/v1/batches/{id}", get(http::batches::get_batch))
        .route("/v1/orders", get(http::orders::list_orders))
        .route("/v1/orders/{id}", get(http::orders::get_order))
        .route("/healthz", get(http_edge::probes::healthz))
        .route("/readyz", get(http::health::readyz))
        .route("/metrics", get(http_edge::metrics::render))
        .route_layer(axum::middleware::from_fn_with_state(
            "query-api",
            http_edge::metrics::track,
        ))
        .merge(http_edge::openapi::routes(http::openapi::document()))
        .fallback(http_edge::problem::not_found)
        .method_not_allowed_fallback(http_edge::problem::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            consistency::ledger_seq,
        ));
    let auth = state.auth.clone();
    with_edge_layers(router, request_timeout, rate_limit, &auth).with_state(state)
}

/// A running query API.
#[derive(Debug)]
pub struct App {
    pub addr: SocketAddr,
    server: Server,
    follower: JoinHandle<()>,
}

pub async fn start(config: Config) -> anyhow::Result<App> {
    let auth = Auth::new(config.jwt_secret.as_deref()).context("token configuration")?;
    // Installed before anything records, so that no early measurement is lost.
    telemetry::metrics::recorder();
    let pool = read_model::connect(
        &config.read_model.database_url,
        &config.read_model.schema,
        APPLICATION_NAME,
        config.pool_size,
    )
    .await
    .context("connecting to PostgreSQL")?;
    let (checkpoint_tx, checkpoint) = watch::channel(0);
    let follower = tokio::spawn(checkpoint::follow(
        pool.clone(),
        config.read_model.schema.clone(),
        checkpoint_tx,
    ));
    let state = AppState {
        pool,
        auth,
        checkpoint,
        min_seq_wait: Duration::from_millis(config.min_seq_wait_ms),
    };
    let listener = TcpListener::bind((config.host, config.port))
        .await
        .with_context(|| format!("binding {}:{}", config.host, config.port))?;
    let addr = listener.local_addr()?;
    let rate_limit = config.rate_limit;
    let router = router(
        state,
        Duration::from_millis(config.request_timeout_ms),
        rate_limit,
    );
    let server = http_edge::server::spawn(listener, router);
    tracing::info!(%addr, schema = %config.read_model.schema, "query API listening");
    Ok(App {
        addr,
        server,
        follower,
    })
}

impl App {
    pub async fn stop(self) -> anyhow::Result<()> {
        self.server.shut_down().await.context("HTTP server")?;
        self.follower.abort();
        Ok(())
    }
}

pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let app = start(config).await?;
    shutdown.await;
    tracing::info!("shutting down");
    app.stop().await
}
