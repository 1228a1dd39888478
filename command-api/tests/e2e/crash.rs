//! Acknowledged writes survive a crash of the journal's server, and the writer recovers.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn acknowledged_writes_survive_a_nats_server_kill_and_the_writer_recovers() {
    let mut nats = NatsServer::start();
    let api = start_api(&nats.url).await;
    open_funded(&api, "q", "o", 100).await;
    let owner = token("o", false);
    for _ in 0..5 {
        let answer = api
            .post("/v1/accounts/q/withdrawals", &owner, json!({"amount": 10}))
            .await;
        assert_eq!(answer.status, StatusCode::CREATED);
    }

    nats.restart(); // SIGKILL, then the same store and port

    // Until the client has reconnected, commands fail cleanly (503), never half-done.
    let deadline = Instant::now() + Duration::from_secs(30);
    let recovered = loop {
        let answer = api
            .post("/v1/accounts/q/withdrawals", &owner, json!({"amount": 10}))
            .await;
        if answer.status == StatusCode::CREATED {
            break answer;
        }
        answer.assert_problem(503, "unavailable");
        assert!(Instant::now() < deadline, "the writer did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Every acknowledged withdrawal is still there: 100 - 5 * 10, then this one.
    assert_eq!(recovered.body["balance"], 40, "{:?}", recovered.body);
    assert_eq!(recovered.body["version"], 8);
    let client = nats.client().await;
    let withdrawals = journal(&client)
        .await
        .iter()
        .filter(|m| m.header(events::headers::EVENT_TYPE) == Some("funds_withdrawn"))
        .count();
    assert_eq!(withdrawals, 6);
}
