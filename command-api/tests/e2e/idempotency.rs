//! Idempotency keys: journaled records, honoured forever, one effect under concurrency.

use crate::support::*;
use events::headers;
use reqwest::StatusCode;
use serde_json::json;
use std::sync::Arc;

#[tokio::test]
async fn a_repeated_request_replays_the_original_answer() {
    let nats = NatsServer::start();
    let api = start_api(&nats.url).await;
    open_funded(&api, "jo", "jo", 0).await;
    let jo = token("jo", false);
    let key = [("idempotency-key", "deposit-0001")];
    let body = Some(json!({"amount": 250, "reference": "r1"}).to_string());

    let first = api
        .post_with("/v1/accounts/jo/deposits", Some(&jo), &key, body.clone())
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(first.header("idempotent-replayed"), None);
    // Same JSON, other key order and spacing: the same request.
    let reordered = Some(r#"{ "reference": "r1",  "amount": 250 }"#.to_owned());
    let again = api
        .post_with("/v1/accounts/jo/deposits", Some(&jo), &key, reordered)
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body, "the original body, job id included");
    assert!(again.header("ledger-seq").is_some());

    // A restarted instance (empty cache) still honours the key: it lives in the journal.
    api.app.stop().await.expect("stops");
    let api = start_api(&nats.url).await;
    let later = api
        .post_with("/v1/accounts/jo/deposits", Some(&jo), &key, body)
        .await;
    assert_eq!(later.header("idempotent-replayed"), Some("true"));
    assert_eq!(later.body, first.body);

    let reused = api
        .post_with(
            "/v1/accounts/jo/deposits",
            Some(&jo),
            &key,
            Some(json!({"amount": 251}).to_string()),
        )
        .await;
    reused.assert_problem(422, "idempotency_key_reused");
    let other_path = api
        .post_with(
            "/v1/accounts/jo/withdrawals",
            Some(&jo),
            &key,
            Some(json!({"amount": 250, "reference": "r1"}).to_string()),
        )
        .await;
    other_path.assert_problem(422, "idempotency_key_reused");
    // Keys are scoped to the caller: an admin's same key is a different key.
    let admin = api
        .post_with(
            "/v1/accounts/jo/deposits",
            Some(&token("root", true)),
            &key,
            Some(json!({"amount": 1}).to_string()),
        )
        .await;
    assert_eq!(admin.status, StatusCode::CREATED);
    assert_eq!(admin.header("idempotent-replayed"), None);

    let client = nats.client().await;
    let deposits = journal(&client)
        .await
        .iter()
        .filter(|m| m.header(headers::EVENT_TYPE) == Some("funds_deposited"))
        .count();
    assert_eq!(deposits, 2, "the first deposit and the admin's");
}

#[tokio::test]
async fn fifty_concurrent_duplicate_transfers_across_two_instances_have_one_effect() {
    let nats = NatsServer::start();
    let first = Arc::new(start_api(&nats.url).await);
    let second = Arc::new(start_api(&nats.url).await);
    open_funded(&first, "kim", "kim", 1_000).await;
    open_funded(&first, "kim-savings", "kim", 0).await;
    let kim = Arc::new(token("kim", false));
    let body = json!({"from_account_id": "kim", "to_account_id": "kim-savings", "amount": 700});
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let api = if i % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        let (kim, body) = (kim.clone(), body.to_string());
        tasks.spawn(async move {
            let key = [("idempotency-key", "pay-rent-2026-11")];
            api.post_with("/v1/transfers", Some(&kim), &key, Some(body))
                .await
        });
    }
    let mut answers = Vec::new();
    while let Some(answer) = tasks.join_next().await {
        answers.push(answer.expect("task"));
    }
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
        assert_eq!(
            answer.body, answers[0].body,
            "every answer is the one transfer"
        );
    }
    let originals = answers
        .iter()
        .filter(|a| a.header("idempotent-replayed").is_none())
        .count();
    assert_eq!(originals, 1, "one original answer, 49 replays");
    assert_eq!(answers[0].body["from"]["balance"], 300);
    let client = nats.client().await;
    let sent = journal(&client)
        .await
        .iter()
        .filter(|m| m.header(headers::EVENT_TYPE) == Some("transfer_sent"))
        .count();
    assert_eq!(sent, 1, "exactly one effect");
}

