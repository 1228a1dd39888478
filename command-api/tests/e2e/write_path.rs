//! Open → deposit → withdraw → transfer over HTTP, and what the journal holds afterwards.

use crate::support::*;
use events::{Event, headers};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn open_deposit_withdraw_transfer_are_journaled_with_post_states() {
    let nats = NatsServer::start();
    let api = start_api(&nats.url).await;
    let alice = token("alice", false);
    let bob = token("bob", false);

    let opened = api
        .post("/v1/accounts", &alice, json!({"account_id": "alice"}))
        .await;
    assert_eq!(opened.status, StatusCode::CREATED, "{:?}", opened.body);
    assert_eq!(opened.body["owner_id"], "alice");
    assert_eq!(opened.body["currency"], "USD");
    assert_eq!(opened.body["balance"], 0);
    assert_eq!(opened.body["version"], 1);
    assert_eq!(opened.header("location"), Some("/v1/accounts/alice"));
    let open_seq: u64 = opened
        .header("ledger-seq")
        .expect("Ledger-Seq")
        .parse()
        .expect("int");
    let bob_opened = api
        .post("/v1/accounts", &bob, json!({"account_id": "bob"}))
        .await;
    assert_eq!(bob_opened.status, StatusCode::CREATED);

    let deposited = api
        .post(
            "/v1/accounts/alice/deposits",
            &alice,
            json!({"amount": 1000, "reference": "salary", "metadata": {"k": "v"}}),
        )
        .await;
    assert_eq!(
        deposited.status,
        StatusCode::CREATED,
        "{:?}",
        deposited.body
    );
    assert_eq!(deposited.body["balance"], 1000);
    assert_eq!(deposited.body["amount"], 1000);
    assert_eq!(deposited.body["version"], 2);
    let deposit_seq: u64 = deposited
        .header("ledger-seq")
        .expect("seq")
        .parse()
        .expect("int");
    assert!(deposit_seq > open_seq);

    let withdrawn = api
        .post(
            "/v1/accounts/alice/withdrawals",
            &alice,
            json!({"amount": 300}),
        )
        .await;
    assert_eq!(
        withdrawn.status,
        StatusCode::CREATED,
        "{:?}",
        withdrawn.body
    );
    assert_eq!(withdrawn.body["balance"], 700);
    assert_eq!(withdrawn.body["version"], 3);

    let transferred = api
        .post(
            "/v1/transfers",
            &alice,
            json!({"from_account_id": "alice", "to_account_id": "bob", "amount": 200}),
        )
        .await;
    assert_eq!(
        transferred.status,
        StatusCode::CREATED,
        "{:?}",
        transferred.body
    );
    assert_eq!(transferred.body["from"]["balance"], 500);
    assert_eq!(transferred.body["from"]["version"], 4);
    assert_eq!(transferred.body["to"]["account_id"], "bob");
    assert_eq!(transferred.body["to"]["version"], 2);
    // Bob's balance is Bob's business.
    assert!(transferred.body["to"].get("balance").is_none());

    let client = nats.client().await;
    let journal = journal(&client).await;
    let summary: Vec<(String, &str)> = journal
        .iter()
        .map(|m| {
            (
                m.subject.clone(),
                m.header(headers::EVENT_TYPE).unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("ledger.account.alice".to_owned(), "account_opened"),
            ("ledger.account.bob".to_owned(), "account_opened"),
            ("ledger.account.alice".to_owned(), "funds_deposited"),
            ("ledger.account.alice".to_owned(), "funds_withdrawn"),
            ("ledger.account.alice".to_owned(), "transfer_sent"),
            ("ledger.account.bob".to_owned(), "transfer_received"),
        ]
    );
    for message in &journal {
        let envelope = decode(message);
        assert_eq!(
            message.msg_id.as_deref(),
            Some(envelope.event_id.to_string().as_str())
        );
        assert_eq!(
            message.header(headers::EVENT_TYPE),
            Some(envelope.event.event_type())
        );
        assert_eq!(
            message.header(headers::JOB_ID),
            Some(envelope.job_id.to_string().as_str())
        );
        assert_eq!(message.header(headers::CONTENT_TYPE), Some(headers::JSON));
        assert_eq!(envelope.schema, events::SCHEMA);
    }
    // The deposit event carries its change and the account's post-state.
    let Event::FundsDeposited(deposit) = decode(&journal[2]).event else {
        panic!("third event is the deposit");
    };
    assert_eq!(deposit.amount.minor_units(), 1000);
    assert_eq!(
        deposit.reference.as_ref().map(|r| r.as_str()),
        Some("salary")
    );
    assert_eq!((deposit.state.balance, deposit.state.version), (1000, 2));
    assert_eq!(journal[2].seq, deposit_seq);
    // Both transfer legs share a job id and a transfer id; the response names them.
    let (sent, received) = (decode(&journal[4]), decode(&journal[5]));
    assert_eq!(sent.job_id, received.job_id);
    assert_eq!(transferred.body["job_id"], json!(sent.job_id));
    let (Event::TransferSent(s), Event::TransferReceived(r)) = (sent.event, received.event) else {
        panic!("transfer legs");
    };
    assert_eq!(s.transfer_id, r.transfer_id);
    assert_eq!(transferred.body["transfer_id"], json!(s.transfer_id));
    assert_eq!((s.state.balance, r.state.balance), (500, 200));
    // The last message on a subject is the account.
    let last =
        ledger_nats::direct::last_for_subjects(&client, STREAM, &["ledger.account.bob".into()])
            .await
            .expect("direct get");
    assert_eq!(
        decode(&last[0]).event.account_state().map(|s| s.balance),
        Some(200)
    );
    api.app.stop().await.expect("stops");
}

#[tokio::test]
async fn a_withdrawal_beyond_the_balance_is_rejected_and_journals_nothing() {
    let nats = NatsServer::start();
    let api = start_api(&nats.url).await;
    open_funded(&api, "carol", "carol", 100).await;
    let client = nats.client().await;
    let before = last_seq(&client).await;

    let carol = token("carol", false);
    let refused = api
        .post(
            "/v1/accounts/carol/withdrawals",
            &carol,
            json!({"amount": 101}),
        )
        .await;
    refused.assert_problem(422, "insufficient_funds");
    let refused = api
        .post(
            "/v1/transfers",
            &carol,
            json!({"from_account_id": "carol", "to_account_id": "nobody", "amount": 1}),
        )
        .await;
    refused.assert_problem(404, "account_not_found");
    assert_eq!(last_seq(&client).await, before, "nothing journaled");

    let allowed = api
        .post(
            "/v1/accounts/carol/withdrawals",
            &carol,
            json!({"amount": 100}),
        )
        .await;
    assert_eq!(allowed.status, StatusCode::CREATED);
    assert_eq!(allowed.body["balance"], 0);
}

#[tokio::test]
async fn opening_an_account_again_is_idempotent_but_a_different_one_conflicts() {
    let nats = NatsServer::start();
    let api = start_api(&nats.url).await;
    let dave = token("dave", false);
    let body = json!({"account_id": "dave", "currency": "EUR"});
    let first = api.post("/v1/accounts", &dave, body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let second = api.post("/v1/accounts", &dave, body).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.body["currency"], "EUR");
    assert_eq!(second.body["version"], 1);
    let different = api
        .post(
            "/v1/accounts",
            &dave,
            json!({"account_id": "dave", "currency": "USD"}),
        )
        .await;
    different.assert_problem(409, "account_exists");
    let generated = api.post("/v1/accounts", &dave, json!({})).await;
    assert_eq!(generated.status, StatusCode::CREATED);
    let id = generated.body["account_id"].as_str().expect("generated id");
    assert!(events::AccountId::parse(id).is_ok());
    let client = nats.client().await;
    assert_eq!(
        last_seq(&client).await,
        2,
        "two accounts opened, nothing else"
    );
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let nats = NatsServer::start();
    let api = start_api(&nats.url).await;
    let health = api.get("/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    let ready = api.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK, "{:?}", ready.body);
    assert_eq!(ready.body["status"], "ready");
}
