//! Tally's read side over HTTP.
//!
//! [`state::AppState`] is what the handlers reach; this module builds it and the router.
//! Requests pass through [`consistency`] — which honours `Ledger-Min-Seq` (read-your-writes)
//! and stamps every answer with `Ledger-Seq` — then the handlers in [`http`], which read the
//! Postgres read models through the `read-model` crate (which holds every SQL statement).
//! [`checkpoint`] follows the projector's checkpoint by `LISTEN`, so waiting for a sequence
//! costs no polling of the database; the live feed's [`feed`] hub follows the same checkpoint
//! and hands each new entry to the open feeds of its account (`http::feed` streams them).
//! [`account_cache`] keeps hot account rows, evicted by each checkpoint move before the move
//! is announced, so balance reads mostly skip the database without ever reading stale.

pub mod account_cache;
pub mod checkpoint;
pub mod consistency;
pub mod feed;
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

    /// Longest silence on a live feed before a heartbeat comment: under the 15 s the API
    /// promises, and well under the 30–60 s after which proxies drop idle connections.
    #[arg(long, env = "FEED_HEARTBEAT_MS", default_value_t = 10_000)]
    pub feed_heartbeat_ms: u64,

    /// Events a live feed may have waiting for a slow client before it is cut off with
    /// `event: lagged`. 256 rides out a burst on one account (a client a second behind at
    /// hundreds of events a second) while bounding what one subscriber can pin to ~256 shared
    /// entries of ~0.5 KB.
    #[arg(long, env = "FEED_BUFFER_LEN_MAX", default_value_t = 256)]
    pub feed_buffer_len_max: usize,

    /// Live feeds open at once on this instance; beyond it `503 feed_full`. Twice the 1,000
    /// the instance is sized for: each feed costs a connection (a file descriptor, ~tens of KB
    /// of buffers) and at most its event buffer, so 2,000 stay under ~0.5 GB even if every
    /// one fell behind at once; more clients are served by more instances.
    #[arg(long, env = "FEED_SUBSCRIBERS_MAX", default_value_t = 2_000)]
    pub feed_subscribers_max: usize,

    /// Longest life of one feed stream, in seconds; the client resumes with `Last-Event-ID`
    /// (an `EventSource` does so by itself). An hour lets feeds spread over new instances
    /// after a scale-out, at the cost of one reconnect an hour per client.
    #[arg(long, env = "FEED_STREAM_MAX_S", default_value_t = 3_600)]
    pub feed_stream_max_s: u64,

    /// Account rows kept in memory for reads (0: none). 100,000 rows of ~200 B are ~20 MB and
    /// cover the active accounts of most ledgers; the rest are read from PostgreSQL.
    #[arg(long, env = "ACCOUNT_CACHE_LEN_MAX", default_value_t = 100_000)]
    pub account_cache_len_max: usize,
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
    let (operations, document) = http::routes().split_for_parts();
    let router = operations
        .route("/healthz", get(http_edge::probes::healthz))
        .route("/readyz", get(http::health::readyz))
        .route("/metrics", get(http_edge::metrics::render))
        .route_layer(axum::middleware::from_fn_with_state(
            "query-api",
            http_edge::metrics::track,
        ))
        .merge(http_edge::openapi::routes(http::openapi::document(
            document,
        )))
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
    feed: feed::Hub,
    dispatcher: JoinHandle<()>,
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
    // Read once before anything serves, so that the live feed's `from=now` means now from the
    // first request on (the follower would take a moment to report it).
    let initial = read_model::schema::live_checkpoint(&pool)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "reading the checkpoint at start failed; following it");
            0
        });
    let (checkpoint_tx, checkpoint) = watch::channel(initial);
    let accounts = account_cache::AccountCache::new(config.account_cache_len_max, initial);
    let follower = tokio::spawn(checkpoint::follow(
        pool.clone(),
        config.read_model.schema.clone(),
        checkpoint_tx,
        accounts.clone(),
    ));
    let feed_limits = feed::FeedLimits {
        buffer_len_max: config.feed_buffer_len_max,
        subscribers_max: config.feed_subscribers_max,
        heartbeat: Duration::from_millis(config.feed_heartbeat_ms),
        stream_max: Duration::from_secs(config.feed_stream_max_s),
    };
    let hub = feed::Hub::new(pool.clone(), feed_limits, *checkpoint.borrow());
    let dispatcher = tokio::spawn(hub.clone().dispatch(checkpoint.clone()));
    let state = AppState {
        pool,
        auth,
        checkpoint,
        min_seq_wait: Duration::from_millis(config.min_seq_wait_ms),
        feed: hub.clone(),
        accounts,
    };
    let listener = http_edge::server::bind(config.host, config.port)
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
        feed: hub,
        dispatcher,
    })
}

impl App {
    pub async fn stop(self) -> anyhow::Result<()> {
        // Open feeds never finish by themselves: end them first, or the server would wait
        // for them for ever.
        self.feed.close();
        self.server.shut_down().await.context("HTTP server")?;
        self.dispatcher.abort();
        self.follower.abort();
        Ok(())
    }
}

pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    telemetry::stop_on(start(config).await?, shutdown, App::stop).await
}
