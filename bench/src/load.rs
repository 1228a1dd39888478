//! The transfer load generator, run as a process of its own (`bench load …`): C concurrent
//! HTTP/1.1 keep-alive clients post transfers between random accounts for D seconds, and probe
//! how soon a sample of them is visible in the query API (`Ledger-Min-Seq`). It prints one JSON
//! object: what it committed and its latency and lag percentiles.
//!
//! Running the clients in the benchmark's own process would let them share its runtime and its
//! cores' scheduling with the services under test, and hide what a user's load costs them:
//! connection handling, parsing, a second process competing for two cores.

use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One lag probe per this many committed transfers per client.
const LAG_PROBE_EVERY: u64 = 25;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The command API's base URL.
    #[arg(long)]
    pub command_url: String,
    /// The query API's base URL (lag probes).
    #[arg(long)]
    pub query_url: String,
    /// A bearer token of the accounts' owner: the service principal a payment service calls as.
    #[arg(long, env = "BENCH_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Accounts `acct-0 … acct-(n-1)`, open and funded.
    #[arg(long)]
    pub accounts: usize,
    #[arg(long)]
    pub clients: usize,
    #[arg(long)]
    pub seconds: u64,
}

/// What the load generator prints.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    pub committed: u64,
    pub seconds: f64,
    /// Answers other than 201 (conflicts that exhausted their retries, overload).
    pub refused: u64,
    /// Microseconds, at 0.5, 0.99 and 0.999.
    pub latency_us: [u64; 3],
    /// Commit answered → visible in the query API, microseconds at 0.5 and 0.99.
    pub lag_us: [u64; 2],
}

pub async fn main(args: Args) -> anyhow::Result<()> {
    let outcome = run(args).await?;
    println!("{}", serde_json::to_string(&outcome)?);
    Ok(())
}

async fn run(args: Args) -> anyhow::Result<Outcome> {
    // One connection per client, kept alive, as a back-end caller's pool would.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()?;
    let args = Arc::new(args);
    let committed = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let until = started + Duration::from_secs(args.seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for client_no in 0..args.clients {
        let (client, args) = (client.clone(), args.clone());
        let (committed, refused) = (committed.clone(), refused.clone());
        tasks.spawn(async move {
            let mut latency = Histogram::<u64>::new(3).expect("histogram");
            let mut lag = Histogram::<u64>::new(3).expect("histogram");
            let mut probes = tokio::task::JoinSet::new();
            let mut n: u64 = 0;
            let accounts = args.accounts;
            while Instant::now() < until {
                let from = rand::random_range(0..accounts);
                let to = (from + rand::random_range(1..accounts.max(2))) % accounts;
                let body = json!({"from_account_id": format!("acct-{from}"),
                    "to_account_id": format!("acct-{to}"), "amount": rand::random_range(1..100)});
                let sent = Instant::now();
                let answer = client
                    .post(format!("{}/v1/transfers", args.command_url))
                    .bearer_auth(&args.token)
                    .json(&body)
                    .send()
                    .await;
                let Ok(answer) = answer else {
                    refused.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let status = answer.status().as_u16();
                let seq = answer
                    .headers()
                    .get("ledger-seq")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("0")
                    .to_owned();
                // Read the body whole: the connection is reused only once it is drained.
                let _ = answer.bytes().await;
                let took = sent.elapsed();
                if status != 201 {
                    refused.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let _ = latency.record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
                committed.fetch_add(1, Ordering::Relaxed);
                n += 1;
                if n % LAG_PROBE_EVERY == u64::try_from(client_no).unwrap_or(0) % LAG_PROBE_EVERY {
                    let (client, args) = (client.clone(), args.clone());
                    let committed_at = Instant::now();
                    probes.spawn(async move {
                        let seen = client
                            .get(format!(
                                "{}/v1/accounts/acct-{from}/balance",
                                args.query_url
                            ))
                            .bearer_auth(&args.token)
                            .header("ledger-min-seq", seq)
                            .send()
                            .await
                            .ok()?;
                        (seen.status().as_u16() == 200).then(|| committed_at.elapsed())
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
    let mut latency = Histogram::<u64>::new(3)?;
    let mut lag = Histogram::<u64>::new(3)?;
    while let Some(result) = tasks.join_next().await {
        let (l, g) = result?;
        latency.add(l)?;
        lag.add(g)?;
    }
    Ok(Outcome {
        committed: committed.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
        refused: refused.load(Ordering::Relaxed),
        latency_us: [0.5, 0.99, 0.999].map(|q| latency.value_at_quantile(q)),
        lag_us: [0.5, 0.99].map(|q| lag.value_at_quantile(q)),
    })
}

/// Runs the load generator as a child process of this binary against `stack`'s APIs and
/// returns what it printed.
pub async fn spawn(
    command_url: &str,
    query_url: &str,
    token: &str,
    accounts: usize,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<Outcome> {
    let output = tokio::process::Command::new(std::env::current_exe()?)
        .args([
            "load",
            "--command-url",
            command_url,
            "--query-url",
            query_url,
        ])
        .args(["--accounts", &accounts.to_string()])
        .args(["--clients", &clients.to_string()])
        .args(["--seconds", &seconds.to_string()])
        .env("BENCH_TOKEN", token)
        .kill_on_drop(true)
        .output()
        .await?;
    anyhow::ensure!(
        output.status.success(),
        "the load generator failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: Value = serde_json::from_slice(&output.stdout)?;
    Ok(serde_json::from_value(printed)?)
}
