//! Where the cores went during a measured step, from Linux's `/proc`: the machine's busy time,
//! and the shares of this process (the services), PostgreSQL, nats-server and everything
//! else. On two shared cores a slow step is often someone else's busy moment; this says so
//! instead of leaving it to guesswork.

use std::collections::HashMap;
use std::fs;

/// Clock ticks per second in `/proc` times: `USER_HZ`, 100 on every Linux architecture this
/// runs on (the kernel fixes it for user space whatever its internal tick).
const TICKS_PER_S: f64 = 100.0;

/// Busy CPU time so far, in seconds.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// All cores, every process (`/proc/stat`: everything but idle and I/O wait).
    pub machine: f64,
    /// This process.
    pub own: f64,
    /// Each process named `postgres` (the server's backends, autovacuum, checkpointer …) or
    /// `nats-server`, by pid: a process that exits between two samples is left out of the
    /// difference (its time lands in everything else) rather than counted as negative.
    servers: HashMap<u32, (Server, f64)>,
}

/// The servers told apart from everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Postgres,
    Nats,
}

impl Sample {
    /// Now; `None` where `/proc` cannot be read (not Linux).
    pub fn take() -> Option<Self> {
        let mut sample = Self {
            machine: machine_busy()?,
            own: own_seconds()?,
            ..Self::default()
        };
        for entry in fs::read_dir("/proc").ok()?.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            // A process may exit between listing and reading: it is skipped.
            let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let server = match command_name(&stat) {
                Some("postgres") => Server::Postgres,
                Some("nats-server") => Server::Nats,
                _ => continue,
            };
            if let Some(seconds) = process_seconds(&stat) {
                sample.servers.insert(pid, (server, seconds));
            }
        }
        Some(sample)
    }

    /// CPU seconds the `server` processes alive at `self` spent since `earlier` (all of it
    /// for one started since).
    pub fn server_since(&self, earlier: &Self, server: Server) -> f64 {
        self.servers
            .iter()
            .filter(|(_, (kind, _))| *kind == server)
            .map(|(pid, (_, seconds))| {
                seconds - earlier.servers.get(pid).map_or(0.0, |(_, before)| *before)
            })
            .sum()
    }
}

/// This process's CPU time (user + system), seconds.
pub fn own_seconds() -> Option<f64> {
    process_seconds(&fs::read_to_string("/proc/self/stat").ok()?)
}

/// The machine's busy time over all cores, seconds.
fn machine_busy() -> Option<f64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<f64> = cpu
        .split_whitespace()
        .map(|t| t.parse().unwrap_or(0.0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let busy: f64 = ticks.iter().take(8).sum::<f64>() - ticks.get(3)? - ticks.get(4)?;
    Some(busy / TICKS_PER_S)
}

/// `comm` from a `/proc/<pid>/stat` line: between the first `(` and the last `)`.
fn command_name(stat: &str) -> Option<&str> {
    Some(&stat[stat.find('(')? + 1..stat.rfind(')')?])
}

/// utime + stime from a `/proc/<pid>/stat` line (fields 14 and 15, counted after `comm`,
/// which may itself hold spaces).
fn process_seconds(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state).
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user + system) / TICKS_PER_S)
}

#[cfg(test)]
mod tests {
    use super::{command_name, process_seconds};

    #[test]
    fn a_stat_line_gives_its_command_and_cpu_time() {
        let stat = "4242 (nats server) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 9 0";
        assert_eq!(command_name(stat), Some("nats server"));
        assert_eq!(process_seconds(stat), Some(3.0));
    }
}
