//! Test support: a real nats-server per test, the command API started in-process on port 0,
//! an HTTP client, tokens, and a reader of the journal.

use command_api::{App, Config};
use events::Envelope;
pub use harness::NatsServer;
pub use harness::http::{Answer, Http};
use ledger_nats::Stored;
use reqwest::StatusCode;
use serde_json::Value;

pub const SECRET: &str = "test-secret-that-is-long-enough-for-hs256";
pub const STREAM: &str = "LEDGER";

/// A configuration for an in-process command API against `nats_url`.
pub fn config(nats_url: &str) -> Config {
    Config::local(nats_url, SECRET)
}

pub async fn start_api(nats_url: &str) -> Api {
    Api::start(config(nats_url)).await
}

/// A running command API and a client for it.
pub struct Api {
    pub app: App,
    pub http: Http,
}

impl Api {
    pub async fn start(config: Config) -> Self {
        // The services' warnings and errors, shown with a failing test's output: a 503 says
        // only "retry", its cause is in the log.
        let _ = tracing_subscriber::fmt()
            .with_env_filter("warn")
            .with_test_writer()
            .try_init();
        let app = command_api::start(config)
            .await
            .expect("command API starts");
        let http = Http::new(format!("http://{}", app.addr));
        Self { app, http }
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.http.post(path, token, body).await
    }

    pub async fn post_with(
        &self,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        raw_body: Option<String>,
    ) -> Answer {
        self.http.post_with(path, token, headers, raw_body).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.http.get_with(path, None, &[]).await
    }
}

/// A token signed with the test secret.
pub fn token(sub: &str, admin: bool) -> String {
    http_edge::Auth::new(Some(SECRET))
        .expect("secret")
        .mint(sub, admin, 3_600)
        .expect("token")
}

/// Every message in the stream, in order.
pub async fn journal(client: &async_nats::Client) -> Vec<Stored> {
    let mut all = Vec::new();
    let mut next = 1;
    loop {
        let page = ledger_nats::direct::range(client, STREAM, next, 1000)
            .await
            .expect("read journal");
        let Some(last) = page.last() else { break };
        next = last.seq + 1;
        all.extend(page);
    }
    all
}

/// The stream's last sequence.
pub async fn last_seq(client: &async_nats::Client) -> u64 {
    ledger_nats::stream::stream_last_seq(client, STREAM)
        .await
        .expect("stream info")
}

pub fn decode(message: &Stored) -> Envelope {
    Envelope::from_json(&message.payload).expect("journal message decodes")
}

/// Opens `id` for `owner` and deposits `balance` (if positive) as admin.
pub async fn open_funded(api: &Api, id: &str, owner: &str, balance: i64) {
    let admin = token("root", true);
    let opened = api
        .post(
            "/v1/accounts",
            &admin,
            serde_json::json!({"account_id": id, "owner_id": owner}),
        )
        .await;
    assert!(opened.status.is_success(), "open {id}: {:?}", opened.body);
    if balance > 0 {
        let deposited = api
            .post(
                &format!("/v1/accounts/{id}/deposits"),
                &admin,
                serde_json::json!({"amount": balance}),
            )
            .await;
        assert_eq!(
            deposited.status,
            StatusCode::CREATED,
            "{:?}",
            deposited.body
        );
    }
}
