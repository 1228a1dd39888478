//! Orders: C clients place N orders (`POST /v1/orders`) over funded accounts, as a shop's
//! back-end would, while the payment executor pays them. Reports how fast the orders were
//! accepted (the `202`s), the time until the last payment and until the read model shows every
//! order paid, and so the orders paid per second end to end: what the payment executor
//! sustains. Also how long each order waited between being placed and being paid.
//!
//! The clients run in this process, as the bulk scenario's do: a `202` is cheap beside the
//! payment each order starts.

use crate::executed::{place, report_placing, report_waited, shown, waited};
use crate::report::Report;
use crate::stack::{Callers, Stack, Topology, open_accounts};
use crate::transfers::FUNDS;
use serde_json::json;
use std::time::{Duration, Instant};

/// The payment executor's durable consumer (`nats/payments-consumer.json`).
const CONSUMER: &str = "payments";

/// Longest wait for the payments once every order is placed.
const PAYING_MAX: Duration = Duration::from_secs(600);

/// Accounts and orders of the scenario: tiny with `--quick`.
pub fn size(quick: bool) -> (usize, usize) {
    if quick { (20, 500) } else { (1_000, 20_000) }
}

/// `label` names the scenario's row (`orders (N by C clients)` plus the label, if any).
pub async fn run(
    report: &mut Report,
    accounts: usize,
    orders: usize,
    clients: usize,
    topology: Topology,
    label: &str,
) -> anyhow::Result<()> {
    let stack = Stack::start(topology).await?;
    let callers = Callers::mint()?;
    open_accounts(&stack, &callers, "buyer-", accounts, FUNDS).await?;
    let name = format!("orders ({orders} by {clients} clients){label}");
    let cpu = crate::cpu::Meter::start(&stack.db.url);
    let recording = crate::profile::Recording::start(&name)?;
    let (started, started_at) = (Instant::now(), chrono::Utc::now());
    let latency = place(&stack, &callers.service, clients, orders, 202, move |i| {
        let body = json!({"account_id": format!("buyer-{}", i % accounts),
            "amount": 1 + (i % 100) as i64});
        ("/v1/orders".to_owned(), body)
    })
    .await?;
    let placed = started.elapsed();
    let deadline = Instant::now() + PAYING_MAX;
    // Every order is paid once the read model shows every order there paid...
    let db = sqlx::PgPool::connect(&stack.db.url).await?;
    let visible = shown(&db, ("orders", "paid"), orders, orders, (started, deadline)).await?;
    // ...which it shows a projection's lag after the last payment was decided (its event's
    // `occurred_at`, the order's `updated_at`; the services' clock is this process's)...
    let (last_paid,): (chrono::DateTime<chrono::Utc>,) =
        sqlx::query_as("SELECT max(updated_at) FROM ledger.orders")
            .fetch_one(&db)
            .await?;
    let last_paid = (last_paid - started_at).to_std().unwrap_or_default();
    // ...and the executor is idle once it has also acknowledged the `order_paid` messages its
    // consumer delivers back to it (the order's subject carries every event of the order).
    stack.executor_done(CONSUMER, deadline).await?;
    let idle = started.elapsed();
    // How long each order waited for its payment: from the decision that placed it to the
    // one that paid it (its `created_at` and `updated_at`).
    let waits = waited(&db, ("orders", "paid"), "created_at").await?;
    db.close().await;
    recording.stop()?;
    report.add_rate(&name, "orders placed/s (202)", orders, placed, "orders/s");
    report_placing(report, &name, &latency);
    report_waited(report, &name, "placed → paid", waits);
    report.add_ms(&name, "time until the last payment", last_paid);
    report.add_ms(&name, "time until all shown paid", visible);
    report.add_ms(&name, "time until the executor is idle", idle);
    report.add_rate(
        &name,
        "orders paid/s end to end",
        orders,
        visible,
        "orders/s",
    );
    cpu.report(report, &name, orders as f64, "order");
    stack.stop().await
}
