//! The command line every binary shares: its shape ([`ServiceCli`]: a subcommand, the
//! service's configuration, how it logs and where its traces go), running a service with its
//! telemetry set up and flushed ([`TelemetryArgs::serve`]), and the defaults a test or benchmark
//! starts a service with in-process.

use crate::trace::{Telemetry, init_tracing};
use clap::{CommandFactory, FromArgMatches};

/// A service binary's command line: a subcommand `S` (none given: serve), the service's
/// configuration `C`, and the telemetry flags.
#[derive(Debug, clap::Parser)]
pub struct ServiceCli<C: clap::Args, S: clap::Subcommand = Serve> {
    #[command(subcommand)]
    pub command: Option<S>,
    #[command(flatten)]
    pub config: C,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

/// The subcommands of a binary that only serves.
#[derive(Debug, Clone, Copy, clap::Subcommand)]
pub enum Serve {
    /// Serve (the default).
    Serve,
}

impl<C: clap::Args, S: clap::Subcommand> ServiceCli<C, S> {
    /// The process's arguments, read as binary `name` whose `--help` opens with `about`; exits
    /// with clap's message (and `--help`/`--version`) as every command line does.
    pub fn parse_for(name: &'static str, about: &'static str) -> Self {
        let matches = Self::command()
            .name(name)
            .bin_name(name)
            .about(about)
            .version(env!("CARGO_PKG_VERSION"))
            .get_matches();
        Self::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

/// `--log-format` and `--otlp-endpoint`, flattened into each binary's command line.
#[derive(Debug, Clone, clap::Args)]
pub struct TelemetryArgs {
    /// Log format: json (default) or text.
    #[arg(long, env = "LOG_FORMAT", default_value = "json", global = true)]
    pub log_format: String,
    /// OTLP/gRPC endpoint traces are exported to (none: no export).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", global = true)]
    pub otlp_endpoint: Option<String>,
}

impl TelemetryArgs {
    /// Sets up logs and traces for `service`; see [`init_tracing`].
    pub fn init(&self, service: &'static str) -> Telemetry {
        init_tracing(&self.log_format, service, self.otlp_endpoint.as_deref())
    }

    /// Runs `work` (a service's `run`) as `service` with logs and traces set up, and flushes
    /// the traces once it ends, however it ends.
    pub async fn serve<T>(&self, service: &'static str, work: impl Future<Output = T>) -> T {
        let telemetry = self.init(service);
        let result = work.await;
        telemetry.shutdown();
        result
    }
}

/// A service's configuration `C` as tests and benchmarks start it in-process: listening on
/// `127.0.0.1:0` (any free port, loopback only), every other setting at its default (or its
/// environment variable) except `args` (flag, value, flag, value, …) — the same defaults its
/// binary has.
///
/// # Panics
/// When `args` do not parse — a mistake in the caller's code, not in its input.
pub fn local_defaults<C: clap::Args>(binary: &str, args: &[&str]) -> C {
    #[derive(clap::Parser)]
    struct Defaults<C: clap::Args> {
        #[command(flatten)]
        config: C,
    }
    let listen = ["--host", "127.0.0.1", "--port", "0"];
    let argv = std::iter::once(binary)
        .chain(listen)
        .chain(args.iter().copied());
    match <Defaults<C> as clap::Parser>::try_parse_from(argv) {
        Ok(defaults) => defaults.config,
        Err(e) => panic!("{binary} defaults do not parse: {e}"),
    }
}
