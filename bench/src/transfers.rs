//! Transfers: C concurrent HTTP clients for D seconds over N accounts, from a load generator in
//! a process of its own (`crate::load`); committed transfers/s, latency percentiles, conflicts,
//! group-commit batch size, and projector lag (commit → visible in the query API, measured with
//! `Ledger-Min-Seq`).

use crate::report::Report;
use crate::stack::{Callers, Stack, Topology, open_accounts, set_balances};
use command_api::writer::WriterStats;
use indicatif::{ProgressBar, ProgressStyle};
use std::time::Duration;

/// Every scenario's accounts' opening balance: more than any load spends.
pub const FUNDS: i64 = 1_000_000_000;

pub async fn run(
    report: &mut Report,
    name: &str,
    accounts: usize,
    clients: usize,
    seconds: u64,
    topology: Topology,
    grown_to: u64,
) -> anyhow::Result<()> {
    let stack = Stack::start(topology).await?;
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
    let stats = &stack.command.stats;
    let (batches0, commands0, conflicts0) = (
        WriterStats::get(&stats.batches),
        WriterStats::get(&stats.commands),
        WriterStats::get(&stats.conflicts),
    );
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
        bar.set_style(style);
    }
    bar.set_message(format!("{name}: {clients} clients for {seconds} s"));
    bar.enable_steady_tick(Duration::from_millis(200));
    let recording = crate::profile::Recording::start(name)?;
    let cpu = crate::cpu::Meter::start(&stack.db.url);
    let load = crate::load::spawn(
        &stack.commands.base,
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
    let batches = WriterStats::get(&stats.batches) - batches0;
    let commands = WriterStats::get(&stats.commands) - commands0;
    let ms = |us: u64| us as f64 / 1e3;
    let rate = load.committed as f64 / load.seconds;
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
        (WriterStats::get(&stats.conflicts) - conflicts0) as f64,
        "",
    );
    report.add(
        name,
        "commands per batch (avg)",
        commands as f64 / batches.max(1) as f64,
        "commands",
    );
    report.add(name, "projector lag p50", ms(load.lag_us[0]), "ms");
    report.add(name, "projector lag p99", ms(load.lag_us[1]), "ms");
    stack.stop().await
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
