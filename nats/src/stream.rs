//! The `LEDGER` stream, created or updated at start-up from `nats/ledger-stream.json`.

use crate::api::{ApiError, ApiResponse};
use crate::startup::{STARTUP_WAIT_MS, Transient, retry_while_starting};
use async_nats::Client;
use bytes::Bytes;
use serde_json::Value;
use std::time::Duration;
use thiserror::Error;

/// The stream definition, usable as is with `nats stream add --config nats/ledger-stream.json`.
pub const LEDGER_STREAM_JSON: &str = include_str!("../ledger-stream.json");

/// JetStream's "stream not found" error code.
const ERR_STREAM_NOT_FOUND: u16 = 10059;

#[derive(Debug, Error)]
pub enum StreamError {
    #[error("stream definition is not valid JSON: {0}")]
    Definition(#[from] serde_json::Error),
    #[error("JetStream request {subject} failed: {source}")]
    Request {
        subject: String,
        #[source]
        source: async_nats::RequestError,
    },
    #[error("JetStream refused stream {name}: {source}")]
    Api {
        name: String,
        #[source]
        source: ApiError,
    },
    #[error(
        "stream {name} answered num_replicas {found} where {wanted} were asked for — the server \
         cannot keep the journal as replicated as configured (LEDGER_REPLICAS)"
    )]
    ReplicasNotEchoed {
        name: String,
        wanted: usize,
        found: u64,
    },
    #[error(
        "stream {name} has {found} replicas and LEDGER_REPLICAS asks for {wanted}: Tally never \
         lowers the journal's replication on its own (it would drop copies of every event); \
         set LEDGER_REPLICAS={found}, or scale the stream down deliberately with the nats CLI"
    )]
    WouldLowerReplicas {
        name: String,
        wanted: usize,
        found: u64,
    },
    #[error(
        "stream {name} does not echo allow_atomic: true — this server does not support atomic \
         batch publish, and Tally refuses to run on it (a transfer could be half written)"
    )]
    AtomicNotSupported { name: String },
    #[error("stream {name} does not answer reads through this connection: {source}")]
    Unreachable {
        name: String,
        #[source]
        source: crate::DirectGetError,
    },
}

/// The stream definition from the JSON file, with its name and replica count replaced (tests
/// and benchmarks use their own streams on one server; production uses `LEDGER`, with 1
/// replica on a single node and 3 on a three-node cluster).
pub fn definition(name: &str, replicas: usize) -> Result<Value, StreamError> {
    let mut config: Value = serde_json::from_str(LEDGER_STREAM_JSON)?;
    config["name"] = Value::String(name.to_owned());
    config["num_replicas"] = Value::from(replicas);
    Ok(config)
}

/// Creates the stream or brings it in line with the definition, then checks that the server
/// echoes `allow_atomic: true` and the replica count. Returns the config the server reports.
///
/// An existing stream with fewer replicas is scaled up (JetStream copies the journal to the
/// new peers; an R1 journal becomes R3 this way). One with more replicas is refused rather
/// than scaled down: lowering replication is an operator's decision, never a side effect of
/// a mis-set variable.
///
/// A JetStream that does not answer yet (a fresh server, a cluster electing its leaders) is
/// asked again for up to [`STARTUP_WAIT_MS`]; see [`crate::startup`].
///
/// Returns only once the stream answers a read through `client`. On a cluster, the server a
/// client is connected to learns that another node serves the new stream a moment after the
/// stream exists. Without this wait, a command API's first write was answered 503 now and then
/// (in CI, and under load here): its state read met "no responders".
pub async fn ensure_stream(
    client: &Client,
    name: &str,
    replicas: usize,
) -> Result<Value, StreamError> {
    let wait = Duration::from_millis(STARTUP_WAIT_MS);
    let config = retry_while_starting("creating the stream", wait, || {
        ensure_stream_once(client, name, replicas)
    })
    .await?;
    retry_while_starting("reaching the stream", wait, || async {
        crate::direct::range(client, name, 1, 1)
            .await
            .map_err(|source| StreamError::Unreachable {
                name: name.to_owned(),
                source,
            })
    })
    .await?;
    Ok(config)
}

