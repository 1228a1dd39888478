//! The service refuses servers that cannot keep its promises.

use crate::support::*;
use std::path::PathBuf;

/// Debian's nats-server (2.9): too old for atomic batches.
const OLD_NATS_SERVER: &str = "/usr/sbin/nats-server";

#[tokio::test]
async fn the_service_refuses_a_server_older_than_2_12_1() {
    let bin = PathBuf::from(OLD_NATS_SERVER);
    assert!(
        bin.exists(),
        "{OLD_NATS_SERVER} (Debian's nats-server package) is needed to prove the refusal"
    );
    let old = NatsServer::start_with(bin);
    let error = command_api::start(config(&old.url))
        .await
        .expect_err("an old server must be refused");
    let message = format!("{error:#}");
    assert!(message.contains("too old"), "{message}");
    assert!(message.contains("2.12.1"), "{message}");
}

#[tokio::test]
async fn the_stream_is_created_from_its_definition_and_updated_idempotently() {
    let nats = NatsServer::start();
    let client = nats.client().await;
    let created = ledger_nats::ensure_stream(&client, STREAM, 1)
        .await
        .expect("created");
    assert_eq!(created["allow_atomic"], true);
    assert_eq!(created["deny_delete"], true);
    assert_eq!(created["deny_purge"], true);
    assert_eq!(created["allow_direct"], true);
    assert_eq!(created["subjects"][0], "ledger.>");
    let again = ledger_nats::ensure_stream(&client, STREAM, 1)
        .await
        .expect("updated");
    assert_eq!(again["allow_atomic"], true);
}

#[tokio::test]
async fn the_service_refuses_to_start_without_a_strong_token_secret() {
    let nats = NatsServer::start();
    let mut weak = config(&nats.url);
    weak.jwt_secret = Some("short".into());
    assert!(command_api::start(weak).await.is_err());
    let mut missing = config(&nats.url);
    missing.jwt_secret = None;
    assert!(command_api::start(missing).await.is_err());
}
