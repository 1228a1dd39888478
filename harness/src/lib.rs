//! Real servers for tests: a nats-server per test (random port, temporary store, Tally's
//! durable configuration), a fresh Postgres database per test, and an HTTP client that reads
//! whole answers, and every kind of credential an authorization test sends. Nothing is mocked.

pub mod cluster;
pub mod credentials;
pub mod http;

pub use cluster::{NatsCluster, Network, Stores};

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// The users `nats/nats-server.conf` defines, the variables their passwords come from, and
/// the passwords the servers tests start are given.
const NATS_USERS: [(&str, &str, &str); 3] = [
    (
        "command-api",
        "TALLY_NATS_COMMAND_API_PASSWORD",
        "test-command-api-pw",
    ),
    (
        "projector",
        "TALLY_NATS_PROJECTOR_PASSWORD",
        "test-projector-pw",
    ),
    (
        "operator",
        "TALLY_NATS_OPERATOR_PASSWORD",
        "test-operator-pw",
    ),
];

/// A nats-server on a random port with its own store, killed on drop.
#[derive(Debug)]
pub struct NatsServer {
    child: Child,
    /// The operator's URL (every permission): what tests and their services use unless a
    /// test is about permissions (then [`NatsServer::url_as`]).
    pub url: String,
    /// `nats://127.0.0.1:<port>`, no user.
    pub address: String,
    store: tempfile::TempDir,
    /// The JetStream store (`-sd`): `store/js`, or a directory given by the caller.
    js_dir: PathBuf,
    bin: PathBuf,
    conf: PathBuf,
}

impl NatsServer {
    /// Tally's configuration (`nats/nats-server.conf`: durable) on a random port.
    pub fn start() -> Self {
        Self::start_with(nats_server_bin())
    }

    pub fn start_with(bin: PathBuf) -> Self {
        let store = tempfile::tempdir().expect("temp dir");
        let conf = workspace_root().join("nats/nats-server.conf");
        let js_dir = store.path().join("js");
        Self::spawn(bin, store, js_dir, conf)
    }

    fn spawn(bin: PathBuf, store: tempfile::TempDir, js_dir: PathBuf, conf: PathBuf) -> Self {
        let (child, address) = spawn_nats_on(&bin, store.path(), &js_dir, "-1", &conf);
        Self {
            child,
            url: operator_url(&bin, &address),
            address,
            store,
            js_dir,
            bin,
            conf,
        }
    }

    /// The JetStream store directory (what the journal occupies on disk).
    pub fn store_dir(&self) -> &Path {
        &self.js_dir
    }

    /// Tally's configuration with the JetStream store in `js_dir` (e.g. on a filesystem the
    /// caller mounted there); `fsync: false` as [`NatsServer::start_without_fsync`].
    pub fn start_on(js_dir: &Path, fsync: bool) -> Self {
        let store = tempfile::tempdir().expect("temp dir");
        let conf = if fsync {
            workspace_root().join("nats/nats-server.conf")
        } else {
            default_sync_conf(store.path())
        };
        Self::spawn(nats_server_bin(), store, js_dir.to_owned(), conf)
    }

    /// Tally's configuration less `sync_interval: always` (the server's default, fsync every
    /// two minutes): for measuring what durability costs, never for keeping money.
    pub fn start_without_fsync() -> Self {
        let store = tempfile::tempdir().expect("temp dir");
        let conf = default_sync_conf(store.path());
        let js_dir = store.path().join("js");
        Self::spawn(nats_server_bin(), store, js_dir, conf)
    }

    /// Kills the server (SIGKILL) and leaves it down until [`restart`](Self::restart). Fails
    /// when the server was not killed by this call: it had exited on its own, or the signal
    /// or the wait failed (a fault that did not happen must not be counted as one).
    pub fn kill(&mut self) -> Result<(), String> {
        kill_child(&mut self.child).map_err(|e| format!("nats-server: {e}"))
    }

