//! The cost and the recovery of a replicated journal, on this one machine (so it measures
//! replication's work, not a network): transfers on R1 and on R3 in the same run, seed-000 and
//! orders on R3, and how long writes take to succeed again after the stream's leader is killed
//! under load — over several kills — with a count of acknowledged writes that did not survive.

use crate::report::Report;
use crate::stack::{Callers, Journal, STREAM, Stack, Topology, open_accounts};
use crate::transfers::{self, Shape};
use crate::{orders, seed};
use harness::NatsCluster;
use http_edge::headers::{LEDGER_MIN_SEQ, LEDGER_SEQ};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a probe deposit may take: well under the time an election takes, so that the
/// first success after a kill is seen within a probe's length.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Pause between probe deposits.
const PROBE_EVERY: Duration = Duration::from_millis(20);

/// How long to wait for writes to resume, or the cluster to settle, before giving up.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// Load on the cluster while its leader is killed: enough to keep batches in flight.
const LOAD_CLIENTS: usize = 16;

pub async fn run(
    report: &mut Report,
    quick: bool,
    clients: usize,
    seconds: u64,
    kills: usize,
    recovery_only: bool,
) -> anyhow::Result<()> {
    if recovery_only {
        return recovery(report, kills).await;
    }
    let accounts = if quick { 100 } else { 10_000 };
    let (r1, r3) = ("cluster: transfers R1", "cluster: transfers R3");
    transfers::run(report, r1, Shape::fresh(accounts, clients, seconds)).await?;
    transfers::run(
        report,
        r3,
        Shape {
            topology: Topology::Replicated,
            ..Shape::fresh(accounts, clients, seconds)
        },
    )
    .await?;
    if let (Some(one), Some(three)) = (
        report.get(r1, "committed transfers/s"),
        report.get(r3, "committed transfers/s"),
    ) {
        report.add(
            "cluster: replication cost",
            "R3 ÷ R1 committed transfers/s",
            three / one,
            "ratio (target ≥ 0.5)",
        );
    }
    let items = if quick { 1_000 } else { 100_000 };
    seed::run(report, items, Topology::Replicated, " on R3").await?;
    let (accounts, orders) = orders::size(quick);
    orders::run(
        report,
        accounts,
        orders,
        clients,
        Topology::Replicated,
        " on R3",
    )
    .await?;
    recovery(report, kills).await
}

/// One probe deposit: when it was sent, when its answer came, whether it was accepted, and
/// its reference (to find it in the journal afterwards).
struct Probe {
    sent: Instant,
    answered: Instant,
    accepted: bool,
    reference: String,
    /// The commit's `Ledger-Seq`, when accepted.
    seq: Option<u64>,
}

