//! The system under test, in-process on real servers.

use harness::http::Http;
use harness::{NatsCluster, NatsServer, Network, TestDatabase};

pub const SECRET: &str = "bench-secret-that-is-long-enough-for-hs256";
pub const STREAM: &str = "LEDGER";

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
    pub projector: projector::Projector,
    pub query: query_api::App,
    pub queries: Http,
}

impl Stack {
    pub async fn start(topology: Topology) -> anyhow::Result<Self> {
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
        let mut command_config = command_api::Config::local(&url, SECRET);
        command_config.state_cache_len_max = 200_000;
        command_config.replicas = replicas;
        let command = command_api::start(command_config).await?;
        let commands = Http::new(format!("http://{}", command.addr));
        let projector = projector::start(projector::Config::local(&url, &db.url)).await?;
        let mut query_config = query_api::Config::local(&db.url, SECRET);
        query_config.min_seq_wait_ms = 10_000;
        let query = query_api::start(query_config).await?;
        let queries = Http::new(format!("http://{}", query.addr));
        Ok(Self {
            nats,
            db,
            command,
            commands,
            projector,
            query,
            queries,
        })
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.query.stop().await?;
        self.command.stop().await?;
        self.projector.stop().await?;
        drop(self.db);
        drop(self.nats);
        Ok(())
    }
}

pub fn token(sub: &str, admin: bool) -> anyhow::Result<String> {
    http_edge::Auth::new(Some(SECRET))?
        .mint(sub, admin, 3_600)
        .map_err(|e| anyhow::anyhow!(e.detail))
}