/// The duplicate storm: a client (or a proxy) that resends one transfer a hundred times at
/// once, spread over two instances. Exactly one effect; the other 99 answers are replays of
/// the same body, marked as such.
#[tokio::test]
async fn a_storm_of_a_hundred_identical_transfers_has_one_effect_and_ninety_nine_replays() {
    const STORM: usize = 100;
    let nats = NatsServer::start();
    let first = Arc::new(start_api(&nats.url).await);
    let second = Arc::new(start_api(&nats.url).await);
    open_funded(&first, "ada", "ada", 1_000).await;
    open_funded(&first, "ada-travel", "ada", 0).await;
    let ada = Arc::new(token("ada", false));
    let body = json!({"from_account_id": "ada", "to_account_id": "ada-travel", "amount": 600});
    // Every request is sent before any answer is read: they all race.
    let start = Arc::new(tokio::sync::Barrier::new(STORM));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..STORM {
        let api = if i % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        let (ada, body, start) = (ada.clone(), body.to_string(), start.clone());
        tasks.spawn(async move {
            start.wait().await;
            let key = [("idempotency-key", "storm-0001")];
            api.post_with("/v1/transfers", Some(&ada), &key, Some(body))
                .await
        });
    }
    let mut answers = Vec::new();
    while let Some(answer) = tasks.join_next().await {
        answers.push(answer.expect("task"));
    }
    assert_eq!(answers.len(), STORM);
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
        assert_eq!(
            answer.body, answers[0].body,
            "every answer is the one transfer"
        );
    }
    let replays = answers
        .iter()
        .filter(|a| a.header("idempotent-replayed") == Some("true"))
        .count();
    let originals = answers
        .iter()
        .filter(|a| a.header("idempotent-replayed").is_none())
        .count();
    assert_eq!((originals, replays), (1, STORM - 1));
    assert_eq!(answers[0].body["from"]["balance"], 400, "moved once");
    assert_eq!(answers[0].body["to"]["balance"], 600);

    let client = nats.client().await;
    let journal = journal(&client).await;
    let count = |event_type: &str| {
        journal
            .iter()
            .filter(|m| m.header(headers::EVENT_TYPE) == Some(event_type))
            .count()
    };
    assert_eq!(count("transfer_sent"), 1, "exactly one effect");
    assert_eq!(count("transfer_received"), 1);
    assert_eq!(count("idempotency_recorded"), 1, "one record for the key");
}

#[tokio::test]
async fn fifty_concurrent_identical_deposits_apply_once_and_replay_forty_nine_times() {
    let nats = NatsServer::start();
    let first = Arc::new(start_api(&nats.url).await);
    let second = Arc::new(start_api(&nats.url).await);
    open_funded(&first, "lee", "lee", 0).await;
    let lee = Arc::new(token("lee", false));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let api = if i % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        let lee = lee.clone();
        tasks.spawn(async move {
            api.post_with(
                "/v1/accounts/lee/deposits",
                Some(&lee),
                &[("idempotency-key", "top-up-42")],
                Some(json!({"amount": 42}).to_string()),
            )
            .await
        });
    }
    let mut answers = Vec::new();
    while let Some(answer) = tasks.join_next().await {
        answers.push(answer.expect("task"));
    }
    assert!(
        answers.iter().all(|a| a.status == StatusCode::CREATED),
        "all succeed"
    );
    let replays = answers
        .iter()
        .filter(|a| a.header("idempotent-replayed") == Some("true"))
        .count();
    assert_eq!(replays, 49);
    assert!(answers.iter().all(|a| a.body == answers[0].body));
    assert_eq!(answers[0].body["balance"], 42);
    let client = nats.client().await;
    let deposits = journal(&client)
        .await
        .iter()
        .filter(|m| m.header(headers::EVENT_TYPE) == Some("funds_deposited"))
        .count();
    assert_eq!(deposits, 1);
}

#[tokio::test]
async fn a_key_recorded_by_another_instance_replays_even_when_a_retry_would_now_be_refused() {
    let nats = NatsServer::start();
    let first = start_api(&nats.url).await;
    let second = start_api(&nats.url).await;
    open_funded(&first, "r", "o", 0).await;
    open_funded(&first, "s", "o", 0).await;
    let owner = token("o", false);
    let key = [("idempotency-key", "move-50")];
    let body =
        Some(json!({"from_account_id": "r", "to_account_id": "s", "amount": 50}).to_string());
    // The second instance refuses first (no money yet) and so caches "no record for this key".
    let refused = second
        .post_with("/v1/transfers", Some(&owner), &key, body.clone())
        .await;
    refused.assert_problem(422, "insufficient_funds");
    // Money arrives, and the first instance performs the transfer under the key.
    let topped = first
        .post(
            "/v1/accounts/r/deposits",
            &token("root", true),
            json!({"amount": 80}),
        )
        .await;
    assert_eq!(topped.status, StatusCode::CREATED);
    let done = first
        .post_with("/v1/transfers", Some(&owner), &key, body.clone())
        .await;
    assert_eq!(done.status, StatusCode::CREATED, "{:?}", done.body);
    // Retrying at the second instance must replay that transfer, not refuse it (30 left is
    // not enough for another 50) and not perform it again.
    let retried = second
        .post_with("/v1/transfers", Some(&owner), &key, body)
        .await;
    assert_eq!(retried.status, StatusCode::CREATED, "{:?}", retried.body);
    assert_eq!(retried.header("idempotent-replayed"), Some("true"));
    assert_eq!(retried.body, done.body);
}