async fn ensure_stream_once(
    client: &Client,
    name: &str,
    replicas: usize,
) -> Result<Value, StreamError> {
    let config = definition(name, replicas)?;
    let body = Bytes::from(serde_json::to_vec(&config)?);
    let info_subject = format!("$JS.API.STREAM.INFO.{name}");
    let existing = match api::<Value>(client, &info_subject, Bytes::new(), name).await {
        Ok(info) => Some(info),
        Err(StreamError::Api { source, .. }) if source.err_code == ERR_STREAM_NOT_FOUND => None,
        Err(other) => return Err(other),
    };
    if let Some(info) = &existing {
        let found = info["config"]["num_replicas"].as_u64().unwrap_or(1);
        if found > replicas as u64 {
            return Err(StreamError::WouldLowerReplicas {
                name: name.to_owned(),
                wanted: replicas,
                found,
            });
        }
    }
    let verb = if existing.is_some() {
        "UPDATE"
    } else {
        "CREATE"
    };
    let answer: Value = api(client, &format!("$JS.API.STREAM.{verb}.{name}"), body, name).await?;
    check_atomic_echo(name, &answer["config"])?;
    check_replicas_echo(name, replicas, &answer["config"])?;
    Ok(answer["config"].clone())
}

impl Transient for StreamError {
    fn is_transient(&self) -> bool {
        match self {
            Self::Request { source, .. } => source.is_transient(),
            Self::Api { source, .. } => source.is_transient(),
            Self::Unreachable { source, .. } => source.is_transient(),
            _ => false,
        }
    }
}

/// Creates a stream from `config` as given — benchmarks create scratch streams, and the
/// journal with other options — asking again while JetStream does not answer yet (see
/// [`crate::startup`]). Returns the config the server reports.
pub async fn create(client: &Client, config: &Value) -> Result<Value, StreamError> {
    let name = config["name"].as_str().unwrap_or_default();
    let body = Bytes::from(serde_json::to_vec(config)?);
    let subject = format!("$JS.API.STREAM.CREATE.{name}");
    let answer: Value = retry_while_starting(
        "creating a stream",
        Duration::from_millis(STARTUP_WAIT_MS),
        || api(client, &subject, body.clone(), name),
    )
    .await?;
    Ok(answer["config"].clone())
}

/// Refuses a stream config whose `num_replicas` is not the one asked for.
pub fn check_replicas_echo(name: &str, wanted: usize, config: &Value) -> Result<(), StreamError> {
    // A server omits the field for the default of one replica.
    let found = config["num_replicas"].as_u64().unwrap_or(1);
    if found == wanted as u64 {
        Ok(())
    } else {
        Err(StreamError::ReplicasNotEchoed {
            name: name.to_owned(),
            wanted,
            found,
        })
    }
}

/// Where the stream lives right now: its Raft group's leader and each replica's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The node that orders every write (absent while an election runs).
    pub leader: Option<String>,
    /// The other replicas: name, whether it is current with the leader, and how many
    /// operations it trails by.
    pub replicas: Vec<Replica>,
    pub last_seq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    pub name: String,
    pub current: bool,
    pub offline: bool,
    pub lag: u64,
}

/// Reads the stream's leader and replicas from its info (answered by the leader itself).
pub async fn placement(client: &Client, name: &str) -> Result<Placement, StreamError> {
    Ok(Placement::from_info(&stream_info(client, name).await?))
}

impl Placement {
    pub fn from_info(info: &Value) -> Self {
        let cluster = &info["cluster"];
        let replicas = cluster["replicas"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| Replica {
                name: r["name"].as_str().unwrap_or_default().to_owned(),
                current: r["current"].as_bool().unwrap_or(false),
                offline: r["offline"].as_bool().unwrap_or(false),
                lag: r["lag"].as_u64().unwrap_or(0),
            })
            .collect();
        Self {
            leader: cluster["leader"].as_str().map(str::to_owned),
            replicas,
            last_seq: info["state"]["last_seq"].as_u64().unwrap_or(0),
        }
    }

    /// True when a leader is elected and every other replica is current with it.
    pub fn all_current(&self, replicas: usize) -> bool {
        self.leader.is_some() && self.replicas.len() + 1 == replicas && self.behind() == 0
    }

    /// The replicas other than the leader that are offline or not current with it.
    pub fn behind(&self) -> usize {
        self.replicas
            .iter()
            .filter(|r| r.offline || !r.current)
            .count()
    }
}

/// For services that only read: waits (up to `wait`) until the stream exists and JetStream
/// answers, then checks that it echoes `allow_atomic: true`. Creating it is the command API's
/// job.
pub async fn check_stream(
    client: &Client,
    name: &str,
    wait: Duration,
) -> Result<Value, StreamError> {
    let info = retry_while_starting("reading the stream", wait, || async {
        stream_info(client, name).await.map_err(NotCreatedYet)
    })
    .await
    .map_err(|NotCreatedYet(e)| e)?;
    check_atomic_echo(name, &info["config"])?;
    Ok(info["config"].clone())
}

