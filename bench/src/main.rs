//! `bench`: measures Tally and the machine's own ceilings in one run, so that results read as
//! ratios that hold on noisy shared machines. Prints a table and writes JSON.
//!
//! Every scenario starts its own servers (a nats-server on a temporary store, a fresh Postgres
//! database on `DATABASE_URL`'s server) and the three services in-process, release-built.

// Rates, durations and percentiles for people to read; no money is computed here.
#![allow(clippy::float_arithmetic)]

mod bulk;
mod ceilings;
mod cluster;
mod cpu;
mod executed;
mod feed;
mod holds;
mod http1;
mod load;
mod lookups;
mod orders;
mod profile;
mod query;
mod replay;
mod report;
mod seed;
mod shapes;
mod stack;
mod storage;
mod transfers;

use clap::Parser;
use report::Report;
use stack::Topology;
use transfers::Shape;

#[derive(Debug, Parser)]
#[command(name = "bench", version)]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
    /// Scenarios to run, comma-separated: ceilings, seed, transfers, bulk (batches of
    /// transfers, each on its own and atomic), durability, query, feed, replay, storage (bytes
    /// on disk per transfer), cluster (R3 against R1, seed and orders on R3, recovery after
    /// leader kills); `uniform` is the first of the transfer scenarios alone (fresh journal),
    /// `grown` the last (grown journal); concurrency (uniform transfers on a fresh and a grown
    /// journal at each of `--sweep-clients`); lookups (what a reversal reads to find its
    /// transfer); shapes (not run by default) prices each trait of a journal message in
    /// nats-server CPU; instances (uniform and hot transfers over one command API, then the
    /// same callers spread over two); orders (orders placed and paid by the payment executor);
    /// holds (holds placed to expire a second later, voided by the hold-expiry executor).
    #[arg(
        long,
        default_value = "ceilings,seed,transfers,concurrency,instances,bulk,orders,holds,durability,query,feed,lookups,replay,storage,cluster"
    )]
    scenarios: String,
    /// Tiny sizes and durations: a smoke run for the test suite, not a measurement.
    #[arg(long)]
    quick: bool,
    /// Where to write the JSON results.
    #[arg(long, default_value = "target/bench/results.json")]
    json: std::path::PathBuf,
    /// Concurrent HTTP clients in the transfer scenarios.
    #[arg(long, default_value_t = 128)]
    clients: usize,
    /// Concurrent HTTP clients of the concurrency scenario, comma-separated: how the rate
    /// grows with the callers in flight (group commit fills larger batches), fresh and grown.
    #[arg(long, default_value = "256,512,1024", value_delimiter = ',')]
    sweep_clients: Vec<usize>,
    /// Seconds each transfer scenario runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Times the cluster scenario kills the stream's leader under load (1 with --quick).
    #[arg(long, default_value_t = 6)]
    leader_kills: usize,
    /// Live feeds held open in the feed scenario, one per account (20 with --quick).
    #[arg(long, default_value_t = 1_000)]
    feed_subscribers: usize,
    /// Deposits written while the feeds are open (100 with --quick).
    #[arg(long, default_value_t = 2_000)]
    feed_deposits: usize,
    /// The cluster scenario's recovery part only (no R1/R3 transfers, no seed, no orders).
    #[arg(long)]
    recovery_only: bool,
    /// Rebuilds the replay scenario runs over its one journal (each reported, and their
    /// median): the journal is built once, which takes longer than a rebuild.
    #[arg(long, default_value_t = 1)]
    replay_runs: usize,
    /// Record a system-wide `perf record` of each transfer scenario's load and of the replay
    /// into this directory (`scripts/flamegraph` makes flame graphs of them).
    #[arg(long)]
    perf_record: Option<std::path::PathBuf>,
    /// Create every scenario's journal with this compression instead of the stream
    /// definition's (the storage scenario measures both either way).
    #[arg(long, value_enum)]
    journal_compression: Option<stack::Compression>,
}

#[derive(Debug, clap::Subcommand)]
enum Mode {
    /// Be the transfer load generator the transfer scenarios start in a process of its own.
    Load(load::Args),
    /// Be the read load generator the query scenario starts in a process of its own.
    Reads(load::ReadArgs),
}

