use clap::Subcommand;
use command_api::Config;
use http_edge::Auth;
use telemetry::ServiceCli;
use telemetry::shutdown_signal;

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
        #[arg(long, conflicts_with = "service")]
        admin: bool,
        /// A service principal: a back-end acting for its own accounts, with the service
        /// rate limit (SERVICE_RATE_LIMIT_*) instead of a person's.
        #[arg(long)]
        service: bool,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 86_400)]
        ttl_s: u64,
    },
}

/// mimalloc rather than glibc's malloc: the services allocate many small, short-lived buffers
/// (JSON, headers, rows), and glibc's allocator took about a third of their CPU (ADR 0025).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = ServiceCli::<Config, Sub>::parse_for(
        "command-api",
        "Tally's command API: accounts, deposits, withdrawals and transfers.",
    );
    match cli.command {
        Some(Sub::Token {
            sub,
            admin,
            service,
            ttl_s,
        }) => {
            let auth = Auth::new(cli.config.jwt_secret.as_deref())?;
            let role = match (admin, service) {
                (true, _) => Some(http_edge::auth::ADMIN_ROLE),
                (_, true) => Some(http_edge::auth::SERVICE_ROLE),
                _ => None,
            };
            let token = auth
                .mint_with_role(&sub, role, ttl_s)
                .map_err(|e| anyhow::anyhow!(e.detail))?;
            println!("{token}");
            Ok(())
        }
        None | Some(Sub::Serve) => {
            let run = command_api::run(cli.config, shutdown_signal());
            cli.telemetry.serve("command-api", run).await
        }
    }
}
