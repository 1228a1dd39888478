//! The service refuses servers that cannot keep its promises.

use crate::support::*;
use serde_json::Value;
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

/// The stream's `compression` as the server reports it (it leaves out its default, `none`).
async fn compression(client: &async_nats::Client) -> String {
    let reply = client
        .request(format!("$JS.API.STREAM.INFO.{STREAM}"), "".into())
        .await
        .expect("stream info");
    let info: Value = serde_json::from_slice(&reply.payload).expect("JSON");
    info["config"]["compression"]
        .as_str()
        .unwrap_or("none")
        .to_owned()
}

#[tokio::test]
async fn a_journal_of_another_compression_is_set_to_the_definitions_at_start_and_reads_back() {
    let nats = NatsServer::start();
    let client = nats.client().await;
    let wanted = ledger_nats::stream::definition(STREAM, 1).expect("definition")["compression"]
        .as_str()
        .expect("the definition names a compression")
        .to_owned();
    let api = start_api(&nats.url).await;
    // An earlier release's journal: the same stream, written with the other compression
    // (S2, as releases from 2026-11-29 to 2026-12-01 made it; ADR 0021).
    let other = if wanted == "none" { "s2" } else { "none" };
    let mut earlier = ledger_nats::stream::definition(STREAM, 1).expect("definition");
    earlier["compression"] = Value::from(other);
    let reply = client
        .request(
            format!("$JS.API.STREAM.UPDATE.{STREAM}"),
            serde_json::to_vec(&earlier).expect("JSON").into(),
        )
        .await
        .expect("stream update");
    let updated: Value = serde_json::from_slice(&reply.payload).expect("JSON");
    assert!(updated["error"].is_null(), "{updated}");
    assert_eq!(compression(&client).await, other);
    open_funded(&api, "before", "alice", 100).await;
    api.app.stop().await.expect("stops");

    // The setting, that is: a running nats-server writes new blocks the new way only once it
    // reopens the store (a restart; ADR 0021), which a test this small would not show.
    let api = start_api(&nats.url).await;
    assert_eq!(compression(&client).await, wanted);
    let admin = token("root", true);
    let deposited = api
        .post(
            "/v1/accounts/before/deposits",
            &admin,
            serde_json::json!({"amount": 5}),
        )
        .await;
    assert_eq!(deposited.status.as_u16(), 201, "{:?}", deposited.body);
    assert_eq!(deposited.body["balance"], 105, "{:?}", deposited.body);
    // Every message, written before the change and after, reads back.
    let events = journal(&client).await.iter().map(decode).count();
    assert!(events >= 3, "open, deposit, deposit: {events} messages");
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
