use telemetry::cli::ServiceCli;
use telemetry::shutdown_signal;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = ServiceCli::<web_console::Config>::parse_for(
        "console",
        "Tally's web console: accounts, payments, orders and balance batches in a browser.",
    );
    let run = web_console::run(cli.config, shutdown_signal());
    cli.telemetry.serve("console", run).await
}
