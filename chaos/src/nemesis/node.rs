//! Faults on the NATS nodes of a three-node cluster, each once the cluster is whole (a leader,
//! every replica current): a node killed, frozen, cut off, its disk lost or its power cut — or
//! the power of all three at once.

use super::Fault;
use super::{FaultCounts, KillFailed};
use crate::processes::{Cluster, Journal};
use harness::NatsCluster;
use std::time::{Duration, Instant};

/// How long a node stays frozen or cut off: longer than the Raft election timeout
/// (nats-server draws it from 4–9 s), so that the others elect a new leader meanwhile.
const ISOLATION_MS: (u64, u64) = (10_000, 12_000);

/// How long the cluster may take to have a leader with every replica current again after a
/// node fault (a wiped node copies the whole journal back).
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// Every node killed, every store's unsynced writes lost, the three started together on what
/// survived — once the cluster is whole (a leader, every replica current).
pub(super) async fn cluster_power_cut(
    cluster: &mut Cluster,
    outage: Duration,
    counts: &mut FaultCounts,
) -> anyhow::Result<()> {
    let Journal::Replicated(nodes) = &mut cluster.nats else {
        anyhow::bail!("cluster-power-cut needs a cluster (--cluster)");
    };
    if cluster.disks.len() != harness::cluster::NODES {
        anyhow::bail!("cluster-power-cut: the nodes' stores are not on lazy disks");
    }
    let client = ledger_nats::connect(&nodes.url(), "tally-chaos-nemesis").await?;
    if whole(nodes, &client, counts).await.is_none() {
        return Ok(());
    }
    drop(client);
    let all: Vec<usize> = (0..harness::cluster::NODES).collect();
    let killed: Vec<Result<(), String>> = all.iter().map(|&index| nodes.kill(index)).collect();
    for disk in &mut cluster.disks {
        disk.power_cut()?;
    }
    tokio::time::sleep(outage).await;
    tokio::task::block_in_place(|| nodes.start_nodes(&all)).map_err(|e| anyhow::anyhow!(e))?;
    for result in killed {
        result.map_err(KillFailed)?;
    }
    Ok(())
}

/// One fault on one NATS node of the cluster, once the cluster is whole.
pub(super) async fn node_fault(
    cluster: &mut Cluster,
    fault: Fault,
    outage: Duration,
    counts: &mut FaultCounts,
) -> anyhow::Result<()> {
    let Journal::Replicated(nodes) = &mut cluster.nats else {
        anyhow::bail!("{fault} needs a cluster (--cluster)");
    };
    let client = ledger_nats::connect(&nodes.url(), "tally-chaos-nemesis").await?;
    let Some(leader) = whole(nodes, &client, counts).await else {
        return Ok(());
    };
    // Partitions, disk losses and power cuts alternate between the leader and a follower.
    let leader_turn = match fault {
        Fault::NatsLeaderKill | Fault::NatsLeaderPause => true,
        Fault::NatsFollowerKill => false,
        _ => counts.injected.get(&fault).copied().unwrap_or(0) % 2 == 0,
    };
    let target = if leader_turn {
        counts.on_leader += 1;
        leader
    } else {
        counts.on_follower += 1;
        (leader + 1 + rand::random_range(0..harness::cluster::NODES - 1)) % harness::cluster::NODES
    };
    let isolation = Duration::from_millis(rand::random_range(ISOLATION_MS.0..=ISOLATION_MS.1));
    let fail = |e: String| anyhow::anyhow!(e);
    match fault {
        Fault::NatsLeaderKill | Fault::NatsFollowerKill => {
            let killed = nodes.kill(target);
            tokio::time::sleep(outage).await;
            tokio::task::block_in_place(|| nodes.start_node(target)).map_err(fail)?;
            killed.map_err(KillFailed)?;
        }
        Fault::NatsLeaderPause => {
            nodes.pause(target).map_err(fail)?;
            tokio::time::sleep(isolation).await;
            let moved = led_by_another(&client, target, nodes).await;
            nodes.resume(target).map_err(fail)?;
            counts.leader_changes += u64::from(moved);
        }
        Fault::Partition => {
            nodes.cut(target).map_err(fail)?;
            tokio::time::sleep(isolation).await;
            let moved = leader_turn && led_by_another(&client, target, nodes).await;
            nodes.heal(target).map_err(fail)?;
            counts.leader_changes += u64::from(moved);
        }
        Fault::DiskLoss => {
            let killed = nodes.kill(target);
            nodes.wipe_store(target).map_err(fail)?;
            tokio::time::sleep(outage).await;
            tokio::task::block_in_place(|| nodes.start_node(target)).map_err(fail)?;
            killed.map_err(KillFailed)?;
        }
        Fault::NodePowerCut => {
            let disk = cluster.disks.get_mut(target).ok_or_else(|| {
                anyhow::anyhow!("node-power-cut: the store is not on a lazy disk")
            })?;
            let killed = nodes.kill(target);
            disk.power_cut()?;
            tokio::time::sleep(outage).await;
            tokio::task::block_in_place(|| nodes.start_node(target)).map_err(fail)?;
            killed.map_err(KillFailed)?;
        }
        _ => unreachable!("node faults only"),
    }
    Ok(())
}

/// Waits until the stream has a leader and every replica is current; returns the leader's
/// index, or records that the cluster did not recover.
async fn whole(
    nodes: &NatsCluster,
    client: &async_nats::Client,
    counts: &mut FaultCounts,
) -> Option<usize> {
    let started = Instant::now();
    let mut last = String::from("no answer");
    while started.elapsed() < RECOVERY_TIMEOUT {
        match NatsCluster::placement(client, crate::STREAM).await {
            Ok(placement) if placement.all_current(harness::cluster::NODES) => {
                if let Some(index) = placement.leader.as_deref().and_then(|l| nodes.index_of(l)) {
                    return Some(index);
                }
            }
            Ok(placement) => last = format!("{placement:?}"),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    counts.not_recovered.push(format!(
        "no leader with every replica current within {RECOVERY_TIMEOUT:?}: {last}"
    ));
    None
}

/// Whether a node other than `isolated` leads the stream now (asked of the reachable nodes).
async fn led_by_another(client: &async_nats::Client, isolated: usize, nodes: &NatsCluster) -> bool {
    let isolated = nodes.names()[isolated].clone();
    matches!(
        NatsCluster::placement(client, crate::STREAM).await,
        Ok(placement) if placement.leader.as_deref().is_some_and(|l| l != isolated)
    )
}
