//! Tally's write side.
//!
//! A request enters through [`http`] (axum), which authenticates it (`http_edge::auth`), validates it
//! into a [`domain::Command`] and submits it to the [`writer`]. The writer — one task per
//! instance — gathers ready commands into a round, loads the states it lacks from the
//! journal, decides every command with the pure [`domain::decide`], and commits all resulting
//! events in one atomic JetStream batch guarded by expected-sequence checks. Its answer is
//! data — the command's outcome, or the answer an idempotency record kept — and goes back to
//! the handler, where `http::render` renders it as JSON with the `Ledger-Seq` of the commit.
//!
//! Layers run one way: `main` → `lib` (router, start) → [`http`] / [`executors`] → [`writer`]
//! (planner `writer::plan`, I/O shell, cache) → [`domain`] (pure `decide`); the writer reaches
//! JetStream only through `ledger_nats` (`commit_atomic`, direct gets).
//!
//! The [`executors`] (durable consumers) feed asynchronous work — order payments — through the
//! same writer.
//!
//! Instances given an advertised address take part in an [`election`] of one writer; the
//! others forward their write requests to it (`http::forward`, ADR 0028).
//!
//! [`start`] wires it all together so that `main` and the tests run the same application.

pub mod config;
pub mod domain;
pub mod election;
pub mod executors;
pub mod http;
pub mod lookup;
pub mod writer;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
pub use config::Config;
pub use http::state::{AppState, Shared};
use http_edge::Auth;
use http_edge::server::{Server, with_edge_layers};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use writer::{Writer, WriterConfig, WriterStats, WriterTask};

/// Limits of the HTTP edge.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub body_bytes_max: usize,
    pub large_bodies: http::LargeBodies,
    pub request_timeout: Duration,
    /// Requests per caller (token `sub`, else client address).
    pub rate_limit: http_edge::RateLimit,
}

/// All routes of the command API; with a [`Forwarder`](http::forward::Forwarder), the
/// operations' write requests go to the elected writer when another instance holds the lease.
pub fn router(
    state: AppState,
    limits: HttpLimits,
    forwarder: Option<http::forward::Forwarder>,
) -> Router {
    let (operations, document) = http::routes(limits.large_bodies).split_for_parts();
    let operations = match forwarder {
        Some(forwarder) => operations.layer(axum::middleware::from_fn_with_state(
            forwarder,
            http::forward::forward,
        )),
        None => operations,
    };
    let router = operations
        .route("/healthz", get(http_edge::probes::healthz))
        .route("/readyz", get(http::health::readyz))
        .route("/metrics", get(http_edge::metrics::render))
        .route_layer(axum::middleware::from_fn_with_state(
            "command-api",
            http_edge::metrics::track,
        ))
        .merge(http_edge::openapi::routes(http::openapi::document(
            document,
        )))
        .fallback(http_edge::problem::not_found)
        .method_not_allowed_fallback(http_edge::problem::method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.body_bytes_max));
    let auth = state.auth.clone();
    with_edge_layers(router, limits.request_timeout, limits.rate_limit, &auth).with_state(state)
}

/// A running command API.
#[derive(Debug)]
pub struct App {
    pub addr: SocketAddr,
    pub stats: Arc<WriterStats>,
    server: Server,
    stop_executors: tokio::sync::watch::Sender<bool>,
    executors: Vec<tokio::task::JoinHandle<()>>,
    writer_handle: Writer,
    writer: WriterTask,
    /// This instance's part in electing one writer, when it has an advertised address.
    campaign: Option<election::Campaign>,
}

