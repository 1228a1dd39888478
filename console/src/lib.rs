//! Tally's web console: server-rendered pages for the people who use and run the ledger.
//!
//! The console is a client of the two public APIs and nothing else (no database, no NATS), so
//! it can never show or do what the API would refuse. A request flows
//! `router → session (cookie → bearer token) → pages::* → api (HTTP to the command or query
//! API) → markup (maud)`; state-changing forms pass the [`session::same_origin`] check first.
//! [`feed`] relays an account's live feed from the query API to the browser, which cannot put
//! a bearer token on an `EventSource`. [`assets`] serves htmx and the console's own script and
//! style sheet from the binary (no CDN: the console works offline).

pub mod api;
pub mod assets;
pub mod chart;
pub mod feed;
pub mod fields;
pub mod pages;
pub mod session;

use anyhow::Context;
use axum::Router;
use axum::routing::{get, post};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower_http::trace::TraceLayer;

/// Everything `console` needs. Every variable is in `.env.sample`.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    #[arg(long, env = "CONSOLE_HOST", default_value = "0.0.0.0")]
    pub host: IpAddr,

    /// Port to listen on (0: any free port).
    #[arg(long, env = "CONSOLE_PORT", default_value_t = 8083)]
    pub port: u16,

    /// The command API's base URL (writes).
    #[arg(long, env = "COMMAND_API_URL", default_value = "http://127.0.0.1:8080")]
    pub command_api_url: String,

    /// The query API's base URL (reads and the live feed).
    #[arg(long, env = "QUERY_API_URL", default_value = "http://127.0.0.1:8081")]
    pub query_api_url: String,

    /// Longest wait for one API answer. The query API itself gives up on a lagging
    /// projection after 5 s (MIN_SEQ_WAIT_MS) and the command API answers within 20 s at
    /// worst (ANSWER_TIMEOUT_MS): 25 s lets either finish and say why.
    #[arg(long, env = "CONSOLE_API_TIMEOUT_MS", default_value_t = 25_000)]
    pub api_timeout_ms: u64,

    /// Development only: identities offered as one-click sign-in buttons, as
    /// `name=token,name=token`. The token never leaves the server: the button posts the name.
    #[arg(long, env = "CONSOLE_DEV_TOKENS", hide_env_values = true)]
    pub dev_tokens: Option<String>,

    /// Mark the session cookie `Secure` (send it over HTTPS only): on whenever the console is
    /// reached through TLS; off by default because a development console speaks plain HTTP.
    #[arg(long, env = "CONSOLE_COOKIE_SECURE", default_value_t = false)]
    pub cookie_secure: bool,

    /// Grafana's base URL as the person's browser reaches it (e.g. `http://localhost:3000`):
    /// the Journal page links each message's `traceparent` to its trace in Tempo. Unset: the
    /// trace context is shown as text. The console never calls it.
    #[arg(long, env = "GRAFANA_URL")]
    pub grafana_url: Option<String>,
}

impl Config {
    /// Every setting at its default, listening on `127.0.0.1:0` and talking to the given
    /// APIs: for tests that start the console in-process.
    pub fn local(command_api_url: &str, query_api_url: &str) -> Self {
        telemetry::cli::local_defaults(
            "console",
            &[
                "--command-api-url",
                command_api_url,
                "--query-api-url",
                query_api_url,
            ],
        )
    }
}

/// What the handlers reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub api: api::Api,
    /// Dev identities by name (empty unless `CONSOLE_DEV_TOKENS` is set).
    pub dev_tokens: Arc<BTreeMap<String, String>>,
    pub cookie_secure: bool,
    /// `GRAFANA_URL`, without a trailing `/`; empty counts as unset.
    pub grafana_url: Option<String>,
}

impl AppState {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let api = api::Api::new(
            &config.command_api_url,
            &config.query_api_url,
            Duration::from_millis(config.api_timeout_ms),
        )?;
        let dev_tokens = parse_dev_tokens(config.dev_tokens.as_deref().unwrap_or(""))?;
        Ok(Self {
            api,
            dev_tokens: Arc::new(dev_tokens),
            cookie_secure: config.cookie_secure,
            grafana_url: config
                .grafana_url
                .as_deref()
                .map(|url| url.trim().trim_end_matches('/').to_owned())
                .filter(|url| !url.is_empty()),
        })
    }
}

/// `alice=<token>,admin=<token>` → by name.
fn parse_dev_tokens(spec: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut tokens = BTreeMap::new();
    for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, token) = pair
            .split_once('=')
            .with_context(|| format!("CONSOLE_DEV_TOKENS: `{pair}` is not name=token"))?;
        tokens.insert(name.trim().to_owned(), token.trim().to_owned());
    }
    Ok(tokens)
}

