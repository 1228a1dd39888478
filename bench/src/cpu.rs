//! CPU time per unit of work, by process: what a figure costs, whatever the machine's load.
//!
//! Wall-clock rates on this shared two-core machine move by ±25 % with whatever else runs;
//! the CPU time each process spends per transfer (or per item, per event) moves much less,
//! and it answers the question a missed target raises: could two idle cores reach it with
//! this code at all? `cores ÷ CPU seconds per unit` is the rate the ledger's own processes
//! could sustain if they had the cores to themselves and overlapped perfectly — an upper
//! bound, not a forecast.
//!
//! Read from `/proc` (Linux only; elsewhere the figures are simply not reported) at the start
//! and end of a measured phase and every [`SAMPLE_PERIOD`] in between: this process (the three
//! services, in-process), the load generator's process (`bench load`, the same binary), the
//! nats-servers it started (every node of a cluster; not other programs' servers on the
//! machine), and PostgreSQL — its background processes and the backends of the scenario's own
//! database, not those of other databases on the same server. Each process counts what it
//! used between the first and the last time it was seen: processes that come and go within
//! the phase (a rebuild's `COPY` connections, a nats-server killed and started again, the load
//! generator) count too, less at most one period before each exit. The readings themselves (a
//! few dozen `/proc` files per period) count in this process.

use crate::report::Report;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// The processes a phase's CPU time is split into, in report order.
const GROUPS: [&str; 4] = ["services", "load generator", "nats-server", "postgres"];

/// How often a phase's processes are read between its start and end.
const SAMPLE_PERIOD: Duration = Duration::from_millis(100);

/// Each process's CPU time (clock ticks) at one instant, and the whole machine's busy and
/// total ticks (from `/proc/stat`), so that what other programs used shows too.
#[derive(Debug, Default, Clone)]
struct Snapshot {
    procs: BTreeMap<u32, (&'static str, u64)>,
    machine_busy: u64,
    machine_total: u64,
}

/// What each process used while it was seen: its group, its ticks when first seen (0 for a
/// process that began after the phase did) and when last seen; and the ticks of processes
/// whose id was taken over by a newer one.
#[derive(Debug, Default)]
struct Seen {
    procs: BTreeMap<u32, (&'static str, u64, u64)>,
    gone: BTreeMap<&'static str, u64>,
}

impl Seen {
    /// Starts from the phase's first snapshot.
    fn from_start(start: &Snapshot) -> Self {
        let procs = start
            .procs
            .iter()
            .map(|(&pid, &(group, ticks))| (pid, (group, ticks, ticks)))
            .collect();
        Self {
            procs,
            gone: BTreeMap::new(),
        }
    }

    /// Adds a later snapshot: new processes count from 0, known ones up to their ticks now.
    fn add(&mut self, snapshot: &Snapshot) {
        for (&pid, &(group, ticks)) in &snapshot.procs {
            let entry = self.procs.entry(pid).or_insert((group, 0, 0));
            if entry.0 != group || ticks < entry.2 {
                // Another process under a recycled id: keep what the old one used.
                *self.gone.entry(entry.0).or_default() += entry.2 - entry.1;
                *entry = (group, 0, ticks);
            } else {
                entry.2 = ticks;
            }
        }
    }

    /// Ticks `group` used over the phase.
    fn used(&self, group: &str) -> u64 {
        let seen: u64 = self
            .procs
            .values()
            .filter(|(g, ..)| *g == group)
            .map(|(_, first, last)| last - first)
            .sum();
        seen + self.gone.get(group).copied().unwrap_or(0)
    }
}

/// A phase being measured: [`Meter::start`] before it, [`Meter::report`] after. A thread
/// reads the processes every [`SAMPLE_PERIOD`] until the meter is dropped.
#[derive(Debug)]
pub struct Meter {
    database: String,
    start: Option<Snapshot>,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
}

impl Meter {
    /// Starts measuring; `database_url` names the scenario's database, whose backends count.
    pub fn start(database_url: &str) -> Self {
        let database = database_url
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .split('?')
            .next()
            .unwrap_or_default()
            .to_owned();
        let start = snapshot(&database);
        let seen = Arc::new(Mutex::new(
            start.as_ref().map(Seen::from_start).unwrap_or_default(),
        ));
        let stop = Arc::new(AtomicBool::new(false));
        if start.is_some() {
            let (seen, stop, database) = (seen.clone(), stop.clone(), database.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(SAMPLE_PERIOD);
                    if let Some(now) = snapshot(&database) {
                        lock(&seen).add(&now);
                    }
                }
            });
        }
        Self {
            database,
            start,
            seen,
            stop,
        }
    }

