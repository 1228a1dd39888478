//! Tally under fault injection, in the manner of Jepsen: a bank workload against the real
//! service binaries while a nemesis kills and restarts them, then an audit.
//!
//! - [`processes`]: nats-server (own store directory, restarted on it) or, with `--cluster`,
//!   three nodes in network namespaces holding an R3 journal; a private PostgreSQL cluster
//!   (crashed with `pg_ctl stop -m immediate`); and the command API (two on a cluster),
//!   projector (and a standby on a cluster) and query API as child processes (`kill -9` is
//!   real);
//! - [`workload`]: K accounts funded with a fixed total and C clients transferring between
//!   them, each operation with its own idempotency key, retried until a definite answer;
//! - [`readers`]: every snapshot read while it runs — through the query API and straight from
//!   the journal — conserves the total and shows no balance below zero;
//! - [`nemesis`]: the faults;
//! - [`floors`]: what a run must reach for its audit to mean something (faults of each kind,
//!   acknowledged operations, good reads; no service exiting on its own);
//! - [`audit`]: after quiescing, the histories against the journal (lost, duplicated,
//!   unexpected, gapless versions), the read model against the journal, and
//!   `projector verify`.
//!
//! Data flows: clients → command API → journal → projector → Postgres → query API → readers;
//! the histories, the journal and the read model meet in the audit.

pub mod audit;
pub mod floors;
pub mod nemesis;
pub mod processes;
pub mod readers;
pub mod workload;

use audit::Violations;
use floors::Floors;
use nemesis::{Fault, FaultCounts, Schedule};
use processes::Cluster;
use readers::ReadCounts;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use workload::{Operation, Outcome, Progress, Writer};

/// The journal's stream: each run has its own nats-server, so the default name.
pub(crate) const STREAM: &str = "LEDGER";

/// How long past its duration a run may go on injecting the kinds of fault it has not tried
/// yet (each kind is tried at least once).
const EVERY_KIND_GRACE: Duration = Duration::from_secs(180);

/// How long the projector may take to catch up after the run.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(120);

/// The token secret of the run's services (its own servers, nothing to protect).
const JWT_SECRET: &str = "chaos-run-secret-that-is-long-enough-for-hs256";

/// A bank workload under faults, then an audit; exits non-zero on any violation.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "chaos", version)]
pub struct Config {
    /// The short run of the test suite: 30 s (45 s on a cluster), a fault every 1 to 2.5 s.
    #[arg(long)]
    pub quick: bool,
    /// Run on a three-node NATS cluster (each node in its own network namespace; needs root
    /// and iproute2) with an R3 journal, two command APIs and a standby projector, and inject
    /// node faults: leader and follower kills, leader pauses, partitions, lost disks.
    #[arg(long)]
    pub cluster: bool,
    /// How long clients transfer and faults are injected, in seconds.
    #[arg(long, default_value_t = 300)]
    pub duration_s: u64,
    /// Accounts in the bank.
    #[arg(long, default_value_t = 20)]
    pub accounts: usize,
    /// Concurrent clients, each with one transfer in flight.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Readers of each kind (query API, journal).
    #[arg(long, default_value_t = 2)]
    pub readers: usize,
    /// Opening balance of each account, in minor units.
    #[arg(long, default_value_t = 1_000)]
    pub balance: i64,
    /// Faults to inject, comma-separated: projector, command-api, query-api, postgres, and
    /// nats on a single server, or nats-leader-kill, nats-follower-kill, nats-leader-pause,
    /// partition, disk-loss on a cluster. Default: every kind the topology has.
    #[arg(long, value_delimiter = ',')]
    pub faults: Option<Vec<Fault>>,
    /// The negative control: nats-server without `sync_interval: always` (its default fsync
    /// every two minutes), so that power cuts lose acknowledged writes.
    #[arg(long)]
    pub unsafe_fsync: bool,
    /// With power-cut: a name is durable only once its directory is fsynced (POSIX), not
    /// also by its file's fsync (as ext4 and XFS do; the default).
    #[arg(long)]
    pub posix_names: bool,
    /// Inject no faults at all (a baseline).
    #[arg(long)]
    pub no_faults: bool,
    /// Fewest injections of each enabled fault kind for the run to count (it goes on past
    /// its duration, up to 3 minutes, to reach them). Default: 1 with --quick, else 2.
    #[arg(long)]
    pub faults_min_per_kind: Option<u64>,
    /// Shortest calm between two faults, in milliseconds.
    #[arg(long, default_value_t = 2_000)]
    pub fault_interval_min_ms: u64,
    /// Longest calm between two faults, in milliseconds.
    #[arg(long, default_value_t = 6_000)]
    pub fault_interval_max_ms: u64,
    /// Shortest time a killed component stays down, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub outage_min_ms: u64,
    /// Longest time a killed component stays down, in milliseconds.
    #[arg(long, default_value_t = 2_000)]
    pub outage_max_ms: u64,
    /// Attempts per operation before its outcome is called indeterminate.
    #[arg(long, default_value_t = 30)]
    pub attempts_max: u32,
    /// Where the service binaries are (default: next to this one).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// PostgreSQL's server binaries (initdb, pg_ctl).
    #[arg(long, env = "PG_BIN_DIR", default_value = "/usr/lib/postgresql/15/bin")]
    pub pg_bin_dir: PathBuf,
    /// The services' logs and the server's store live here (emptied first).
    #[arg(long, default_value = "target/chaos")]
    pub log_dir: PathBuf,
}

