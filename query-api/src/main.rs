use clap::Parser;
use http_edge::telemetry::{init_tracing, shutdown_signal};
use query_api::Config;

/// Tally's query API: balances, history, accounts and jobs.
#[derive(Debug, Parser)]
#[command(name = "query-api", version)]
struct Cli {
    #[command(flatten)]
    config: Config,
    /// Log format: json (default) or text.
    #[arg(long, env = "LOG_FORMAT", default_value = "json")]
    log_format: String,
    /// OTLP/gRPC endpoint traces are exported to (none: no export).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let telemetry = init_tracing(&cli.log_format, "query-api", cli.otlp_endpoint.as_deref());
    let result = query_api::run(cli.config, shutdown_signal()).await;
    telemetry.shutdown();
    result
}
