//! The projector rides out NATS and Postgres outages, and stops loudly on an event it cannot
//! decode rather than skipping it.

use crate::support::*;
use projector::consume::Role;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projector_survives_a_nats_kill_and_postgres_connection_loss() {
    let mut stack = Stack::start().await;
    let projector = stack.start_projector().await;
    stack.open_funded("f-1", "f", 0).await;
    let f = token("f", false);
    for _ in 0..20 {
        stack
            .commands
            .post("/v1/accounts/f-1/deposits", &f, json!({"amount": 1}))
            .await;
    }
    stack.wait_caught_up(Duration::from_secs(20)).await;

    // Postgres drops every connection of the projector (as a failover or restart would).
    let pool = stack.pool().await;
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND application_name IN ('tally', 'tally-lock')",
    )
    .execute(&pool)
    .await
    .expect("terminate backends");
    // NATS is killed and comes back on the same store.
    stack.nats.restart();

    // Writes resume once the command API has reconnected.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut written = 0;
    while written < 20 {
        let answer = stack
            .commands
            .post("/v1/accounts/f-1/deposits", &f, json!({"amount": 1}))
            .await;
        if answer.status.as_u16() == 201 {
            written += 1;
        } else {
            assert!(
                Instant::now() < deadline,
                "writes did not resume: {:?}",
                answer.body
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    stack.wait_caught_up(Duration::from_secs(30)).await;
    let account = stack.queries.get("/v1/accounts/f-1", &f).await;
    assert_eq!(account.body["balance"], 40);
    let client = stack.nats_client().await;
    let findings = projector::verify::verify(&client, STREAM, &pool)
        .await
        .expect("verify");
    assert!(findings.drift.is_empty(), "{:#?}", findings.drift);
    assert_eq!(projector.status.role(), Role::Active);
    projector.stop().await.expect("stops");
}

#[tokio::test]
async fn an_undecodable_event_stops_the_projector_loudly_without_skipping_it() {
    let stack = Stack::start().await;
    let projector = stack.start_projector().await;
    stack.open_funded("g-1", "g", 5).await;
    stack.wait_caught_up(Duration::from_secs(20)).await;
    let good = stack.last_seq().await;
    // Something that is not a Tally event lands on an account subject.
    let client = stack.nats_client().await;
    let js = async_nats::jetstream::new(client.clone());
    js.publish("ledger.account.g-1", "not json".into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    stack
        .commands
        .post(
            "/v1/accounts/g-1/deposits",
            &token("g", false),
            json!({"amount": 1}),
        )
        .await;

    // Nothing past the poison message was applied.
    assert_eq!(stopped_on(&stack, &projector, good + 1).await, good);
    let probes = Http::new(format!("http://{}", projector.addr));
    let health = probes.get_with("/healthz", None, &[]).await;
    assert_eq!(health.status.as_u16(), 503);
    assert_eq!(health.body["status"], "failed");
    let metrics = probes.get_with("/metrics", None, &[]).await;
    assert_eq!(metrics.status.as_u16(), 200);
    projector.stop().await.expect("stops");
}

/// The projection reads ahead of its writes; when the reader meets an undecodable event, every
/// transaction it read before it is still written, and nothing after it.
#[tokio::test]
async fn what_was_read_before_an_undecodable_event_is_written_before_the_projector_stops() {
    let stack = Stack::start().await;
    // A backlog of small atomic batches, then the poison, before any projector runs.
    for i in 0..30 {
        stack.open_funded(&format!("p-{i}"), "p", 5).await;
    }
    let good = stack.last_seq().await;
    let js = async_nats::jetstream::new(stack.nats_client().await);
    js.publish("ledger.account.p-0", "not json".into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    // One atomic batch per transaction: the reader is many transactions ahead of Postgres.
    let mut config = stack.projector_config();
    config.batch_len_max = 1;
    let projector = projector::start(config).await.expect("projector starts");

    assert_eq!(
        stopped_on(&stack, &projector, good + 1).await,
        good,
        "every event before the poison is applied"
    );
    projector.stop().await.expect("stops");
}

/// Waits until `projector` has stopped as failed, naming the message at `seq` as the cause,
/// and returns the checkpoint it left.
async fn stopped_on(stack: &Stack, projector: &projector::Projector, seq: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    while projector.status.role() != Role::Failed {
        assert!(Instant::now() < deadline, "the projector did not stop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let failure = projector.status.failure().expect("a reason");
    assert!(failure.contains(&format!("message {seq}")), "{failure}");
    read_model::checkpoint(&stack.pool().await, read_model::PROJECTION)
        .await
        .expect("checkpoint")
}

#[tokio::test]
async fn metrics_report_the_lag_and_the_checkpoint() {
    let stack = Stack::start().await;
    let projector = stack.start_projector().await;
    stack.open_funded("h-1", "h", 5).await;
    stack.wait_caught_up(Duration::from_secs(20)).await;
    let last = stack.last_seq().await;
    let client = reqwest::Client::new();
    let wanted = [
        format!("ledger_projector_checkpoint {last}"),
        "ledger_projector_lag 0".to_owned(),
        "ledger_projector_active 1".to_owned(),
    ];
    scrape_until(
        &format!("http://{}/metrics", projector.addr),
        Duration::from_secs(20),
        |text| wanted.iter().all(|line| text.lines().any(|l| l == line)),
    )
    .await;
    let ready = client
        .get(format!("http://{}/readyz", projector.addr))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status().as_u16(), 200);
    projector.stop().await.expect("stops");
}

/// A journal that lost messages the read model already holds (its store lost acknowledged
/// writes) stops the projector with a failed health check instead of a silent skip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_behind_the_checkpoint_stops_the_projector_loudly() {
    let stack = Stack::start().await;
    let first = stack.start_projector().await;
    stack.open_funded("lost-1", "lost", 5).await;
    stack.wait_caught_up(Duration::from_secs(20)).await;
    first.stop().await.expect("stops");
    let last = stack.last_seq().await;
    let pool = stack.pool().await;
    // As if the read model had projected ten messages the journal no longer has.
    sqlx::query("UPDATE projection_checkpoint SET last_seq = $1 WHERE name = $2")
        .bind(i64::try_from(last + 10).expect("seq"))
        .bind(read_model::PROJECTION)
        .execute(&pool)
        .await
        .expect("move the checkpoint");
    let projector = stack.start_projector().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while projector.status.role() != Role::Failed {
        assert!(Instant::now() < deadline, "the projector went on");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let failure = projector.status.failure().expect("a reason");
    assert!(
        failure.contains(&format!("ends at sequence {last}")) && failure.contains("lost"),
        "{failure}"
    );
    let probes = Http::new(format!("http://{}", projector.addr));
    let health = probes.get("/healthz", "").await;
    assert_eq!(health.status.as_u16(), 503);
    projector.stop().await.expect("stops");
}

/// A projector started before the journal exists (its command API not up yet) waits for the
/// stream rather than failing, and starts once the command API has created it.
#[tokio::test]
async fn a_projector_started_before_the_journal_waits_for_it() {
    let nats = NatsServer::start();
    let db = TestDatabase::create().await;
    let starting = tokio::spawn(projector::start(projector::Config::local(
        &nats.url, &db.url,
    )));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !starting.is_finished(),
        "the projector waits for the stream"
    );
    let command = command_api::start(command_config(&nats.url))
        .await
        .expect("command API starts");
    let projector = tokio::time::timeout(Duration::from_secs(20), starting)
        .await
        .expect("the projector starts once the stream exists")
        .expect("the start task")
        .expect("the projector starts");
    projector.stop().await.expect("stops");
    command.stop().await.expect("stops");
}
