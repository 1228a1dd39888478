//! Query: balance and history reads at increasing request rates, from a load generator in a
//! process of its own (`bench reads`, [`crate::load`]): open loop (requests are sent on
//! schedule whether or not earlier ones have answered) and latency from each request's
//! intended send time. Achieved throughput and latency percentiles — with the query API's
//! account cache (ADR 0016) as deployed, then turned off (`ACCOUNT_CACHE_LEN_MAX=0`), each on a
//! stack of its own. The reader is the service principal that owns the accounts, as a payment
//! service checking balances would be.
//!
//! Each step also prints what else happened while it ran (ADR 0024): the slowest 100 ms of
//! it, how late requests left the generator (waiting for their connection included),
//! account-cache misses, checkpoint moves, where the cores went (the services, the generator,
//! PostgreSQL, nats-server, everything else), and afterwards any autovacuum or autoanalyze of
//! the read model that fell inside a step.

use crate::cpu;
use crate::load::{self, ReadArgs, ReadOutcome};
use crate::report::Report;
use crate::stack::{Callers, Stack, Topology, Tuning, open_accounts};
use chrono::{DateTime, Utc};
use http_edge::headers::LEDGER_SEQ;

/// The request rates each read is driven at, per second: past the 10,000 served.
const RATES: [u64; 6] = [1_000, 2_500, 5_000, 7_500, 10_000, 15_000];

/// The generator's keep-alive connections: a back-end's pool, enough that 15,000 reads/s fit
/// at ~4 ms each (HTTP/1.1 carries one request at a time per connection), few enough that the
/// query API is not measured accepting a connection per request.
const CONNECTIONS: usize = 64;

/// Seconds each rate is offered.
const STEP_S: u64 = 4;

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
    let stack = Stack::start_with(Topology::Durable, tuning).await?;
    let callers = Callers::mint()?;
    let accounts = if quick { 50 } else { 1_000 };
    open_accounts(&stack, &callers, "q-", accounts, 10_000).await?;
    let rates: &[u64] = if quick { &[100] } else { &RATES };
    let seconds = if quick { 1 } else { STEP_S };
    let mut steps = Vec::new();
    for (kind, read) in [("balance", "balance"), ("history", "entries?limit=20")] {
        let mut served_max = 0.0_f64;
        let (sweep, mut reads) = (cpu::Meter::start(&stack.db.url), 0);
        for &rate in rates {
            let name = format!("query {kind} at {rate} req/s{label}");
            let before = Moment::now(&stack, &callers.service).await;
            let step = cpu::Meter::start(&stack.db.url);
            let outcome = load::spawn_reads(&ReadArgs {
                query_url: stack.queries.base.clone(),
                token: callers.service.clone(),
                prefix: "q-".into(),
                accounts,
                read: read.into(),
                rate,
                seconds,
                connections: CONNECTIONS,
            })
            .await?;
            let after = Moment::now(&stack, &callers.service).await;
            // The step's CPU split, for its line only (the sweep's goes to the report).
            let mut split = Report::default();
            step.report(&mut split, &name, outcome.served as f64, "read");
            reads += outcome.served;
            let ms = |us: u64| us as f64 / 1e3;
            let served = outcome.served as f64 / outcome.seconds;
            served_max = served_max.max(served);
            report.add(&name, "served req/s", served, "req/s");
            report.add(&name, "latency p50", ms(outcome.latency_us[0]), "ms");
            report.add(&name, "latency p99", ms(outcome.latency_us[1]), "ms");
            report.add(&name, "latency p99.9", ms(outcome.latency_us[2]), "ms");
            println!("{}", describe(&name, &outcome, &before, &after, &split));
            steps.push((name, before.at, after.at));
        }
        let sweep_name = format!("query {kind}{label}");
        report.add(&sweep_name, "most req/s served", served_max, "req/s");
        sweep.report(report, &sweep_name, reads as f64, "read");
    }
    if let Err(e) = print_autovacuums(&stack, &steps).await {
        println!("(autovacuum times not read: {e})");
    }
    stack.stop().await
}

/// What the services had done by a moment: for the difference across a step.
struct Moment {
    at: DateTime<Utc>,
    cache_hits: f64,
    cache_misses: f64,
    /// The query API's checkpoint (`Ledger-Seq`).
    checkpoint: u64,
}

