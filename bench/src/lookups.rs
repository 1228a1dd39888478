//! Transfer look-ups: what a transfer's first reversal reads to find its transfer, through the
//! read model (as deployed) and through the journal alone (ADR 0018's addendum) — for a
//! transfer at the end of a busy stretch of the journal, and for an id that names no transfer
//! but whose window covers that whole stretch (what anyone can send).

use crate::report::Report;
use crate::stack::{Callers, STREAM, Stack, Topology, open_accounts, set_balances};
use command_api::lookup::{self, Sources, WindowReads};
use serde_json::json;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// `messages`: account messages written into the stretch (with a balance batch, the fastest
/// way to write them); `samples`: look-ups timed per case, the median reported.
pub async fn run(report: &mut Report, messages: usize, samples: usize) -> anyhow::Result<()> {
    let stack = Stack::start(Topology::Durable).await?;
    let callers = Callers::mint()?;
    open_accounts(&stack, &callers, "lookup-", 2, 1_000_000).await?;
    // Minted before the stretch: its window holds all of it.
    let unknown = Uuid::now_v7();
    set_balances(&stack, &callers.admin, "stretch-", messages, 1).await?;
    // At the stretch's end: the first seconds of its window (the clock skew allowed) are full.
    let sent = stack
        .commands
        .post(
            "/v1/transfers",
            &callers.service,
            json!({"from_account_id": "lookup-0", "to_account_id": "lookup-1", "amount": 1}),
        )
        .await;
    anyhow::ensure!(sent.status.as_u16() == 201, "transfer: {:?}", sent.body);
    let transfer = sent.body["transfer_id"]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| anyhow::anyhow!("no transfer id in {:?}", sent.body))?;
    stack.projection_trail().await?;
    let pool = read_model::connect(&stack.db.url, "ledger", "tally-bench", 2).await?;
    let nats = stack.nats.client().await?;
    // One look-up at a time: the cap never makes one wait.
    let window_reads = WindowReads::new(1);
    for (case, id) in [("a transfer", transfer), ("an unknown id", unknown)] {
        for (through, read_model) in [("read model", Some(&pool)), ("journal alone", None)] {
            let sources = Sources {
                nats: &nats,
                stream: STREAM,
                read_model,
                window_reads: &window_reads,
            };
            let mut times = Vec::with_capacity(samples);
            let mut messages_read = 0;
            for _ in 0..samples.max(1) {
                let started = Instant::now();
                let found = lookup::transfer(sources, id).await?;
                times.push(started.elapsed());
                anyhow::ensure!(
                    found.transfer.is_some() == (id == transfer),
                    "{case} through the {through}: {found:?}"
                );
                messages_read = found.messages_read;
            }
            times.sort();
            let median = times
                .get(times.len() / 2)
                .copied()
                .unwrap_or(Duration::ZERO);
            let scenario = format!("look-up, {case}, {through}");
            report.add(&scenario, "median", median.as_secs_f64() * 1e3, "ms");
            report.add(
                &scenario,
                "journal messages read",
                messages_read as f64,
                "msgs",
            );
        }
    }
    report.add(
        "look-up, an unknown id, journal alone",
        "account messages in its window",
        messages as f64,
        "msgs",
    );
    stack.stop().await
}