/// Connects to NATS (refusing servers that cannot do atomic batches), brings the stream in
/// line with its definition, starts the writer and serves HTTP.
pub async fn start(config: Config) -> anyhow::Result<App> {
    let auth = Auth::new(config.jwt_secret.as_deref()).context("token configuration")?;
    // Installed before anything records, so that no early measurement is lost.
    telemetry::metrics::recorder();
    let nats = ledger_nats::connect(&config.journal.nats_url, "tally-command-api").await?;
    ledger_nats::ensure_stream(&nats, &config.journal.stream, usize::from(config.replicas)).await?;
    let (writer, writer_task) = writer::spawn(
        nats.clone(),
        WriterConfig {
            stream: config.journal.stream.clone(),
            replicated: config.replicas > 1,
            queue_len_max: config.writer_queue_len_max,
            cache_len_max: config.state_cache_len_max,
            commit_timeout: config.commit_timeout(),
            conflict_retries_max: config.conflict_retries_max,
            unknown_outcome_retries_max: config.unknown_outcome_retries_max,
            enqueue_timeout: Duration::from_millis(config.enqueue_timeout_ms),
            answer_timeout: Duration::from_millis(config.answer_timeout_ms),
        },
        http::render::render,
    );
    // The role the election will tell (ADR 0028): executors pull only while no other
    // instance holds the writer lease.
    let role = config
        .advertise_url
        .as_ref()
        .map(|_| election::role_channel());
    let (stop_executors, executors_stopped) = tokio::sync::watch::channel(false);
    let mut executors = Vec::new();
    if config.payment_executor {
        let consumer = ledger_nats::consumers::ensure_pull_consumer(
            &nats,
            &config.journal.stream,
            ledger_nats::consumers::PAYMENTS_CONSUMER_JSON,
            config.payment_ack_wait_ms.map(Duration::from_millis),
        )
        .await
        .context("the payments consumer")?;
        executors.push(tokio::spawn(executors::consume(
            "payments",
            consumer,
            executors::payments::CONCURRENCY,
            writer.clone(),
            role.as_ref().map(|(_, rx)| rx.clone()),
            executors_stopped.clone(),
            executors::payments::process,
        )));
    }
    if config.batch_executor {
        let consumer = ledger_nats::consumers::ensure_pull_consumer(
            &nats,
            &config.journal.stream,
            ledger_nats::consumers::BALANCE_BATCHES_CONSUMER_JSON,
            config.batch_ack_wait_ms.map(Duration::from_millis),
        )
        .await
        .context("the balance-batches consumer")?;
        executors.push(tokio::spawn(executors::consume(
            "balance-batches",
            consumer,
            executors::batches::CONCURRENCY,
            writer.clone(),
            role.as_ref().map(|(_, rx)| rx.clone()),
            executors_stopped.clone(),
            executors::batches::process,
        )));
    }
    if config.hold_expiry_executor {
        let consumer = ledger_nats::consumers::ensure_pull_consumer(
            &nats,
            &config.journal.stream,
            ledger_nats::consumers::HOLD_EXPIRY_CONSUMER_JSON,
            None,
        )
        .await
        .context("the hold-expiry consumer")?;
        executors.push(tokio::spawn(executors::consume(
            "hold-expiry",
            consumer,
            executors::hold_expiry::CONCURRENCY,
            writer.clone(),
            role.as_ref().map(|(_, rx)| rx.clone()),
            executors_stopped.clone(),
            executors::hold_expiry::process,
        )));
    }
    let listener = http_edge::server::bind(config.host, config.port)
        .with_context(|| format!("binding {}:{}", config.host, config.port))?;
    let addr = listener.local_addr()?;
    let stats = Arc::clone(writer.stats());
    let writer_handle = writer.clone();
    let read_model = config
        .transfer_lookup_read_model
        .then(|| {
            read_model::pool::connect_lazy(
                &config.read_model.database_url,
                &config.read_model.schema,
                "tally-command-api",
                config.read_model_pool_size,
            )
        })
        .transpose()
        .context("the read models' address")?;
    let state = AppState::new(Shared {
        writer,
        auth,
        nats,
        stream: config.journal.stream.clone(),
        read_model,
        window_reads: lookup::WindowReads::new(config.transfer_lookup_window_reads_max),
    });
    let limits = HttpLimits {
        body_bytes_max: config.request_body_bytes_max,
        large_bodies: http::LargeBodies {
            balances_bytes_max: config.balances_body_bytes_max,
            transfer_batch_bytes_max: config.transfer_batch_body_bytes_max,
        },
        request_timeout: Duration::from_millis(config.request_timeout_ms),
        rate_limit: config.rate_limit,
    };
    let campaign = config
        .advertise_url
        .as_ref()
        .zip(role)
        .map(|(url, (role_tx, _))| {
            election::start(
                state.nats.clone(),
                election::Election {
                    me: election::Holder {
                        instance: uuid::Uuid::now_v7().to_string(),
                        url: url.trim_end_matches('/').to_owned(),
                    },
                    ttl: Duration::from_millis(config.writer_lease_ttl_ms),
                    replicas: usize::from(config.replicas),
                },
                role_tx,
            )
        });
    let forwarder = campaign.as_ref().map(|c| {
        http::forward::Forwarder::new(
            c.role.clone(),
            c.instance.clone(),
            limits
                .body_bytes_max
                .max(limits.large_bodies.balances_bytes_max)
                .max(limits.large_bodies.transfer_batch_bytes_max),
        )
    });
    let server = http_edge::server::spawn(listener, router(state, limits, forwarder));
    tracing::info!(%addr, stream = %config.journal.stream, "command API listening");
    Ok(App {
        addr,
        stats,
        server,
        stop_executors,
        executors,
        writer_handle,
        writer: writer_task,
        campaign,
    })
}

impl App {
    /// The handle to this instance's append pipeline (for executors driven from outside).
    pub fn writer(&self) -> &Writer {
        &self.writer_handle
    }

    /// What this instance does with write requests now (ADR 0028): `None` when it takes no
    /// part in electing a writer.
    pub fn role(&self) -> Option<election::Role> {
        self.campaign.as_ref().map(|c| c.role.borrow().clone())
    }

    /// Stops accepting requests, lets in-flight requests finish, then lets the writer drain
    /// its queue and commit what it holds.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.server.shut_down().await.context("HTTP server")?;
        // Given up at once, so that another instance writes from its next look on.
        if let Some(campaign) = self.campaign {
            campaign.stop().await;
        }
        drop(self.writer_handle);
        let _ = self.stop_executors.send(true);
        for executor in self.executors {
            executor.await.context("executor task")?;
        }
        self.writer.0.await.context("writer task")?;
        Ok(())
    }

    /// Ends the application abruptly, as a crash would: nothing is drained.
    pub fn abort(self) {
        self.server.task.abort();
        if let Some(campaign) = &self.campaign {
            campaign.abort();
        }
        for executor in &self.executors {
            executor.abort();
        }
        self.writer.0.abort();
    }
}

/// Runs until `shutdown` resolves, then stops gracefully.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    telemetry::stop_on(start(config).await?, shutdown, App::stop).await
}
