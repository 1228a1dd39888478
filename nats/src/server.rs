//! Connecting to a NATS server that can keep Tally's promises.

use async_nats::Client;
use semver::Version;
use std::time::Duration;
use thiserror::Error;

/// The oldest server with atomic batch publish (ADR-50). Older servers accept the batch
/// headers and ignore them, so a transfer's two legs would not commit together.
pub const SERVER_VERSION_MIN: Version = Version::new(2, 12, 1);

/// How long a request to JetStream may take before its outcome counts as unknown. A durable
/// commit takes ~12 ms here; a second is generous yet keeps a stuck server from stalling
/// callers for long.
pub const REQUEST_TIMEOUT_MS: u64 = 5_000;

#[derive(Debug, Error)]
pub enum ConnectError {
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    #[error(
        "nats-server {found} at {url} is too old: Tally needs {SERVER_VERSION_MIN} or newer for \
         atomic batch publish (older servers would silently write half a transfer)"
    )]
    TooOld { url: String, found: String },
}

/// Connects to `url` and checks that the server is new enough for atomic batches.
pub async fn connect(url: &str, client_name: &str) -> Result<Client, ConnectError> {
    let client = async_nats::ConnectOptions::new()
        .name(client_name)
        .request_timeout(Some(Duration::from_millis(REQUEST_TIMEOUT_MS)))
        // Once connected, keep reconnecting for ever: the journal is essential, and callers
        // get 503s meanwhile rather than a dead process.
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(|source| ConnectError::Connect {
            url: url.to_owned(),
            source,
        })?;
    check_version(url, &client.server_info().version)?;
    Ok(client)
}

/// Refuses server versions older than [`SERVER_VERSION_MIN`] (or that do not parse).
pub fn check_version(url: &str, found: &str) -> Result<(), ConnectError> {
    let too_old = || ConnectError::TooOld {
        url: url.to_owned(),
        found: found.to_owned(),
    };
    let version = Version::parse(found.trim_start_matches('v')).map_err(|_| too_old())?;
    // Compare the release only: 2.12.1-RC.3 is treated like 2.12.1.
    let release = Version::new(version.major, version.minor, version.patch);
    if release >= SERVER_VERSION_MIN {
        Ok(())
    } else {
        Err(too_old())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_from_2_12_1_on_are_accepted() {
        for ok in ["2.12.1", "2.15.1", "v2.14.0", "3.0.0", "2.12.1-RC.1"] {
            assert!(check_version("u", ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn older_or_unknown_servers_are_refused() {
        for old in ["2.9.10", "2.12.0", "2.11.11", "", "garbage"] {
            assert!(
                matches!(check_version("u", old), Err(ConnectError::TooOld { .. })),
                "{old}"
            );
        }
    }
}
