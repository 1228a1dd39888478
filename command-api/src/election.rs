//! One writer among several command APIs (ADR 0028).
//!
//! Two instances that both commit over shared accounts refuse most of each other's batches
//! (ADR 0027). Instances given an address the others can reach (`COMMAND_API_ADVERTISE_URL`)
//! elect one of them as the writer with a lease: a key of a JetStream key-value bucket whose
//! entries expire [`Election::ttl`] after they were written. The holder renews it three times
//! per period; the others read it as often and forward their write requests to the holder's
//! address (`http::forward`). With no holder known — the bucket unreachable, the lease
//! lapsed, the holder not answering — an instance decides locally, as a single one does.
//!
//! Safety never rests on the lease: two instances that both believe they hold it (one
//! renewal period after a holder stalled) are still checked by the journal's expected
//! sequences, and cost each other only refused batches.

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The bucket holding the lease (stream `KV_TALLY_WRITER`).
pub const BUCKET: &str = "TALLY_WRITER";
/// The lease's key.
const KEY: &str = "writer";

/// Who holds the lease, as its value records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The instance's id, drawn at each start: a restarted holder is a new instance.
    pub instance: String,
    /// Where the others send its writes (`http://host:port`).
    pub url: String,
}

/// What this instance does with a write request, as far as it knows now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// No writer known: decide locally.
    Unknown,
    /// This instance holds the lease.
    Writer,
    /// Another instance holds it: forward writes to its address.
    Forward(Arc<str>),
}

impl Role {
    pub fn label(&self) -> &'static str {
        match self {
            Role::Unknown => "unknown",
            Role::Writer => "writer",
            Role::Forward(_) => "forwarding",
        }
    }
}

/// This instance's part in the election.
#[derive(Debug, Clone)]
pub struct Election {
    pub me: Holder,
    /// How long a lease lives unrenewed: a stopped holder is replaced after at most this
    /// long (at once when it stops gracefully: it gives the lease up).
    pub ttl: Duration,
    /// The bucket's replicas: the journal's.
    pub replicas: usize,
}

/// A running election: its role, as the forwarding layer reads it, and its task.
#[derive(Debug)]
pub struct Campaign {
    /// This instance's id in the election.
    pub instance: String,
    pub role: watch::Receiver<Role>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Campaign {
    /// Stops renewing and gives a held lease up, so that another instance takes it at its
    /// next look rather than after the lease expires.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    pub fn abort(&self) {
        self.task.abort();
    }
}

/// The channel a campaign tells its role on, made before the campaign starts so that the
/// executors started earlier can follow it.
pub fn role_channel() -> (watch::Sender<Role>, watch::Receiver<Role>) {
    watch::channel(Role::Unknown)
}

/// Starts campaigning, telling the role on `role_tx` (from [`role_channel`]). The lease's
/// bucket is created (or found) by the campaign itself, and again until that succeeds: a
/// journal briefly without a quorum must not stop an instance from starting, which until then
/// decides locally.
pub fn start(
    nats: async_nats::Client,
    election: Election,
    role_tx: watch::Sender<Role>,
) -> Campaign {
    let role = role_tx.subscribe();
    let (stop, stopped) = watch::channel(false);
    let instance = election.me.instance.clone();
    let task = tokio::spawn(campaign(jetstream::new(nats), election, role_tx, stopped));
    Campaign {
        instance,
        role,
        stop,
        task,
    }
}

async fn bucket(js: &jetstream::Context, election: &Election) -> Result<kv::Store, String> {
    if let Ok(store) = js.get_key_value(BUCKET).await {
        // A lease kept otherwise still elects: a failed alignment is said, not fatal.
        if let Err(e) = align(js, election).await {
            tracing::warn!(error = %e, bucket = BUCKET, "the writer lease's bucket was not brought in line");
        }
        return Ok(store);
    }
    js.create_key_value(kv::Config {
        bucket: BUCKET.to_owned(),
        description: "Tally: which command API writes (ADR 0028)".to_owned(),
        history: 1,
        max_age: election.ttl,
        // The lease needs no disk: lost with every node, it is simply taken again.
        storage: jetstream::stream::StorageType::Memory,
        num_replicas: election.replicas,
        ..Default::default()
    })
    .await
    .map_err(|e| e.to_string())
}

