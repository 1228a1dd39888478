//! Test support: a real nats-server per test, the command API started in-process on port 0,
//! an HTTP client, tokens, and a reader of the journal.

use command_api::{App, Config};
use events::Envelope;
use ledger_nats::Stored;
use reqwest::StatusCode;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SECRET: &str = "test-secret-that-is-long-enough-for-hs256";
pub const STREAM: &str = "LEDGER";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The nats-server to test against: `NATS_SERVER_BIN`, else the one `scripts/test` installs.
pub fn nats_server_bin() -> PathBuf {
    std::env::var_os("NATS_SERVER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/nats-server"))
}

/// A nats-server on a random port with its own store, killed on drop.
pub struct NatsServer {
    child: Child,
    pub url: String,
    store: tempfile::TempDir,
    bin: PathBuf,
}

impl NatsServer {
    /// Tally's configuration (`nats/nats-server.conf`: durable) on a random port.
    pub fn start() -> Self {
        Self::start_with(nats_server_bin())
    }

    pub fn start_with(bin: PathBuf) -> Self {
        let store = tempfile::tempdir().expect("temp dir");
        let (child, url) = spawn_nats(&bin, store.path());
        Self {
            child,
            url,
            store,
            bin,
        }
    }

    /// Kills the server (SIGKILL) and starts it again on the same store and port.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let port = self.url.rsplit(':').next().expect("port").to_owned();
        let (child, url) = spawn_nats_on(&self.bin, self.store.path(), &port);
        self.child = child;
        self.url = url;
    }

    pub async fn client(&self) -> async_nats::Client {
        async_nats::connect(&self.url)
            .await
            .expect("connect to nats")
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_nats(bin: &Path, store: &Path) -> (Child, String) {
    spawn_nats_on(bin, store, "-1")
}

// The child is handed to `NatsServer`, which kills and waits for it on drop; the lint cannot
// follow it out of this function.
#[expect(clippy::zombie_processes)]
fn spawn_nats_on(bin: &Path, store: &Path, port: &str) -> (Child, String) {
    let ports_dir = store.join("ports");
    let _ = std::fs::remove_dir_all(&ports_dir);
    std::fs::create_dir_all(&ports_dir).expect("ports dir");
    let conf = workspace_root().join("nats/nats-server.conf");
    let mut command = Command::new(bin);
    if is_tally_conf_compatible(bin) {
        command.arg("-c").arg(conf);
    } else {
        command.arg("-js");
    }
    let mut child = command
        .args(["-a", "127.0.0.1", "-p", port, "-m", "0", "-sd"])
        .arg(store.join("js"))
        .arg("--ports_file_dir")
        .arg(&ports_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ports_file = std::fs::read_dir(&ports_dir)
            .ok()
            .and_then(|mut dir| dir.next())
            .and_then(|entry| entry.ok())
            .map(|entry| entry.path());
        if let Some(path) = ports_file
            && let Ok(text) = std::fs::read_to_string(&path)
            && let Ok(ports) = serde_json::from_str::<Value>(&text)
            && let Some(url) = ports["nats"][0].as_str()
        {
            return (child, url.to_owned());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("nats-server did not start");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Debian's old nats-server does not know `sync_interval`; it is only used to prove that
/// Tally refuses it, with plain JetStream flags.
fn is_tally_conf_compatible(bin: &Path) -> bool {
    !bin.starts_with("/usr/sbin")
}

/// A configuration for an in-process command API against `nats_url`.
pub fn config(nats_url: &str) -> Config {
    Config {
        nats_url: nats_url.to_owned(),
        stream: STREAM.to_owned(),
        host: "127.0.0.1".parse().expect("ip"),
        port: 0,
        jwt_secret: Some(SECRET.to_owned()),
        writer_queue_len_max: 10_000,
        state_cache_len_max: 100_000,
        commit_timeout_ms: 5_000,
        conflict_retries_max: 10,
        unknown_outcome_retries_max: 8,
        enqueue_timeout_ms: 1_000,
        answer_timeout_ms: 20_000,
        request_timeout_ms: 25_000,
        request_body_bytes_max: 64 * 1024,
    }
}

pub async fn start_api(nats_url: &str) -> Api {
    Api::start(config(nats_url)).await
}

/// A running command API and a client for it.
pub struct Api {
    pub app: App,
    pub base: String,
    pub http: reqwest::Client,
}

impl Api {
    pub async fn start(config: Config) -> Self {
        let app = command_api::start(config)
            .await
            .expect("command API starts");
        let base = format!("http://{}", app.addr);
        Self {
            app,
            base,
            http: reqwest::Client::new(),
        }
    }

    /// POSTs `body` as JSON with a bearer token and optional extra headers.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.send(path, Some(token), &[], Some(body.to_string()))
            .await
    }

    pub async fn post_with(
        &self,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        raw_body: Option<String>,
    ) -> Answer {
        self.send(path, token, headers, raw_body).await
    }

    async fn send(
        &self,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        raw_body: Option<String>,
    ) -> Answer {
        let mut request = self.http.post(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let has_content_type = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        if !has_content_type {
            request = request.header("content-type", "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = raw_body {
            request = request.body(body);
        }
        let response = request.send().await.expect("request sent");
        Answer::read(response).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request sent");
        Answer::read(response).await
    }
}

/// An HTTP answer, read whole.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem+json answer with this status and code.
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "status of {:?}", self.body);
        assert_eq!(self.body["code"], code, "code of {:?}", self.body);
        assert_eq!(self.body["status"], status);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "content type"
        );
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
