//! Transfers: C concurrent HTTP clients for D seconds over N accounts, from a load generator in
//! a process of its own (`crate::load`); committed transfers/s, latency percentiles, conflicts,
//! group-commit batch size, and projector lag (commit → visible in the query API, measured with
//! `Ledger-Min-Seq`).

use crate::report::Report;
use crate::stack::{Callers, Stack, Topology, open_accounts, set_balances};
use command_api::writer::WriterStats;
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// Every scenario's accounts' opening balance: more than any load spends.
pub const FUNDS: i64 = 1_000_000_000;

/// What a transfer scenario runs.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Accounts `acct-0 … acct-(n-1)` the transfers move money between.
    pub accounts: usize,
    pub clients: usize,
    pub seconds: u64,
    pub topology: Topology,
    /// Messages the journal is grown to before the run (0: a fresh journal).
    pub grown_to: u64,
    /// Command API instances the clients are spread over (each client keeps to one).
    pub instances: usize,
    /// The instances elect one writer and forward their writes to it (ADR 0028).
    pub elect_writer: bool,
}

impl Shape {
    /// A fresh durable journal, one command API.
    pub fn fresh(accounts: usize, clients: usize, seconds: u64) -> Self {
        Self {
            accounts,
            clients,
            seconds,
            topology: Topology::Durable,
            grown_to: 0,
            instances: 1,
            elect_writer: false,
        }
    }
}

pub async fn run(report: &mut Report, name: &str, shape: Shape) -> anyhow::Result<()> {
    let Shape {
        accounts,
        clients,
        seconds,
        topology,
        grown_to,
        instances,
        elect_writer,
    } = shape;
    let tuning = crate::stack::Tuning {
        elect_writer,
        ..Default::default()
    };
    let mut stack = Stack::start_with(topology, tuning).await?;
    let callers = Callers::mint()?;
    open_accounts(&stack, &callers, "acct-", accounts, FUNDS).await?;
    if grown_to > 0 {
        grow(&stack, &callers.admin, accounts, grown_to).await?;
        let journal = stream_messages(&stack).await?;
        report.add(
            name,
            "journal messages before the run",
            journal as f64,
            "msgs",
        );
    }
    let mut command_urls = vec![stack.commands.base.clone()];
    for _ in 1..instances {
        command_urls.push(stack.add_command_api().await?.base);
    }
    if elect_writer {
        stack.writer_elected().await?;
    }
    let total = |counter: fn(&WriterStats) -> &AtomicU64| -> u64 {
        stack
            .writer_stats()
            .map(|s| WriterStats::get(counter(s)))
            .sum()
    };
    let before = Counts::read(&total);
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
        bar.set_style(style);
    }
    bar.set_message(format!("{name}: {clients} clients for {seconds} s"));
    bar.enable_steady_tick(Duration::from_millis(200));
    let recording = crate::profile::Recording::start(name)?;
    let cpu = crate::cpu::Meter::start(&stack.db.url);
    let load = crate::load::spawn(
        &command_urls,
        &stack.queries.base,
        &callers.service,
        accounts,
        clients,
        seconds,
    )
    .await;
    recording.stop()?;
    bar.finish_and_clear();
    let load = load?;
    let done = Counts::read(&total).since(before);
    let ms = |us: u64| us as f64 / 1e3;
    let rate = load.committed as f64 / load.seconds;
    if instances > 1 {
        report.add(name, "command APIs", instances as f64, "");
    }
    report.add(name, "committed transfers/s", rate, "transfers/s");
    cpu.report(report, name, load.committed as f64, "transfer");
    report.add(name, "journal messages/s", 2.0 * rate, "msgs/s");
    report.add(name, "latency p50", ms(load.latency_us[0]), "ms");
    report.add(name, "latency p99", ms(load.latency_us[1]), "ms");
    report.add(name, "latency p99.9", ms(load.latency_us[2]), "ms");
    report.add(name, "refused (not 201)", load.refused as f64, "");
    report.add(
        name,
        "conflicts (batches redecided)",
        done.conflicts as f64,
        "",
    );
    report.add(
        name,
        "batches checked by the stream",
        done.stream_checked as f64 / done.batches.max(1) as f64 * 100.0,
        "%",
    );
    report.add(
        name,
        "commands per batch (avg)",
        done.commands as f64 / done.batches.max(1) as f64,
        "commands",
    );
    report.add(name, "projector lag p50", ms(load.lag_us[0]), "ms");
    report.add(name, "projector lag p99", ms(load.lag_us[1]), "ms");
    stack.stop().await
}

/// The writers' counters, summed over every command API.
#[derive(Debug, Clone, Copy)]
struct Counts {
    batches: u64,
    commands: u64,
    conflicts: u64,
    stream_checked: u64,
}

impl Counts {
    fn read(total: &impl Fn(fn(&WriterStats) -> &AtomicU64) -> u64) -> Self {
        Self {
            batches: total(|s| &s.batches),
            commands: total(|s| &s.commands),
            conflicts: total(|s| &s.conflicts),
            stream_checked: total(|s| &s.stream_checked),
        }
    }

    fn since(self, before: Self) -> Self {
        Self {
            batches: self.batches - before.batches,
            commands: self.commands - before.commands,
            conflicts: self.conflicts - before.conflicts,
            stream_checked: self.stream_checked - before.stream_checked,
        }
    }
}

/// Grows the journal to at least `messages` messages by setting the balances of the
/// `accounts` over and over (a balance batch journals about one message per item, the
/// fastest honest way to a large journal): what a ledger in production for a while holds.
async fn grow(stack: &Stack, admin: &str, accounts: usize, messages: u64) -> anyhow::Result<()> {
    let bar = ProgressBar::new(messages);
    if let Ok(style) = ProgressStyle::with_template("growing the journal {bar:40} {pos}/{len}") {
        bar.set_style(style);
    }
    let mut round: i64 = 0;
    loop {
        let journal = stream_messages(stack).await?;
        bar.set_position(journal.min(messages));
        if journal >= messages {
            bar.finish_and_clear();
            return Ok(());
        }
        round += 1;
        // Another balance each round, so that every item is a change.
        set_balances(stack, admin, "acct-", accounts, FUNDS + round).await?;
    }
}

async fn stream_messages(stack: &Stack) -> anyhow::Result<u64> {
    let client = stack.nats.client().await?;
    let mut stream = async_nats::jetstream::new(client)
        .get_stream(crate::stack::STREAM)
        .await?;
    Ok(stream.info().await?.state.messages)
}