/// A stream read by a service that does not create it: "not found" only means the command
/// API has not created it yet, so it is waited out like a cluster still electing.
#[derive(Debug, Error)]
#[error(transparent)]
struct NotCreatedYet(StreamError);

impl Transient for NotCreatedYet {
    fn is_transient(&self) -> bool {
        self.0.is_transient()
            || matches!(&self.0, StreamError::Api { source, .. } if source.err_code == ERR_STREAM_NOT_FOUND)
    }
}

/// The stream's last sequence (also a readiness check: it fails if the stream is missing).
pub async fn stream_last_seq(client: &Client, name: &str) -> Result<u64, StreamError> {
    let info = stream_info(client, name).await?;
    Ok(info["state"]["last_seq"].as_u64().unwrap_or(0))
}

/// The stream's info: config, state and (on a cluster) placement, from its leader.
async fn stream_info(client: &Client, name: &str) -> Result<Value, StreamError> {
    let subject = format!("$JS.API.STREAM.INFO.{name}");
    api(client, &subject, Bytes::new(), name).await
}

/// Refuses a stream config that does not say `allow_atomic: true`: servers that predate
/// atomic batches drop the unknown field from the echo.
pub fn check_atomic_echo(name: &str, config: &Value) -> Result<(), StreamError> {
    if config["allow_atomic"] == Value::Bool(true) {
        Ok(())
    } else {
        Err(StreamError::AtomicNotSupported {
            name: name.to_owned(),
        })
    }
}

async fn api<T: serde::de::DeserializeOwned>(
    client: &Client,
    subject: &str,
    body: Bytes,
    name: &str,
) -> Result<T, StreamError> {
    let reply = client
        .request(subject.to_owned(), body)
        .await
        .map_err(|source| StreamError::Request {
            subject: subject.to_owned(),
            source,
        })?;
    match serde_json::from_slice::<ApiResponse<T>>(&reply.payload)? {
        ApiResponse::Ok(answer) => Ok(answer),
        ApiResponse::Err { error } => Err(StreamError::Api {
            name: name.to_owned(),
            source: error,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_definition_is_the_ledger_stream_of_the_design() {
        let config = definition("LEDGER", 1).expect("valid JSON");
        assert_eq!(config["num_replicas"], 1);
        assert_eq!(
            definition("LEDGER", 3).expect("valid JSON")["num_replicas"],
            3
        );
        assert_eq!(config["subjects"], serde_json::json!(["ledger.>"]));
        assert_eq!(config["storage"], "file");
        assert_eq!(config["max_age"], 0);
        assert_eq!(config["max_msgs"], -1);
        assert_eq!(config["max_bytes"], -1);
        assert_eq!(config["duplicate_window"], 30_000_000_000_u64);
        for flag in ["allow_direct", "allow_atomic", "deny_delete", "deny_purge"] {
            assert_eq!(config[flag], true, "{flag}");
        }
    }

    #[test]
    fn an_echo_without_allow_atomic_is_refused() {
        let old_server_echo = serde_json::json!({"name": "LEDGER", "allow_direct": true});
        assert!(matches!(
            check_atomic_echo("LEDGER", &old_server_echo),
            Err(StreamError::AtomicNotSupported { .. })
        ));
        let echo = serde_json::json!({"name": "LEDGER", "allow_atomic": true});
        assert!(check_atomic_echo("LEDGER", &echo).is_ok());
    }

    #[test]
    fn an_echo_with_other_replicas_than_asked_is_refused() {
        let r1 = serde_json::json!({"name": "LEDGER", "num_replicas": 1});
        assert!(check_replicas_echo("LEDGER", 1, &r1).is_ok());
        assert!(matches!(
            check_replicas_echo("LEDGER", 3, &r1),
            Err(StreamError::ReplicasNotEchoed {
                wanted: 3,
                found: 1,
                ..
            })
        ));
        let unspecified = serde_json::json!({"name": "LEDGER"});
        assert!(check_replicas_echo("LEDGER", 1, &unspecified).is_ok());
    }

    #[test]
    fn placement_reads_the_leader_and_the_replicas_from_stream_info() {
        let info = serde_json::json!({
            "state": {"last_seq": 42},
            "cluster": {"name": "tally", "leader": "n2", "replicas": [
                {"name": "n1", "current": true, "active": 1000, "lag": 0},
                {"name": "n3", "current": false, "offline": true, "active": 0, "lag": 7}
            ]}
        });
        let placement = Placement::from_info(&info);
        assert_eq!(placement.leader.as_deref(), Some("n2"));
        assert_eq!(placement.last_seq, 42);
        assert_eq!(placement.replicas.len(), 2);
        assert!(!placement.all_current(3));
        assert_eq!(placement.replicas[1].lag, 7);
    }
}
