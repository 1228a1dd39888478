//! `Ledger-Min-Seq` gives read-your-writes; every answer carries `Ledger-Seq`.

use crate::support::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_query_with_ledger_min_seq_already_shows_the_write() {
    let stack = Stack::start().await;
    let projector = stack.start_projector().await;
    stack.open_funded("alice", "alice", 0).await;
    let alice = token("alice", false);
    for round in 1..=20 {
        let deposited = stack
            .commands
            .post("/v1/accounts/alice/deposits", &alice, json!({"amount": 5}))
            .await;
        assert_eq!(deposited.status.as_u16(), 201);
        let seq = seq_of(&deposited).to_string();
        let balance = stack
            .queries
            .get_with(
                "/v1/accounts/alice/balance",
                Some(&alice),
                &[("ledger-min-seq", &seq)],
            )
            .await;
        assert_eq!(balance.status.as_u16(), 200, "{:?}", balance.body);
        assert_eq!(balance.body["balance"], 5 * round, "round {round}");
        assert!(seq_of(&balance) >= seq.parse::<u64>().expect("int"));
    }
    let account = stack.queries.get("/v1/accounts/alice", &alice).await;
    assert_eq!(account.body["balance"], 100);
    assert_eq!(account.body["owner_id"], "alice");
    assert_eq!(account.body["version"], 21);
    assert!(account.header("ledger-seq").is_some());
    // Operators see the reads timed by route and status on the query API's /metrics.
    let metrics = stack.query_metrics().await;
    let balance_reads = metric(
        &metrics,
        "tally_http_request_duration_seconds_count",
        &[
            "service=\"query-api\"",
            "route=\"/v1/accounts/{id}/balance\"",
            "status=\"200\"",
        ],
    );
    assert!(
        balance_reads.is_some_and(|n| n >= 20.0),
        "20 balance reads counted: {metrics}"
    );
    // The projector's own metrics keep the names dashboards read (deploy/grafana).
    let last_seq = stack.last_seq().await as f64;
    let projected = scrape_until(
        &format!("http://{}/metrics", projector.addr),
        Duration::from_secs(20),
        |text| {
            gauge(text, "ledger_stream_last_seq") == Some(last_seq)
                && gauge(text, "ledger_projector_checkpoint") == Some(last_seq)
                && gauge(text, "ledger_projector_lag") == Some(0.0)
                && gauge(text, "ledger_projector_active") == Some(1.0)
        },
    )
    .await;
    let value = |name: &str| gauge(&projected, name);
    assert!(value("ledger_projector_applied_events_total").is_some_and(|n| n >= 1.0));
    assert!(value("ledger_projector_applied_batches_total").is_some_and(|n| n >= 1.0));
    assert!(projected.contains("# TYPE ledger_projector_applied_events_total counter"));
    assert!(projected.contains("# TYPE ledger_projector_lag gauge"));
    projector.stop().await.expect("stops");
}

#[tokio::test]
async fn a_sequence_the_projection_has_not_reached_is_answered_503_projection_lagging() {
    let nats = NatsServer::start();
    let db = TestDatabase::create().await;
    let mut config = query_config(&db.url);
    config.min_seq_wait_ms = 300;
    let query = query_api::start(config).await.expect("starts");
    let queries = Http::new(format!("http://{}", query.addr));
    let _ = nats;
    let alice = token("alice", false);
    let answer = queries
        .get_with(
            "/v1/accounts/alice",
            Some(&alice),
            &[("ledger-min-seq", "1000000")],
        )
        .await;
    assert_eq!(answer.status.as_u16(), 503);
    assert_eq!(answer.body["code"], "projection_lagging");
    assert_eq!(answer.header("retry-after"), Some("1"));
    assert!(answer.header("ledger-seq").is_some());
    let bad = queries
        .get_with(
            "/v1/accounts/alice",
            Some(&alice),
            &[("ledger-min-seq", "soon")],
        )
        .await;
    assert_eq!(bad.status.as_u16(), 400);
}
