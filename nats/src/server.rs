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

/// How often the client pings its server. A node that dies without closing its sockets (cut
/// off by the network, frozen, its host gone) is noticed after three unanswered pings, so
/// within ~6 s the client reconnects to a survivor; the client's default (60 s) would stall
/// writes for minutes. A ping is a few bytes.
pub const PING_INTERVAL_MS: u64 = 2_000;

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
/// `url` may list several servers, comma-separated (every node of a cluster): the client
/// connects to any that answers and, when that node dies, reconnects to a survivor.
/// The URLs' user and password (`nats://user:password@host:port`) are the credentials; errors
/// name the URLs without the password.
pub async fn connect(url: &str, client_name: &str) -> Result<Client, ConnectError> {
    let (addresses, options) = authenticated(url).map_err(|source| ConnectError::Connect {
        url: redacted(url),
        source: source.into(),
    })?;
    let client = options
        .name(client_name)
        .request_timeout(Some(Duration::from_millis(REQUEST_TIMEOUT_MS)))
        // Once connected, keep reconnecting for ever: the journal is essential, and callers
        // get 503s meanwhile rather than a dead process.
        .max_reconnects(None)
        .ping_interval(Duration::from_millis(PING_INTERVAL_MS))
        .connection_timeout(Duration::from_secs(5))
        .connect(addresses)
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

/// The servers to connect to and options that authenticate with the URLs' credentials, if
/// they have any. `url` is one URL or several, comma-separated; the first credentials found
/// are used for every server (the nodes of one cluster share their users).
pub fn authenticated(
    url: &str,
) -> Result<(Vec<async_nats::ServerAddr>, async_nats::ConnectOptions), std::io::Error> {
    let mut addresses = Vec::new();
    let mut found = None;
    for one in url.split(',').map(str::trim).filter(|u| !u.is_empty()) {
        let (address, credentials) = split_credentials(one);
        addresses.push(address.parse::<async_nats::ServerAddr>()?);
        found = found.or(credentials);
    }
    if addresses.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "no NATS server URL given",
        ));
    }
    let options = match found {
        Some((user, password)) => {
            async_nats::ConnectOptions::with_user_and_password(user.into(), password.into())
        }
        None => async_nats::ConnectOptions::new(),
    };
    Ok((addresses, options))
}

/// `url` (one URL or several, comma-separated) with every password replaced by `***`, for
/// messages.
pub fn redacted(url: &str) -> String {
    url.split(',')
        .map(|one| {
            let one = one.trim();
            let Some((scheme, rest)) = one.split_once("://") else {
                return one.to_owned();
            };
            match rest.split_once('@') {
                Some((credentials, host)) => {
                    let user = credentials.split(':').next().unwrap_or_default();
                    format!("{scheme}://{user}:***@{host}")
                }
                None => one.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
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
        assert_eq!(
            redacted("nats://p:s3cret@n1:4222, nats://p:s3cret@n2:4222"),
            "nats://p:***@n1:4222,nats://p:***@n2:4222"
        );
    }

    #[test]
    fn every_node_of_a_cluster_url_is_a_server_to_connect_to() {
        let (servers, _) =
            authenticated("nats://command-api:pw@n1:4222,nats://command-api:pw@n2:4223,n3:4224")
                .expect("three servers");
        let hosts: Vec<String> = servers
            .iter()
            .map(|s| format!("{}:{}", s.host(), s.port()))
            .collect();
        assert_eq!(hosts, ["n1:4222", "n2:4223", "n3:4224"]);
        assert!(authenticated(" , ").is_err());
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

/// Where the journal is: the NATS servers and the stream. Flattened into every binary's
/// configuration that reads or writes the journal, so that the flags, variables and defaults
/// are spelled once.
#[derive(Debug, Clone, clap::Args)]
pub struct JournalArgs {
    /// NATS server with JetStream, 2.12.1 or newer; on a cluster every node's URL,
    /// comma-separated (a client fails over between them).
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,

    /// Name of the journal stream (its subjects are always `ledger.>`).
    #[arg(long, env = "LEDGER_STREAM", default_value = "LEDGER")]
    pub stream: String,
}
