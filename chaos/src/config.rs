//! The chaos run's command line, and what a quick run or a topology makes of it.

use crate::nemesis::Fault;
use std::path::PathBuf;

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
    pub(crate) fn effective(mut self) -> anyhow::Result<(Self, Vec<Fault>)> {
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
