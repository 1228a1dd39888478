use clap::Parser;
use query_api::Config;
use telemetry::shutdown_signal;

/// Tally's query API: balances, history, accounts and jobs.
#[derive(Debug, Parser)]
#[command(name = "query-api", version)]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(flatten)]
    telemetry: telemetry::TelemetryArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let telemetry = cli.telemetry.init("query-api");
    let result = query_api::run(cli.config, shutdown_signal()).await;
    telemetry.shutdown();
    result
}