    /// What each group used since [`Meter::start`], as of now, and the machine's busy and
    /// total ticks now (`None` where `/proc` cannot be read).
    fn used_now(&self) -> Option<(BTreeMap<&'static str, u64>, Snapshot)> {
        self.start.as_ref()?;
        let end = snapshot(&self.database)?;
        let mut seen = lock(&self.seen);
        seen.add(&end);
        let used = GROUPS.iter().map(|&g| (g, seen.used(g))).collect();
        Some((used, end))
    }

    /// CPU seconds the run's nats-servers used since [`Meter::start`] (0 where `/proc` cannot
    /// be read).
    pub fn nats_seconds(&self) -> f64 {
        self.used_now().map_or(0.0, |(used, _)| {
            used["nats-server"] as f64 / clock_ticks_per_s()
        })
    }

    /// Adds to `report`, under `scenario`, the CPU time per unit (`units` of `unit`, e.g.
    /// 40,000 transfers) of each group since [`Meter::start`], their sum, the rate two idle
    /// cores would bound the services, nats-server and Postgres to (the load generator
    /// excluded: a user's load does not run on the ledger's cores), and the share of the
    /// machine's CPU that other programs and idleness took meanwhile.
    pub fn report(&self, report: &mut Report, scenario: &str, units: f64, unit: &str) {
        let (Some(start), Some((used, end))) = (self.start.as_ref(), self.used_now()) else {
            return;
        };
        if units <= 0.0 {
            return;
        }
        let tick_s = 1.0 / clock_ticks_per_s();
        let mut ledger_s = 0.0;
        for group in GROUPS {
            let seconds = used[group] as f64 * tick_s;
            if group != "load generator" {
                ledger_s += seconds;
            }
            report.add(
                scenario,
                &format!("CPU per {unit}: {group}"),
                seconds / units * 1e6,
                "µs",
            );
        }
        report.add(
            scenario,
            &format!("CPU per {unit}: ledger (without load)"),
            ledger_s / units * 1e6,
            "µs",
        );
        let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
        report.add(
            scenario,
            &format!("bound on {cores} idle cores"),
            cores * units / ledger_s.max(f64::MIN_POSITIVE),
            &format!("{unit}s/s"),
        );
        let machine = end.machine_total.saturating_sub(start.machine_total) as f64;
        if machine > 0.0 {
            let busy = end.machine_busy.saturating_sub(start.machine_busy) as f64;
            let ours: f64 = used.values().map(|&t| t as f64).sum();
            report.add(
                scenario,
                "machine CPU: other programs",
                ((busy - ours).max(0.0) / machine) * 100.0,
                "%",
            );
            report.add(
                scenario,
                "machine CPU: idle",
                ((machine - busy) / machine) * 100.0,
                "%",
            );
        }
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The sampler's record, whether or not a sampler panicked while holding it.
fn lock(seen: &Mutex<Seen>) -> MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Clock ticks per second of `/proc`'s CPU times: the kernel reports them in `USER_HZ`,
/// which Linux fixes at 100 on every architecture it exports to user space (`sysconf
/// (_SC_CLK_TCK)` answers the same, but would need `unsafe` for a constant).
fn clock_ticks_per_s() -> f64 {
    100.0
}

/// The CPU time of every process in one of the groups; `None` where `/proc` cannot be read.
fn snapshot(database: &str) -> Option<Snapshot> {
    let me = std::process::id();
    let my_name = proc_stat(me)?.name;
    let mut snapshot = Snapshot::default();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Some(stat) = proc_stat(pid) else {
            continue;
        };
        let group = if pid == me {
            "services"
        } else if stat.name == my_name {
            "load generator"
        } else if stat.name == "nats-server" && stat.parent == me {
            // This run's own servers only: not other programs' on the same machine.
            "nats-server"
        } else if stat.name.starts_with("postgres") && postgres_of(pid, database) {
            "postgres"
        } else {
            continue;
        };
        snapshot.procs.insert(pid, (group, stat.ticks));
    }
    let (busy, total) = machine_ticks()?;
    snapshot.machine_busy = busy;
    snapshot.machine_total = total;
    Some(snapshot)
}

/// What `/proc/<pid>/stat` says of a process: its name, parent, and user + system CPU time in
/// clock ticks (all its threads).
struct ProcStat {
    name: String,
    parent: u32,
    ticks: u64,
}

/// Reads `/proc/<pid>/stat`. The name is in parentheses and may hold spaces, so the fields
/// are counted from its closing parenthesis: state (field 3), parent (4) … utime (14),
/// stime (15).
fn proc_stat(pid: u32) -> Option<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    Some(ProcStat {
        name: head.split_once('(')?.1.to_owned(),
        parent: u32::try_from(field(1)?).ok()?,
        ticks: field(11)? + field(12)?,
    })
}

