use clap::{Parser, Subcommand};
use command_api::Config;
use http_edge::Auth;
use http_edge::telemetry::{init_tracing, shutdown_signal};

/// Tally's command API: accounts, deposits, withdrawals and transfers.
#[derive(Debug, Parser)]
#[command(name = "command-api", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    #[command(flatten)]
    config: Config,
    /// Log format: json (default) or text.
    #[arg(long, env = "LOG_FORMAT", default_value = "json", global = true)]
    log_format: String,
    /// OTLP/gRPC endpoint traces are exported to (none: no export).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", global = true)]
    otlp_endpoint: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Serve the command API (the default).
    Serve,
    /// Print a bearer token signed with LEDGER_JWT_SECRET, for local use.
    Token {
        /// The principal (JWT `sub`).
        #[arg(long)]
        sub: String,
        /// Grant the admin role.
        #[arg(long)]
        admin: bool,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 86_400)]
        ttl_s: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Sub::Token { sub, admin, ttl_s }) => {
            let auth = Auth::new(cli.config.jwt_secret.as_deref())?;
            let token = auth
                .mint(&sub, admin, ttl_s)
                .map_err(|e| anyhow::anyhow!(e.detail))?;
            println!("{token}");
            Ok(())
        }
        None | Some(Sub::Serve) => {
            let telemetry =
                init_tracing(&cli.log_format, "command-api", cli.otlp_endpoint.as_deref());
            let result = command_api::run(cli.config, shutdown_signal()).await;
            telemetry.shutdown();
            result
        }
    }
}
