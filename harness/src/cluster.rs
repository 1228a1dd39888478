//! A three-node JetStream cluster of real nats-server processes, each node on its own store,
//! configured by `nats/cluster/node.conf` — the file `scripts/run --cluster` uses.
//!
//! Two networks:
//! - [`Network::Loopback`]: every node on 127.0.0.1 with its own ports (tests, benchmarks);
//! - [`Network::Namespaces`]: every node in its own network namespace, joined to a bridge in
//!   this namespace by a veth pair, so that [`NatsCluster::cut`] takes a node's link down and
//!   cuts its traffic for real — to the other nodes and to every client (chaos). Needs root
//!   and iproute2.
//!
//! A node can be killed (`SIGKILL`), paused (`SIGSTOP`) and resumed, started again on its
//! store, or started on an empty store (a lost disk). [`Stores`] puts the nodes' stores where
//! a caller wants them (on a filesystem that loses unsynced writes, for power cuts) and can
//! drop `sync_interval: always` (the negative control).

use crate::{NATS_USERS, nats_server_bin, with_user, workspace_root};
use ledger_nats::stream::Placement;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The nodes of the cluster: three is the smallest Raft group that survives the loss of one.
pub const NODES: usize = 3;

/// How long a node may take to answer its health check after a start. A node restarted after
/// a fault first catches up on what the others journaled meanwhile; CI once saw one still
/// unhealthy after 30 s (why was not recorded then; the error now carries the node's answer).
/// A minute matches the chaos audit's own bound for a cluster to be whole again.
const NODE_READY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    Loopback,
    Namespaces,
}

/// How the nodes keep their journals.
#[derive(Debug, Clone, Default)]
pub struct Stores {
    /// Each node's store directory, in node order (e.g. the mounts of a filesystem that loses
    /// unsynced writes at a power cut); `None`: directories of a temporary folder.
    pub dirs: Option<[PathBuf; NODES]>,
    /// `false`: Tally's configuration less `sync_interval: always` (the server's default,
    /// fsync every two minutes) — the negative control of power-cut runs, never for money.
    pub unsafe_fsync: bool,
}

#[derive(Debug)]
struct Node {
    name: String,
    /// The address the node listens on (clients, routes, monitoring).
    host: String,
    client_port: u16,
    cluster_port: u16,
    monitor_port: u16,
    store: PathBuf,
    log: PathBuf,
    /// The network namespace it runs in and the bridge-side end of its veth pair.
    netns: Option<(String, String)>,
    child: Option<Child>,
}

/// Three nats-server processes forming one JetStream cluster; everything is killed and the
/// namespaces removed on drop.
#[derive(Debug)]
pub struct NatsCluster {
    /// The cluster's name, its temporary folder's: unique among the clusters alive on this
    /// host, so nodes of two test clusters never route to each other.
    name: String,
    nodes: Vec<Node>,
    bin: PathBuf,
    conf: PathBuf,
    /// The bridge joining the namespaces (namespaced network only).
    bridge: Option<String>,
    _root: tempfile::TempDir,
}

impl NatsCluster {
    /// Starts three nodes and waits until each answers its health check (JetStream up, the
    /// meta leader known). `log_dir` receives each node's log (`n1.log`, …).
    pub fn start(network: Network, log_dir: &Path) -> Result<Self, String> {
        Self::start_with(network, log_dir, Stores::default())
    }

