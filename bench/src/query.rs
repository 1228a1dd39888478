//! Query: balance and history reads at increasing request rates (open loop: requests are sent
//! on schedule whether or not earlier ones have answered); achieved throughput and p99 — with
//! the query API's account cache (ADR 0016) as deployed, then turned off
//! (`ACCOUNT_CACHE_LEN_MAX=0`), each on a stack of its own. The reader is the service
//! principal that owns the accounts, as a payment service checking balances would be.

use crate::report::Report;
use crate::stack::{Callers, Stack, Topology, Tuning, open_accounts};
use hdrhistogram::Histogram;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Semaphore};

/// Requests outstanding at once; beyond this the client, not the server, would be measured.
const OUTSTANDING_MAX: usize = 1_024;

/// The request rates each read is driven at, per second: past the 10,000 served.
const RATES: [u64; 6] = [1_000, 2_500, 5_000, 7_500, 10_000, 15_000];

pub async fn run(report: &mut Report, quick: bool) -> anyhow::Result<()> {
    for (label, account_cache_len_max) in [("", None), (", account cache off", Some(0))] {
        let tuning = Tuning {
            account_cache_len_max,
            ..Tuning::default()
        };
        measure(report, label, tuning, quick).await?;
    }
    Ok(())
}

async fn measure(
    report: &mut Report,
    label: &str,
    tuning: Tuning,
    quick: bool,
) -> anyhow::Result<()> {
    let stack = Arc::new(Stack::start_with(Topology::Durable, tuning).await?);
    let callers = Callers::mint()?;
    let accounts = if quick { 50 } else { 1_000 };
    open_accounts(&stack, &callers, "q-", accounts, 10_000).await?;
    let service = Arc::new(callers.service);
    let rates: &[u64] = if quick { &[100] } else { &RATES };
    let seconds = if quick { 1 } else { 4 };
    for (kind, path) in [("balance", "balance"), ("history", "entries?limit=20")] {
        let mut served_max = 0.0_f64;
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
                let (stack, service, latency) = (stack.clone(), service.clone(), latency.clone());
                let account = n as usize % accounts;
                tasks.spawn(async move {
                    let sent = Instant::now();
                    let answer = stack
                        .queries
                        .get(&format!("/v1/accounts/q-{account}/{path}"), &service)
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
            let name = format!("query {kind} at {rate} req/s{label}");
            let served = latency.len() as f64 / elapsed;
            served_max = served_max.max(served);
            report.add(&name, "served req/s", served, "req/s");
            report.add(
                &name,
                "latency p99",
                latency.value_at_quantile(0.99) as f64 / 1e3,
                "ms",
            );
        }
        let name = format!("query {kind}{label}");
        report.add(&name, "most req/s served", served_max, "req/s");
    }
    match Arc::try_unwrap(stack) {
        Ok(stack) => stack.stop().await,
        Err(_) => Ok(()),
    }
}
