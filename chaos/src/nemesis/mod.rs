//! The faults: one at a time, a component is killed without warning (or frozen, or cut off,
//! or its disk lost) and brought back after a short outage, round-robin over the enabled
//! kinds in shuffled order. Between faults it watches the services and restarts any that
//! exited on its own (counted, and a violation: a service must ride out its dependencies'
//! outages). A fault whose kill did not kill anything (the process was already gone) is
//! recorded as such and not counted as injected.
//!
//! On a three-node cluster the faults hit the NATS nodes one at a time — the fault model is
//! "any one node" — so before each node fault the nemesis waits until the stream has a leader
//! and both other replicas are current; a cluster that does not get there is a violation.

mod node;

use crate::processes::{Cluster, Journal, Service, projector_role};
use anyhow::Context;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// `kill -9` of the (active) projector, then a restart.
    Projector,
    /// `kill -9` of a command API, then a restart.
    CommandApi,
    /// `kill -9` of the query API, then a restart.
    QueryApi,
    /// `kill -9` of the single nats-server, then a restart on the same store directory.
    Nats,
    /// `pg_ctl stop -m immediate` of PostgreSQL, then a start (crash recovery).
    Postgres,
    /// `kill -9` of the single nats-server, then a power cut of its store's lazy filesystem
    /// (everything not fsynced is lost), a remount and a restart on what survived. Only when
    /// asked for (it needs FUSE).
    PowerCut,
    /// Cluster: `kill -9` of the stream's leader node, then a restart on its store.
    NatsLeaderKill,
    /// Cluster: `kill -9` of a follower node, then a restart on its store.
    NatsFollowerKill,
    /// Cluster: `SIGSTOP` of the leader for longer than an election takes, then `SIGCONT`.
    NatsLeaderPause,
    /// Cluster: a node's network link taken down (the leader every other time): cut off
    /// from the other nodes and from every client, then healed.
    Partition,
    /// Cluster: a node stopped, its store deleted, started empty (the leader every other
    /// time): it must catch up from the other two.
    DiskLoss,
    /// Cluster: `kill -9` of one node (the leader every other time), then a power cut of its
    /// store's lazy filesystem, a remount and a restart on what survived. Only when asked for.
    NodePowerCut,
    /// Cluster: all three nodes at once — `kill -9`, a power cut of every store, remounts,
    /// and the three started together on what survived (a data centre losing power). Only
    /// when asked for.
    ClusterPowerCut,
}

impl Fault {
    pub const ALL: [Fault; 13] = [
        Fault::Projector,
        Fault::CommandApi,
        Fault::QueryApi,
        Fault::Nats,
        Fault::Postgres,
        Fault::PowerCut,
        Fault::NatsLeaderKill,
        Fault::NatsFollowerKill,
        Fault::NatsLeaderPause,
        Fault::Partition,
        Fault::DiskLoss,
        Fault::NodePowerCut,
        Fault::ClusterPowerCut,
    ];

    /// What a run injects unless told otherwise: every kind its topology has.
    pub fn defaults(cluster: bool) -> Vec<Fault> {
        Fault::ALL
            .into_iter()
            .filter(|f| f.needs_cluster() == Some(cluster) || f.needs_cluster().is_none())
            .filter(|f| !f.cuts_power())
            .collect()
    }

    /// Power cuts need the stores on the lazy filesystem (FUSE): asked for, never a default.
    pub fn cuts_power(self) -> bool {
        matches!(
            self,
            Fault::PowerCut | Fault::NodePowerCut | Fault::ClusterPowerCut
        )
    }

    /// `Some(true)`: only on a cluster; `Some(false)`: only on a single server.
    pub fn needs_cluster(self) -> Option<bool> {
        match self {
            Fault::Nats | Fault::PowerCut => Some(false),
            Fault::NatsLeaderKill
            | Fault::NatsFollowerKill
            | Fault::NatsLeaderPause
            | Fault::Partition
            | Fault::DiskLoss
            | Fault::NodePowerCut
            | Fault::ClusterPowerCut => Some(true),
            Fault::Projector | Fault::CommandApi | Fault::QueryApi | Fault::Postgres => None,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fault::Projector => "projector",
            Fault::CommandApi => "command-api",
            Fault::QueryApi => "query-api",
            Fault::Nats => "nats",
            Fault::Postgres => "postgres",
            Fault::PowerCut => "power-cut",
            Fault::NatsLeaderKill => "nats-leader-kill",
            Fault::NatsFollowerKill => "nats-follower-kill",
            Fault::NatsLeaderPause => "nats-leader-pause",
            Fault::Partition => "partition",
            Fault::DiskLoss => "disk-loss",
            Fault::NodePowerCut => "node-power-cut",
            Fault::ClusterPowerCut => "cluster-power-cut",
        })
    }
}