    /// [`start`](Self::start) with the nodes' stores where `stores` says, and durable or not.
    pub fn start_with(network: Network, log_dir: &Path, stores: Stores) -> Result<Self, String> {
        let root = tempfile::Builder::new()
            .prefix("tally-nats-cluster")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let (nodes, bridge) = match network {
            Network::Loopback => (loopback_nodes(root.path(), log_dir)?, None),
            Network::Namespaces => {
                let (nodes, bridge) = namespaced_nodes(root.path(), log_dir)?;
                (nodes, Some(bridge))
            }
        };
        let mut nodes = nodes;
        if let Some(dirs) = stores.dirs {
            for (node, dir) in nodes.iter_mut().zip(dirs) {
                node.store = dir;
            }
        }
        let conf = if stores.unsafe_fsync {
            default_sync_node_conf(root.path())?
        } else {
            workspace_root().join("nats/cluster/node.conf")
        };
        let name = root
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or("the cluster's folder has no name")?;
        let mut cluster = Self {
            name,
            nodes,
            bin: nats_server_bin(),
            conf,
            bridge,
            _root: root,
        };
        for index in 0..NODES {
            cluster.spawn(index)?;
        }
        for index in 0..NODES {
            cluster.wait_node_ready(index)?;
        }
        Ok(cluster)
    }

