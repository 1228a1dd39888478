//! Two-phase holds: place, capture (partly), void, refuse a second capture, expire.

use crate::support::*;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn holds_reserve_capture_release_and_expire() {
    let stack = Stack::start().await;
    let projector = stack.start_projector().await;
    stack.open_funded("xia", "xia", 1_000).await;
    let xia = token("xia", false);

    // Place: available drops, balance does not.
    let placed = stack
        .commands
        .post("/v1/accounts/xia/holds", &xia, json!({"amount": 300}))
        .await;
    assert_eq!(placed.status.as_u16(), 201, "{:?}", placed.body);
    assert_eq!(
        (
            placed.body["balance"].as_i64(),
            placed.body["available"].as_i64()
        ),
        (Some(1_000), Some(700))
    );
    assert_eq!(placed.body["status"], "placed");
    let hold = placed.body["hold_id"].as_str().expect("hold id").to_owned();
    // Held money cannot be spent.
    stack
        .commands
        .post("/v1/accounts/xia/withdrawals", &xia, json!({"amount": 701}))
        .await
        .assert_problem(422, "insufficient_funds");

    // Capture part: 200 taken, the other 100 released.
    let capture = format!("/v1/accounts/xia/holds/{hold}/capture");
    let captured = stack
        .commands
        .post(&capture, &xia, json!({"amount": 200}))
        .await;
    assert_eq!(captured.status.as_u16(), 201, "{:?}", captured.body);
    assert_eq!(captured.body["balance"], 800);
    assert_eq!(captured.body["held"], 0);
    assert_eq!(captured.body["available"], 800);
    assert_eq!(captured.body["status"], "captured");
    // A second capture, or a void after it, is refused.
    stack
        .commands
        .post(&capture, &xia, json!({}))
        .await
        .assert_problem(409, "hold_not_active");
    stack
        .commands
        .post(
            &format!("/v1/accounts/xia/holds/{hold}/void"),
            &xia,
            json!({}),
        )
        .await
        .assert_problem(409, "hold_not_active");

    // More than held cannot be captured; void releases everything.
    let second = stack
        .commands
        .post("/v1/accounts/xia/holds", &xia, json!({"amount": 100}))
        .await;
    let second_id = second.body["hold_id"].as_str().expect("id").to_owned();
    stack
        .commands
        .post(
            &format!("/v1/accounts/xia/holds/{second_id}/capture"),
            &xia,
            json!({"amount": 101}),
        )
        .await
        .assert_problem(422, "capture_exceeds_hold");
    let voided = stack
        .commands
        .post(
            &format!("/v1/accounts/xia/holds/{second_id}/void"),
            &xia,
            json!({}),
        )
        .await;
    assert_eq!(voided.status.as_u16(), 201);
    assert_eq!(
        (
            voided.body["balance"].as_i64(),
            voided.body["available"].as_i64()
        ),
        (Some(800), Some(800))
    );
    // Another owner cannot see or touch the hold.
    stack
        .commands
        .post(
            &format!("/v1/accounts/xia/holds/{second_id}/void"),
            &token("yan", false),
            json!({}),
        )
        .await
        .assert_problem(404, "account_not_found");

    // Expiry: the system voids the hold when its time comes.
    let expiring = stack
        .commands
        .post(
            "/v1/accounts/xia/holds",
            &xia,
            json!({"amount": 500, "expires_in_s": 1}),
        )
        .await;
    assert_eq!(expiring.body["available"], 300);
    let expiring_id = expiring.body["hold_id"].as_str().expect("id").to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = stack
            .queries
            .get(&format!("/v1/holds/{expiring_id}"), &xia)
            .await;
        if status.body["status"] == "expired" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the hold did not expire: {:?}",
            status.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let last = stack.last_seq().await.to_string();
    let balance = stack
        .queries
        .get_with(
            "/v1/accounts/xia/balance",
            Some(&xia),
            &[("ledger-min-seq", &last)],
        )
        .await;
    assert_eq!(balance.body["balance"], 800);
    assert_eq!(
        balance.body["available"], 800,
        "the expired hold released its money"
    );
    // A captured hold reads as captured; history shows hold entries.
    let first = stack.queries.get(&format!("/v1/holds/{hold}"), &xia).await;
    assert_eq!(first.body["status"], "captured");
    assert_eq!(first.body["captured"], 200);
    let history = stack
        .queries
        .get("/v1/accounts/xia/entries?type=hold", &xia)
        .await;
    let amounts: Vec<i64> = history.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["amount"].as_i64().expect("amount"))
        .collect();
    assert_eq!(
        amounts,
        [0, 0, 0, 0, -200, 0],
        "newest first: expiry, place, void, place, capture, place"
    );
    let pool = stack.pool().await;
    let findings = projector::verify::verify(&stack.nats_client().await, STREAM, &pool)
        .await
        .expect("verify");
    assert!(findings.drift.is_empty(), "{:#?}", findings.drift);
    projector.stop().await.expect("stops");
}
