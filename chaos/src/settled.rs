//! Once the run has quiesced (every client finished, no faults): the read model once the
//! projector has caught up, the whole journal, `projector verify`, and every replica's copy.

use crate::audit::Violations;
use crate::processes::Cluster;
use crate::{STREAM, workload};
use http_edge::headers::LEDGER_MIN_SEQ;
use ledger_nats::direct::{self, NextPage};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long the projector may take to catch up after the run.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(120);

/// The read model's balances once it has caught up with `seq`, listed in one request.
pub(crate) async fn read_model_at(
    http: &reqwest::Client,
    cluster: &Cluster,
    token: &str,
    accounts: usize,
    seq: u64,
) -> anyhow::Result<BTreeMap<String, (i64, u64)>> {
    let deadline = Instant::now() + CATCH_UP_TIMEOUT;
    let url = format!(
        "{}/v1/accounts?owner_id={}&limit={accounts}",
        cluster.query_api.base_url(),
        workload::OWNER
    );
    loop {
        let answer = http
            .get(&url)
            .bearer_auth(token)
            .header(LEDGER_MIN_SEQ, seq.to_string())
            .send()
            .await;
        if let Ok(answer) = answer
            && answer.status().is_success()
        {
            let body: serde_json::Value = answer.json().await?;
            let mut listed = BTreeMap::new();
            for item in body["items"].as_array().into_iter().flatten() {
                listed.insert(
                    item["account_id"].as_str().unwrap_or_default().to_owned(),
                    (
                        item["balance"].as_i64().unwrap_or(i64::MIN),
                        item["version"].as_u64().unwrap_or(0),
                    ),
                );
            }
            return Ok(listed);
        }
        if Instant::now() > deadline {
            anyhow::bail!("the projector did not reach seq {seq} within {CATCH_UP_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How long the whole-journal read waits, without progress, for a replica that trails the
/// leader before it reads from the leader itself: the replicas check below allows a minute
/// for them to agree.
const REPLICA_CATCH_UP_WAIT: Duration = Duration::from_secs(60);

/// Every message of the journal, in order, up to the end its leader holds: a replica that
/// trails, or whose store fails, does not cut it short.
pub(crate) async fn whole_journal(
    nats: &async_nats::Client,
) -> anyhow::Result<Vec<ledger_nats::Stored>> {
    let journal = direct::JetStream {
        nats,
        stream: STREAM,
    };
    let mut catch_up = direct::CatchUp::new(REPLICA_CATCH_UP_WAIT);
    let mut all = Vec::new();
    let mut next = 1;
    loop {
        match direct::next_page(&journal, next, &mut catch_up).await? {
            NextPage::Messages(page) => {
                next = page.last().map_or(next, |last| last.seq + 1);
                all.extend(page);
            }
            NextPage::End(_) => return Ok(all),
        }
    }
}

/// How long the replicas may take to agree once the run has quiesced.
const REPLICAS_AGREE_TIMEOUT: Duration = Duration::from_secs(60);

/// Every node holds the whole journal: once quiet, each node's own copy of the stream (from
/// its monitoring endpoint) has as many messages and the same last sequence as the stream.
///
/// The stream may still grow after the clients stopped (`last_seq` is read then): a writer
/// settling a commit of unknown outcome resends it for up to ~20 s after its caller gave
/// up. So each round compares the nodes with the stream as its leader says it is now, which
/// must not be behind `last_seq`.
pub(crate) async fn replicas_agree(
    nodes: &harness::NatsCluster,
    nats: &async_nats::Client,
    http: &reqwest::Client,
    last_seq: u64,
    violations: &mut Violations,
) {
    let deadline = Instant::now() + REPLICAS_AGREE_TIMEOUT;
    loop {
        let states = nodes.replica_states(http, STREAM).await;
        let placement = harness::NatsCluster::placement(nats, STREAM).await;
        let stream_last = ledger_nats::stream::stream_last_seq(nats, STREAM)
            .await
            .ok()
            .filter(|seq| *seq >= last_seq);
        let agree = stream_last.is_some_and(|stream_last| {
            states.iter().all(|(_, state)| {
                state.is_some_and(|(messages, last)| last == stream_last && messages == stream_last)
            })
        });
        if let (true, Some(stream_last)) = (agree, stream_last) {
            let late = match stream_last - last_seq {
                0 => String::new(),
                n => format!("; {n} appended after the clients stopped"),
            };
            println!(
                "replicas: every node holds {stream_last} messages ({}){late}",
                states
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return;
        }
        if Instant::now() > deadline {
            violations.add(
                "replicas_diverge",
                format!(
                    "after {REPLICAS_AGREE_TIMEOUT:?} the nodes hold (messages, last seq) \
                     {states:?}; the stream ends at {stream_last:?} (at {last_seq} when the \
                     clients stopped); placement {placement:?}"
                ),
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Runs `projector verify` (the binary, as an operator would) against the run's servers.
pub(crate) fn verify(
    bin_dir: &std::path::Path,
    cluster: &Cluster,
    violations: &mut Violations,
) -> anyhow::Result<()> {
    let out = std::process::Command::new(bin_dir.join("projector"))
        .arg("verify")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .envs(cluster.projector_env())
        .env("LOG_FORMAT", "text")
        .env("RUST_LOG", "warn")
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        violations.add(
            "verify_failed",
            format!(
                "projector verify exited {}: {}{}",
                out.status,
                stdout,
                String::from_utf8_lossy(&out.stderr)
            ),
        );
    }
    println!("{}", stdout.trim_end());
    Ok(())
}