/// Whether a `postgres` process works for the scenario: a backend of its `database`, or one
/// of the server's own processes (WAL writer, checkpointer, autovacuum), which serve every
/// database. A backend's title is `postgres: <user> <database> <client> <state>`.
fn postgres_of(pid: u32, database: &str) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let title = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    let backend = title.contains('(') || title.contains("[local]");
    !backend || title.split_whitespace().any(|word| word == database)
}

/// The machine's busy and total CPU ticks (all cores) from `/proc/stat`'s `cpu` line.
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is within user).
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3)? + values.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_found_with_its_cpu_time() {
        let stat = proc_stat(std::process::id()).expect("/proc/self/stat");
        assert!(!stat.name.is_empty());
        let snapshot = snapshot("no-such-database").expect("a snapshot");
        assert!(snapshot.machine_total >= snapshot.machine_busy);
        assert!(
            snapshot
                .procs
                .get(&std::process::id())
                .is_some_and(|(group, _)| *group == "services")
        );
    }

    fn at(procs: &[(u32, &'static str, u64)]) -> Snapshot {
        Snapshot {
            procs: procs.iter().map(|&(pid, g, t)| (pid, (g, t))).collect(),
            ..Snapshot::default()
        }
    }

    #[test]
    fn processes_that_come_and_go_within_the_phase_count_what_they_used_while_seen() {
        let mut seen = Seen::from_start(&at(&[(1, "services", 500), (2, "postgres", 70)]));
        // A rebuild's connection appears, works and is gone by the end; a backend that was
        // there from the start exits; another process takes over its id.
        seen.add(&at(&[
            (1, "services", 520),
            (2, "postgres", 90),
            (3, "postgres", 40),
        ]));
        seen.add(&at(&[(1, "services", 540), (3, "postgres", 100)]));
        seen.add(&at(&[(1, "services", 560), (2, "postgres", 5)]));
        assert_eq!(seen.used("services"), 60);
        // 20 of the first process under id 2, 100 of id 3, 5 of the second under id 2.
        assert_eq!(seen.used("postgres"), 125);
        assert_eq!(seen.used("nats-server"), 0);
    }

    #[test]
    fn busy_work_shows_as_cpu_per_unit_and_a_bound() {
        let meter = Meter::start("postgres://x@127.0.0.1/some_db");
        let ticks = || {
            proc_stat(std::process::id())
                .expect("/proc/self/stat")
                .ticks
        };
        let (before, per_s) = (ticks(), clock_ticks_per_s());
        // Spin until this process has used 300 ms of CPU, however busy the machine is.
        let mut x = 0u64;
        while ((ticks() - before) as f64) < 0.3 * per_s {
            for _ in 0..100_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
        }
        std::hint::black_box(x);
        let mut report = Report::default();
        meter.report(&mut report, "spin", 1000.0, "item");
        let services = report
            .get("spin", "CPU per item: services")
            .expect("reported");
        // At least 300 ms over 1000 items (other tests' threads may add to it).
        assert!(services >= 300.0, "{services} µs");
        let ledger = report
            .get("spin", "CPU per item: ledger (without load)")
            .expect("reported");
        assert!(ledger >= services);
        let bound = report.get("spin", "bound on 2 idle cores").or_else(|| {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            report.get("spin", &format!("bound on {cores} idle cores"))
        });
        assert!(bound.is_some_and(|b| b > 0.0 && b.is_finite()), "{bound:?}");
    }
}