impl Moment {
    async fn now(stack: &Stack, token: &str) -> Self {
        let metrics = telemetry::metrics::render();
        let counter = |outcome: &str| {
            let key = format!("tally_account_cache_total{{outcome=\"{outcome}\"}} ");
            metrics
                .lines()
                .find_map(|line| line.strip_prefix(&key)?.trim().parse().ok())
                .unwrap_or(0.0)
        };
        let answer = stack.queries.get("/v1/accounts/q-0/balance", token).await;
        Self {
            at: Utc::now(),
            cache_hits: counter("hit"),
            cache_misses: counter("miss"),
            checkpoint: answer
                .header(LEDGER_SEQ.as_str())
                .and_then(|seq| seq.parse().ok())
                .unwrap_or(0),
        }
    }
}

/// One line on a step: the figures and what else happened while it ran.
fn describe(
    name: &str,
    outcome: &ReadOutcome,
    before: &Moment,
    after: &Moment,
    split: &Report,
) -> String {
    let ms = |us: u64| us as f64 / 1e3;
    let [p50, p99, p999, max] = outcome.latency_us.map(ms);
    let mut line = format!(
        "{name}: served {:.0}/s ({} failed, {} unsent of {}); p50 {p50:.2} p99 {p99:.2} \
         p99.9 {p999:.2} max {max:.1} ms; slowest 100 ms at {:.1} s ({:.1} ms); sent \
         late p99 {:.2} ms; cache {} hits, {} misses; checkpoint +{}",
        outcome.served as f64 / outcome.seconds,
        outcome.failed,
        outcome.unsent,
        outcome.scheduled,
        outcome.worst_window[0] as f64 / 1e3,
        ms(outcome.worst_window[1]),
        ms(outcome.late_us[1]),
        after.cache_hits - before.cache_hits,
        after.cache_misses - before.cache_misses,
        after.checkpoint.saturating_sub(before.checkpoint),
    );
    // CPU per read × reads ÷ wall time: each group's share of one core over the step.
    let wall = (after.at - before.at).as_seconds_f64();
    let share = |group: &str| {
        split
            .get(name, &format!("CPU per read: {group}"))
            .map(|us| us * outcome.served as f64 / 1e6 / wall * 100.0)
    };
    if let (Some(services), Some(generator), Some(postgres), Some(nats)) = (
        share("services"),
        share("load generator"),
        share("postgres"),
        share("nats-server"),
    ) {
        line += &format!(
            "; CPU % of one core: services {services:.0}, generator {generator:.0}, postgres \
             {postgres:.0}, nats {nats:.0}"
        );
    }
    if let Some(others) = split.get(name, "machine CPU: other programs") {
        line += &format!("; other programs {others:.0} % of the machine");
    }
    line
}

/// When an autovacuum or autoanalyze last ran on a table, if ever.
type LastRun = Option<DateTime<Utc>>;

/// Prints each autovacuum and autoanalyze of the read model's tables since the first step
/// began, and the step it fell in (PostgreSQL keeps only the last of each per table).
async fn print_autovacuums(
    stack: &Stack,
    steps: &[(String, DateTime<Utc>, DateTime<Utc>)],
) -> anyhow::Result<()> {
    let pool = sqlx::PgPool::connect(&stack.db.url).await?;
    let runs: Vec<(String, LastRun, LastRun)> = sqlx::query_as(
        "SELECT relname::text, last_autovacuum, last_autoanalyze FROM pg_stat_user_tables",
    )
    .fetch_all(&pool)
    .await?;
    pool.close().await;
    let Some(first) = steps.first().map(|(_, from, _)| *from) else {
        return Ok(());
    };
    for (table, vacuumed, analyzed) in runs {
        for (what, at) in [("autovacuum", vacuumed), ("autoanalyze", analyzed)] {
            let Some(at) = at.filter(|at| *at >= first) else {
                continue;
            };
            let during = steps
                .iter()
                .find(|(_, from, to)| *from <= at && at <= *to)
                .map_or("between steps", |(step, ..)| step.as_str());
            println!("{what} of {table} at {at}: {during}");
        }
    }
    Ok(())
}
