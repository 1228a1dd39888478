//! Transfers: C concurrent HTTP clients for D seconds over N accounts; committed transfers/s,
//! latency percentiles, conflicts, group-commit batch size, and projector lag (commit → visible
//! in the query API, measured with `Ledger-Min-Seq`).

use crate::report::Report;
use crate::stack::{Stack, Topology, token};
use command_api::writer::WriterStats;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One lag probe per this many committed transfers per client.
const LAG_PROBE_EVERY: u64 = 25;

pub async fn run(
    report: &mut Report,
    name: &str,
    accounts: usize,
    clients: usize,
    seconds: u64,
    topology: Topology,
) -> anyhow::Result<()> {
    let stack = Arc::new(Stack::start(topology).await?);
    let admin = Arc::new(token("root", true)?);
    open_accounts(&stack, &admin, accounts).await?;
    let stats = &stack.command.stats;
    let (batches0, commands0, conflicts0) = (
        WriterStats::get(&stats.batches),
        WriterStats::get(&stats.commands),
        WriterStats::get(&stats.conflicts),
    );
    let committed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
        bar.set_style(style);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let (stack, admin, committed) = (stack.clone(), admin.clone(), committed.clone());
        tasks.spawn(async move {
            let mut latency = Histogram::<u64>::new(3).expect("histogram");
            let mut lag = Histogram::<u64>::new(3).expect("histogram");
            let mut probes = tokio::task::JoinSet::new();
            let mut n: u64 = 0;
            while Instant::now() < until {
                let from = rand::random_range(0..accounts);
                let to = (from + rand::random_range(1..accounts.max(2))) % accounts;
                let body = json!({"from_account_id": format!("acct-{from}"), "to_account_id": format!("acct-{to}"), "amount": rand::random_range(1..100)});
                let sent = Instant::now();
                let answer = stack.commands.post("/v1/transfers", &admin, body).await;
                let took = sent.elapsed();
                if answer.status.as_u16() != 201 {
                    continue;
                }
                let _ = latency.record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
                committed.fetch_add(1, Ordering::Relaxed);
                n += 1;
                if n % LAG_PROBE_EVERY == u64::try_from(client).unwrap_or(0) % LAG_PROBE_EVERY {
                    let seq = answer.header("ledger-seq").unwrap_or("0").to_owned();
                    let (stack, admin) = (stack.clone(), admin.clone());
                    let committed_at = Instant::now();
                    probes.spawn(async move {
                        let seen = stack
                            .queries
                            .get_with(&format!("/v1/accounts/acct-{from}/balance"), Some(&admin), &[("ledger-min-seq", &seq)])
                            .await;
                        (seen.status.as_u16() == 200).then(|| committed_at.elapsed())
                    });
                }
            }
            while let Some(probe) = probes.join_next().await {
                if let Ok(Some(took)) = probe {
                    let _ = lag.record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
                }
            }
            (latency, lag)
        });
    }
    while Instant::now() < until {
        bar.set_message(format!(
            "{name}: {} transfers committed",
            committed.load(Ordering::Relaxed)
        ));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut latency = Histogram::<u64>::new(3)?;
    let mut lag = Histogram::<u64>::new(3)?;
    while let Some(result) = tasks.join_next().await {
        let (l, g) = result?;
        latency.add(l)?;
        lag.add(g)?;
    }
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    let done = committed.load(Ordering::Relaxed);
    let batches = WriterStats::get(&stats.batches) - batches0;
    let commands = WriterStats::get(&stats.commands) - commands0;
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1e3;
    report.add(
        name,
        "committed transfers/s",
        done as f64 / elapsed,
        "transfers/s",
    );
    report.add(
        name,
        "journal messages/s",
        2.0 * done as f64 / elapsed,
        "msgs/s",
    );
    report.add(name, "latency p50", ms(&latency, 0.5), "ms");
    report.add(name, "latency p99", ms(&latency, 0.99), "ms");
    report.add(name, "latency p99.9", ms(&latency, 0.999), "ms");
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
    report.add(name, "projector lag p50", ms(&lag, 0.5), "ms");
    report.add(name, "projector lag p99", ms(&lag, 0.99), "ms");
    match Arc::try_unwrap(stack) {
        Ok(stack) => stack.stop().await,
        Err(_) => Ok(()),
    }
}

/// Opens `acct-0 … acct-(n-1)` with a large balance in one balance batch.
pub async fn open_accounts(stack: &Stack, admin: &str, n: usize) -> anyhow::Result<()> {
    let body: Map<String, Value> = (0..n)
        .map(|i| (format!("acct-{i}"), json!(1_000_000_000_i64)))
        .collect();
    let answer = reqwest::Client::new()
        .put(format!("{}/v1/balances", stack.commands.base))
        .bearer_auth(admin)
        .json(&Value::Object(body))
        .send()
        .await?;
    anyhow::ensure!(
        answer.status().as_u16() == 202,
        "opening accounts: {}",
        answer.status()
    );
    let batch: Value = answer.json().await?;
    let batch_id = batch["batch_id"].as_str().unwrap_or_default().to_owned();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let status = stack
            .queries
            .get(&format!("/v1/batches/{batch_id}"), admin)
            .await;
        if status.body["status"] == "done" {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "accounts not opened: {:?}",
            status.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