impl Config {
    fn effective(mut self) -> anyhow::Result<(Self, Vec<Fault>)> {
        if self.quick {
            self.duration_s = if self.cluster { 45 } else { 30 };
            self.fault_interval_min_ms = 1_000;
            self.fault_interval_max_ms = 2_500;
        }
        let faults = match (&self.faults, self.no_faults) {
            (_, true) => Vec::new(),
            (Some(faults), false) => faults.clone(),
            (None, false) => Fault::defaults(self.cluster),
        };
        if let Some(misplaced) = faults
            .iter()
            .find(|f| f.needs_cluster().is_some_and(|c| c != self.cluster))
        {
            anyhow::bail!(
                "fault {misplaced} is for {}",
                if self.cluster {
                    "a single server (without --cluster)"
                } else {
                    "a cluster (--cluster)"
                }
            );
        }
        Ok((self, faults))
    }
}

/// What a run found.
#[derive(Debug, Default)]
pub struct Report {
    pub operations: usize,
    pub ok: usize,
    pub replayed: usize,
    pub failed: BTreeMap<String, usize>,
    pub indeterminate: usize,
    pub indeterminate_applied: usize,
    pub attempts: u64,
    pub query_reads: (u64, u64),
    pub journal_reads: (u64, u64),
    pub faults: FaultCounts,
    pub journal_messages: usize,
    pub violations: Violations,
    /// What the run had to reach, and the fault kinds it had to inject.
    pub floors: Floors,
    pub enabled: Vec<Fault>,
}