impl FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fault::ALL
            .into_iter()
            .find(|f| f.to_string() == s)
            .ok_or_else(|| {
                let names: Vec<String> = Fault::ALL.iter().map(ToString::to_string).collect();
                format!("unknown fault {s:?} ({})", names.join(", "))
            })
    }
}

/// What the nemesis did.
#[derive(Debug, Default)]
pub struct FaultCounts {
    pub injected: BTreeMap<Fault, u64>,
    /// Node faults (kill, pause, partition, disk loss, a node's power cut) aimed at the
    /// stream's leader, and at a follower.
    pub on_leader: u64,
    pub on_follower: u64,
    /// Pauses and leader cuts after which another node led the stream.
    pub leader_changes: u64,
    /// Services that exited on their own and were restarted.
    pub unplanned_exits: BTreeMap<&'static str, u64>,
    /// The cluster did not get back to a leader with every replica current in time.
    pub not_recovered: Vec<String>,
    /// Faults whose kill killed nothing (not counted in `injected`), with why.
    pub kill_failed: Vec<String>,
}

/// A kill that did not happen: the process was not running, had already exited, or the
/// signal failed.
#[derive(Debug)]
pub struct KillFailed(pub String);

impl fmt::Display for KillFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "kill failed: {}", self.0)
    }
}

impl std::error::Error for KillFailed {}

impl FaultCounts {
    pub fn total(&self) -> u64 {
        self.injected.values().sum()
    }
}

/// How often and how long.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub faults: Vec<Fault>,
    /// Calm between two faults, drawn uniformly from this range.
    pub interval_ms: (u64, u64),
    /// How long a killed component stays down, drawn uniformly from this range.
    pub outage_ms: (u64, u64),
    /// Injections of each kind the run goes on for (past `until`, up to the deadline).
    pub per_kind_min: u64,
}

