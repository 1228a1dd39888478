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
//! - `settled`: once the run has quiesced, the projector caught up, the whole journal read,
//!   `projector verify` run and every replica compared;
//! - [`audit`]: after quiescing, the histories against the journal (lost, duplicated,
//!   unexpected, gapless versions), the read model against the journal, and
//!   `projector verify`.
//!
//! Data flows: clients → command API → journal → projector → Postgres → query API → readers;
//! the histories, the journal and the read model meet in the audit.

pub mod audit;
mod config;
pub mod floors;
pub mod nemesis;
pub mod processes;
pub mod readers;
mod report;
mod settled;
pub mod workload;

pub use config::Config;
pub use report::Report;

use audit::Violations;
use floors::Floors;
use nemesis::Schedule;
use processes::Cluster;
use readers::ReadCounts;
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

/// The token secret of the run's services (its own servers, nothing to protect).
const JWT_SECRET: &str = "chaos-run-secret-that-is-long-enough-for-hs256";

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
        processes::StoreOptions {
            lazy: faults
                .iter()
                .any(|f| f.cuts_power())
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
        Ok(seq) => (seq, settled::whole_journal(&nats).await?),
        Err(e) => {
            report.violations.add("journal_missing", e.to_string());
            (0, Vec::new())
        }
    };
    let listed =
        settled::read_model_at(&http, &cluster, &owner_token, config.accounts, last_seq).await?;
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
    settled::verify(&bin_dir, &cluster, &mut report.violations)?;
    if let processes::Journal::Replicated(nodes) = &cluster.nats {
        settled::replicas_agree(nodes, &nats, &control, last_seq, &mut report.violations).await;
    }
    for evidence in std::mem::take(&mut report.faults.not_recovered) {
        report.violations.add("cluster_not_recovered", evidence);
    }

    report.power_cuts = cluster
        .disks
        .iter()
        .flat_map(|disk| disk.cuts.iter().cloned())
        .collect();
    report.journal_messages = facts.messages;
    report.stream_checked_batches = facts.stream_checked_batches;
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
