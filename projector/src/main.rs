use clap::Subcommand;
use projector::Config;
use telemetry::ServiceCli;
use telemetry::shutdown_signal;

#[derive(Debug, Subcommand)]
enum Sub {
    /// Apply the journal continuously (the default).
    Serve,
    /// Replay the whole journal into a fresh schema and swap it in.
    Rebuild,
    /// Fold the journal and compare it with the read model; exit 1 on any drift.
    Verify,
}

/// mimalloc rather than glibc's malloc: the services allocate many small, short-lived buffers
/// (JSON, headers, rows), and glibc's allocator took about a third of their CPU (ADR 0025).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = ServiceCli::<Config, Sub>::parse_for(
        "projector",
        "Tally's projector: applies the journal to the Postgres read models.",
    );
    let telemetry = cli.telemetry.init("projector");
    let config = cli.config;
    match cli.command {
        None | Some(Sub::Serve) => {
            let result = projector::run(config, shutdown_signal()).await;
            telemetry.shutdown();
            result
        }
        Some(Sub::Rebuild) => {
            let nats = ledger_nats::connect(&config.journal.nats_url, "tally-rebuild").await?;
            let report = projector::rebuild::rebuild(
                &nats,
                &config.journal.stream,
                &config.read_model.database_url,
                &config.read_model.schema,
                std::io::IsTerminal::is_terminal(&std::io::stderr()),
            )
            .await?;
            println!(
                "rebuilt {} events in {:.1} s ({:.0} events/s); schema {} swapped in",
                report.events,
                report.seconds,
                report.events_per_s(),
                config.read_model.schema
            );
            Ok(())
        }
        Some(Sub::Verify) => {
            let nats = ledger_nats::connect(&config.journal.nats_url, "tally-verify").await?;
            let pool = projector::connect(&config, 2).await?;
            let findings = projector::verify::verify(&nats, &config.journal.stream, &pool).await?;
            for line in &findings.drift {
                println!("DRIFT {line}");
            }
            println!(
                "verified {} journal messages, {} accounts: {}",
                findings.events,
                findings.accounts,
                if findings.drift.is_empty() {
                    "no drift"
                } else {
                    "DRIFT FOUND"
                }
            );
            if !findings.drift.is_empty() {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
