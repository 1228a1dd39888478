//! The load generators, each run as a process of its own and printing one JSON object:
//!
//! - `bench load …` (transfers, closed loop): C concurrent HTTP/1.1 keep-alive clients post
//!   transfers between random accounts for D seconds, and probe how soon a sample of them is
//!   visible in the query API (`Ledger-Min-Seq`); prints what it committed and its latency and
//!   lag percentiles.
//! - `bench reads …` (reads, open loop): balance or history reads at a fixed rate over C
//!   keep-alive connections; prints what was served and latency percentiles measured from each
//!   request's *intended* send time (below).
//!
//! Running the clients in the benchmark's own process would let them share its runtime and its
//! cores' scheduling with the services under test, and hide what a user's load costs them:
//! connection handling, parsing, a second process competing for two cores.

use crate::http1;
use hdrhistogram::Histogram;
use http_edge::headers::LEDGER_MIN_SEQ;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Where the load posts.
const TRANSFERS: &str = "/v1/transfers";

/// One lag probe per this many committed transfers per client.
const LAG_PROBE_EVERY: u64 = 25;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The command APIs' base URLs, comma-separated: client `i` calls the `i mod n`-th, as a
    /// load balancer that spreads a caller's pooled connections over the instances would.
    #[arg(long, value_delimiter = ',', required = true)]
    pub command_url: Vec<String>,
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
    // One connection per client, kept alive, as a back-end caller's pool would; all opened
    // before the clock starts: the run measures transfers, not TCP handshakes.
    let mut connections = Vec::with_capacity(args.clients);
    for client_no in 0..args.clients {
        let url = instance(&args.command_url, client_no);
        connections.push(http1::Connection::open(url, TRANSFERS, &args.token).await?);
    }
    // The lag probes (one transfer in LAG_PROBE_EVERY) share a pool of their own.
    let probe_client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()?;
    let args = Arc::new(args);
    let committed = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let until = started + Duration::from_secs(args.seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for (client_no, mut connection) in connections.into_iter().enumerate() {
        let (client, args) = (probe_client.clone(), args.clone());
        let (committed, refused) = (committed.clone(), refused.clone());
        tasks.spawn(async move {
            let mut latency = histogram();
            let mut lag = histogram();
            let mut probes = tokio::task::JoinSet::new();
            let mut n: u64 = 0;
            let accounts = args.accounts;
            while Instant::now() < until {
                let from = rand::random_range(0..accounts);
                let to = (from + rand::random_range(1..accounts.max(2))) % accounts;
                let amount = rand::random_range(1..100);
                let body = format!(
                    r#"{{"from_account_id":"acct-{from}","to_account_id":"acct-{to}","amount":{amount}}}"#
                );
                let sent = Instant::now();
                let answer = match connection.post_json(&body).await {
                    Ok(answer) => answer,
                    Err(_) => {
                        refused.fetch_add(1, Ordering::Relaxed);
                        // The server closed the connection: a pool would open another.
                        let url = instance(&args.command_url, client_no);
                        if let Ok(reopened) =
                            http1::Connection::open(url, TRANSFERS, &args.token).await
                        {
                            connection = reopened;
                        }
                        continue;
                    }
                };
                let took = sent.elapsed();
                if answer.status != 201 {
                    refused.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let _ = latency.record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
                committed.fetch_add(1, Ordering::Relaxed);
                n += 1;
                if n % LAG_PROBE_EVERY == u64::try_from(client_no).unwrap_or(0) % LAG_PROBE_EVERY {
                    let (client, args) = (client.clone(), args.clone());
                    let seq = answer
                        .ledger_seq
                        .unwrap_or_else(|| "0".to_owned());
                    let committed_at = Instant::now();
                    probes.spawn(async move {
                        let seen = client
                            .get(format!(
                                "{}/v1/accounts/acct-{from}/balance",
                                args.query_url
                            ))
                            .bearer_auth(&args.token)
                            .header(LEDGER_MIN_SEQ, seq)
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
    let mut latency = histogram();
    let mut lag = histogram();
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

/// The command API client `client_no` calls.
fn instance(urls: &[String], client_no: usize) -> &str {
    urls.get(client_no % urls.len().max(1))
        .map_or("", String::as_str)
}

/// Largest latency a histogram holds, microseconds: ten minutes, past any request's limit.
const LATENCY_MAX_US: u64 = 600_000_000;

/// A latency histogram (microseconds, three significant digits) allocated whole up front:
/// one that grows as it records would fault in fresh pages inside the measured phase.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).expect("bounds and precision are valid")
}

/// Runs the load generator as a child process of this binary against `stack`'s APIs (its
/// clients spread over `command_urls`) and returns what it printed.
pub async fn spawn(
    command_urls: &[String],
    query_url: &str,
    token: &str,
    accounts: usize,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<Outcome> {
    let (command_urls, accounts, clients, seconds) = (
        command_urls.join(","),
        accounts.to_string(),
        clients.to_string(),
        seconds.to_string(),
    );
    run_child(
        &[
            "load",
            "--command-url",
            &command_urls,
            "--query-url",
            query_url,
            "--accounts",
            &accounts,
            "--clients",
            &clients,
            "--seconds",
            &seconds,
        ],
        token,
    )
    .await
}

/// Latency is recorded per window of this length (by intended send time), so that a slow
/// moment shows where in the run it happened: a start-up cost, or something that passed.
const WINDOW_MS: u64 = 100;

/// A read answered later than this counts as not served: the query API's own request time
/// limit (`QUERY_REQUEST_TIMEOUT_MS`).
const READ_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, clap::Args)]
pub struct ReadArgs {
    /// The query API's base URL.
    #[arg(long)]
    pub query_url: String,
    /// A bearer token of the accounts' owner.
    #[arg(long, env = "BENCH_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Accounts `<prefix>0 … <prefix>(n-1)`, read round-robin.
    #[arg(long)]
    pub prefix: String,
    #[arg(long)]
    pub accounts: usize,
    /// What to read under `/v1/accounts/{id}/`: `balance`, `entries?limit=20`.
    #[arg(long)]
    pub read: String,
    /// Requests per second, sent on schedule whether or not earlier ones have answered.
    #[arg(long)]
    pub rate: u64,
    #[arg(long)]
    pub seconds: u64,
    /// Keep-alive connections, each sending its share of the schedule in turn.
    #[arg(long)]
    pub connections: usize,
}

/// What the read load generator prints.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ReadOutcome {
    /// Requests the schedule held (rate × seconds).
    pub scheduled: u64,
    /// Answered `200`.
    pub served: u64,
    /// Answered otherwise, or not at all (refused connection, timeout).
    pub failed: u64,
    /// Still unsent when the schedule ended: the connections were that far behind.
    pub unsent: u64,
    /// From the first intended send to the last answer.
    pub seconds: f64,
    /// Intended send → answer read, microseconds, at 0.5, 0.99, 0.999 and the maximum.
    pub latency_us: [u64; 4],
    /// Intended send → actually sent, microseconds, at 0.5, 0.99 and the maximum: the wait
    /// for the connection (its previous request not yet answered) and the generator's own
    /// lateness (its timer's millisecond granularity, its share of the cores), both inside the
    /// latency above. Close to the latency: the requests queued in the client.
    pub late_us: [u64; 3],
    /// The window (by intended send time) with the slowest answer: its start in milliseconds
    /// after the first intended send, and that answer's latency in microseconds.
    pub worst_window: [u64; 2],
}

/// One connection's share of the measurements.
struct Share {
    latency: Histogram<u64>,
    late: Histogram<u64>,
    /// The slowest answer per window, microseconds.
    windows: Vec<u64>,
    served: u64,
    failed: u64,
    unsent: u64,
}

impl Share {
    fn new(windows: usize) -> Self {
        Self {
            latency: histogram(),
            late: histogram(),
            windows: vec![0; windows],
            served: 0,
            failed: 0,
            unsent: 0,
        }
    }
}

pub async fn reads(args: ReadArgs) -> anyhow::Result<()> {
    let outcome = run_reads(args).await?;
    println!("{}", serde_json::to_string(&outcome)?);
    Ok(())
}

/// Open loop, corrected for coordinated omission: request `k` is due at `k / rate` seconds
/// after the start and is sent by connection `k mod C` as soon as that connection is free
/// (HTTP/1.1: one request at a time), and its latency runs from when it was *due*, not from
/// when it left. A server that stalls therefore shows in the latency of every request that was
/// due during the stall, as a user's would, instead of only in the few that were in flight.
async fn run_reads(args: ReadArgs) -> anyhow::Result<ReadOutcome> {
    anyhow::ensure!(
        args.rate > 0 && args.connections > 0 && args.accounts > 0,
        "--rate, --connections and --accounts must be positive"
    );
    let args = Arc::new(args);
    let scheduled = args.rate * args.seconds;
    let windows = usize::try_from(args.seconds * 1_000 / WINDOW_MS + 1)?;
    // Every connection is opened and used once before the clock starts: the run measures
    // reads, not TCP handshakes.
    let (start_tx, start_rx) = tokio::sync::watch::channel(None::<Instant>);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(args.connections);
    let mut tasks = tokio::task::JoinSet::new();
    for connection in 0..args.connections {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .timeout(READ_TIMEOUT)
            .build()?;
        let (args, ready_tx, mut start_rx) = (args.clone(), ready_tx.clone(), start_rx.clone());
        tasks.spawn(async move {
            let mut share = Share::new(windows);
            let _ = read_once(&client, &args, connection % args.accounts).await;
            let _ = ready_tx.send(()).await;
            drop(ready_tx);
            let Ok(start) = start_rx
                .wait_for(Option::is_some)
                .await
                .map(|s| s.expect("set"))
            else {
                return share;
            };
            let end = start + Duration::from_secs(args.seconds);
            let mut k = u64::try_from(connection).unwrap_or(u64::MAX);
            let step = u64::try_from(args.connections).unwrap_or(u64::MAX);
            while k < scheduled {
                let offset = Duration::from_nanos(k * 1_000_000_000 / args.rate);
                let due = start + offset;
                let now = Instant::now();
                if now < due {
                    tokio::time::sleep_until(due.into()).await;
                } else if now >= end {
                    // Behind past the end of the schedule: the rest was never sent.
                    share.unsent += (scheduled - k).div_ceil(step);
                    break;
                }
                let sent = Instant::now();
                let _ = share.late.record(micros(sent - due));
                let index = account_index(k, args.accounts);
                if read_once(&client, &args, index).await {
                    let took = micros(due.elapsed());
                    let _ = share.latency.record(took);
                    let window = usize::try_from(offset.as_millis() / u128::from(WINDOW_MS))
                        .unwrap_or(usize::MAX);
                    if let Some(slowest) = share.windows.get_mut(window) {
                        *slowest = (*slowest).max(took);
                    }
                    share.served += 1;
                } else {
                    share.failed += 1;
                }
                k += step;
            }
            share
        });
    }
    // Every task drops its sender once warmed up (or gone): then the channel closes.
    drop(ready_tx);
    while ready_rx.recv().await.is_some() {}
    // A moment after the last warm-up, so that no connection starts behind.
    let start = Instant::now() + Duration::from_millis(10);
    start_tx.send(Some(start))?;
    let mut total = Share::new(windows);
    while let Some(share) = tasks.join_next().await {
        let share = share?;
        total.latency.add(&share.latency)?;
        total.late.add(&share.late)?;
        for (slowest, theirs) in total.windows.iter_mut().zip(&share.windows) {
            *slowest = (*slowest).max(*theirs);
        }
        total.served += share.served;
        total.failed += share.failed;
        total.unsent += share.unsent;
    }
    let seconds = start.elapsed().as_secs_f64();
    let (worst, slowest) = total
        .windows
        .iter()
        .enumerate()
        .max_by_key(|(_, slowest)| **slowest)
        .map_or((0, 0), |(window, slowest)| (window, *slowest));
    Ok(ReadOutcome {
        scheduled,
        served: total.served,
        failed: total.failed,
        unsent: total.unsent,
        seconds,
        latency_us: [0.5, 0.99, 0.999, 1.0].map(|q| total.latency.value_at_quantile(q)),
        late_us: [0.5, 0.99, 1.0].map(|q| total.late.value_at_quantile(q)),
        worst_window: [
            u64::try_from(worst).unwrap_or(u64::MAX) * WINDOW_MS,
            slowest,
        ],
    })
}

/// The account request `k` reads: round-robin, so that every account is read as often.
fn account_index(k: u64, accounts: usize) -> usize {
    usize::try_from(k % u64::try_from(accounts).unwrap_or(u64::MAX)).unwrap_or(0)
}

/// One read, its body read whole (the connection is reused only once it is drained); true if
/// it was answered `200`.
async fn read_once(client: &reqwest::Client, args: &ReadArgs, account: usize) -> bool {
    let url = format!(
        "{}/v1/accounts/{}{account}/{}",
        args.query_url, args.prefix, args.read
    );
    let Ok(answer) = client.get(url).bearer_auth(&args.token).send().await else {
        return false;
    };
    let ok = answer.status().as_u16() == 200;
    answer.bytes().await.is_ok() && ok
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// Runs the read load generator as a child process of this binary and returns what it
/// printed.
pub async fn spawn_reads(args: &ReadArgs) -> anyhow::Result<ReadOutcome> {
    let (accounts, rate) = (args.accounts.to_string(), args.rate.to_string());
    let (seconds, connections) = (args.seconds.to_string(), args.connections.to_string());
    run_child(
        &[
            "reads",
            "--query-url",
            &args.query_url,
            "--prefix",
            &args.prefix,
            "--accounts",
            &accounts,
            "--read",
            &args.read,
            "--rate",
            &rate,
            "--seconds",
            &seconds,
            "--connections",
            &connections,
        ],
        &args.token,
    )
    .await
}

/// Runs this binary with `args` (a generator mode), the token in its environment rather than
/// on its command line, and parses the one JSON object it prints.
async fn run_child<T: serde::de::DeserializeOwned>(
    args: &[&str],
    token: &str,
) -> anyhow::Result<T> {
    let output = tokio::process::Command::new(std::env::current_exe()?)
        .args(args)
        .env("BENCH_TOKEN", token)
        .kill_on_drop(true)
        .output()
        .await?;
    anyhow::ensure!(
        output.status.success(),
        "the load generator ({}) failed: {}",
        args.first().unwrap_or(&""),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(serde_json::from_slice(&output.stdout)?)
}
