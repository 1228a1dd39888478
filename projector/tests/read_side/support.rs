//! The whole stack in-process on real servers: nats-server, a fresh Postgres database, the
//! command API, the projector and the query API.

pub use harness::http::{Answer, Http};
pub use harness::{NatsServer, TestDatabase};
use projector::Projector;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub const SECRET: &str = "test-secret-that-is-long-enough-for-hs256";
pub const STREAM: &str = "LEDGER";
pub const SCHEMA: &str = "ledger";

pub fn token(sub: &str, admin: bool) -> String {
    http_edge::Auth::new(Some(SECRET))
        .expect("secret")
        .mint(sub, admin, 3_600)
        .expect("token")
}

pub struct Stack {
    pub nats: NatsServer,
    pub db: TestDatabase,
    /// Kept alive for the stack's lifetime.
    _command: command_api::App,
    pub commands: Http,
    _query: query_api::App,
    pub queries: Http,
}

impl Stack {
    /// Servers, command API and query API; projectors are started by the tests.
    pub async fn start() -> Self {
        let nats = NatsServer::start();
        let db = TestDatabase::create().await;
        let command = command_api::start(command_config(&nats.url).with_read_model(&db.url))
            .await
            .expect("command API starts");
        let commands = Http::new(format!("http://{}", command.addr));
        let query = query_api::start(query_config(&db.url))
            .await
            .expect("query API starts");
        let queries = Http::new(format!("http://{}", query.addr));
        Self {
            nats,
            db,
            _command: command,
            commands,
            _query: query,
            queries,
        }
    }

    pub fn projector_config(&self) -> projector::Config {
        projector::Config::local(&self.nats.url, &self.db.url)
    }

    pub async fn start_projector(&self) -> Projector {
        projector::start(self.projector_config())
            .await
            .expect("projector starts")
    }

    pub async fn nats_client(&self) -> async_nats::Client {
        self.nats.client().await
    }

    /// The journal's last sequence.
    pub async fn last_seq(&self) -> u64 {
        ledger_nats::stream::stream_last_seq(&self.nats_client().await, STREAM)
            .await
            .expect("stream info")
    }

    /// A pool on the read-model schema.
    pub async fn pool(&self) -> sqlx::PgPool {
        read_model::connect(&self.db.url, SCHEMA, "tally", 2)
            .await
            .expect("pool")
    }

    /// `projector verify` over the journal and the read model as they are now.
    pub async fn verify(&self) -> projector::verify::Findings {
        projector::verify::verify(&self.nats_client().await, STREAM, &self.pool().await)
            .await
            .expect("verify")
    }

    /// The query API's `/metrics` text.
    pub async fn query_metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.queries.base))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    /// Waits (bounded) until the read model's checkpoint reaches the journal's end.
    pub async fn wait_caught_up(&self, within: Duration) {
        let target = self.last_seq().await;
        let pool = self.pool().await;
        let deadline = Instant::now() + within;
        loop {
            let checkpoint = read_model::checkpoint(&pool, read_model::PROJECTION)
                .await
                .unwrap_or(0);
            if checkpoint >= target {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "projection stuck at {checkpoint} of {target}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Opens `id` for `owner` (as admin) and deposits `balance`; returns the last Ledger-Seq.
    pub async fn open_funded(&self, id: &str, owner: &str, balance: i64) -> u64 {
        let admin = token("root", true);
        let opened = self
            .commands
            .post(
                "/v1/accounts",
                &admin,
                json!({"account_id": id, "owner_id": owner}),
            )
            .await;
        assert!(opened.status.is_success(), "{:?}", opened.body);
        let mut answer = opened;
        if balance > 0 {
            answer = self
                .commands
                .post(
                    &format!("/v1/accounts/{id}/deposits"),
                    &admin,
                    json!({"amount": balance}),
                )
                .await;
            assert_eq!(answer.status.as_u16(), 201, "{:?}", answer.body);
        }
        seq_of(&answer)
    }
}

pub fn command_config(nats_url: &str) -> command_api::Config {
    command_api::Config::local(nats_url, SECRET)
}

pub fn query_config(database_url: &str) -> query_api::Config {
    query_api::Config::local(database_url, SECRET)
}

pub fn seq_of(answer: &Answer) -> u64 {
    answer
        .header("ledger-seq")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Ledger-Seq on {:?}", answer.body))
}

/// Every entry of an account, walked page by page with the cursor (oldest last).
pub async fn all_entries(
    queries: &Http,
    token: &str,
    account_id: &str,
    min_seq: u64,
) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    let min = min_seq.to_string();
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/accounts/{account_id}/entries?limit=37&cursor={c}"),
            None => format!("/v1/accounts/{account_id}/entries?limit=37"),
        };
        let page = queries
            .get_with(&path, Some(token), &[("ledger-min-seq", &min)])
            .await;
        assert_eq!(page.status.as_u16(), 200, "{:?}", page.body);
        items.extend(page.body["items"].as_array().cloned().unwrap_or_default());
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
}

/// How many journal messages carry this event type.
pub async fn count_events(client: &async_nats::Client, event_type: &str) -> usize {
    let last = ledger_nats::stream::stream_last_seq(client, STREAM)
        .await
        .expect("last");
    let mut count = 0;
    let mut next = 1;
    while next <= last {
        let page = ledger_nats::direct::range(client, STREAM, next, 1000)
            .await
            .expect("range");
        for message in &page {
            if message.header(events::headers::EVENT_TYPE) == Some(event_type) {
                count += 1;
            }
            next = message.seq + 1;
        }
    }
    count
}

/// Waits (bounded) until the order is decided in the read model.
pub async fn decided(stack: &Stack, token: &str, order_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let order = stack
            .queries
            .get(&format!("/v1/orders/{order_id}"), token)
            .await;
        if order.status.as_u16() == 200 && order.body["status"] != "new" {
            return order.body;
        }
        assert!(
            Instant::now() < deadline,
            "order {order_id} was not decided: {:?}",
            order.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of the first sample in Prometheus `text` named `name` whose labels include every
/// one of `labels` (each as `key="value"`).
pub fn metric(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .find(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{'))
                && labels.iter().all(|label| line.contains(label))
        })
        .and_then(|line| line.rsplit_once(' '))
        .and_then(|(_, value)| value.parse::<f64>().ok())
}

/// Waits (bounded) until the query API shows the balance batch `batch_id` done; its view.
pub async fn wait_done(queries: &Http, admin: &str, batch_id: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let batch = queries.get(&format!("/v1/batches/{batch_id}"), admin).await;
        if batch.status.as_u16() == 200 && batch.body["status"] == "done" {
            return batch.body;
        }
        assert!(
            Instant::now() < deadline,
            "batch not done: {:?}",
            batch.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Scrapes `url` (a `/metrics` endpoint) until `holds` accepts the text, bounded by `within`;
/// the accepted text. The gauges live in one recorder per process, which every projector of
/// the tests running beside the caller sets too, so one scrape may carry another projector's
/// figures.
pub async fn scrape_until(url: &str, within: Duration, holds: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + within;
    loop {
        let text = reqwest::get(url)
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        if holds(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "never held in {url}: {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of the gauge `name` (without labels) in a Prometheus text page.
pub fn gauge(page: &str, name: &str) -> Option<f64> {
    page.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}
