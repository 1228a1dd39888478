use clap::Parser;
use telemetry::shutdown_signal;
use web_console::Config;

/// Tally's web console: accounts, payments, orders and balance batches in a browser.
#[derive(Debug, Parser)]
#[command(name = "console", version)]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(flatten)]
    telemetry: telemetry::TelemetryArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let telemetry = cli.telemetry.init("console");
    let result = web_console::run(cli.config, shutdown_signal()).await;
    telemetry.shutdown();
    result
}
