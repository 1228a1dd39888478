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
/// The URL's user and password (`nats://user:password@host:port`) are the credentials; errors
/// name the URL without the password.
pub async fn connect(url: &str, client_name: &str) -> Result<Client, ConnectError> {
    let (address, options) = authenticated(url);
    let client = options
        .name(client_name)
        .request_timeout(Some(Duration::from_millis(REQUEST_TIMEOUT_MS)))
        // Once connected, keep reconnecting for ever: the journal is essential, and callers
        // get 503s meanwhile rather than a dead process.
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(5))
        .connect(address.as_str())
        .await
        .map_err(|source| ConnectError::Connect {
            url: redacted(url),
            source,
        })?;
    check_version(&redacted(url), &client.server_info().version)?;
    Ok(client)
}

/// `nats://user:password@host:port` → (`nats://host:port`, the user and password): async-nats
/// connects to the address and authenticates with the pair (it does not read credentials
/// from the URL itself).
pub fn split_credentials(url: &str) -> (String, Option<(&str, &str)>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_owned(), None);
    };
    match rest.split_once('@') {
        Some((credentials, host)) => {
            let (user, password) = credentials.split_once(':').unwrap_or((credentials, ""));
            (format!("{scheme}://{host}"), Some((user, password)))
        }
        None => (url.to_owned(), None),
    }
}

/// The address to connect to and options that authenticate with the URL's credentials, if it
/// has any.
pub fn authenticated(url: &str) -> (String, async_nats::ConnectOptions) {
    let (address, credentials) = split_credentials(url);
    let options = match credentials {
        Some((user, password)) => {
            async_nats::ConnectOptions::with_user_and_password(user.into(), password.into())
        }
        None => async_nats::ConnectOptions::new(),
    };
    (address, options)
}

/// `url` with its password (if any) replaced by `***`, for messages.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
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
    fn credentials_in_the_url_are_split_from_the_address() {
        assert_eq!(
            split_credentials("nats://projector:s3cret@nats:4222"),
            ("nats://nats:4222".to_owned(), Some(("projector", "s3cret")))
        );
        assert_eq!(
            split_credentials("nats://127.0.0.1:4222"),
            ("nats://127.0.0.1:4222".to_owned(), None)
        );
    }

    #[test]
    fn messages_name_the_user_but_never_the_password() {
        assert_eq!(
            redacted("nats://projector:s3cret@nats:4222"),
            "nats://projector:***@nats:4222"
        );
        assert_eq!(redacted("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }

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
