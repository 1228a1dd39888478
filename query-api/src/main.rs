use telemetry::cli::ServiceCli;
use telemetry::shutdown_signal;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = ServiceCli::<query_api::Config>::parse_for(
        "query-api",
        "Tally's query API: balances, history, accounts and jobs.",
    );
    let run = query_api::run(cli.config, shutdown_signal());
    cli.telemetry.serve("query-api", run).await
}
