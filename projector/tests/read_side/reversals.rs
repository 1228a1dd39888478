//! Reversals and refunds on the read side: the transfer with its reversals, the history's
//! `reversal` and `refund` entries, a refunded order, and `verify` folding them all.

use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn reversals_and_refunds_are_read_back_and_verified() {
    let stack = Stack::start().await;
    let projector = stack.start_projector().await;
    stack.open_funded("rita", "rita", 1_000).await;
    stack.open_funded("store", "store", 0).await;
    let (rita, store, admin) = (
        token("rita", false),
        token("store", false),
        token("root", true),
    );
    let paid_store = stack
        .commands
        .post(
            "/v1/transfers",
            &rita,
            json!({"from_account_id": "rita", "to_account_id": "store", "amount": 300,
                   "reference": "INV-9"}),
        )
        .await;
    let transfer_id = paid_store.body["transfer_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let reversals = format!("/v1/transfers/{transfer_id}/reversals");
    let first = stack
        .commands
        .post(
            &reversals,
            &store,
            json!({"amount": 100, "reference": "one broken"}),
        )
        .await;
    assert_eq!(first.status.as_u16(), 201, "{:?}", first.body);
    let second = stack
        .commands
        .post(&reversals, &store, json!({"amount": 50}))
        .await;
    assert_eq!(second.status.as_u16(), 201, "{:?}", second.body);

    let order = stack
        .commands
        .post(
            "/v1/orders",
            &rita,
            json!({"account_id": "rita", "amount": 200}),
        )
        .await;
    let order_id = order.body["order_id"].as_str().expect("id").to_owned();
    assert_eq!(decided(&stack, &rita, &order_id).await["status"], "paid");
    let refunded = stack
        .commands
        .post(
            &format!("/v1/orders/{order_id}/refunds"),
            &admin,
            json!({"amount": 80}),
        )
        .await;
    assert_eq!(refunded.status.as_u16(), 201, "{:?}", refunded.body);
    let seq = seq_of(&refunded).to_string();
    let at_least = [("ledger-min-seq", seq.as_str())];

    // The transfer, with its reversals, for either side.
    for who in [&rita, &store] {
        let transfer = stack
            .queries
            .get_with(
                &format!("/v1/transfers/{transfer_id}"),
                Some(who),
                &at_least,
            )
            .await;
        assert_eq!(transfer.status.as_u16(), 200, "{:?}", transfer.body);
        let body = &transfer.body;
        assert_eq!(body["from_account_id"], "rita");
        assert_eq!(body["to_account_id"], "store");
        assert_eq!(body["amount"], 300);
        assert_eq!(body["currency"], "USD");
        assert_eq!(body["reference"], "INV-9");
        assert_eq!(body["reversed_total"], 150);
        let amounts: Vec<&Value> = body["reversals"]
            .as_array()
            .expect("reversals")
            .iter()
            .map(|r| &r["amount"])
            .collect();
        assert_eq!(amounts, [&json!(100), &json!(50)]);
        assert_eq!(
            body["reversals"][0]["reversal_id"],
            first.body["reversal_id"]
        );
        assert_eq!(body["reversals"][0]["reference"], "one broken");
    }
    let stranger = stack
        .queries
        .get(
            &format!("/v1/transfers/{transfer_id}"),
            &token("eve", false),
        )
        .await;
    stranger.assert_problem(404, "transfer_not_found");

    // The history: rita's reversals are credits, the store's debits; the refund a credit.
    let reversals_of = |account: &str, who: String| {
        let queries = &stack.queries;
        let path = format!("/v1/accounts/{account}/entries?type=reversal");
        async move { queries.get(&path, &who).await }
    };
    let rita_reversals = reversals_of("rita", rita.clone()).await;
    let amounts: Vec<&Value> = rita_reversals.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| &e["amount"])
        .collect();
    assert_eq!(amounts, [&json!(50), &json!(100)], "newest first, credits");
    assert_eq!(
        rita_reversals.body["items"][0]["transfer_id"],
        transfer_id.as_str()
    );
    assert_eq!(
        rita_reversals.body["items"][0]["counterparty_account_id"],
        "store"
    );
    assert_eq!(
        rita_reversals.body["items"][0]["event_type"],
        "reversal_received"
    );
    let store_reversals = reversals_of("store", store.clone()).await;
    assert_eq!(store_reversals.body["items"][0]["amount"], -50);
    assert_eq!(store_reversals.body["items"][0]["balance_after"], 150);
    let refunds = stack
        .queries
        .get("/v1/accounts/rita/entries?type=refund", &rita)
        .await;
    assert_eq!(refunds.body["items"][0]["amount"], 80);
    assert_eq!(refunds.body["items"][0]["order_id"], order_id.as_str());
    assert_eq!(refunds.body["items"][0]["event_type"], "refund_credited");
    // 1000 − 300 + 100 + 50 − 200 + 80
    assert_eq!(refunds.body["items"][0]["balance_after"], 730);

    let order = stack
        .queries
        .get(&format!("/v1/orders/{order_id}"), &rita)
        .await;
    assert_eq!(order.body["status"], "partially_refunded");
    assert_eq!(order.body["refunded_total"], 80);

    stack.wait_caught_up(Duration::from_secs(30)).await;
    projector.stop().await.expect("stops");
    let findings = stack.verify().await;
    assert!(findings.drift.is_empty(), "{:#?}", findings.drift);
    assert_eq!(findings.accounts, 2);
    let pool = stack.pool().await;

    // A reversal row turned into something else is drift.
    sqlx::query(
        "UPDATE account_entries SET amount = -amount WHERE account_id = 'rita'
             AND event_type = 'reversal_received'",
    )
    .execute(&pool)
    .await
    .expect("tamper");
    let drift = stack.verify().await;
    assert!(
        drift
            .drift
            .iter()
            .any(|line| line.contains("entry rita") && line.contains("amount")),
        "{:#?}",
        drift.drift
    );
}
