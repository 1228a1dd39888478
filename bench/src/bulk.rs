//! Bulk transfers: clients posting `POST /v1/transfers/batch` between N funded accounts for
//! D seconds — batches of 8,000 transfers each on its own, then atomic batches of 499 —
//! committed transfers/s and journal messages/s, to set against the durable 1000-message
//! atomic-batch ceiling of the same run (`main::ratios`). A last run with the projector
//! stopped shows the write path alone on the cores, as the ceiling has the journal alone.
//!
//! The clients run in this process: a few requests a second, each a megabyte of JSON built
//! before the clock starts, cost the services little beside the journal's work.

use crate::report::Report;
use crate::stack::{Callers, Stack, Topology, open_accounts};
use crate::transfers::FUNDS;
use command_api::writer::WriterStats;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The scenario's rows.
pub const NOT_ATOMIC: &str = "bulk transfers (8,000 per request)";
pub const ATOMIC: &str = "bulk transfers, atomic (499 per request)";
pub const WRITE_PATH_ONLY: &str = "bulk transfers (8,000 per request), projector stopped";

/// Different bodies each client cycles through (random account pairs).
const BODIES_PER_CLIENT: usize = 4;

pub async fn run(
    report: &mut Report,
    accounts: usize,
    seconds: u64,
    quick: bool,
) -> anyhow::Result<()> {
    let mut stack = Stack::start(Topology::Durable).await?;
    let callers = Callers::mint()?;
    open_accounts(&stack, &callers, "acct-", accounts, FUNDS).await?;
    // Enough requests in flight that the writer always has the next batch queued.
    let (plain_clients, atomic_clients) = if quick { (2, 2) } else { (3, 12) };
    let (plain_len, atomic_len) = if quick { (1_000, 100) } else { (8_000, 499) };
    for (name, atomic, clients, len) in [
        (NOT_ATOMIC, false, plain_clients, plain_len),
        (ATOMIC, true, atomic_clients, atomic_len),
        (WRITE_PATH_ONLY, false, plain_clients, plain_len),
    ] {
        if name == WRITE_PATH_ONLY {
            stack.stop_projector().await?;
        }
        let stats = &stack.command.stats;
        let (batches0, messages0) = (
            WriterStats::get(&stats.batches),
            WriterStats::get(&stats.messages),
        );
        let cpu = crate::cpu::Meter::start(&stack.db.url);
        let recording = crate::profile::Recording::start(name)?;
        let outcome = load(
            &stack,
            &callers.service,
            accounts,
            clients,
            len,
            atomic,
            seconds,
        )
        .await?;
        recording.stop()?;
        let batches = WriterStats::get(&stats.batches) - batches0;
        let messages = WriterStats::get(&stats.messages) - messages0;
        let rate = outcome.committed as f64 / outcome.seconds;
        report.add(name, "committed transfers/s", rate, "transfers/s");
        report.add(name, "journal messages/s", 2.0 * rate, "msgs/s");
        report.add(name, "requests answered", outcome.requests as f64, "");
        report.add(name, "requests refused", outcome.refused as f64, "");
        report.add(
            name,
            "messages per journal batch (avg)",
            messages as f64 / batches.max(1) as f64,
            "msgs",
        );
        report.add(name, "request latency p50", outcome.latency_ms[0], "ms");
        report.add(name, "request latency max", outcome.latency_ms[1], "ms");
        // The bulk clients run in this process: "services" includes them (a few large
        // requests, a small share).
        cpu.report(report, name, outcome.committed as f64, "transfer");
        // The projection's share of the phase: what it had not applied when the clock stopped
        // (after the CPU figures, which cover the phase only).
        if stack.projector.is_some() {
            let (behind, caught_up) = stack.projection_trail().await?;
            report.add(name, "read model behind at the end", behind as f64, "msgs");
            report.add(
                name,
                "read model caught up after",
                caught_up.as_secs_f64() * 1e3,
                "ms",
            );
            report.add(
                name,
                "transfers/s until all visible",
                outcome.committed as f64 / (outcome.seconds + caught_up.as_secs_f64()),
                "transfers/s",
            );
        }
    }
    stack.stop().await
}

struct Outcome {
    committed: u64,
    requests: u64,
    refused: u64,
    seconds: f64,
    /// Median and largest, milliseconds.
    latency_ms: [f64; 2],
}

async fn load(
    stack: &Stack,
    token: &str,
    accounts: usize,
    clients: usize,
    len: usize,
    atomic: bool,
    seconds: u64,
) -> anyhow::Result<Outcome> {
    let http = reqwest::Client::new();
    let url = Arc::new(format!("{}/v1/transfers/batch", stack.commands.base));
    let token = Arc::new(token.to_owned());
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let bodies: Vec<String> = (0..BODIES_PER_CLIENT)
            .map(|_| body(accounts, len, atomic))
            .collect();
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        tasks.spawn(async move {
            let (mut committed, mut refused) = (0_u64, 0_u64);
            let mut latencies = Vec::new();
            let mut turn = 0;
            while Instant::now() < until {
                let sent = Instant::now();
                let answer = http
                    .post(url.as_str())
                    .bearer_auth(token.as_str())
                    .header("content-type", "application/json")
                    .body(bodies[turn % bodies.len()].clone())
                    .send()
                    .await;
                turn += 1;
                let Ok(answer) = answer else {
                    refused += 1;
                    continue;
                };
                let status = answer.status().as_u16();
                let body: Value = answer.json().await.unwrap_or(Value::Null);
                latencies.push(sent.elapsed().as_secs_f64() * 1e3);
                match (status, body["committed"].as_u64()) {
                    (200 | 201, Some(n)) => committed += n,
                    _ => refused += 1,
                }
            }
            (committed, refused, latencies)
        });
    }
    let (mut committed, mut refused, mut latencies) = (0, 0, Vec::new());
    while let Some(done) = tasks.join_next().await {
        let (c, r, l) = done?;
        committed += c;
        refused += r;
        latencies.extend(l);
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let median = latencies.get(latencies.len() / 2).copied().unwrap_or(0.0);
    let max = latencies.last().copied().unwrap_or(0.0);
    Ok(Outcome {
        committed,
        requests: latencies.len() as u64,
        refused,
        seconds,
        latency_ms: [median, max],
    })
}

/// A batch of `len` transfers of 1 to 99 between random distinct accounts.
fn body(accounts: usize, len: usize, atomic: bool) -> String {
    let transfers: Vec<Value> = (0..len)
        .map(|_| {
            let from = rand::random_range(0..accounts);
            let to = (from + rand::random_range(1..accounts.max(2))) % accounts;
            json!({"from_account_id": format!("acct-{from}"),
                "to_account_id": format!("acct-{to}"), "amount": rand::random_range(1..100)})
        })
        .collect();
    json!({"transfers": transfers, "atomic": atomic}).to_string()
}