pub fn router(state: AppState) -> Router {
    let pages = Router::new()
        .route("/", get(pages::home))
        .route(
            "/sign-in",
            get(pages::sign_in::page).post(pages::sign_in::submit),
        )
        .route("/sign-in/dev", post(pages::sign_in::dev))
        .route("/sign-out", post(pages::sign_in::sign_out))
        .route(
            "/accounts",
            get(pages::accounts::page).post(pages::accounts::open),
        )
        .route("/accounts/{id}", get(pages::account::page))
        .route("/accounts/{id}/history", get(pages::account::history))
        .route("/accounts/{id}/chart", get(pages::account::chart))
        .route(
            "/accounts/{id}/forms/{action}",
            post(pages::account::submit),
        )
        .route(
            "/orders",
            get(pages::orders::page).post(pages::orders::place),
        )
        .route("/orders/{id}/status", get(pages::orders::status))
        .route(
            "/admin/batches",
            get(pages::batches::page)
                .post(pages::batches::upload)
                .layer(axum::extract::DefaultBodyLimit::max(
                    pages::batches::UPLOAD_BYTES_MAX,
                )),
        )
        .route(
            "/admin/batches/{id}/progress",
            get(pages::batches::progress),
        )
        .route("/admin/operations", get(pages::operations::page))
        .route("/admin/operations/status", get(pages::operations::status))
        .route("/admin/journal", get(pages::operations::journal))
        .route("/assets/{name}", get(assets::serve))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(http_edge::metrics::render))
        .route_layer(axum::middleware::from_fn_with_state(
            "console",
            http_edge::metrics::track,
        ))
        .fallback(pages::not_found)
        // Every page answers quickly or says why; the live feed below is exempt, since it
        // is meant to stay open.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::GATEWAY_TIMEOUT,
            Duration::from_secs(30),
        ));
    Router::new()
        .route("/accounts/{id}/events", get(feed::relay))
        .merge(pages)
        .layer(axum::middleware::from_fn(session::same_origin))
        .layer(axum::middleware::from_fn(assets::security_headers))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Ready when both APIs answer: a console without them can only show error pages.
async fn readyz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> (axum::http::StatusCode, &'static str) {
    let (commands, queries) = tokio::join!(
        state.api.alive(api::Side::Commands),
        state.api.alive(api::Side::Queries)
    );
    match (commands, queries) {
        (true, true) => (axum::http::StatusCode::OK, "ready"),
        (false, _) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "the command API does not answer",
        ),
        (_, false) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "the query API does not answer",
        ),
    }
}

/// How long a stopping console waits for open connections. Pages finish in far less; a live
/// feed never finishes by itself, and its browser reconnects on its own.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// A running console.
#[derive(Debug)]
pub struct App {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

pub async fn start(config: Config) -> anyhow::Result<App> {
    // Installed before anything records, so that no early measurement is lost.
    telemetry::metrics::recorder();
    let state = AppState::new(&config)?;
    let listener = http_edge::server::bind(config.host, config.port)
        .with_context(|| format!("binding {}:{}", config.host, config.port))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(
        axum::serve(listener, router(state))
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .into_future(),
    );
    tracing::info!(%addr, command_api = %config.command_api_url, query_api = %config.query_api_url, "console listening");
    Ok(App { addr, stop, task })
}

impl App {
    /// Stops accepting and lets in-flight requests finish. Open live feeds end with the
    /// server: a browser's `EventSource` reconnects by itself, resuming after its last event.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        let mut task = self.task;
        match tokio::time::timeout(SHUTDOWN_WAIT, &mut task).await {
            Ok(joined) => joined.context("console task")?.context("console server"),
            Err(_) => {
                // Only open feeds are left (every page answers within 30 s).
                task.abort();
                Ok(())
            }
        }
    }
}

pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    telemetry::stop_on(start(config).await?, shutdown, App::stop).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_tokens_are_read_as_name_equals_token_pairs() {
        let tokens = parse_dev_tokens("alice=a.b.c, admin=d.e.f").expect("parses");
        assert_eq!(tokens.get("alice").map(String::as_str), Some("a.b.c"));
        assert_eq!(tokens.get("admin").map(String::as_str), Some("d.e.f"));
        assert!(parse_dev_tokens("").expect("empty").is_empty());
        assert!(parse_dev_tokens("alice").is_err());
    }
}