/// mimalloc rather than glibc's malloc: the services allocate many small, short-lived buffers
/// (JSON, headers, rows), and glibc's allocator took about a third of their CPU (ADR 0025).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Threads named after their process's part, so that a system-wide profile tells the
    // services from the load generator (both are this binary).
    let threads = match cli.mode {
        Some(Mode::Load(_) | Mode::Reads(_)) => "load-gen",
        None => "tally",
    };
    // The transfer load generator runs its connections on one thread's event loop, as each of
    // `wrk`'s threads does: a closed-loop client only writes a request and parses an answer per
    // wake-up, and a second worker adds hand-offs between threads, not capacity (one core
    // sends 10,000 transfers/s at ~20 µs each).
    let mut runtime = match cli.mode {
        Some(Mode::Load(_)) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    runtime
        .enable_all()
        .thread_name(threads)
        .build()?
        .block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.mode {
        Some(Mode::Load(args)) => return load::main(args).await,
        Some(Mode::Reads(args)) => return load::reads(args).await,
        None => {}
    }
    profile::record_into(cli.perf_record.clone());
    stack::compress_journals(cli.journal_compression);
    let wanted: Vec<&str> = cli.scenarios.split(',').map(str::trim).collect();
    let mut report = Report::default();
    let (clients, seconds) = if cli.quick {
        (8, 1)
    } else {
        (cli.clients, cli.seconds)
    };
    if wanted.contains(&"ceilings") {
        ceilings::run(&mut report, cli.quick).await?;
    }
    if wanted.contains(&"shapes") {
        shapes::run(&mut report, cli.quick).await?;
    }
    if wanted.contains(&"storage") {
        // Enough transfers to fill several of the journal's message blocks (compression works
        // block by block).
        let (accounts, transfers) = if cli.quick {
            (50, 500)
        } else {
            (1_000, 40_000)
        };
        storage::run(&mut report, accounts, transfers).await?;
    }
    if wanted.contains(&"seed") {
        seed::run(
            &mut report,
            if cli.quick { 1_000 } else { 100_000 },
            Topology::Durable,
            "",
        )
        .await?;
    }
    if wanted.contains(&"transfers") || wanted.contains(&"uniform") {
        let accounts = if cli.quick { 100 } else { 10_000 };
        transfers::run(
            &mut report,
            "transfers uniform",
            Shape::fresh(accounts, clients, seconds),
        )
        .await?;
    }
    if wanted.contains(&"transfers") {
        transfers::run(
            &mut report,
            "transfers hot (10 accounts)",
            Shape::fresh(10, clients, seconds),
        )
        .await?;
    }
    if wanted.contains(&"transfers") || wanted.contains(&"grown") {
        // A journal that has been in use: ≥ 1M messages over 100k accounts, the load spread
        // over all of them (most states start out of the writer's cache).
        let (accounts, messages) = if cli.quick { (200, 2_000) } else { GROWN };
        transfers::run(
            &mut report,
            "transfers uniform, grown journal",
            Shape {
                grown_to: messages,
                ..Shape::fresh(accounts, clients, seconds)
            },
        )
        .await?;
    }
    if wanted.contains(&"instances") {
        // The write side scaled out: the same callers spread over two command APIs, whose
        // writers meet each other's commits on the accounts they share, and over one, in the
        // same run. `hot` shares ten accounts: every batch of one meets the other's writes.
        let accounts = if cli.quick { 100 } else { 10_000 };
        for (label, accounts) in [("uniform", accounts), ("hot (10 accounts)", 10)] {
            let one = format!("transfers {label}, one command API");
            let two = format!("transfers {label}, two command APIs");
            let forwarded = format!("transfers {label}, two command APIs, one elected writer");
            transfers::run(&mut report, &one, Shape::fresh(accounts, clients, seconds)).await?;
            for (name, elect_writer) in [(&two, false), (&forwarded, true)] {
                transfers::run(
                    &mut report,
                    name,
                    Shape {
                        instances: 2,
                        elect_writer,
                        ..Shape::fresh(accounts, clients, seconds)
                    },
                )
                .await?;
                if let (Some(one), Some(two_rate)) = (
                    report.get(&one, "committed transfers/s"),
                    report.get(name, "committed transfers/s"),
                ) {
                    report.add(
                        name,
                        "÷ the same with one command API",
                        two_rate / one,
                        "ratio",
                    );
                }
            }
        }
    }
    if wanted.contains(&"concurrency") {
        let (sweep, accounts, (grown_accounts, grown_messages)) = if cli.quick {
            (vec![2, 16], 100, (200, 2_000))
        } else {
            (cli.sweep_clients.clone(), 10_000, GROWN)
        };
        for clients in sweep {
            let fresh = format!("transfers uniform, {clients} clients");
            let grown = format!("transfers uniform, grown journal, {clients} clients");
            transfers::run(
                &mut report,
                &fresh,
                Shape::fresh(accounts, clients, seconds),
            )
            .await?;
            transfers::run(
                &mut report,
                &grown,
                Shape {
                    grown_to: grown_messages,
                    ..Shape::fresh(grown_accounts, clients, seconds)
                },
            )
            .await?;
            grown_ratio(&mut report, &fresh, &grown);
        }
    }
    if wanted.contains(&"bulk") {
        let accounts = if cli.quick { 100 } else { 10_000 };
        bulk::run(&mut report, accounts, seconds, cli.quick).await?;
    }
    if wanted.contains(&"orders") {
        let (accounts, orders) = orders::size(cli.quick);
        orders::run(
            &mut report,
            accounts,
            orders,
            clients,
            Topology::Durable,
            "",
        )
        .await?;
    }
    if wanted.contains(&"holds") {
        holds::run(&mut report, holds::size(cli.quick), clients).await?;
    }
    if wanted.contains(&"durability") {
        let accounts = if cli.quick { 100 } else { 10_000 };
        transfers::run(
            &mut report,
            "transfers uniform, default fsync",
            Shape {
                topology: Topology::DefaultFsync,
                ..Shape::fresh(accounts, clients, seconds)
            },
        )
        .await?;
    }
    if wanted.contains(&"query") {
        query::run(&mut report, cli.quick).await?;
    }
    if wanted.contains(&"feed") {
        let (subscribers, deposits) = if cli.quick {
            (20, 100)
        } else {
            (cli.feed_subscribers, cli.feed_deposits)
        };
        feed::run(&mut report, subscribers, deposits).await?;
    }
    if wanted.contains(&"lookups") {
        let (messages, samples) = if cli.quick { (1_000, 3) } else { (100_000, 9) };
        lookups::run(&mut report, messages, samples).await?;
    }
    if wanted.contains(&"cluster") {
        let kills = if cli.quick { 1 } else { cli.leader_kills };
        cluster::run(
            &mut report,
            cli.quick,
            clients,
            seconds,
            kills,
            cli.recovery_only,
        )
        .await?;
    }
    if wanted.contains(&"replay") {
        let events = if cli.quick { 5_000 } else { 1_000_000 };
        replay::run(&mut report, events, cli.replay_runs).await?;
    }
    ratios(&mut report);
    report.print();
    report.write_json(&cli.json)?;
    println!("\nJSON: {}", cli.json.display());
    // A scenario that committed nothing measured nothing: the run fails, even --quick.
    let problems = report.problems();
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("bench: {problem}");
        }
        std::process::exit(1);
    }
    println!("bench: every scenario did work");
    Ok(())
}

