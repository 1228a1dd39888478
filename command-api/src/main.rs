use clap::{Parser, Subcommand};
use command_api::Config;
use command_api::auth::Auth;
use tracing_subscriber::EnvFilter;

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
            init_tracing(&cli.log_format);
            command_api::run(cli.config, shutdown_signal()).await
        }
    }
}

fn init_tracing(format: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "text" {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    } else {
        builder.json().flatten_event(true).init();
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
