//! Feed: N clients hold live feeds open on N distinct accounts while writers deposit into
//! them; the latency from a deposit's `201` to its event on the open feed (p50/p99), and what
//! the open feeds cost in resident memory (this process's `VmRSS` before and after opening
//! them: the query API runs in-process, so the figure covers its side and the clients' side).

use crate::report::Report;
use crate::stack::{Callers, Stack, Topology, open_accounts};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Feeds being opened at once: enough to open a thousand in seconds without queueing a
/// thousand account look-ups on the query API's pool at once.
const OPENING_AT_ONCE: usize = 64;
/// Deposits in flight at once: a steady load the group-commit writer batches, far from its
/// ceiling, so that the figure is the feed's delay rather than a queue at the writer.
const WRITERS: usize = 8;
/// Longest wait for the last event after the last deposit.
const DRAIN_WAIT: Duration = Duration::from_secs(60);

/// When each entry (account number, version) was acknowledged or arrived.
type Arrivals = Arc<Mutex<HashMap<(usize, u64), Instant>>>;

pub async fn run(report: &mut Report, subscribers: usize, deposits: usize) -> anyhow::Result<()> {
    let stack = Arc::new(Stack::start(Topology::Durable).await?);
    let callers = Callers::mint()?;
    open_accounts(&stack, &callers, "f-", subscribers, 1).await?;
    let service = Arc::new(callers.service);

    let rss_before = vm_rss_kib();
    let arrivals: Arrivals = Arc::default();
    let client = reqwest::Client::new();
    let gate = Arc::new(Semaphore::new(OPENING_AT_ONCE));
    let mut opening = JoinSet::new();
    for i in 0..subscribers {
        let (client, service, gate) = (client.clone(), service.clone(), gate.clone());
        let url = format!("{}/v1/accounts/f-{i}/events?from=now", stack.queries.base);
        opening.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let response = client.get(url).bearer_auth(service.as_str()).send().await?;
            anyhow::ensure!(
                response.status().as_u16() == 200,
                "feed refused: {}",
                response.status()
            );
            Ok((i, response))
        });
    }
    let mut readers = JoinSet::new();
    while let Some(opened) = opening.join_next().await {
        let (account, response) = opened??;
        readers.spawn(read_feed(account, response, arrivals.clone()));
    }
    let rss_open = vm_rss_kib();

    let acked: Arrivals = Arc::default();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut writers = JoinSet::new();
    for _ in 0..WRITERS {
        let (stack, service, acked, next) =
            (stack.clone(), service.clone(), acked.clone(), next.clone());
        writers.spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= deposits {
                    return;
                }
                let account = n % subscribers;
                let answer = stack
                    .commands
                    .post(
                        &format!("/v1/accounts/f-{account}/deposits"),
                        &service,
                        json!({"amount": 1}),
                    )
                    .await;
                let at = Instant::now();
                // Keyed by account and version: commands that share a group commit share its
                // `Ledger-Seq`, while an entry's version is its own.
                if answer.status.as_u16() == 201
                    && let Some(version) = answer.body["version"].as_u64()
                {
                    lock(&acked).insert((account, version), at);
                }
            }
        });
    }
    while writers.join_next().await.is_some() {}
    let written = started.elapsed().as_secs_f64();
    let wanted: Vec<((usize, u64), Instant)> = lock(&acked).iter().map(|(s, t)| (*s, *t)).collect();
    let deadline = Instant::now() + DRAIN_WAIT;
    while Instant::now() < deadline && {
        let arrived = lock(&arrivals);
        wanted.iter().any(|(key, _)| !arrived.contains_key(key))
    } {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut latency = Histogram::<u64>::new(3)?;
    {
        let arrived = lock(&arrivals);
        for (key, at) in &wanted {
            if let Some(seen) = arrived.get(key) {
                let micros = seen.saturating_duration_since(*at).as_micros();
                latency.record(u64::try_from(micros).unwrap_or(u64::MAX))?;
            }
        }
    }
    readers.abort_all();

    let name = format!("feed ({subscribers} open feeds)");
    report.add(
        &name,
        "deposits acknowledged",
        wanted.len() as f64,
        "deposits",
    );
    report.add(
        &name,
        "deposits/s",
        wanted.len() as f64 / written,
        "deposits/s",
    );
    report.add(&name, "events received", latency.len() as f64, "events");
    report.add(
        &name,
        "201 → event p50",
        latency.value_at_quantile(0.5) as f64 / 1e3,
        "ms",
    );
    report.add(
        &name,
        "201 → event p99",
        latency.value_at_quantile(0.99) as f64 / 1e3,
        "ms",
    );
    if let (Some(before), Some(open)) = (rss_before, rss_open) {
        report.add(&name, "RSS before opening", before as f64 / 1024.0, "MiB");
        report.add(&name, "RSS with feeds open", open as f64 / 1024.0, "MiB");
        report.add(
            &name,
            "RSS per open feed",
            (open.saturating_sub(before)) as f64 / subscribers.max(1) as f64,
            "KiB",
        );
    }
    match Arc::try_unwrap(stack) {
        Ok(stack) => stack.stop().await,
        Err(_) => Ok(()),
    }
}

/// Reads account `account`'s feed until it ends, noting when each entry's event arrived.
async fn read_feed(account: usize, mut response: reqwest::Response, arrivals: Arrivals) {
    let mut pending = String::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let at = Instant::now();
        pending.push_str(&String::from_utf8_lossy(&chunk));
        let Some(end) = pending.rfind('\n') else {
            continue;
        };
        let complete: String = pending.drain(..=end).collect();
        let mut arrived = lock(&arrivals);
        for version in complete
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
            .filter_map(|data| data["version"].as_u64())
        {
            arrived.insert((account, version), at);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// This process's resident memory in KiB (Linux), if it can be read.
fn vm_rss_kib() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}
