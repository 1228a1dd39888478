//! The system under test, in-process on real servers.

use harness::http::Http;
use harness::{NatsServer, TestDatabase};

pub const SECRET: &str = "bench-secret-that-is-long-enough-for-hs256";
pub const STREAM: &str = "LEDGER";

pub struct Stack {
    pub nats: NatsServer,
    pub db: TestDatabase,
    pub command: command_api::App,
    pub commands: Http,
    pub projector: projector::Projector,
    pub query: query_api::App,
    pub queries: Http,
}

impl Stack {
    /// `durable`: Tally's configuration (`sync_interval: always`), else the server default.
    pub async fn start(durable: bool) -> anyhow::Result<Self> {
        let nats = if durable {
            NatsServer::start()
        } else {
            NatsServer::start_without_fsync()
        };
        let db = TestDatabase::create().await;
        let mut command_config = command_api::Config::local(&nats.url, SECRET);
        command_config.state_cache_len_max = 200_000;
        let command = command_api::start(command_config).await?;
        let commands = Http::new(format!("http://{}", command.addr));
        let projector = projector::start(projector::Config::local(&nats.url, &db.url)).await?;
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