/// Injects faults until `until` and until every enabled kind was injected at least
/// `per_kind_min` times (so a short run cannot pass without having tried each), bounded by
/// `deadline`; then leaves everything running.
pub async fn run(
    cluster: &mut Cluster,
    schedule: &Schedule,
    until: Instant,
    deadline: Instant,
    http: &reqwest::Client,
    counts: &mut FaultCounts,
) -> anyhow::Result<()> {
    let mut order: Vec<Fault> = Vec::new();
    loop {
        let calm = Duration::from_millis(rand::random_range(
            schedule.interval_ms.0..=schedule.interval_ms.1,
        ));
        let calm_until = Instant::now() + calm;
        let each_tried = schedule
            .faults
            .iter()
            .all(|f| counts.injected.get(f).copied().unwrap_or(0) >= schedule.per_kind_min);
        let over = |now: Instant| (now >= until && each_tried) || now >= deadline;
        while Instant::now() < calm_until && !over(Instant::now()) {
            supervise(cluster, http, counts).await?;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if over(Instant::now()) || schedule.faults.is_empty() {
            return supervise(cluster, http, counts).await;
        }
        if order.is_empty() {
            order = shuffled(&schedule.faults);
        }
        let Some(fault) = order.pop() else { continue };
        let outage = Duration::from_millis(rand::random_range(
            schedule.outage_ms.0..=schedule.outage_ms.1,
        ));
        match inject(cluster, fault, outage, http, counts).await {
            Ok(()) => *counts.injected.entry(fault).or_default() += 1,
            Err(e) => match e.downcast_ref::<KillFailed>() {
                Some(failed) => counts.kill_failed.push(format!("{fault}: {}", failed.0)),
                None => return Err(e).with_context(|| format!("fault {fault}")),
            },
        }
    }
}

async fn inject(
    cluster: &mut Cluster,
    fault: Fault,
    outage: Duration,
    http: &reqwest::Client,
    counts: &mut FaultCounts,
) -> anyhow::Result<()> {
    match fault {
        Fault::Projector => {
            // The active one: killing a standby would test nothing.
            let mut active = 0;
            for (index, projector) in cluster.projectors.iter().enumerate() {
                if projector_role(http, projector).await.as_deref() == Some("active") {
                    active = index;
                }
            }
            bounce(&mut cluster.projectors[active], outage, http).await
        }
        Fault::CommandApi => {
            let which = rand::random_range(0..cluster.command_apis.len());
            bounce(&mut cluster.command_apis[which], outage, http).await
        }
        Fault::QueryApi => bounce(&mut cluster.query_api, outage, http).await,
        Fault::Nats => {
            let Journal::Single(server) = &mut cluster.nats else {
                anyhow::bail!("the nats fault is for a single server; a cluster has node faults");
            };
            // `restart` starts again on the same port and store; the outage is the gap
            // before, spent with the old process already dead.
            let killed = server.kill();
            tokio::time::sleep(outage).await;
            server.restart();
            killed.map_err(|e| KillFailed(e).into())
        }
        Fault::PowerCut => {
            let Journal::Single(server) = &mut cluster.nats else {
                anyhow::bail!("the power-cut fault is for a single server");
            };
            let disk = cluster
                .disks
                .first_mut()
                .ok_or_else(|| anyhow::anyhow!("power-cut: the store is not on a lazy disk"))?;
            let killed = server.kill();
            disk.power_cut()?;
            tokio::time::sleep(outage).await;
            server.restart();
            killed.map_err(|e| KillFailed(e).into())
        }
        Fault::Postgres => {
            let crashed = cluster.postgres.crash();
            tokio::time::sleep(outage).await;
            cluster.postgres.resume()?;
            crashed.map_err(|e| KillFailed(format!("{e:#}")).into())
        }
        Fault::NatsLeaderKill
        | Fault::NatsFollowerKill
        | Fault::NatsLeaderPause
        | Fault::Partition
        | Fault::DiskLoss
        | Fault::NodePowerCut => node::node_fault(cluster, fault, outage, counts).await,
        Fault::ClusterPowerCut => node::cluster_power_cut(cluster, outage, counts).await,
    }
}

async fn bounce(
    service: &mut Service,
    outage: Duration,
    http: &reqwest::Client,
) -> anyhow::Result<()> {
    let killed = service.kill();
    tokio::time::sleep(outage).await;
    service.spawn()?;
    service.wait_ready(http).await?;
    killed.map_err(|e| KillFailed(e).into())
}

/// Restarts whatever is down: a service that exited on its own, a server found stopped.
pub async fn supervise(
    cluster: &mut Cluster,
    http: &reqwest::Client,
    counts: &mut FaultCounts,
) -> anyhow::Result<()> {
    if !cluster.postgres.is_running() {
        cluster.postgres.resume()?;
        *counts.unplanned_exits.entry("postgres").or_default() += 1;
    }
    if let Journal::Single(server) = &mut cluster.nats
        && server.exited()
    {
        *counts.unplanned_exits.entry("nats").or_default() += 1;
        tokio::task::block_in_place(|| server.restart());
    }
    if let Journal::Replicated(nodes) = &mut cluster.nats {
        for index in 0..harness::cluster::NODES {
            if nodes.exited(index) {
                *counts.unplanned_exits.entry("nats-node").or_default() += 1;
                tokio::task::block_in_place(|| nodes.start_node(index))
                    .map_err(|e| anyhow::anyhow!(e))?;
            }
        }
    }
    for service in cluster.services() {
        if service.exited() {
            *counts.unplanned_exits.entry(service.name).or_default() += 1;
            service.spawn()?;
            service.wait_ready(http).await?;
        }
    }
    Ok(())
}

fn shuffled(faults: &[Fault]) -> Vec<Fault> {
    let mut order = faults.to_vec();
    for i in (1..order.len()).rev() {
        order.swap(i, rand::random_range(0..=i));
    }
    order
}
