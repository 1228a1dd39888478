//! The system under test, in-process on real servers, configured as a deployment is: each
//! API's own rate limits (ADR 0015), the journal's stream definition (or, for a comparison,
//! another compression), and the callers a payment service's deployment has — a service
//! principal that owns the accounts it moves money between, and an admin for what only an admin
//! may do (balance batches, refunds).

use harness::http::Http;
use harness::{NatsCluster, NatsServer, Network, TestDatabase};
use serde_json::{Map, Value, json};
use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

pub const SECRET: &str = "bench-secret-that-is-long-enough-for-hs256";
pub const STREAM: &str = "LEDGER";

/// The service principal the load calls as: a payment service booking its customers'
/// transfers (ADR 0015).
pub const SERVICE: &str = "payments";

/// Concurrent requests that open a scenario's accounts.
const OPENING_CLIENTS: usize = 64;

/// The journal's compression for every stack (`--journal-compression`), set once at start-up;
/// none: the stream definition's own.
static COMPRESSION: OnceLock<Option<Compression>> = OnceLock::new();

/// Runs every stack from now on with the journal compressed as `compression` (none: as the
/// stream definition says).
pub fn compress_journals(compression: Option<Compression>) {
    let _ = COMPRESSION.set(compression);
}

/// The stream's `compression` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    None,
    S2,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::S2 => "s2",
        }
    }
}

/// Where the journal lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// One nats-server with Tally's configuration (`sync_interval: always`), R1.
    Durable,
    /// One nats-server with the server's default fsync interval, R1: what durability costs.
    DefaultFsync,
    /// Three nodes on loopback (each `sync_interval: always`), R3.
    Replicated,
}

/// The journal's servers.
pub enum Journal {
    Single(NatsServer),
    Cluster(NatsCluster),
}

impl Journal {
    pub fn url(&self) -> String {
        match self {
            Journal::Single(server) => server.url.clone(),
            Journal::Cluster(cluster) => cluster.url(),
        }
    }

    pub async fn client(&self) -> anyhow::Result<async_nats::Client> {
        Ok(ledger_nats::connect(&self.url(), "tally-bench").await?)
    }
}

pub struct Stack {
    pub nats: Journal,
    pub db: TestDatabase,
    pub command: command_api::App,
    pub commands: Http,
    /// Command APIs started beside the first by [`Stack::add_command_api`]: the instances of a
    /// deployment that scales the write side out, on the same journal and read model.
    pub more_commands: Vec<command_api::App>,
    /// How the first command API was configured: every further instance is configured so.
    command_config: command_api::Config,
    /// None once [`Stack::stop_projector`] has stopped it.
    pub projector: Option<projector::Projector>,
    pub query: query_api::App,
    pub queries: Http,
}

/// A port of its own for a command API, and that address advertised to the others.
fn advertise(config: &mut command_api::Config) -> anyhow::Result<()> {
    config.port = harness::free_port()?;
    config.advertise_url = Some(format!("http://127.0.0.1:{}", config.port));
    Ok(())
}

/// Settings a scenario compares (none: the deployment's default).
#[derive(Debug, Clone, Copy, Default)]
pub struct Tuning {
    /// The query API's account cache (`ACCOUNT_CACHE_LEN_MAX`; 0 turns it off).
    pub account_cache_len_max: Option<usize>,
    /// The journal's compression (none: `--journal-compression`, else the stream
    /// definition's).
    pub journal_compression: Option<Compression>,
    /// Every command API with an advertised address: they elect one writer and the others
    /// forward their writes to it (ADR 0028).
    pub elect_writer: bool,
}

impl Stack {
    pub async fn start(topology: Topology) -> anyhow::Result<Self> {
        Self::start_with(topology, Tuning::default()).await
    }

    pub async fn start_with(topology: Topology, tuning: Tuning) -> anyhow::Result<Self> {
        let (nats, replicas) = match topology {
            Topology::Durable => (Journal::Single(NatsServer::start()), 1),
            Topology::DefaultFsync => (Journal::Single(NatsServer::start_without_fsync()), 1),
            Topology::Replicated => {
                let logs = std::env::temp_dir().join("tally-bench-cluster-logs");
                std::fs::create_dir_all(&logs)?;
                let cluster = NatsCluster::start(Network::Loopback, &logs)
                    .map_err(|e| anyhow::anyhow!("starting the NATS cluster: {e}"))?;
                (Journal::Cluster(cluster), 3)
            }
        };
        let url = nats.url();
        let db = TestDatabase::create().await;
        // Transfer look-ups ask the read models, as deployed.
        let mut command_config = command_api::Config::local(&url, SECRET).with_read_model(&db.url);
        command_config.state_cache_len_max = 200_000;
        command_config.replicas = replicas;
        command_config.rate_limit = deployed_rate_limit();
        if tuning.elect_writer {
            advertise(&mut command_config)?;
        }
        let compression = tuning
            .journal_compression
            .or(COMPRESSION.get().copied().flatten());
        if let Some(compression) = compression {
            create_stream(&nats, usize::from(replicas), compression).await?;
        }
        let command = command_api::start(command_config.clone()).await?;
        let commands = Http::new(format!("http://{}", command.addr));
        let projector = projector::start(projector::Config::local(&url, &db.url)).await?;
        let mut query_config = query_api::Config::local(&db.url, SECRET);
        query_config.min_seq_wait_ms = 10_000;
        query_config.rate_limit = deployed_rate_limit();
        if let Some(len) = tuning.account_cache_len_max {
            query_config.account_cache_len_max = len;
        }
        let query = query_api::start(query_config).await?;
        let queries = Http::new(format!("http://{}", query.addr));
        Ok(Self {
            nats,
            db,
            command,
            commands,
            more_commands: Vec::new(),
            command_config,
            projector: Some(projector),
            query,
            queries,
        })
    }