async fn recovery(report: &mut Report, kills: usize) -> anyhow::Result<()> {
    let mut stack = Stack::start(Topology::Replicated).await?;
    let callers = Callers::mint()?;
    let accounts = 100;
    open_accounts(&stack, &callers, "acct-", accounts, transfers::FUNDS).await?;
    let service = callers.service;
    let opened = stack
        .commands
        .post("/v1/accounts", &service, json!({"account_id": "probe"}))
        .await;
    anyhow::ensure!(
        opened.status.is_success(),
        "probe account: {:?}",
        opened.body
    );

    let stop = Arc::new(AtomicBool::new(false));
    let mut load = tokio::task::JoinSet::new();
    for _ in 0..LOAD_CLIENTS {
        let (commands, service, stop) = (stack.commands.clone(), service.clone(), stop.clone());
        load.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let from = rand::random_range(0..accounts);
                let to = (from + rand::random_range(1..accounts)) % accounts;
                let body = json!({"from_account_id": format!("acct-{from}"),
                    "to_account_id": format!("acct-{to}"), "amount": 1});
                let answer = commands.post("/v1/transfers", &service, body).await;
                if !answer.status.is_success() {
                    tokio::time::sleep(PROBE_EVERY).await;
                }
            }
        });
    }
    let probes: Arc<Mutex<Vec<Probe>>> = Arc::default();
    let prober = tokio::spawn(probe_loop(
        stack.commands.base.clone(),
        service.clone(),
        probes.clone(),
        stop.clone(),
    ));

    let client = stack.nats.client().await?;
    let Journal::Cluster(cluster) = &mut stack.nats else {
        anyhow::bail!("the recovery scenario needs a cluster");
    };
    let mut recoveries = Vec::new();
    let mut reads = Vec::new();
    for kill in 0..kills {
        let leader = settled_leader(cluster, &client).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let killed_at = Instant::now();
        cluster.kill(leader).map_err(|e| anyhow::anyhow!(e))?;
        let (resumed, seq) = loop {
            let first = probes
                .lock()
                .map_err(|_| anyhow::anyhow!("probe log poisoned"))?
                .iter()
                .filter(|p| p.accepted && p.sent >= killed_at)
                .min_by_key(|p| p.answered)
                .map(|p| (p.answered, p.seq.unwrap_or(0)));
            if let Some((at, seq)) = first {
                break (at.duration_since(killed_at), seq);
            }
            anyhow::ensure!(
                killed_at.elapsed() < RECOVERY_TIMEOUT,
                "writes did not resume within {RECOVERY_TIMEOUT:?} of kill {}",
                kill + 1
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        // The first write after the kill, visible in the query API: the read side recovered.
        let visible = loop {
            let read = stack
                .queries
                .get_with(
                    "/v1/accounts/probe/balance",
                    Some(&service),
                    &[(LEDGER_MIN_SEQ.as_str(), &seq.to_string())],
                )
                .await;
            if read.status.as_u16() == 200 {
                break killed_at.elapsed();
            }
            anyhow::ensure!(
                killed_at.elapsed() < RECOVERY_TIMEOUT,
                "seq {seq} not visible within {RECOVERY_TIMEOUT:?} of kill {}",
                kill + 1
            );
        };
        println!(
            "leader kill {} at {}: {} killed, writes resumed after {:.2} s, visible in the \
             query API after {:.2} s",
            kill + 1,
            chrono::Utc::now() - chrono::TimeDelta::from_std(killed_at.elapsed())?,
            cluster.names()[leader],
            resumed.as_secs_f64(),
            visible.as_secs_f64()
        );
        recoveries.push(resumed);
        reads.push(visible);
        tokio::task::block_in_place(|| cluster.start_node(leader))
            .map_err(|e| anyhow::anyhow!(e))?;
    }
    stop.store(true, Ordering::Relaxed);
    while load.join_next().await.is_some() {}
    prober.await?;
    settled_leader(cluster, &client).await?;

    // Every accepted probe deposit is in the journal.
    let journaled = probe_references(&client).await?;
    let probes = std::mem::take(
        &mut *probes
            .lock()
            .map_err(|_| anyhow::anyhow!("probe log poisoned"))?,
    );
    let accepted: Vec<&Probe> = probes.iter().filter(|p| p.accepted).collect();
    let lost = accepted
        .iter()
        .filter(|p| !journaled.contains(&p.reference))
        .count();

    recoveries.sort();
    let name = "cluster: leader killed under load";
    let secs = |d: &Duration| d.as_secs_f64();
    report.add(name, "kills", recoveries.len() as f64, "");
    if let (Some(min), Some(max)) = (recoveries.first(), recoveries.last()) {
        report.add(name, "writes resume after (min)", secs(min), "s");
        report.add(
            name,
            "writes resume after (median)",
            secs(&recoveries[recoveries.len() / 2]),
            "s",
        );
        // Nearest rank: with fewer than 100 kills the p99 is the largest.
        let p99 = recoveries[(recoveries.len() * 99).div_ceil(100).saturating_sub(1)];
        report.add(
            name,
            "writes resume after (p99)",
            secs(&p99),
            "s (target ≤ 10)",
        );
        report.add(
            name,
            "writes resume after (max)",
            secs(max),
            "s (target ≤ 10)",
        );
    }
    reads.sort();
    if let Some(max) = reads.last() {
        report.add(
            name,
            "first write after the kill visible in the query API (max)",
            secs(max),
            "s",
        );
    }
    report.add(name, "probe deposits accepted", accepted.len() as f64, "");
    report.add(name, "accepted writes lost", lost as f64, "(target 0)");
    stack.stop().await
}

/// Deposits 1 into `probe` every [`PROBE_EVERY`], each with its own reference and a short
/// time-out, and logs every answer.
async fn probe_loop(
    base: String,
    service: String,
    probes: Arc<Mutex<Vec<Probe>>>,
    stop: Arc<AtomicBool>,
) {
    let Ok(http) = reqwest::Client::builder().timeout(PROBE_TIMEOUT).build() else {
        return;
    };
    while !stop.load(Ordering::Relaxed) {
        let reference = uuid::Uuid::now_v7().simple().to_string();
        let sent = Instant::now();
        let answer = http
            .post(format!("{base}/v1/accounts/probe/deposits"))
            .bearer_auth(&service)
            .json(&json!({"amount": 1, "reference": reference}))
            .send()
            .await;
        let (accepted, seq) = match answer {
            Ok(answer) if answer.status().as_u16() == 201 => (
                true,
                answer
                    .headers()
                    .get(LEDGER_SEQ)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok()),
            ),
            _ => (false, None),
        };
        if let Ok(mut log) = probes.lock() {
            log.push(Probe {
                sent,
                answered: Instant::now(),
                accepted,
                reference,
                seq,
            });
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
}

/// Waits until the stream has a leader and every replica is current; the leader's index.
async fn settled_leader(
    cluster: &NatsCluster,
    client: &async_nats::Client,
) -> anyhow::Result<usize> {
    let deadline = Instant::now() + RECOVERY_TIMEOUT;
    loop {
        if let Ok(placement) = NatsCluster::placement(client, STREAM).await
            && placement.all_current(harness::cluster::NODES)
            && let Some(leader) = placement
                .leader
                .as_deref()
                .and_then(|l| cluster.index_of(l))
        {
            return Ok(leader);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the cluster did not settle within {RECOVERY_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The references of every deposit on the probe account, read from the whole journal.
async fn probe_references(
    client: &async_nats::Client,
) -> anyhow::Result<std::collections::HashSet<String>> {
    let mut found = std::collections::HashSet::new();
    let mut next = 1;
    loop {
        let page = ledger_nats::direct::range(client, STREAM, next, 1_000).await?;
        let Some(last) = page.last() else {
            return Ok(found);
        };
        next = last.seq + 1;
        for message in page.iter().filter(|m| m.subject == "ledger.account.probe") {
            let event: serde_json::Value = serde_json::from_slice(&message.payload)?;
            if event["type"] == "funds_deposited"
                && let Some(reference) = event["reference"].as_str()
            {
                found.insert(reference.to_owned());
            }
        }
    }
}