    /// The node names, in order (`n1`, `n2`, `n3`).
    pub fn names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// Every node's client address, comma-separated, with no user.
    pub fn addresses(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("nats://{}:{}", n.host, n.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The operator's URL listing every node (what tests and their clients use).
    pub fn url(&self) -> String {
        self.url_as("operator")
    }

    /// A URL listing every node, for one of the configuration's users.
    pub fn url_as(&self, user: &str) -> String {
        let password = NATS_USERS
            .iter()
            .find(|(name, ..)| *name == user)
            .map_or("", |(.., password)| *password);
        self.nodes
            .iter()
            .map(|n| {
                with_user(
                    &format!("nats://{}:{}", n.host, n.client_port),
                    user,
                    password,
                )
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// One node's client URL as the operator (to talk to that node only).
    pub fn node_url(&self, index: usize) -> String {
        let node = &self.nodes[index];
        with_user(
            &format!("nats://{}:{}", node.host, node.client_port),
            "operator",
            NATS_USERS[2].2,
        )
    }

    /// One node's monitoring base URL (`/healthz`, `/jsz`).
    pub fn monitor_url(&self, index: usize) -> String {
        let node = &self.nodes[index];
        format!("http://{}:{}", node.host, node.monitor_port)
    }

    pub fn log_path(&self, index: usize) -> &Path {
        &self.nodes[index].log
    }

    pub fn is_running(&self, index: usize) -> bool {
        self.nodes[index].child.is_some()
    }

    /// True when the node's process ended without being killed through this value.
    pub fn exited(&mut self, index: usize) -> bool {
        let node = &mut self.nodes[index];
        match node.child.as_mut().map(Child::try_wait) {
            Some(Ok(Some(_))) => {
                node.child = None;
                true
            }
            _ => false,
        }
    }

    /// `kill -9` of one node; it stays down until [`start_node`](Self::start_node). Fails
    /// when the node was not running or was not ended by this kill (it had exited on its
    /// own).
    pub fn kill(&mut self, index: usize) -> Result<(), String> {
        let node = &mut self.nodes[index];
        let mut child = node
            .child
            .take()
            .ok_or_else(|| format!("{} is not running", node.name))?;
        crate::kill_child(&mut child).map_err(|e| format!("{}: {e}", node.name))
    }

    /// Starts a node again on its store (it catches up from its peers) and waits for it.
    pub fn start_node(&mut self, index: usize) -> Result<(), String> {
        self.start_nodes(&[index])
    }

    /// Starts the nodes again on their stores, all before waiting for any: a node is healthy
    /// only once a quorum runs, so after a whole-cluster outage they must come up together.
    pub fn start_nodes(&mut self, indices: &[usize]) -> Result<(), String> {
        for &index in indices {
            if self.nodes[index].child.is_none() {
                self.spawn(index)?;
            }
        }
        for &index in indices {
            self.wait_node_ready(index)?;
        }
        Ok(())
    }

    /// Deletes a stopped node's store: its disk is lost. Started again, it rejoins empty and
    /// must catch up from the other two.
    pub fn wipe_store(&mut self, index: usize) -> Result<(), String> {
        let node = &self.nodes[index];
        if node.child.is_some() {
            return Err(format!(
                "{} is running: stop it before wiping its store",
                node.name
            ));
        }
        match std::fs::remove_dir_all(&node.store) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("wiping {}: {e}", node.store.display())),
        }
    }

    /// `SIGSTOP`: the process is frozen (no heartbeats, no answers) but keeps its sockets.
    pub fn pause(&self, index: usize) -> Result<(), String> {
        self.signal(index, "-STOP")
    }

    /// `SIGCONT` after [`pause`](Self::pause).
    pub fn resume(&self, index: usize) -> Result<(), String> {
        self.signal(index, "-CONT")
    }

    /// Takes the node's link down: no packet reaches it or leaves it, for the other nodes
    /// and for every client. Namespaced network only.
    pub fn cut(&self, index: usize) -> Result<(), String> {
        self.set_link(index, "down")
    }

    /// Brings the node's link back up after [`cut`](Self::cut).
    pub fn heal(&self, index: usize) -> Result<(), String> {
        self.set_link(index, "up")
    }

    /// The stream's leader and replicas as the cluster reports them, through `client`.
    pub async fn placement(
        client: &async_nats::Client,
        stream: &str,
    ) -> Result<Placement, ledger_nats::StreamError> {
        ledger_nats::stream::placement(client, stream).await
    }

    /// Each running node's own view of `stream` from its monitoring endpoint: (node name,
    /// messages, last sequence). A replica that missed writes shows fewer.
    pub async fn replica_states(
        &self,
        http: &reqwest::Client,
        stream: &str,
    ) -> Vec<(String, Option<(u64, u64)>)> {
        let mut states = Vec::new();
        for (index, node) in self.nodes.iter().enumerate() {
            let url = format!(
                "{}/jsz?streams=true&raft=false&config=false",
                self.monitor_url(index)
            );
            let state = async {
                let body: serde_json::Value =
                    http.get(&url).send().await.ok()?.json().await.ok()?;
                body["account_details"]
                    .as_array()?
                    .iter()
                    .flat_map(|a| a["stream_detail"].as_array().into_iter().flatten())
                    .find(|s| s["name"] == stream)
                    .map(|s| {
                        (
                            s["state"]["messages"].as_u64().unwrap_or(0),
                            s["state"]["last_seq"].as_u64().unwrap_or(0),
                        )
                    })
            }
            .await;
            states.push((node.name.clone(), state));
        }
        states
    }

    fn signal(&self, index: usize, signal: &str) -> Result<(), String> {
        let node = &self.nodes[index];
        let pid = node
            .child
            .as_ref()
            .map(Child::id)
            .ok_or_else(|| format!("{} is not running", node.name))?;
        run(Command::new("kill").args([signal, &pid.to_string()]))
    }

    fn set_link(&self, index: usize, state: &str) -> Result<(), String> {
        let node = &self.nodes[index];
        let (_, link) = node
            .netns
            .as_ref()
            .ok_or("cutting a node needs the namespaced network")?;
        run(Command::new("ip").args(["link", "set", link, state]))
    }

    fn spawn(&mut self, index: usize) -> Result<(), String> {
        let routes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("nats-route://{}:{}", n.host, n.cluster_port))
            .collect();
        let node = &mut self.nodes[index];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .map_err(|e| format!("{}: {e}", node.log.display()))?;
        let mut command = match &node.netns {
            Some((netns, _)) => {
                // `ip netns exec` execs the server in place: the child's pid is the server's.
                let mut command = Command::new("ip");
                command.args(["netns", "exec", netns]).arg(&self.bin);
                command
            }
            None => Command::new(&self.bin),
        };
        for (_, variable, password) in NATS_USERS {
            command.env(variable, password);
        }
        command
            .env("TALLY_NATS_CLUSTER", &self.name)
            .env("TALLY_NATS_NODE", &node.name)
            .env("TALLY_NATS_HOST", &node.host)
            .env("TALLY_NATS_CLIENT_PORT", node.client_port.to_string())
            .env("TALLY_NATS_MONITOR_PORT", node.monitor_port.to_string())
            .env(
                "TALLY_NATS_CLUSTER_LISTEN",
                format!("{}:{}", node.host, node.cluster_port),
            );
        for (i, route) in routes.iter().enumerate() {
            command.env(format!("TALLY_NATS_ROUTE_{}", i + 1), route);
        }
        let log_err = log.try_clone().map_err(|e| e.to_string())?;
        let child = command
            .arg("-c")
            .arg(&self.conf)
            .arg("-sd")
            .arg(&node.store)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.bin.display()))?;
        node.child = Some(child);
        Ok(())
    }

