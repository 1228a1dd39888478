//! Durable consumers of the executors, defined in `nats/*-consumer.json` (usable as is with
//! `nats consumer add LEDGER --config nats/payments-consumer.json`).

use crate::startup::{STARTUP_WAIT_MS, Transient, retry_while_starting, transient_err_code};
use async_nats::jetstream::consumer::{Consumer, pull};
use async_nats::jetstream::{self, stream::Stream};
use std::time::Duration;
use thiserror::Error;

/// The payment executor's consumer.
pub const PAYMENTS_CONSUMER_JSON: &str = include_str!("../payments-consumer.json");

/// The balance-batch executor's consumer.
pub const BALANCE_BATCHES_CONSUMER_JSON: &str = include_str!("../balance-batches-consumer.json");

/// The hold-expiry executor's consumer.
pub const HOLD_EXPIRY_CONSUMER_JSON: &str = include_str!("../hold-expiry-consumer.json");

#[derive(Debug, Error)]
pub enum ConsumerError {
    #[error("consumer definition is not valid: {0}")]
    Definition(#[from] serde_json::Error),
    #[error("stream {stream}: {source}")]
    Stream {
        stream: String,
        #[source]
        source: async_nats::jetstream::context::GetStreamError,
    },
    #[error("creating consumer {name}: {source}")]
    Create {
        name: String,
        #[source]
        source: async_nats::jetstream::stream::ConsumerError,
    },
}

impl Transient for ConsumerError {
    fn is_transient(&self) -> bool {
        use async_nats::jetstream::context::GetStreamErrorKind;
        use async_nats::jetstream::stream::ConsumerErrorKind;
        let refused = |e: &async_nats::jetstream::Error| transient_err_code(e.error_code().0);
        match self {
            Self::Definition(_) => false,
            Self::Stream { source, .. } => match source.kind() {
                GetStreamErrorKind::Request => true,
                GetStreamErrorKind::JetStream(e) => refused(&e),
                _ => false,
            },
            Self::Create { source, .. } => match source.kind() {
                ConsumerErrorKind::TimedOut | ConsumerErrorKind::Request => true,
                ConsumerErrorKind::JetStream(e) => refused(&e),
                _ => false,
            },
        }
    }
}

/// Creates (or updates) the durable pull consumer defined by `definition` on `stream`.
/// `ack_wait` overrides the file's redelivery delay (tests shorten it). A JetStream that does
/// not answer yet (a new consumer's group electing its leader) is asked again for up to
/// [`STARTUP_WAIT_MS`]; see [`crate::startup`].
pub async fn ensure_pull_consumer(
    client: &async_nats::Client,
    stream: &str,
    definition: &str,
    ack_wait: Option<Duration>,
) -> Result<Consumer<pull::Config>, ConsumerError> {
    let mut config: pull::Config = serde_json::from_str(definition)?;
    if let Some(ack_wait) = ack_wait {
        config.ack_wait = ack_wait;
    }
    let name = config.durable_name.clone().unwrap_or_default();
    let js = jetstream::new(client.clone());
    retry_while_starting(
        &format!("creating consumer {name}"),
        Duration::from_millis(STARTUP_WAIT_MS),
        || async {
            let stream: Stream =
                js.get_stream(stream)
                    .await
                    .map_err(|source| ConsumerError::Stream {
                        stream: stream.to_owned(),
                        source,
                    })?;
            stream
                .create_consumer(config.clone())
                .await
                .map_err(|source| ConsumerError::Create {
                    name: name.clone(),
                    source,
                })
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payments_consumer_is_durable_explicit_ack_on_order_subjects() {
        let config: pull::Config = serde_json::from_str(PAYMENTS_CONSUMER_JSON).expect("valid");
        assert_eq!(config.durable_name.as_deref(), Some("payments"));
        assert_eq!(config.filter_subject, "ledger.order.*");
        assert_eq!(
            config.ack_policy,
            async_nats::jetstream::consumer::AckPolicy::Explicit
        );
        assert_eq!(config.ack_wait, Duration::from_secs(15));
    }
}
