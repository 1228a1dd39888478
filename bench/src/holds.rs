//! Hold expiry: C clients place N holds (`POST /v1/accounts/{id}/holds`) that expire a second
//! after they are placed, as a card acquirer's authorizations would, in bulk; the hold-expiry
//! executor voids each when it comes due. Reports how fast the holds were placed, how late
//! each was voided (its `expires_at` to the decision that voided it), the time until the read
//! model shows every hold expired, and the CPU per hold.
//!
//! The clients run in this process, as the orders scenario's do.

use crate::orders::place;
use crate::report::Report;
use crate::stack::{Callers, Stack, Topology, open_accounts};
use crate::transfers::FUNDS;
use serde_json::json;
use std::time::{Duration, Instant};

/// Seconds from placing each hold to its expiry: the shortest the API allows.
const EXPIRES_IN_S: i64 = 1;

/// Longest wait for the expiries once every hold is placed.
const EXPIRING_MAX: Duration = Duration::from_secs(600);

/// Seconds until the holds already outstanding expire: well after the scenario ends.
const OUTSTANDING_EXPIRE_IN_S: i64 = 3600;

/// Accounts, holds outstanding before the measured phase (placed first, expiring in an hour,
/// as a day's card authorizations would be), and holds placed to expire a second later:
/// tiny with `--quick`.
pub fn size(quick: bool) -> (usize, usize, usize) {
    if quick {
        (20, 100, 500)
    } else {
        (1_000, 30_000, 20_000)
    }
}

pub async fn run(
    report: &mut Report,
    (accounts, outstanding, holds): (usize, usize, usize),
    clients: usize,
) -> anyhow::Result<()> {
    let stack = Stack::start(Topology::Durable).await?;
    let callers = Callers::mint()?;
    open_accounts(&stack, &callers, "card-", accounts, FUNDS).await?;
    place_holds(
        &stack,
        &callers,
        clients,
        accounts,
        outstanding,
        OUTSTANDING_EXPIRE_IN_S,
    )
    .await?;
    let name = format!("hold expiry ({holds} by {clients} clients, {outstanding} outstanding)");
    let cpu = crate::cpu::Meter::start(&stack.db.url);
    let recording = crate::profile::Recording::start(&name)?;
    let started = Instant::now();
    let latency = place_holds(&stack, &callers, clients, accounts, holds, EXPIRES_IN_S).await?;
    let placed = started.elapsed();
    let deadline = Instant::now() + EXPIRING_MAX;
    let db = sqlx::PgPool::connect(&stack.db.url).await?;
    let visible = loop {
        let (expired, all_rows): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE status = 'expired'), count(*) FROM ledger.holds",
        )
        .fetch_one(&db)
        .await?;
        anyhow::ensure!(
            all_rows <= (outstanding + holds) as i64,
            "{all_rows} holds in the read model, {} placed",
            outstanding + holds
        );
        if expired == holds as i64 {
            break started.elapsed();
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{expired} of {holds} holds shown expired"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // How late each hold was voided: from its `expires_at` to the decision that voided it
    // (the event's `occurred_at`, the read model's `updated_at`).
    let (late_p50, late_p99, late_max): (f64, f64, f64) = sqlx::query_as(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY late), \
                percentile_cont(0.99) WITHIN GROUP (ORDER BY late), max(late) \
         FROM (SELECT extract(epoch FROM updated_at - expires_at)::float8 * 1e3 AS late \
               FROM ledger.holds WHERE status = 'expired') AS expired",
    )
    .fetch_one(&db)
    .await?;
    db.close().await;
    recording.stop()?;
    let placing_ms = |q: f64| latency.value_at_quantile(q) as f64 / 1e3;
    report.add_rate(&name, "holds placed/s (201)", holds, placed, "holds/s");
    report.add(&name, "placing latency p50", placing_ms(0.50), "ms");
    report.add(&name, "placing latency p99", placing_ms(0.99), "ms");
    report.add(&name, "due → voided p50", late_p50, "ms");
    report.add(&name, "due → voided p99", late_p99, "ms");
    report.add(&name, "due → voided max", late_max, "ms");
    report.add_ms(&name, "time until all shown expired", visible);
    cpu.report(report, &name, holds as f64, "hold");
    stack.stop().await
}

/// `count` holds of 1 over the accounts in turn, each expiring `expires_in_s` after it is
/// placed; the `201`s' latencies (µs).
async fn place_holds(
    stack: &Stack,
    callers: &Callers,
    clients: usize,
    accounts: usize,
    count: usize,
    expires_in_s: i64,
) -> anyhow::Result<hdrhistogram::Histogram<u64>> {
    place(stack, &callers.service, clients, count, 201, move |i| {
        let path = format!("/v1/accounts/card-{}/holds", i % accounts);
        (path, json!({"amount": 1, "expires_in_s": expires_in_s}))
    })
    .await
}