    /// Waits until the node's `/healthz` answers 200 (JetStream enabled and current). Fails as
    /// soon as any started node exits — a node of a first start that is gone leaves the others
    /// without a meta leader for good — and every error carries the tail of the node's log:
    /// the folder it names is often a test's temporary one, gone once the test has failed.
    fn wait_node_ready(&mut self, index: usize) -> Result<(), String> {
        let url = format!("{}/healthz", self.monitor_url(index));
        let waited = self.nodes[index].name.clone();
        let deadline = Instant::now() + NODE_READY_TIMEOUT;
        loop {
            let last = match health(&url) {
                Ok(()) => return Ok(()),
                Err(answer) => answer,
            };
            for node in &mut self.nodes {
                if let Some(child) = node.child.as_mut()
                    && let Ok(Some(status)) = child.try_wait()
                {
                    node.child = None;
                    return Err(format!(
                        "{} exited ({status}) while {} was starting; the end of its log ({}):\n{}",
                        node.name,
                        waited,
                        node.log.display(),
                        log_tail(&node.log)
                    ));
                }
            }
            if Instant::now() > deadline {
                let node = &self.nodes[index];
                return Err(format!(
                    "{} not healthy within {NODE_READY_TIMEOUT:?} (its last answer: {last}); the end of its log ({}):\n{}",
                    node.name,
                    node.log.display(),
                    log_tail(&node.log)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The last lines of a node's log, for an error that must explain itself.
fn log_tail(path: &Path) -> String {
    const LINES: usize = 25;
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(LINES)..].join("\n")
        }
        Err(e) => format!("(unreadable: {e})"),
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                // SIGKILL ends a paused (SIGSTOPped) process too.
                let _ = child.kill();
                let _ = child.wait();
            }
            if let Some((netns, _)) = &node.netns {
                let _ = Command::new("ip").args(["netns", "del", netns]).status();
            }
        }
        if let Some(bridge) = &self.bridge {
            let _ = Command::new("ip").args(["link", "del", bridge]).status();
        }
    }
}

/// `node.conf` beside a copy of `nats-server.conf` less `sync_interval: always`, written into
/// `dir` (the include's relative path is kept: `cluster/node.conf` → `../nats-server.conf`).
fn default_sync_node_conf(dir: &Path) -> Result<PathBuf, String> {
    let nats = workspace_root().join("nats");
    let read = |path: PathBuf| {
        std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
    };
    let relaxed: String = read(nats.join("nats-server.conf"))?
        .lines()
        .filter(|line| !line.trim_start().starts_with("sync_interval"))
        .map(|line| format!("{line}\n"))
        .collect();
    let cluster_dir = dir.join("conf/cluster");
    std::fs::create_dir_all(&cluster_dir).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("conf/nats-server.conf"), relaxed).map_err(|e| e.to_string())?;
    let node = cluster_dir.join("node.conf");
    std::fs::write(&node, read(nats.join("cluster/node.conf"))?).map_err(|e| e.to_string())?;
    Ok(node)
}

fn loopback_nodes(root: &Path, log_dir: &Path) -> Result<Vec<Node>, String> {
    (1..=NODES)
        .map(|k| {
            Ok(Node {
                name: format!("n{k}"),
                host: "127.0.0.1".into(),
                client_port: free_port()?,
                cluster_port: free_port()?,
                monitor_port: free_port()?,
                store: root.join(format!("n{k}")),
                log: log_dir.join(format!("n{k}.log")),
                netns: None,
                child: None,
            })
        })
        .collect()
}

