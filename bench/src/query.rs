//! Query: balance and history reads at increasing request rates (open loop: requests are sent
//! on schedule whether or not earlier ones have answered); achieved throughput and p99.

use crate::report::Report;
use crate::stack::{Stack, Topology, token};
use hdrhistogram::Histogram;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Semaphore};

/// Requests outstanding at once; beyond this the client, not the server, would be measured.
const OUTSTANDING_MAX: usize = 1_024;

pub async fn run(report: &mut Report, quick: bool) -> anyhow::Result<()> {
    let stack = Arc::new(Stack::start(Topology::Durable).await?);
    let admin = Arc::new(token("root", true)?);
    let accounts = if quick { 50 } else { 1_000 };
    crate::transfers::set_balances(&stack, &admin, "q-", accounts, 10_000).await?;
    let rates: &[u64] = if quick {
        &[100]
    } else {
        &[1_000, 2_500, 5_000, 7_500]
    };
    let seconds = if quick { 1 } else { 4 };
    for (kind, path) in [("balance", "balance"), ("history", "entries?limit=20")] {
        for &rate in rates {
            let latency = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
            let gate = Arc::new(Semaphore::new(OUTSTANDING_MAX));
            let started = Instant::now();
            let total = rate * seconds;
            let mut tasks = tokio::task::JoinSet::new();
            for n in 0..total {
                let due = started + Duration::from_micros(n * 1_000_000 / rate);
                tokio::time::sleep_until(due.into()).await;
                let Ok(permit) = gate.clone().try_acquire_owned() else {
                    continue; // the server is this far behind: count as not served
                };
                let (stack, admin, latency) = (stack.clone(), admin.clone(), latency.clone());
                let account = n as usize % accounts;
                tasks.spawn(async move {
                    let sent = Instant::now();
                    let answer = stack
                        .queries
                        .get(&format!("/v1/accounts/q-{account}/{path}"), &admin)
                        .await;
                    drop(permit);
                    if answer.status.as_u16() == 200 {
                        let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                        let _ = latency.lock().await.record(micros);
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
            let elapsed = started.elapsed().as_secs_f64();
            let latency = latency.lock().await;
            let name = format!("query {kind} at {rate} req/s");
            report.add(
                &name,
                "served req/s",
                latency.len() as f64 / elapsed,
                "req/s",
            );
            report.add(
                &name,
                "latency p99",
                latency.value_at_quantile(0.99) as f64 / 1e3,
                "ms",
            );
        }
    }
    match Arc::try_unwrap(stack) {
        Ok(stack) => stack.stop().await,
        Err(_) => Ok(()),
    }
}
