//! `--perf-record DIR`: a system-wide `perf record` around a scenario's measured phase only
//! (the rebuild, the transfer load), not around the set-up before it. `scripts/flamegraph`
//! turns the recording into a flame graph; without the flag nothing here runs.
//!
//! System-wide because the path under load spans processes: the services (threads named
//! `tally`), the load generator (`load-gen`), nats-server and Postgres.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// Where recordings go (`--perf-record`), set once at start-up; none: nothing is recorded.
static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Records the scenarios' measured phases into `dir` from now on (none: not at all).
pub fn record_into(dir: Option<PathBuf>) {
    let _ = DIR.set(dir);
}

/// Samples per second per CPU: ~12,000 samples over a 20 s phase on two cores, enough for
/// functions at 0.5 % to show, and with 8 KiB stack copies a recording of ~100 MB.
const SAMPLES_PER_S: &str = "297";

/// Bytes of each sampled thread's stack copied for unwinding: Rust release builds have no
/// frame pointers, so stacks are unwound from DWARF call-frame information after the run.
const STACK_COPY_BYTES: &str = "8192";

/// A `perf record` in progress, stopped (and its data file completed) by [`Recording::stop`].
#[derive(Debug)]
pub struct Recording {
    perf: Option<(Child, PathBuf)>,
}

impl Recording {
    /// Starts recording the phase `name` into `<dir>/<name>.perf.data` (spaces and
    /// punctuation as `-`) if [`record_into`] was given a directory; otherwise does nothing.
    pub fn start(name: &str) -> anyhow::Result<Self> {
        let Some(dir) = DIR.get().and_then(Option::as_ref) else {
            return Ok(Self { perf: None });
        };
        std::fs::create_dir_all(dir)?;
        let file_name: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let file = dir.join(format!("{file_name}.perf.data"));
        let perf = Command::new("perf")
            .args([
                "record",
                "--all-cpus",
                "-F",
                SAMPLES_PER_S,
                "-e",
                "cpu-clock",
            ])
            .args(["--call-graph", &format!("dwarf,{STACK_COPY_BYTES}")])
            .arg("-o")
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("starting perf record: {e}"))?;
        Ok(Self {
            perf: Some((perf, file)),
        })
    }

    /// Stops the recording (SIGINT, as perf expects, so that it writes its file out whole).
    pub fn stop(self) -> anyhow::Result<()> {
        let Some((mut perf, file)) = self.perf else {
            return Ok(());
        };
        Command::new("kill")
            .args(["-INT", &perf.id().to_string()])
            .status()?;
        let status = perf.wait()?;
        eprintln!("bench: perf record wrote {} ({status})", file.display());
        Ok(())
    }
}