/// Brings a bucket made by an earlier start in line with this one's settings:
/// - as many replicas as the journal, when a deployment grew from one node to a cluster (its
///   stream scaled up, ADR 0010): a lease on one node would be lost with it. Never fewer.
/// - entries that live `WRITER_LEASE_TTL_MS`, when that changed: a lease renewed every third
///   of a longer TTL than its entries live would lapse between renewals and change hands.
async fn align(js: &jetstream::Context, election: &Election) -> Result<(), String> {
    let mut stream = js
        .get_stream(format!("KV_{BUCKET}"))
        .await
        .map_err(|e| e.to_string())?;
    let mut config = stream
        .info()
        .await
        .map_err(|e| e.to_string())?
        .config
        .clone();
    if config.num_replicas >= election.replicas && config.max_age == election.ttl {
        return Ok(());
    }
    config.num_replicas = config.num_replicas.max(election.replicas);
    config.max_age = election.ttl;
    // The server refuses a window for duplicates longer than the entries live.
    config.duplicate_window = config.duplicate_window.min(election.ttl);
    js.update_stream(&config).await.map_err(|e| e.to_string())?;
    tracing::info!(
        replicas = config.num_replicas,
        ttl_ms = election.ttl.as_millis(),
        bucket = BUCKET,
        "the writer lease's bucket brought in line"
    );
    Ok(())
}

async fn campaign(
    js: jetstream::Context,
    election: Election,
    role: watch::Sender<Role>,
    mut stopped: watch::Receiver<bool>,
) {
    let value = Bytes::from(serde_json::to_vec(&election.me).unwrap_or_default());
    let period = election.ttl / 3;
    let store = loop {
        match bucket(&js, &election).await {
            Ok(store) => break store,
            Err(e) => {
                tracing::warn!(error = %e, bucket = BUCKET, "the writer lease's bucket: retrying")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stopped.changed() => return,
        }
    };
    // The revision of the lease while this instance holds it.
    let mut held: Option<u64> = None;
    // When the lease last answered: what it said holds for a lease's life, so one unanswered
    // look (a NATS node failing over) changes nothing.
    let mut answered = tokio::time::Instant::now();
    loop {
        let next = match held {
            Some(revision) => match store.update(KEY, value.clone(), revision).await {
                Ok(revision) => Some(Look::Held(revision)),
                // Renewed after all (an answer lost), taken by another once it lapsed, or
                // not reachable: the lease itself says which.
                Err(e) => {
                    tracing::debug!(error = %e, "the writer lease was not renewed");
                    look(&store, &election.me, value.clone()).await
                }
            },
            None => look(&store, &election.me, value.clone()).await,
        };
        let now = match next {
            Some(Look::Held(revision)) => {
                held = Some(revision);
                answered = tokio::time::Instant::now();
                Role::Writer
            }
            Some(Look::Other(holder)) => {
                held = None;
                answered = tokio::time::Instant::now();
                Role::Forward(holder.url.into())
            }
            None if answered.elapsed() < election.ttl => role.borrow().clone(),
            None => {
                held = None;
                Role::Unknown
            }
        };
        role.send_if_modified(|current| {
            let changed = *current != now;
            if changed {
                tracing::info!(role = now.label(), "writer election");
                metrics::gauge!("command_api_writer_lease_held").set(if now == Role::Writer {
                    1.0
                } else {
                    0.0
                });
                *current = now;
            }
            changed
        });
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stopped.changed() => break,
        }
    }
    if let Some(revision) = held {
        role.send_replace(Role::Unknown);
        if let Err(e) = store.delete_expect_revision(KEY, Some(revision)).await {
            tracing::warn!(error = %e, "could not give the writer lease up; it expires instead");
        }
    }
}

enum Look {
    Held(u64),
    Other(Holder),
}

/// Reads the lease, and takes it when nobody holds it. `None`: the bucket did not answer,
/// or another instance took the lease first (the next look says who).
async fn look(store: &kv::Store, me: &Holder, value: Bytes) -> Option<Look> {
    match store.entry(KEY).await {
        Ok(Some(entry)) if entry.operation == kv::Operation::Put => {
            match serde_json::from_slice::<Holder>(&entry.value) {
                Ok(holder) if holder.instance == me.instance => Some(Look::Held(entry.revision)),
                Ok(holder) => Some(Look::Other(holder)),
                Err(e) => {
                    tracing::warn!(error = %e, "the writer lease holds no holder");
                    None
                }
            }
        }
        Ok(_) => store.create(KEY, value).await.ok().map(Look::Held),
        Err(e) => {
            tracing::warn!(error = %e, "the writer lease could not be read");
            None
        }
    }
}
