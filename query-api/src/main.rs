use telemetry::cli::ServiceCli;
use telemetry::shutdown_signal;

/// mimalloc rather than glibc's malloc: the services allocate many small, short-lived buffers
/// (JSON, headers, rows), and glibc's allocator took about a third of their CPU (ADR 0025).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = ServiceCli::<query_api::Config>::parse_for(
        "query-api",
        "Tally's query API: balances, history, accounts and jobs.",
    );
    let run = query_api::run(cli.config, shutdown_signal());
    cli.telemetry.serve("query-api", run).await
}
