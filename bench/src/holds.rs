//! Hold expiry: C clients place N holds (`POST /v1/accounts/{id}/holds`) that expire a second
//! after they are placed, as a card acquirer's authorizations would, in bulk; the hold-expiry
//! executor voids each when it comes due. Reports how fast the holds were placed, how late
//! each was voided (its `expires_at` to the decision that voided it), the time until the read
//! model shows every hold expired, and the CPU per hold.
//!
//! The clients run in this process, as the orders scenario's do.

use crate::executed::{place, report_placing, report_waited, shown, waited};
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
    let visible = shown(
        &db,
        ("holds", "expired"),
        holds,
        outstanding + holds,
        (started, deadline),
    )
    .await?;
    // How late each hold was voided: from its `expires_at` to the decision that voided it.
    let lateness = waited(&db, ("holds", "expired"), "expires_at").await?;
    db.close().await;
    recording.stop()?;
    report.add_rate(&name, "holds placed/s (201)", holds, placed, "holds/s");
    report_placing(report, &name, &latency);
    report_waited(report, &name, "due → voided", lateness);
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