    /// Starts one more command API, configured as the first, and returns its HTTP client.
    pub async fn add_command_api(&mut self) -> anyhow::Result<Http> {
        let mut config = self.command_config.clone();
        if config.advertise_url.is_some() {
            advertise(&mut config)?;
        }
        let command = command_api::start(config).await?;
        let http = Http::new(format!("http://{}", command.addr));
        self.more_commands.push(command);
        Ok(http)
    }

    /// Waits until one command API holds the writer lease and every other forwards to it.
    pub async fn writer_elected(&self) -> anyhow::Result<()> {
        use command_api::election::Role;
        let started = Instant::now();
        loop {
            let roles: Vec<Option<Role>> = std::iter::once(&self.command)
                .chain(&self.more_commands)
                .map(command_api::App::role)
                .collect();
            let writers = roles.iter().filter(|r| **r == Some(Role::Writer)).count();
            let forwarding = roles
                .iter()
                .filter(|r| matches!(r, Some(Role::Forward(_))))
                .count();
            if writers == 1 && writers + forwarding == roles.len() {
                return Ok(());
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(30),
                "no writer elected among the command APIs: {roles:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every command API's writer counters, the first instance's first.
    pub fn writer_stats(&self) -> impl Iterator<Item = &command_api::writer::WriterStats> {
        std::iter::once(&self.command)
            .chain(&self.more_commands)
            .map(|app| app.stats.as_ref())
    }

    /// Stops the projector, leaving the write path alone on the cores: what the journal's
    /// side of a scenario costs without the projection's Postgres writes beside it.
    pub async fn stop_projector(&mut self) -> anyhow::Result<()> {
        if let Some(projector) = self.projector.take() {
            projector.stop().await?;
        }
        Ok(())
    }

    /// Waits until the executor behind the durable consumer `name` has acknowledged every
    /// message on its subjects (nothing pending, nothing unacknowledged, something delivered):
    /// an executor acknowledges a message only after journaling what it decided.
    pub async fn executor_done(&self, name: &str, deadline: Instant) -> anyhow::Result<()> {
        let js = async_nats::jetstream::new(self.nats.client().await?);
        let mut consumer = js
            .get_stream(STREAM)
            .await?
            .get_consumer::<async_nats::jetstream::consumer::pull::Config>(name)
            .await
            .map_err(|e| anyhow::anyhow!("the {name} consumer: {e}"))?;
        loop {
            let info = consumer.info().await?;
            if info.num_pending == 0
                && info.num_ack_pending == 0
                && info.delivered.stream_sequence > 0
            {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the {name} executor did not finish"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// How far the projection trails the journal now (messages), and how long it then takes
    /// to apply the rest: the work a write phase left for after its clock stopped.
    pub async fn projection_trail(&self) -> anyhow::Result<(u64, Duration)> {
        let projector = self
            .projector
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the projector is stopped"))?;
        let started = Instant::now();
        let client = self.nats.client().await?;
        let last = ledger_nats::stream::stream_last_seq(&client, STREAM).await?;
        let applied = || projector.status.checkpoint.load(Ordering::Relaxed);
        let behind = last.saturating_sub(applied());
        while applied() < last {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(120),
                "the projection did not catch up"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok((behind, started.elapsed()))
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.query.stop().await?;
        for command in self.more_commands {
            command.stop().await?;
        }
        self.command.stop().await?;
        if let Some(projector) = self.projector {
            projector.stop().await?;
        }
        drop(self.db);
        drop(self.nats);
        Ok(())
    }
}

/// Creates the stream as the definition says but compressed as `compression`, before the
/// command API starts (which then updates it to the definition). Created, not updated: a
/// running nats-server accepts and reports a changed compression at once but its store keeps
/// writing with the one it was opened with until it is reopened (a restart, a leader change;
/// ADR 0021), so only a stream created so is stored so.
async fn create_stream(
    nats: &Journal,
    replicas: usize,
    compression: Compression,
) -> anyhow::Result<()> {
    let mut config = ledger_nats::stream::definition(STREAM, replicas)?;
    config["compression"] = json!(compression.as_str());
    let echo = ledger_nats::stream::create(&nats.client().await?, &config).await?;
    // The server leaves the field out for its default, `none`.
    let echoed = echo["compression"].as_str().unwrap_or("none");
    anyhow::ensure!(
        echoed == compression.as_str(),
        "the journal was not created with compression {}: {echo}",
        compression.as_str()
    );
    Ok(())
}

/// The rate limits a deployment runs with: each API's defaults (or the `RATE_LIMIT_*` and
/// `SERVICE_RATE_LIMIT_*` variables, as a deployment reads them), so that the load meets the
/// quota a payment service would meet, not one turned off for the benchmark.
fn deployed_rate_limit() -> http_edge::RateLimit {
    #[derive(Debug, clap::Parser)]
    struct Deployed {
        #[command(flatten)]
        limit: http_edge::RateLimit,
    }
    <Deployed as clap::Parser>::parse_from(["tally"]).limit
}

/// The callers of a payment service's deployment.
#[derive(Debug, Clone)]
pub struct Callers {
    /// The service principal (`role: "service"`): owns the accounts, moves the money, reads
    /// the balances.
    pub service: String,
    /// An admin, for the endpoints only an admin may call (balance batches, refunds).
    pub admin: String,
}

impl Callers {
    pub fn mint() -> anyhow::Result<Self> {
        let auth = http_edge::Auth::new(Some(SECRET))?;
        let mint = |sub: &str, role: &str| {
            auth.mint_with_role(sub, Some(role), 3_600)
                .map_err(|e| anyhow::anyhow!(e.detail))
        };
        Ok(Self {
            service: mint(SERVICE, http_edge::auth::SERVICE_ROLE)?,
            admin: mint("root", http_edge::auth::ADMIN_ROLE)?,
        })
    }
}

/// Retries of an account opening answered `503`, a second apart.
const OPEN_RETRIES_MAX: u32 = 5;

/// Opens `{prefix}0 … {prefix}(n-1)` as the service (their owner) and sets each balance to
/// `balance` with one balance batch (an admin's): how a payment service's accounts come to be
/// and are funded.
pub async fn open_accounts(
    stack: &Stack,
    callers: &Callers,
    prefix: &str,
    n: usize,
    balance: i64,
) -> anyhow::Result<()> {
    let mut opening = tokio::task::JoinSet::new();
    for client in 0..OPENING_CLIENTS.min(n) {
        let (commands, service) = (stack.commands.clone(), callers.service.clone());
        let prefix = prefix.to_owned();
        opening.spawn(async move {
            for i in (client..n).step_by(OPENING_CLIENTS) {
                let body = json!({"account_id": format!("{prefix}{i}")});
                let mut answer = commands.post("/v1/accounts", &service, body.clone()).await;
                // A 503 says the journal did not confirm the command in time (a freshly
                // started server can be slow for a moment); the client retries, as the
                // answer asks. Opening the same account again is idempotent.
                for _ in 0..OPEN_RETRIES_MAX {
                    if answer.status.as_u16() != 503 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    answer = commands.post("/v1/accounts", &service, body.clone()).await;
                }
                anyhow::ensure!(
                    answer.status.is_success(),
                    "opening {prefix}{i}: {} {:?}",
                    answer.status,
                    answer.body
                );
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(opened) = opening.join_next().await {
        opened??;
    }
    set_balances(stack, &callers.admin, prefix, n, balance).await
}

/// Sets the balances of `{prefix}0 … {prefix}(n-1)` in one balance batch (an admin's; the
/// batch opens those that do not exist, each its own owner) and waits until the query API
/// shows it done.
pub async fn set_balances(
    stack: &Stack,
    admin: &str,
    prefix: &str,
    n: usize,
    balance: i64,
) -> anyhow::Result<()> {
    let body: Map<String, Value> = (0..n)
        .map(|i| (format!("{prefix}{i}"), json!(balance)))
        .collect();
    let answer = reqwest::Client::new()
        .put(format!("{}/v1/balances", stack.commands.base))
        .bearer_auth(admin)
        .json(&Value::Object(body))
        .send()
        .await?;
    anyhow::ensure!(
        answer.status().as_u16() == 202,
        "setting balances: {}",
        answer.status()
    );
    let batch: Value = answer.json().await?;
    let batch_id = batch["batch_id"].as_str().unwrap_or_default().to_owned();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let status = stack
            .queries
            .get(&format!("/v1/batches/{batch_id}"), admin)
            .await;
        if status.body["status"] == "done" {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "balances not set: {:?}",
            status.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
