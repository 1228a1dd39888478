//! Readers that check every snapshot of the bank while it runs: the total is conserved and no
//! balance is below its overdraft limit (0 here).
//!
//! - The query API lists all accounts of the bank's owner in one request, answered by one SQL
//!   statement, so by one snapshot of one checkpoint; `Ledger-Min-Seq` asks for at least the
//!   newest commit a client was told about. Successive reads of one reader must never go back
//!   in time (the checkpoint is durable).
//! - The journal is read with one `multi_last` direct get cut at a batch commit sequence
//!   (`up_to_seq`): the last message of every account subject as of that point, one
//!   consistent cut.

use crate::audit::Violations;
use crate::workload::{OWNER, Progress, account_id};
use http_edge::headers::{LEDGER_MIN_SEQ, LEDGER_SEQ};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Pause between two reads of one reader: enough reads to catch a bad snapshot, few enough to
/// leave the two cores to the system under test.
const READ_PAUSE: Duration = Duration::from_millis(50);

/// What one reader saw.
#[derive(Debug, Default)]
pub struct ReadCounts {
    /// Read from the journal (else through the query API).
    pub journal: bool,
    pub ok: u64,
    /// No answer, or a refusal such as `503 projection_lagging`: not a violation.
    pub unavailable: u64,
    pub violations: Violations,
}

/// A balance and version per account.
type Snapshot = HashMap<String, (i64, u64)>;

fn check_snapshot(
    source: &str,
    at_seq: u64,
    snapshot: &Snapshot,
    accounts: usize,
    total: i64,
    violations: &mut Violations,
) {
    if snapshot.len() != accounts {
        violations.add(
            "read_missing_accounts",
            format!(
                "{source} at seq {at_seq}: {} of {accounts} accounts",
                snapshot.len()
            ),
        );
        return;
    }
    let sum: i64 = snapshot.values().map(|(balance, _)| balance).sum();
    if sum != total {
        violations.add(
            "read_total_not_conserved",
            format!("{source} at seq {at_seq}: total {sum}, expected {total}: {snapshot:?}"),
        );
    }
    for (id, (balance, _)) in snapshot {
        if *balance < 0 {
            violations.add(
                "read_balance_below_limit",
                format!("{source} at seq {at_seq}: {id} has {balance}"),
            );
        }
    }
}

/// Lists the bank through the query API until `stop`.
pub async fn query_reader(
    http: reqwest::Client,
    base: String,
    token: String,
    accounts: usize,
    total: i64,
    progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
) -> ReadCounts {
    let mut counts = ReadCounts::default();
    let mut newest: HashMap<String, u64> = HashMap::new();
    let mut newest_seq = 0u64;
    let url = format!("{base}/v1/accounts?owner_id={OWNER}&limit={accounts}");
    loop {
        let min_seq = progress.acked_seq.load(Ordering::Relaxed);
        let read = async {
            let response = http
                .get(&url)
                .bearer_auth(&token)
                .header(LEDGER_MIN_SEQ, min_seq.to_string())
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .ok()?;
            if !response.status().is_success() {
                return None;
            }
            let seq: u64 = response
                .headers()
                .get(LEDGER_SEQ)?
                .to_str()
                .ok()?
                .parse()
                .ok()?;
            let body: serde_json::Value = response.json().await.ok()?;
            let mut snapshot = Snapshot::new();
            for item in body["items"].as_array()? {
                snapshot.insert(
                    item["account_id"].as_str()?.to_owned(),
                    (item["balance"].as_i64()?, item["version"].as_u64()?),
                );
            }
            Some((seq, snapshot))
        };
        match read.await {
            None => counts.unavailable += 1,
            Some((seq, snapshot)) => {
                counts.ok += 1;
                let source = "query API";
                check_snapshot(
                    source,
                    seq,
                    &snapshot,
                    accounts,
                    total,
                    &mut counts.violations,
                );
                if seq < min_seq {
                    counts.violations.add(
                        "read_older_than_asked",
                        format!("{source}: asked for seq ≥ {min_seq}, served {seq}"),
                    );
                }
                if seq < newest_seq {
                    counts.violations.add(
                        "read_went_back_in_time",
                        format!("{source}: served seq {seq} after {newest_seq}"),
                    );
                }
                newest_seq = newest_seq.max(seq);
                for (id, (_, version)) in snapshot {
                    let seen = newest.entry(id.clone()).or_default();
                    if version < *seen {
                        counts.violations.add(
                            "read_went_back_in_time",
                            format!("{source}: {id} at version {version} after {seen}"),
                        );
                    }
                    *seen = (*seen).max(version);
                }
            }
        }
        if paused_or_stopped(&stop).await {
            return counts;
        }
    }
}

/// Reads the bank straight from the journal until `stop`.
///
/// `replicated`: any replica may answer a direct get, and one that has not yet applied up to
/// the cut answers "no results" (nats-server 2.15 finds no message block for a sequence past
/// its own last). Such an answer — no account at all, where every account exists before any
/// cut — says nothing about the journal and counts as unavailable; an answer with some but
/// not all accounts is still a violation.
pub async fn journal_reader(
    nats: async_nats::Client,
    stream: String,
    replicated: bool,
    accounts: usize,
    total: i64,
    progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
) -> ReadCounts {
    let mut counts = ReadCounts {
        journal: true,
        ..ReadCounts::default()
    };
    let subjects: Vec<String> = (0..accounts)
        .map(|i| format!("{}{}", events::subjects::ACCOUNT_PREFIX, account_id(i)))
        .collect();
    loop {
        let cut = progress.acked_seq.load(Ordering::Relaxed);
        let read =
            ledger_nats::direct::last_for_subjects_up_to(&nats, &stream, &subjects, cut).await;
        match read {
            Err(_) => counts.unavailable += 1,
            Ok(messages) if messages.is_empty() && replicated => counts.unavailable += 1,
            Ok(messages) => {
                counts.ok += 1;
                let mut snapshot = Snapshot::new();
                for message in messages {
                    let payload: serde_json::Value =
                        serde_json::from_slice(&message.payload).unwrap_or_default();
                    let id = message
                        .subject
                        .strip_prefix(events::subjects::ACCOUNT_PREFIX)
                        .unwrap_or_default()
                        .to_owned();
                    if message.seq > cut {
                        counts.violations.add(
                            "read_beyond_cut",
                            format!("journal: {id} at seq {} past up_to_seq {cut}", message.seq),
                        );
                    }
                    let state = &payload["state"];
                    snapshot.insert(
                        id,
                        (
                            state["balance"].as_i64().unwrap_or(i64::MIN),
                            state["version"].as_u64().unwrap_or(0),
                        ),
                    );
                }
                check_snapshot(
                    "journal",
                    cut,
                    &snapshot,
                    accounts,
                    total,
                    &mut counts.violations,
                );
            }
        }
        if paused_or_stopped(&stop).await {
            return counts;
        }
    }
}

/// Sleeps between reads; true once asked to stop.
async fn paused_or_stopped(stop: &AtomicBool) -> bool {
    tokio::time::sleep(READ_PAUSE).await;
    stop.load(Ordering::Relaxed)
}
