//! seed-000: `PUT /v1/balances` with 100,000 users — time to the `202`, and time until every
//! job is completed and visible in the query API.

use crate::report::Report;
use crate::stack::{Callers, Stack, Topology};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value, json};
use std::time::{Duration, Instant};

/// `label` names the scenario's row (`seed-000 (N users)` plus the label, if any).
pub async fn run(
    report: &mut Report,
    items: usize,
    topology: Topology,
    label: &str,
) -> anyhow::Result<()> {
    let stack = Stack::start(topology).await?;
    // Balance batches are admin-only.
    let admin = Callers::mint()?.admin;
    let body: Map<String, Value> = (0..items)
        .map(|i| (format!("user-{i:06}"), json!(1_000 + (i % 1_000) as i64)))
        .collect();
    let body = Value::Object(body);
    let http = reqwest::Client::new();
    let name = format!("seed-000 ({items} users){label}");
    let cpu = crate::cpu::Meter::start(&stack.db.url);
    let recording = crate::profile::Recording::start(&name)?;
    let started = Instant::now();
    let response = http
        .put(format!("{}/v1/balances", stack.commands.base))
        .bearer_auth(&admin)
        .json(&body)
        .send()
        .await?;
    anyhow::ensure!(
        response.status().as_u16() == 202,
        "PUT /v1/balances answered {}",
        response.status()
    );
    let accepted = started.elapsed();
    let answer: Value = response.json().await?;
    let batch_id = answer["batch_id"].as_str().unwrap_or_default().to_owned();
    let bar = ProgressBar::new(items as u64);
    if let Ok(style) =
        ProgressStyle::with_template("seed-000 {bar:40} {pos}/{len} jobs completed {elapsed}")
    {
        bar.set_style(style);
    }
    let deadline = started + Duration::from_secs(600);
    // When the batch executor has applied every chunk (the journal holds every item)...
    stack.executor_done("balance-batches", deadline).await?;
    let journaled = started.elapsed();
    // ...and when the read model shows every job completed.
    loop {
        let batch = stack
            .queries
            .get(&format!("/v1/batches/{batch_id}"), &admin)
            .await;
        bar.set_position(batch.body["completed"].as_u64().unwrap_or(0));
        if batch.body["status"] == "done" {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the batch did not finish: {:?}",
            batch.body
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let done = started.elapsed();
    recording.stop()?;
    bar.finish_and_clear();
    report.add_ms(&name, "time to 202", accepted);
    report.add_ms(&name, "time until every item is journaled", journaled);
    report.add_ms(&name, "time until all jobs visible", done);
    report.add_rate(&name, "items/s end to end", items, done, "items/s");
    cpu.report(report, &name, items as f64, "item");
    stack.stop().await
}