/// A bridge `tb<id>` at 10.213.<id>.1/24 in this namespace, and per node a namespace
/// `tally<id>n<k>` whose `eth0` (10.213.<id>.1<k>) is the far end of a veth pair enslaved to
/// the bridge. Every node listens on the same ports inside its own namespace.
fn namespaced_nodes(root: &Path, log_dir: &Path) -> Result<(Vec<Node>, String), String> {
    let id = free_subnet_id()?;
    let bridge = format!("tb{id}");
    let subnet = format!("10.213.{id}");
    let setup = |args: &[&str]| run(Command::new("ip").args(args));
    setup(&["link", "add", &bridge, "type", "bridge"])?;
    setup(&["addr", "add", &format!("{subnet}.1/24"), "dev", &bridge])?;
    setup(&["link", "set", &bridge, "up"])?;
    let mut nodes = Vec::new();
    for k in 1..=NODES {
        let netns = format!("tally{id}n{k}");
        let link = format!("tv{id}n{k}");
        let host = format!("{subnet}.1{k}");
        setup(&["netns", "add", &netns])?;
        setup(&[
            "link", "add", &link, "type", "veth", "peer", "name", "eth0", "netns", &netns,
        ])?;
        setup(&["link", "set", &link, "master", &bridge])?;
        setup(&["link", "set", &link, "up"])?;
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &netns, "ip"];
            all.extend_from_slice(args);
            setup(&all)
        };
        inside(&["addr", "add", &format!("{host}/24"), "dev", "eth0"])?;
        inside(&["link", "set", "eth0", "up"])?;
        inside(&["link", "set", "lo", "up"])?;
        nodes.push(Node {
            name: format!("n{k}"),
            host,
            client_port: 4222,
            cluster_port: 6222,
            monitor_port: 8222,
            store: root.join(format!("n{k}")),
            log: log_dir.join(format!("n{k}.log")),
            netns: Some((netns, link)),
            child: None,
        });
    }
    Ok((nodes, bridge))
}

/// A subnet id in 20..=250 whose bridge does not exist yet (another run may hold one).
fn free_subnet_id() -> Result<u8, String> {
    let start = (std::process::id() % 231) as u8;
    let link_exists = |name: &str| {
        Command::new("ip")
            .args(["link", "show", name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|status| status.success())
            .map_err(|e| format!("iproute2 (ip) is needed for namespaced nodes: {e}"))
    };
    for offset in 0..231u8 {
        let id = 20 + (start.wrapping_add(offset) % 231);
        // Every name the cluster would take: a run that died without its clean-up can leave
        // a veth or a namespace behind without the bridge (a chaos run here met "File exists"
        // on a veth of an id whose bridge was free).
        let mut taken = link_exists(&format!("tb{id}"))?;
        for k in 1..=NODES {
            taken = taken
                || link_exists(&format!("tv{id}n{k}"))?
                || Path::new(&format!("/run/netns/tally{id}n{k}")).exists();
        }
        if !taken {
            return Ok(id);
        }
    }
    Err("no free 10.213.x.0/24 subnet for the cluster's bridge".into())
}

fn free_port() -> Result<u16, String> {
    crate::free_port().map_err(|e| e.to_string())
}

/// Asks a node's `/healthz`; `Err` holds why it is not healthy (the server's own answer, e.g.
/// which stream is not current, or why nothing answered).
fn health(url: &str) -> Result<(), String> {
    // A blocking probe without an async runtime: curl is on every machine Tally runs on.
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "1", "-w", "\n%{http_code}", url])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("curl: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let (body, code) = text.trim().rsplit_once('\n').unwrap_or(("", text.trim()));
    match code {
        "200" => Ok(()),
        "000" => Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
        _ => Err(format!("{code} {body}")),
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{command:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
