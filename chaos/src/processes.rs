//! The system under test as real OS processes, so that a crash is a real `SIGKILL`: a
//! nats-server on its own store directory (or a three-node cluster, each node in its own
//! network namespace), a private PostgreSQL cluster, and the service binaries — in cluster
//! mode two command APIs and two projectors (one active, one standby) — each restartable on
//! the same port with the same configuration.

use anyhow::{Context, bail};
use harness::{NatsCluster, NatsServer, Network};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a restarted process may take to answer again. Generous: a projector or command API
/// restarted while NATS or Postgres is itself down keeps retrying until they are back.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A PostgreSQL cluster of its own, which may be crashed (`pg_ctl stop -m immediate`: no
/// shutdown checkpoint, recovery from the WAL at the next start) without disturbing anyone
/// else's server.
#[derive(Debug)]
pub struct Postgres {
    root: tempfile::TempDir,
    bin_dir: PathBuf,
    pub port: u16,
    /// `initdb` and `postgres` refuse to run as root: run them as the `postgres` user then.
    as_postgres: bool,
}

impl Postgres {
    pub fn start(bin_dir: &Path) -> anyhow::Result<Self> {
        let root = tempfile::Builder::new()
            .prefix("tally-chaos-pg")
            .tempdir()?;
        let as_postgres = is_root();
        if as_postgres {
            run(Command::new("chown").arg("postgres").arg(root.path()))
                .context("chown the cluster directory to postgres")?;
        }
        let pg = Self {
            root,
            bin_dir: bin_dir.to_owned(),
            port: harness::free_port()?,
            as_postgres,
        };
        run(pg.command("initdb").arg("-D").arg(pg.data_dir()).args([
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
        ]))
        .context("initdb")?;
        pg.resume()?;
        Ok(pg)
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let program = self.bin_dir.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    /// Starts the server and waits until it accepts connections (`pg_ctl -w`).
    pub fn resume(&self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on",
            self.port,
            self.root.path().display()
        );
        run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-w", "-t", "60", "-l"])
            .arg(self.root.path().join("postgres.log"))
            .args(["-o", &options, "start"]))
        .context("pg_ctl start")
    }

    /// Crashes the server: every process stops at once, as at a power cut for what is not
    /// yet fsynced (which with `fsync=on` is nothing that was acknowledged).
    pub fn crash(&self) -> anyhow::Result<()> {
        run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "stop"]))
        .context("pg_ctl stop -m immediate")
    }

    pub fn is_running(&self) -> bool {
        self.command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .arg("status")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let out = command.stdin(Stdio::null()).output()?;
    if !out.status.success() {
        bail!(
            "{:?} failed ({}): {}{}",
            command,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// One of Tally's service binaries, run as a child process on a fixed port and restartable.
#[derive(Debug)]
pub struct Service {
    pub name: &'static str,
    /// Which instance of its kind (0, 1, …): names its log file.
    pub instance: usize,
    bin: PathBuf,
    env: Vec<(String, String)>,
    pub port: u16,
    log: PathBuf,
    child: Option<Child>,
    /// How many times it was started (the first start included): restarts name log files.
    starts: u32,
}

impl Service {
    pub fn new(
        name: &'static str,
        instance: usize,
        bin_dir: &Path,
        log_dir: &Path,
        port: u16,
        env: Vec<(String, String)>,
    ) -> Self {
        let log = if instance == 0 {
            log_dir.join(format!("{name}.log"))
        } else {
            log_dir.join(format!("{name}-{}.log", instance + 1))
        };
        Self {
            name,
            instance,
            bin: bin_dir.join(name),
            env,
            port,
            log,
            child: None,
            starts: 0,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One more variable of its environment, for its next start.
    pub fn set_env(&mut self, name: &str, value: String) {
        self.env.push((name.to_owned(), value));
    }

    /// Starts the binary (appending to its log file); does not wait for it.
    pub fn spawn(&mut self) -> anyhow::Result<()> {
        self.starts += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut command = Command::new(&self.bin);
        // Nothing from the caller's environment decides where the services connect.
        for inherited in [
            "NATS_URL",
            "DATABASE_URL",
            "LEDGER_STREAM",
            "READ_MODEL_SCHEMA",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ] {
            command.env_remove(inherited);
        }
        let child = command
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("LOG_FORMAT", "text")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", self.bin.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// `kill -9`: no graceful shutdown, no flush, no goodbye. Fails when it killed nothing:
    /// the service was not running or had exited on its own (then it is a finding, not a
    /// fault injected).
    pub fn kill(&mut self) -> Result<(), String> {
        let mut child = self
            .child
            .take()
            .ok_or_else(|| format!("{} is not running", self.name))?;
        harness::kill_child(&mut child).map_err(|e| format!("{}: {e}", self.name))
    }

    /// `kill -TERM` — the graceful way — and waits up to `within` for the process to exit.
    pub async fn terminate(
        &mut self,
        within: Duration,
    ) -> anyhow::Result<std::process::ExitStatus> {
        let mut child = self
            .child
            .take()
            .ok_or_else(|| anyhow::anyhow!("{} is not running", self.name))?;
        let signalled = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
        anyhow::ensure!(signalled.success(), "kill -TERM {} failed", self.name);
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                anyhow::bail!("{} did not exit within {within:?} of SIGTERM", self.name);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// True when the process ended without being killed by us (it crashed or gave up).
    pub fn exited(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(Some(_))),
            None => false,
        }
    }

    /// Waits until `/readyz` answers 200 (its NATS and Postgres are reachable), restarting
    /// the process if it exits meanwhile.
    pub async fn wait_ready(&mut self, http: &reqwest::Client) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = format!("{}/readyz", self.base_url());
        loop {
            if let Ok(answer) = http.get(&url).send().await
                && answer.status().is_success()
            {
                return Ok(());
            }
            if self.exited() {
                self.spawn()?;
            }
            if Instant::now() > deadline {
                bail!(
                    "{} not ready within {READY_TIMEOUT:?} (see {})",
                    self.name,
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // At the end of a run: a service already gone needs no kill.
        let _ = self.kill();
    }
}

/// The journal's servers: one nats-server, or a three-node cluster.
#[derive(Debug)]
pub enum Journal {
    Single(NatsServer),
    Replicated(NatsCluster),
}

impl Journal {
    /// The operator's URL (every node of a cluster).
    pub fn url(&self) -> String {
        match self {
            Journal::Single(server) => server.url.clone(),
            Journal::Replicated(cluster) => cluster.url(),
        }
    }

    /// Copies of the journal the stream keeps.
    pub fn replicas(&self) -> usize {
        match self {
            Journal::Single(_) => 1,
            Journal::Replicated(_) => harness::cluster::NODES,
        }
    }
}

/// Where the NATS servers keep the journal.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// On a lazy filesystem (for power cuts; on a cluster one per node), with this rule for
    /// when names are durable.
    pub lazy: Option<lazyfs::Names>,
    /// `sync_interval: always` (Tally's configuration); `false`: the server's default.
    pub fsync: bool,
}

/// A server's store on the `lazyfs` binary's mount, which a power cut remounts.
#[derive(Debug)]
pub struct LazyDisk {
    bin: PathBuf,
    backing: PathBuf,
    pub mountpoint: PathBuf,
    names: lazyfs::Names,
    mounted: Option<lazyfs::Process>,
    /// What each power cut rolled back, as the filesystem said it.
    pub cuts: Vec<String>,
}

impl LazyDisk {
    /// Mounts `dir/<name>` over `dir/<name>.backing`.
    fn mount(bin: PathBuf, dir: &Path, name: &str, names: lazyfs::Names) -> anyhow::Result<Self> {
        let (backing, mountpoint) = (dir.join(format!("{name}.backing")), dir.join(name));
        std::fs::create_dir_all(&backing)?;
        std::fs::create_dir_all(&mountpoint)?;
        let mut disk = Self {
            bin,
            backing,
            mountpoint,
            names,
            mounted: None,
            cuts: Vec::new(),
        };
        disk.remount()?;
        Ok(disk)
    }

    fn remount(&mut self) -> anyhow::Result<()> {
        self.mounted = Some(
            lazyfs::Process::spawn(&self.bin, &self.backing, &self.mountpoint, self.names)
                .with_context(|| format!("mounting lazyfs at {}", self.mountpoint.display()))?,
        );
        Ok(())
    }

    /// Loses what the server did not fsync, and mounts what survived again.
    pub fn power_cut(&mut self) -> anyhow::Result<()> {
        let mounted = self.mounted.take().context("lazy disk not mounted")?;
        self.cuts.push(mounted.power_cut().context("power cut")?);
        self.remount()
    }
}

/// Everything that runs: the servers and the services.
#[derive(Debug)]
pub struct Cluster {
    pub nats: Journal,
    pub postgres: Postgres,
    /// One instance on a single server; two on a cluster, both taking writes.
    pub command_apis: Vec<Service>,
    /// One on a single server; on a cluster an active one and a hot standby.
    pub projectors: Vec<Service>,
    pub query_api: Service,
    /// The servers' lazy stores, when power cuts are injected: the single server's, or one
    /// per node in node order (dropped last: unmounted once the servers are gone).
    pub disks: Vec<LazyDisk>,
}

impl Cluster {
    /// Starts the servers, then the services in the order their dependencies allow: the
    /// command API creates the stream, the projector creates the read-model schema, the query
    /// API reads it. `replicated`: a three-node NATS cluster in network namespaces (R3), two
    /// command APIs and a standby projector.
    pub async fn start(
        bin_dir: &Path,
        pg_bin_dir: &Path,
        log_dir: &Path,
        jwt_secret: &str,
        http: &reqwest::Client,
        replicated: bool,
        store: StoreOptions,
    ) -> anyhow::Result<Self> {
        let names: &[&str] = if replicated {
            &["nats-store-n1", "nats-store-n2", "nats-store-n3"]
        } else {
            &["nats-store"]
        };
        let mut disks = Vec::new();
        if let Some(rule) = store.lazy {
            for name in names {
                disks.push(LazyDisk::mount(
                    bin_dir.join("lazyfs"),
                    log_dir,
                    name,
                    rule,
                )?);
            }
        }
        let nats = if replicated {
            let stores = harness::Stores {
                dirs: match disks.as_slice() {
                    [n1, n2, n3] => Some([
                        n1.mountpoint.clone(),
                        n2.mountpoint.clone(),
                        n3.mountpoint.clone(),
                    ]),
                    _ => None,
                },
                unsafe_fsync: !store.fsync,
            };
            Journal::Replicated(
                NatsCluster::start_with(Network::Namespaces, log_dir, stores)
                    .map_err(|e| anyhow::anyhow!("starting the NATS cluster: {e}"))?,
            )
        } else {
            match disks.first() {
                Some(disk) => Journal::Single(NatsServer::start_on(&disk.mountpoint, store.fsync)),
                None if store.fsync => Journal::Single(NatsServer::start()),
                None => Journal::Single(NatsServer::start_without_fsync()),
            }
        };
        let postgres = Postgres::start(pg_bin_dir)?;
        let instances = if replicated { 2 } else { 1 };
        let nats_url = nats.url();
        let replicas = nats.replicas().to_string();
        let db = postgres.url();
        let mut command_apis = Vec::new();
        let mut projectors = Vec::new();
        // A service on a free port of 127.0.0.1, told so by its own HOST and PORT variables.
        let service = |name, instance, host_var, port_var, mut pairs: Vec<(&str, String)>| {
            let port = harness::free_port()?;
            pairs.push((host_var, "127.0.0.1".to_owned()));
            pairs.push((port_var, port.to_string()));
            let env = pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            anyhow::Ok(Service::new(name, instance, bin_dir, log_dir, port, env))
        };
        for instance in 0..instances {
            let mut command_api = service(
                "command-api",
                instance,
                "COMMAND_API_HOST",
                "COMMAND_API_PORT",
                vec![
                    ("NATS_URL", nats_url.clone()),
                    ("DATABASE_URL", db.clone()),
                    ("LEDGER_REPLICAS", replicas.clone()),
                    ("LEDGER_JWT_SECRET", jwt_secret.to_owned()),
                ],
            )?;
            if instances > 1 {
                // The instances elect one writer and forward their writes to it (ADR 0028).
                command_api.set_env("COMMAND_API_ADVERTISE_URL", command_api.base_url());
            }
            command_apis.push(command_api);
            projectors.push(service(
                "projector",
                instance,
                "PROJECTOR_HOST",
                "PROJECTOR_PORT",
                vec![("NATS_URL", nats_url.clone()), ("DATABASE_URL", db.clone())],
            )?);
        }
        let mut query_api = service(
            "query-api",
            0,
            "QUERY_API_HOST",
            "QUERY_API_PORT",
            vec![
                ("DATABASE_URL", db.clone()),
                ("LEDGER_JWT_SECRET", jwt_secret.to_owned()),
            ],
        )?;
        for service in command_apis.iter_mut().chain(projectors.iter_mut()) {
            service.spawn()?;
            service.wait_ready(http).await?;
        }
        query_api.spawn()?;
        query_api.wait_ready(http).await?;
        Ok(Self {
            nats,
            postgres,
            command_apis,
            projectors,
            query_api,
            disks,
        })
    }

    /// Every command API's base URL: clients spread over them and fail over between them.
    pub fn command_api_urls(&self) -> Vec<String> {
        self.command_apis.iter().map(Service::base_url).collect()
    }

    /// The services' environment for a one-off run of a binary (`projector verify`).
    pub fn projector_env(&self) -> Vec<(String, String)> {
        self.projectors[0].env.clone()
    }

    /// Every service, for supervision.
    pub fn services(&mut self) -> impl Iterator<Item = &mut Service> {
        self.command_apis
            .iter_mut()
            .chain(self.projectors.iter_mut())
            .chain(std::iter::once(&mut self.query_api))
    }
}

/// The projector's role as its `/readyz` reports it (`active`, `standby`, …).
pub async fn projector_role(http: &reqwest::Client, projector: &Service) -> Option<String> {
    let answer = http
        .get(format!("{}/readyz", projector.base_url()))
        .send()
        .await
        .ok()?;
    let body: serde_json::Value = answer.json().await.ok()?;
    body["role"].as_str().map(str::to_owned)
}
