//! The faults: one at a time, a component is killed without warning and restarted after a
//! short outage, round-robin over the enabled kinds in shuffled order. Between faults it
//! watches the services and restarts any that exited on its own (counted apart: a service
//! that gives up while a dependency is down is worth knowing about, though not a violation).

use crate::processes::{Cluster, Service};
use anyhow::Context;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// `kill -9` of the projector, then a restart.
    Projector,
    /// `kill -9` of the command API, then a restart.
    CommandApi,
    /// `kill -9` of the query API, then a restart.
    QueryApi,
    /// `kill -9` of nats-server, then a restart on the same store directory.
    Nats,
    /// `pg_ctl stop -m immediate` of PostgreSQL, then a start (crash recovery).
    Postgres,
}

impl Fault {
    pub const ALL: [Fault; 5] = [
        Fault::Projector,
        Fault::CommandApi,
        Fault::QueryApi,
        Fault::Nats,
        Fault::Postgres,
    ];
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fault::Projector => "projector",
            Fault::CommandApi => "command-api",
            Fault::QueryApi => "query-api",
            Fault::Nats => "nats",
            Fault::Postgres => "postgres",
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
                format!("unknown fault {s:?} (projector, command-api, query-api, nats, postgres)")
            })
    }
}

/// What the nemesis did.
#[derive(Debug, Default)]
pub struct FaultCounts {
    pub injected: BTreeMap<Fault, u64>,
    /// Services that exited on their own and were restarted.
    pub unplanned_exits: BTreeMap<&'static str, u64>,
}

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
}

/// Injects faults until `until`, then leaves everything running.
pub async fn run(
    cluster: &mut Cluster,
    schedule: &Schedule,
    until: Instant,
    http: &reqwest::Client,
    counts: &mut FaultCounts,
) -> anyhow::Result<()> {
    let mut order: Vec<Fault> = Vec::new();
    loop {
        let calm = Duration::from_millis(rand::random_range(
            schedule.interval_ms.0..=schedule.interval_ms.1,
        ));
        let calm_until = Instant::now() + calm;
        while Instant::now() < calm_until.min(until) {
            supervise(cluster, http, counts).await?;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if Instant::now() >= until || schedule.faults.is_empty() {
            return supervise(cluster, http, counts).await;
        }
        if order.is_empty() {
            order = shuffled(&schedule.faults);
        }
        let Some(fault) = order.pop() else { continue };
        let outage = Duration::from_millis(rand::random_range(
            schedule.outage_ms.0..=schedule.outage_ms.1,
        ));
        inject(cluster, fault, outage, http)
            .await
            .with_context(|| format!("fault {fault}"))?;
        *counts.injected.entry(fault).or_default() += 1;
    }
}

async fn inject(
    cluster: &mut Cluster,
    fault: Fault,
    outage: Duration,
    http: &reqwest::Client,
) -> anyhow::Result<()> {
    match fault {
        Fault::Projector => bounce(&mut cluster.projector, outage, http).await,
        Fault::CommandApi => bounce(&mut cluster.command_api, outage, http).await,
        Fault::QueryApi => bounce(&mut cluster.query_api, outage, http).await,
        Fault::Nats => {
            // `restart` kills (SIGKILL) and starts again on the same port and store; the outage
            // is the gap before, spent with the old process already dead.
            cluster.nats.kill();
            tokio::time::sleep(outage).await;
            cluster.nats.restart();
            Ok(())
        }
        Fault::Postgres => {
            cluster.postgres.crash()?;
            tokio::time::sleep(outage).await;
            cluster.postgres.resume()
        }
    }
}

async fn bounce(
    service: &mut Service,
    outage: Duration,
    http: &reqwest::Client,
) -> anyhow::Result<()> {
    service.kill();
    tokio::time::sleep(outage).await;
    service.spawn()?;
    service.wait_ready(http).await
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
    for service in [
        &mut cluster.command_api,
        &mut cluster.projector,
        &mut cluster.query_api,
    ] {
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
