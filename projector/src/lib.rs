//! Tally's projector: the journal, applied to the Postgres read models exactly once.
//!
//! - [`consume`]: the live loop — one active projector per read model (advisory lock; others
//!   wait as hot standbys), an ordered consumer from `checkpoint + 1`, batches applied in one
//!   transaction each together with the checkpoint;
//! - [`apply`]: what each event becomes (history entries, account rows) — pure; the rows
//!   are written by the `read-model` crate, which holds every SQL statement;
//! - [`rebuild`]: replay into a fresh schema and swap it in;
//! - [`verify`]: fold the journal and compare;
//! - [`http`]: `/healthz`, `/readyz`, `/metrics`.

pub mod apply;
pub mod consume;
pub mod http;
pub mod rebuild;
pub mod verify;

use anyhow::Context;
use consume::{Projection, Status};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Settings shared by `serve`, `rebuild` and `verify`. Every variable is in `.env.sample`.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Where the journal is (`NATS_URL`, `LEDGER_STREAM`).
    #[command(flatten)]
    pub journal: ledger_nats::JournalArgs,

    /// Where the read models are (`DATABASE_URL`, `READ_MODEL_SCHEMA`).
    #[command(flatten)]
    pub read_model: read_model::ReadModelArgs,

    /// Address of the health and metrics endpoints.
    #[arg(long, env = "PROJECTOR_HOST", default_value = "0.0.0.0")]
    pub host: IpAddr,

    /// Port of the health and metrics endpoints (0: any free port).
    #[arg(long, env = "PROJECTOR_PORT", default_value_t = 8082)]
    pub port: u16,

    /// Most journal messages per transaction. 1000 keeps a transaction around ten
    /// milliseconds of Postgres work, so the checkpoint (and read-your-writes) moves often.
    #[arg(long, env = "PROJECTOR_BATCH_LEN_MAX", default_value_t = 1_000)]
    pub batch_len_max: usize,

    /// Postgres connections: the projector writes from one task; a second serves probes.
    #[arg(long, env = "PROJECTOR_POOL_SIZE", default_value_t = 2)]
    pub pool_size: u32,
}

impl Config {
    /// Every setting at its default (or its environment variable), probes on
    /// `127.0.0.1:0`: for tests and benchmarks that start the projector in-process.
    pub fn local(nats_url: &str, database_url: &str) -> Self {
        telemetry::cli::local_defaults(
            "projector",
            &["--nats-url", nats_url, "--database-url", database_url],
        )
    }
}

/// How long start-up waits for the command API to create the stream.
const STREAM_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The projector's name in Postgres's `pg_stat_activity`.
const APPLICATION_NAME: &str = "tally";

/// A pool of `size` connections that see the configured schema.
pub async fn connect(config: &Config, size: u32) -> Result<sqlx::PgPool, sqlx::Error> {
    read_model::connect(
        &config.read_model.database_url,
        &config.read_model.schema,
        APPLICATION_NAME,
        size,
    )
    .await
}

/// A running projector.
#[derive(Debug)]
pub struct Projector {
    pub addr: SocketAddr,
    pub status: Arc<Status>,
    stop: watch::Sender<bool>,
    projection: JoinHandle<()>,
    server: JoinHandle<std::io::Result<()>>,
}

/// Connects, migrates the read-model schema, and starts the projection and the probes.
pub async fn start(config: Config) -> anyhow::Result<Projector> {
    let nats = ledger_nats::connect(&config.journal.nats_url, "tally-projector").await?;
    // The projector only reads: the command API creates the stream; wait for it a while.
    ledger_nats::stream::check_stream(&nats, &config.journal.stream, STREAM_WAIT)
        .await
        .context("the journal stream (start the command API first)")?;
    // The projector writes from one task while the probes need a second connection.
    let pool = connect(&config, config.pool_size.max(2))
        .await
        .context("connecting to PostgreSQL")?;
    read_model::migrate(&pool, &config.read_model.schema)
        .await
        .context("migrating the read models")?;
    http::describe_metrics();
    let status = Arc::new(Status::default());
    let (stop, stopped) = watch::channel(false);
    let projection = tokio::spawn(consume::run(
        Projection {
            nats: nats.clone(),
            stream: config.journal.stream.clone(),
            pool: pool.clone(),
            database_url: config.read_model.database_url.clone(),
            name: read_model::PROJECTION.to_owned(),
            batch_len_max: config.batch_len_max.max(1),
            notify_channel: Some(read_model::notify_channel(&config.read_model.schema)),
        },
        Arc::clone(&status),
        stopped.clone(),
    ));
    let listener = http_edge::server::bind(config.host, config.port)
        .with_context(|| format!("binding {}:{}", config.host, config.port))?;
    let addr = listener.local_addr()?;
    let router = http::router(http::Probe {
        status: Arc::clone(&status),
        pool,
        nats,
        stream: config.journal.stream.clone(),
    });
    let mut server_stop = stopped;
    let server = tokio::spawn(
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = server_stop.wait_for(|stop| *stop).await;
            })
            .into_future(),
    );
    tracing::info!(%addr, schema = %config.read_model.schema, "projector started");
    Ok(Projector {
        addr,
        status,
        stop,
        projection,
        server,
    })
}

impl Projector {
    /// Finishes the batch in hand, then stops.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.projection.await.context("projection task")?;
        self.server.await.context("probe server")??;
        Ok(())
    }

    /// Ends abruptly, as a crash would: an open transaction is rolled back by Postgres.
    pub fn abort(self) {
        self.projection.abort();
        self.server.abort();
    }
}

/// Runs until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    telemetry::stop_on(start(config).await?, shutdown, Projector::stop).await
}
