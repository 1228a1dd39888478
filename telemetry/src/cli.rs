//! The command line every binary shares: how it logs and where its traces go, and the defaults
//! a test or benchmark starts a service with in-process.

use crate::trace::{Telemetry, init_tracing};

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
