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
        let command = command_api::start(command_api::Config {
            nats_url: nats.url.clone(),
            stream: STREAM.into(),
            host: "127.0.0.1".parse()?,
            port: 0,
            jwt_secret: Some(SECRET.into()),
            writer_queue_len_max: 10_000,
            state_cache_len_max: 200_000,
            commit_timeout_ms: 5_000,
            conflict_retries_max: 10,
            unknown_outcome_retries_max: 8,
            enqueue_timeout_ms: 1_000,
            answer_timeout_ms: 20_000,
            request_timeout_ms: 25_000,
            request_body_bytes_max: 64 * 1024,
            payment_executor: true,
            batch_executor: true,
            batch_ack_wait_ms: None,
            balances_body_bytes_max: 16 * 1024 * 1024,
            hold_expiry_executor: true,
            payment_ack_wait_ms: None,
        })
        .await?;
        let commands = Http::new(format!("http://{}", command.addr));
        let projector = projector::start(projector::Config {
            nats_url: nats.url.clone(),
            stream: STREAM.into(),
            database_url: db.url.clone(),
            schema: "ledger".into(),
            host: "127.0.0.1".parse()?,
            port: 0,
            batch_len_max: 1_000,
            pool_size: 2,
        })
        .await?;
        let query = query_api::start(query_api::Config {
            database_url: db.url.clone(),
            schema: "ledger".into(),
            host: "127.0.0.1".parse()?,
            port: 0,
            jwt_secret: Some(SECRET.into()),
            min_seq_wait_ms: 10_000,
            pool_size: 8,
            request_timeout_ms: 20_000,
        })
        .await?;
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
