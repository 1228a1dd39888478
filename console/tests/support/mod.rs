//! The real stack in-process for the console's tests: a nats-server, a fresh Postgres
//! database, the command API, the projector, the query API, and the console in front of them.

#![allow(dead_code)] // each test file uses part of it

use harness::{NatsServer, TestDatabase};

pub const SECRET: &str = "test-secret-that-is-long-enough-for-hs256";

/// The console's `GRAFANA_URL` in the test stack: only linked to, never fetched (`.invalid`
/// never resolves).
pub const GRAFANA_URL: &str = "http://grafana.invalid:3000";

pub fn token(sub: &str, admin: bool) -> String {
    http_edge::Auth::new(Some(SECRET))
        .expect("secret")
        .mint(sub, admin, 3_600)
        .expect("token")
}

pub struct Stack {
    _nats: NatsServer,
    _db: TestDatabase,
    commands: Option<command_api::App>,
    projector: Option<projector::Projector>,
    queries: Option<query_api::App>,
    console: Option<web_console::App>,
    pub command_url: String,
    pub query_url: String,
    pub console_url: String,
}

impl Stack {
    /// Everything started; `dev_tokens` as `CONSOLE_DEV_TOKENS` would give them.
    pub async fn start(dev_tokens: Option<String>) -> Self {
        let nats = NatsServer::start();
        let db = TestDatabase::create().await;
        let commands = command_api::start(command_api::Config::local(&nats.url, SECRET))
            .await
            .expect("command API starts");
        let projector = projector::start(projector::Config::local(&nats.url, &db.url))
            .await
            .expect("projector starts");
        let queries = query_api::start(query_api::Config::local(&db.url, SECRET))
            .await
            .expect("query API starts");
        let command_url = format!("http://{}", commands.addr);
        let query_url = format!("http://{}", queries.addr);
        let mut config = web_console::Config::local(&command_url, &query_url);
        config.dev_tokens = dev_tokens;
        config.grafana_url = Some(GRAFANA_URL.to_owned());
        let console = web_console::start(config).await.expect("console starts");
        let console_url = format!("http://{}", console.addr);
        Self {
            _nats: nats,
            _db: db,
            commands: Some(commands),
            projector: Some(projector),
            queries: Some(queries),
            console: Some(console),
            command_url,
            query_url,
            console_url,
        }
    }

    /// Stops the services, the console first.
    pub async fn stop(mut self) {
        if let Some(console) = self.console.take() {
            console.stop().await.expect("console stops");
        }
        if let Some(queries) = self.queries.take() {
            queries.stop().await.expect("query API stops");
        }
        if let Some(projector) = self.projector.take() {
            projector.stop().await.expect("projector stops");
        }
        if let Some(commands) = self.commands.take() {
            commands.stop().await.expect("command API stops");
        }
    }
}