    /// True when the server's process has ended (killed through this value or on its own).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Kills the server (SIGKILL) and starts it again on the same store and port.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let port = self.address.rsplit(':').next().expect("port").to_owned();
        let (child, address) = spawn_nats_on(
            &self.bin,
            self.store.path(),
            &self.js_dir,
            &port,
            &self.conf,
        );
        self.child = child;
        self.url = operator_url(&self.bin, &address);
        self.address = address;
    }

    /// The URL for one of the configuration's users (`command-api`, `projector`,
    /// `operator`), with its password.
    pub fn url_as(&self, user: &str) -> String {
        let password = NATS_USERS
            .iter()
            .find(|(name, ..)| *name == user)
            .map_or("", |(.., password)| *password);
        with_user(&self.address, user, password)
    }

    pub async fn client(&self) -> async_nats::Client {
        // Any server version: some tests talk to servers Tally itself refuses.
        let (addresses, options) =
            ledger_nats::server::authenticated(&self.url).expect("server URL");
        options.connect(addresses).await.expect("connect to nats")
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Tally's configuration less `sync_interval: always`, written into `dir`.
fn default_sync_conf(dir: &Path) -> PathBuf {
    let durable = std::fs::read_to_string(workspace_root().join("nats/nats-server.conf"))
        .expect("nats-server.conf");
    let relaxed: String = durable
        .lines()
        .filter(|line| !line.trim_start().starts_with("sync_interval"))
        .map(|line| format!("{line}\n"))
        .collect();
    let conf = dir.join("nats-server-default-sync.conf");
    std::fs::write(&conf, relaxed).expect("write conf");
    conf
}

/// The ports [`free_port`] draws from: below Linux's ephemeral range (32768–60999 by
/// default), from which the kernel picks the source ports of outgoing connections.
const FIXED_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A port nothing listens on right now, for a server that keeps its port across restarts (a
/// cluster's routes name it; clients keep one address across a crash).
///
/// Drawn below the ephemeral range rather than from the kernel's `bind(:0)`: once a server on
/// an ephemeral port is killed, any outgoing connection may take that port as its source port,
/// and the restart then cannot bind it. Tests running side by side saw cluster nodes exit with
/// status 1 at start and at restart, this the likely cause.
///
/// A port is handed out once per process: two harnesses of one test binary (tests run side by
/// side) never draw the same port, and none takes the port of a node that is down until its
/// restart (free to bind, yet taken). Before this, nine ports per cluster drawn by several
/// cluster tests at once collided often enough for CI to see a fresh cluster without its meta
/// leader: a node whose port was taken exits, and a first start needs all three nodes.
/// Processes that draw side by side (a chaos run beside a test binary) can still collide.
pub fn free_port() -> std::io::Result<u16> {
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for _ in 0..100 {
        let port = rand::random_range(FIXED_PORTS);
        if !handed_out.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.insert(port);
            return Ok(port);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!("no free port in {FIXED_PORTS:?}"),
    ))
}

/// `kill -9` of a child process, and its reaping. `Ok` only when the wait reports the child
/// ended by that SIGKILL: a child that had already exited (it died on its own), or a signal
/// or wait that failed, is an error — a fault injector must not count a kill that did not
/// happen.
pub fn kill_child(child: &mut Child) -> Result<(), String> {
    use std::os::unix::process::ExitStatusExt;
    let pid = child.id();
    if let Some(status) = child
        .try_wait()
        .map_err(|e| format!("pid {pid}: wait: {e}"))?
    {
        return Err(format!("pid {pid} had already exited ({status})"));
    }
    child
        .kill()
        .map_err(|e| format!("pid {pid}: SIGKILL: {e}"))?;
    let status = child.wait().map_err(|e| format!("pid {pid}: wait: {e}"))?;
    match status.signal() {
        Some(9) => Ok(()),
        _ => Err(format!(
            "pid {pid} ended by itself ({status}), not by the SIGKILL"
        )),
    }
}

// The child is handed to `NatsServer`, which kills and waits for it on drop; the lint cannot
// follow it out of this function.
#[expect(clippy::zombie_processes)]
fn spawn_nats_on(
    bin: &Path,
    store: &Path,
    js_dir: &Path,
    port: &str,
    conf: &Path,
) -> (Child, String) {
    let ports_dir = store.join("ports");
    let _ = std::fs::remove_dir_all(&ports_dir);
    std::fs::create_dir_all(&ports_dir).expect("ports dir");
    let mut command = Command::new(bin);
    if is_tally_conf_compatible(bin) {
        command.arg("-c").arg(conf);
    } else {
        command.arg("-js");
    }
    for (_, variable, password) in NATS_USERS {
        command.env(variable, password);
    }
    let mut child = command
        .args(["-a", "127.0.0.1", "-p", port, "-m", "0", "-sd"])
        .arg(js_dir)
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

/// The operator's URL on a server started with Tally's configuration (Debian's old server
/// runs without it, and without users).
fn operator_url(bin: &Path, address: &str) -> String {
    if is_tally_conf_compatible(bin) {
        with_user(address, "operator", NATS_USERS[2].2)
    } else {
        address.to_owned()
    }
}

fn with_user(address: &str, user: &str, password: &str) -> String {
    address.replacen("nats://", &format!("nats://{user}:{password}@"), 1)
}

/// Debian's old nats-server does not know `sync_interval`; it is only used to prove that
/// Tally refuses it, with plain JetStream flags.
fn is_tally_conf_compatible(bin: &Path) -> bool {
    !bin.starts_with("/usr/sbin")
}

/// The Postgres server tests create their databases on: `DATABASE_URL` (as `scripts/test`
/// sets it), else the local server.
pub fn postgres_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh database, dropped when the value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    pub url: String,
    name: String,
    admin_url: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        Self::create_with("").await
    }

    /// A fresh database created with `options` after its name in `CREATE DATABASE` (a
    /// template, a locale): dropped when the value is, whether the test passed or not.
    pub async fn create_with(options: &str) -> Self {
        use sqlx::Connection;
        let admin_url = postgres_url();
        let name = format!("tally_test_{}", uuid::Uuid::now_v7().simple());
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("connect to PostgreSQL (set DATABASE_URL)");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE {name} {options}"
        )))
        .execute(&mut conn)
        .await
        .expect("create test database");
        let url = match admin_url.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("DATABASE_URL must name a database"),
        };
        Self {
            url,
            name,
            admin_url,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs outside async context: a short-lived runtime on its own thread.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}

#[cfg(test)]
mod tests {
    use super::{free_port, kill_child};
    use std::collections::BTreeSet;
    use std::process::Command;

    #[test]
    fn a_port_is_handed_out_once_per_process() {
        // 600 draws from 12,000 ports: drawn at random alone, two would almost surely match
        // (the chance that none does is about e^-15).
        let mut seen = BTreeSet::new();
        for _ in 0..600 {
            let port = free_port().expect("a free port");
            assert!(seen.insert(port), "port {port} handed out twice");
        }
    }

    #[test]
    fn killing_a_running_child_succeeds() {
        let mut child = Command::new("sleep").arg("30").spawn().expect("sleep");
        assert_eq!(kill_child(&mut child), Ok(()));
    }

    #[test]
    fn killing_a_child_that_already_exited_is_an_error() {
        let mut child = Command::new("true").spawn().expect("true");
        while child.try_wait().expect("try_wait").is_none() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let error = kill_child(&mut child).expect_err("nothing was killed");
        assert!(error.contains("already exited"), "{error}");
        // Reaped already: a second kill fails too, not silently succeeds.
        assert!(kill_child(&mut child).is_err());
    }
}