/// Runs the workload and the audit; `Ok(report)` whether or not it found violations.
pub async fn run(config: Config) -> anyhow::Result<Report> {
    let (config, faults) = config.effective()?;
    let bin_dir = match &config.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()?
            .parent()
            .map(PathBuf::from)
            .ok_or_else(|| anyhow::anyhow!("no directory for this binary"))?,
    };
    let _ = std::fs::remove_dir_all(&config.log_dir);
    std::fs::create_dir_all(&config.log_dir)?;
    let log_dir = std::fs::canonicalize(&config.log_dir)?;
    let fault_names: Vec<String> = faults.iter().map(ToString::to_string).collect();
    println!(
        "chaos: {}{} s, {} accounts × {}, {} clients, {} + {} readers, faults [{}] every {}–{} ms, \
         logs in {}",
        if config.cluster {
            "three-node cluster (R3, two command APIs, standby projector), "
        } else {
            ""
        },
        config.duration_s,
        config.accounts,
        config.balance,
        config.clients,
        config.readers,
        config.readers,
        fault_names.join(", "),
        config.fault_interval_min_ms,
        config.fault_interval_max_ms,
        log_dir.display()
    );

    let control = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let mut cluster = Cluster::start(
        &bin_dir,
        &config.pg_bin_dir,
        &log_dir,
        JWT_SECRET,
        &control,
        config.cluster,
        processes::SingleStore {
            lazy: faults
                .contains(&Fault::PowerCut)
                .then_some(if config.posix_names {
                    lazyfs::Names::DirectoryFsync
                } else {
                    lazyfs::Names::FileFsyncToo
                }),
            fsync: !config.unsafe_fsync,
        },
    )
    .await?;
    let auth = http_edge::Auth::new(Some(JWT_SECRET))?;
    let ttl_s = config.duration_s + 3_600;
    let mint = |sub: &str, admin: bool| {
        auth.mint(sub, admin, ttl_s)
            .map_err(|e| anyhow::anyhow!("{}", e.detail))
    };
    let (admin_token, owner_token) = (mint(workload::ADMIN, true)?, mint(workload::OWNER, false)?);
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(1))
        .build()?;
    let bases = cluster.command_api_urls();
    let writer = |token: &str, first: usize| Writer {
        http: http.clone(),
        bases: bases.clone(),
        first,
        token: token.to_owned(),
        attempts_max: config.attempts_max,
    };
    let progress = Arc::new(Progress::default());
    workload::open_bank(
        &writer(&admin_token, 0),
        config.accounts,
        config.balance,
        &progress,
    )
    .await?;
    let total = config.balance * config.accounts as i64;

    let nats = ledger_nats::connect(&cluster.nats.url(), "tally-chaos").await?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = tokio::task::JoinSet::new();
    for _ in 0..config.readers {
        readers.spawn(readers::query_reader(
            http.clone(),
            cluster.query_api.base_url(),
            owner_token.clone(),
            config.accounts,
            total,
            progress.clone(),
            stop.clone(),
        ));
        readers.spawn(readers::journal_reader(
            nats.clone(),
            STREAM.to_owned(),
            config.cluster,
            config.accounts,
            total,
            progress.clone(),
            stop.clone(),
        ));
    }
    let started = Instant::now();
    let until = started + Duration::from_secs(config.duration_s);
    let clients_stop = Arc::new(AtomicBool::new(false));
    let mut clients = tokio::task::JoinSet::new();
    for index in 0..config.clients {
        clients.spawn(workload::client(
            index,
            writer(&owner_token, index),
            config.accounts,
            config.balance,
            clients_stop.clone(),
            progress.clone(),
        ));
    }

    let mut report = Report {
        floors: Floors::for_run(
            config.quick,
            config.cluster,
            config.duration_s,
            config.faults_min_per_kind,
        ),
        enabled: faults.clone(),
        ..Report::default()
    };
    let schedule = Schedule {
        faults: faults.clone(),
        interval_ms: (config.fault_interval_min_ms, config.fault_interval_max_ms),
        outage_ms: (config.outage_min_ms, config.outage_max_ms),
        per_kind_min: report.floors.faults_per_kind,
    };
    nemesis::run(
        &mut cluster,
        &schedule,
        until,
        until + EVERY_KIND_GRACE,
        &control,
        &mut report.faults,
    )
    .await?;
    clients_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    println!(
        "faults stopped after {:.0} s; waiting for the clients' last operations",
        started.elapsed().as_secs_f64()
    );
    let mut history: Vec<Operation> = Vec::new();
    loop {
        tokio::select! {
            joined = clients.join_next() => match joined {
                Some(ops) => history.extend(ops?),
                None => break,
            },
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                nemesis::supervise(&mut cluster, &control, &mut report.faults).await?;
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    while let Some(counts) = readers.join_next().await {
        let counts: ReadCounts = counts?;
        let tally = if counts.journal {
            &mut report.journal_reads
        } else {
            &mut report.query_reads
        };
        tally.0 += counts.ok;
        tally.1 += counts.unavailable;
        report.violations.merge(counts.violations);
    }

    // Quiesced: every client finished, no faults. Wait for the projector to catch up.
    // A store that lost its stream (a power cut without fsync) is a finding, not an error.
    let (last_seq, journal) = match ledger_nats::stream::stream_last_seq(&nats, STREAM).await {
        Ok(seq) => (seq, whole_journal(&nats).await?),
        Err(e) => {
            report.violations.add("journal_missing", e.to_string());
            (0, Vec::new())
        }
    };
    let listed = read_model_at(&http, &cluster, &owner_token, config.accounts, last_seq).await?;
    let setup = audit::Setup {
        admin: workload::ADMIN.to_owned(),
        accounts: (0..config.accounts).map(workload::account_id).collect(),
    };
    let facts = audit::audit(&history, &journal, &setup, &mut report.violations);
    let final_total: i64 = facts.accounts.values().map(|(b, _)| b).sum();
    if final_total != total || facts.accounts.len() != config.accounts {
        report.violations.add(
            "total_not_conserved",
            format!(
                "journal ends with {} accounts holding {final_total}, expected {} holding {total}",
                facts.accounts.len(),
                config.accounts
            ),
        );
    }
    if listed != facts.accounts {
        report.violations.add(
            "read_model_differs",
            format!(
                "query API lists {listed:?}, the journal ends at {:?}",
                facts.accounts
            ),
        );
    }
    verify(&bin_dir, &cluster, &mut report.violations)?;
    if let processes::Journal::Replicated(nodes) = &cluster.nats {
        replicas_agree(nodes, &nats, &control, last_seq, &mut report.violations).await;
    }
    for evidence in std::mem::take(&mut report.faults.not_recovered) {
        report.violations.add("cluster_not_recovered", evidence);
    }

    report.journal_messages = facts.messages;
    report.indeterminate_applied = facts.indeterminate_applied;
    report.operations = history.len();
    for op in &history {
        report.attempts += u64::from(op.attempts);
        match &op.outcome {
            Outcome::Ok { replayed, .. } => {
                report.ok += 1;
                report.replayed += usize::from(*replayed);
            }
            Outcome::Failed { code, .. } => *report.failed.entry(code.clone()).or_default() += 1,
            Outcome::Indeterminate { .. } => report.indeterminate += 1,
        }
    }
    // A run that never tried a kind of fault, or hardly moved money, proves nothing.
    let mut missed = Violations::default();
    report.floors.enforce(&faults, &report, &mut missed);
    report.violations.merge(missed);
    Ok(report)
}

/// The read model's balances once it has caught up with `seq`, listed in one request.
async fn read_model_at(
    http: &reqwest::Client,
    cluster: &Cluster,
    token: &str,
    accounts: usize,
    seq: u64,
) -> anyhow::Result<BTreeMap<String, (i64, u64)>> {
    let deadline = Instant::now() + CATCH_UP_TIMEOUT;
    let url = format!(
        "{}/v1/accounts?owner_id={}&limit={accounts}",
        cluster.query_api.base_url(),
        workload::OWNER
    );
    loop {
        let answer = http
            .get(&url)
            .bearer_auth(token)
            .header("ledger-min-seq", seq.to_string())
            .send()
            .await;
        if let Ok(answer) = answer
            && answer.status().is_success()
        {
            let body: serde_json::Value = answer.json().await?;
            let mut listed = BTreeMap::new();
            for item in body["items"].as_array().into_iter().flatten() {
                listed.insert(
                    item["account_id"].as_str().unwrap_or_default().to_owned(),
                    (
                        item["balance"].as_i64().unwrap_or(i64::MIN),
                        item["version"].as_u64().unwrap_or(0),
                    ),
                );
            }
            return Ok(listed);
        }
        if Instant::now() > deadline {
            anyhow::bail!("the projector did not reach seq {seq} within {CATCH_UP_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every message of the journal, in order.
async fn whole_journal(nats: &async_nats::Client) -> anyhow::Result<Vec<ledger_nats::Stored>> {
    let mut all = Vec::new();
    let mut next = 1;
    loop {
        let page = ledger_nats::direct::range(nats, STREAM, next, 1000).await?;
        let Some(last) = page.last() else {
            return Ok(all);
        };
        next = last.seq + 1;
        all.extend(page);
    }
}

/// How long the replicas may take to agree once the run has quiesced.
const REPLICAS_AGREE_TIMEOUT: Duration = Duration::from_secs(60);

/// Every node holds the whole journal: once quiet, each node's own copy of the stream (from
/// its monitoring endpoint) has as many messages and the same last sequence as the stream.
async fn replicas_agree(
    nodes: &harness::NatsCluster,
    nats: &async_nats::Client,
    http: &reqwest::Client,
    last_seq: u64,
    violations: &mut Violations,
) {
    let deadline = Instant::now() + REPLICAS_AGREE_TIMEOUT;
    loop {
        let states = nodes.replica_states(http, STREAM).await;
        let placement = harness::NatsCluster::placement(nats, STREAM).await;
        let agree = states.iter().all(|(_, state)| {
            state.is_some_and(|(messages, last)| last == last_seq && messages == last_seq)
        });
        if agree {
            println!(
                "replicas: every node holds {last_seq} messages ({})",
                states
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return;
        }
        if Instant::now() > deadline {
            violations.add(
                "replicas_diverge",
                format!(
                    "after {REPLICAS_AGREE_TIMEOUT:?} the nodes hold (messages, last seq) \
                     {states:?}; the stream ends at {last_seq}; placement {placement:?}"
                ),
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Runs `projector verify` (the binary, as an operator would) against the run's servers.
fn verify(
    bin_dir: &std::path::Path,
    cluster: &Cluster,
    violations: &mut Violations,
) -> anyhow::Result<()> {
    let out = std::process::Command::new(bin_dir.join("projector"))
        .arg("verify")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .envs(cluster.projector_env())
        .env("LOG_FORMAT", "text")
        .env("RUST_LOG", "warn")
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        violations.add(
            "verify_failed",
            format!(
                "projector verify exited {}: {}{}",
                out.status,
                stdout,
                String::from_utf8_lossy(&out.stderr)
            ),
        );
    }
    println!("{}", stdout.trim_end());
    Ok(())
}

impl Report {
    /// Prints the figures and every violation kind with its first pieces of evidence.
    pub fn print(&self) {
        let failed: usize = self.failed.values().sum();
        let reasons: Vec<String> = self
            .failed
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        println!(
            "operations: {} (ok {} [{} replayed], failed-definite {} [{}], indeterminate {} \
             [{} applied]); {} attempts",
            self.operations,
            self.ok,
            self.replayed,
            failed,
            reasons.join(", "),
            self.indeterminate,
            self.indeterminate_applied,
            self.attempts
        );
        println!(
            "reads: query API {} ok, {} unavailable; journal {} ok, {} unavailable; \
             the journal holds {} messages",
            self.query_reads.0,
            self.query_reads.1,
            self.journal_reads.0,
            self.journal_reads.1,
            self.journal_messages
        );
        let kinds: Vec<String> = self
            .faults
            .injected
            .iter()
            .map(|(f, n)| format!("{f} {n}"))
            .collect();
        let exits: Vec<String> = self
            .faults
            .unplanned_exits
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        let node_faults = if self.faults.on_leader + self.faults.on_follower > 0 {
            format!(
                "; node faults on the leader {}, on a follower {}, leader moved {} times",
                self.faults.on_leader, self.faults.on_follower, self.faults.leader_changes
            )
        } else {
            String::new()
        };
        println!(
            "faults: {} ({}){node_faults}; services that exited on their own: {}; kills that \
             killed nothing: {}",
            self.faults.total(),
            kinds.join(", "),
            if exits.is_empty() {
                "none".to_owned()
            } else {
                exits.join(", ")
            },
            self.faults.kill_failed.len()
        );
        println!("{}", self.floors.describe(&self.enabled, self));
        let by_kind: Vec<String> = self
            .violations
            .0
            .iter()
            .map(|(k, v)| format!("{k} {}", v.len()))
            .collect();
        println!(
            "violations: {}{}",
            self.violations.total(),
            if by_kind.is_empty() {
                String::new()
            } else {
                format!(" ({})", by_kind.join(", "))
            }
        );
        for (kind, evidence) in &self.violations.0 {
            for line in evidence.iter().take(5) {
                println!("  {kind}: {line}");
            }
            if evidence.len() > 5 {
                println!("  {kind}: … and {} more", evidence.len() - 5);
            }
        }
    }
}
