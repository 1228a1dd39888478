//! The `LEDGER` stream, created or updated at start-up from `nats/ledger-stream.json`.

use crate::{ApiError, ApiResponse};
use async_nats::Client;
use bytes::Bytes;
use serde_json::Value;
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
        "stream {name} does not echo allow_atomic: true — this server does not support atomic \
         batch publish, and Tally refuses to run on it (a transfer could be half written)"
    )]
    AtomicNotSupported { name: String },
}

/// The stream definition from the JSON file, with its name replaced (tests and benchmarks use
/// their own streams on one server; production uses `LEDGER`).
pub fn definition(name: &str) -> Result<Value, StreamError> {
    let mut config: Value = serde_json::from_str(LEDGER_STREAM_JSON)?;
    config["name"] = Value::String(name.to_owned());
    Ok(config)
}

/// Creates the stream or brings it in line with the definition, then checks that the server
/// echoes `allow_atomic: true`. Returns the config the server reports.
pub async fn ensure_stream(client: &Client, name: &str) -> Result<Value, StreamError> {
    let config = definition(name)?;
    let body = Bytes::from(serde_json::to_vec(&config)?);
    let info_subject = format!("$JS.API.STREAM.INFO.{name}");
    let exists = match api::<Value>(client, &info_subject, Bytes::new(), name).await {
        Ok(_) => true,
        Err(StreamError::Api { source, .. }) if source.err_code == ERR_STREAM_NOT_FOUND => false,
        Err(other) => return Err(other),
    };
    let verb = if exists { "UPDATE" } else { "CREATE" };
    let answer: Value = api(client, &format!("$JS.API.STREAM.{verb}.{name}"), body, name).await?;
    check_atomic_echo(name, &answer["config"])?;
    Ok(answer["config"].clone())
}

/// For services that only read: waits (up to `wait`) until the stream exists, then checks that
/// it echoes `allow_atomic: true`. Creating it is the command API's job.
pub async fn check_stream(
    client: &Client,
    name: &str,
    wait: std::time::Duration,
) -> Result<Value, StreamError> {
    let deadline = tokio::time::Instant::now() + wait;
    let subject = format!("$JS.API.STREAM.INFO.{name}");
    loop {
        match api::<Value>(client, &subject, Bytes::new(), name).await {
            Ok(info) => {
                check_atomic_echo(name, &info["config"])?;
                return Ok(info["config"].clone());
            }
            Err(StreamError::Api { source, .. })
                if source.err_code == ERR_STREAM_NOT_FOUND
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Err(other) => return Err(other),
        }
    }
}

/// The stream's last sequence (also a readiness check: it fails if the stream is missing).
pub async fn stream_last_seq(client: &Client, name: &str) -> Result<u64, StreamError> {
    let info: Value = api(
        client,
        &format!("$JS.API.STREAM.INFO.{name}"),
        Bytes::new(),
        name,
    )
    .await?;
    Ok(info["state"]["last_seq"].as_u64().unwrap_or(0))
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
        let config = definition("LEDGER").expect("valid JSON");
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
}