/// The grown journal of the transfer scenarios: accounts, and messages at least.
const GROWN: (usize, u64) = (100_000, 1_000_000);

/// The grown journal's rate as a share of the fresh one's, under the grown scenario's name.
fn grown_ratio(report: &mut Report, fresh: &str, grown: &str) {
    if let (Some(fresh), Some(old)) = (
        report.get(fresh, "committed transfers/s"),
        report.get(grown, "committed transfers/s"),
    ) {
        report.add(grown, "÷ the same on a fresh journal", old / fresh, "ratio");
    }
}

/// Tally's figures as fractions of the ceilings measured in the same run.
fn ratios(report: &mut Report) {
    grown_ratio(
        report,
        "transfers uniform",
        "transfers uniform, grown journal",
    );
    let raw = report.get("ceiling: async publish, default fsync", "msgs/s");
    let durable_raw = report.get("ceiling: async publish, sync_interval: always", "msgs/s");
    let batch = report.get("ceiling: atomic batch of 1000, durable", "msgs/s");
    for name in ["transfers uniform", "transfers hot (10 accounts)"] {
        let Some(msgs) = report.get(name, "journal messages/s") else {
            continue;
        };
        if let Some(raw) = raw {
            report.add(name, "÷ raw async publish (no fsync)", msgs / raw, "ratio");
        }
        if let Some(durable_raw) = durable_raw {
            report.add(
                name,
                "÷ raw async publish (fsync)",
                msgs / durable_raw,
                "ratio",
            );
        }
        if let Some(batch) = batch {
            report.add(
                name,
                "÷ raw 1000-message atomic batches",
                msgs / batch,
                "ratio",
            );
        }
    }
    for name in [bulk::NOT_ATOMIC, bulk::ATOMIC, bulk::WRITE_PATH_ONLY] {
        if let (Some(msgs), Some(batch)) = (report.get(name, "journal messages/s"), batch) {
            report.add(
                name,
                "÷ raw 1000-message atomic batches",
                msgs / batch,
                "ratio",
            );
        }
    }
    if let (Some(durable), Some(relaxed)) = (
        report.get("transfers uniform", "committed transfers/s"),
        report.get("transfers uniform, default fsync", "committed transfers/s"),
    ) {
        report.add(
            "durability cost",
            "durable ÷ default fsync transfers/s",
            durable / relaxed,
            "ratio",
        );
    }
}
