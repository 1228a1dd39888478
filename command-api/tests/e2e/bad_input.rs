//! Every kind of bad input gets a clear 4xx problem and leaves the journal untouched.

use crate::support::*;
use serde_json::json;

#[tokio::test]
async fn bad_input_gets_a_problem_and_leaves_no_trace() {
    let nats = NatsServer::start();
    let api = start_api(&nats.url).await;
    open_funded(&api, "erin", "erin", 100).await;
    open_funded(&api, "frank", "frank", 0).await;
    let admin = token("root", true);
    api.post(
        "/v1/accounts",
        &admin,
        json!({"account_id": "euro", "owner_id": "erin", "currency": "EUR"}),
    )
    .await;
    api.post(
        "/v1/accounts",
        &admin,
        json!({"account_id": "rich", "owner_id": "frank"}),
    )
    .await;
    api.post(
        "/v1/accounts/rich/deposits",
        &admin,
        json!({"amount": 1_000_000_000_000_000_i64}),
    )
    .await;
    let client = nats.client().await;
    let before = last_seq(&client).await;
    let erin = token("erin", false);
    let deposit = "/v1/accounts/erin/deposits";
    let long_id = "x".repeat(65);

    // (path, body, expected status, expected code)
    let cases: Vec<(String, String, u16, &str)> = vec![
        (
            deposit.into(),
            json!({"amount": 0}).to_string(),
            400,
            "invalid_amount",
        ),
        (
            deposit.into(),
            json!({"amount": -5}).to_string(),
            400,
            "invalid_amount",
        ),
        (
            deposit.into(),
            json!({"amount": 1.5}).to_string(),
            400,
            "invalid_amount",
        ),
        (
            deposit.into(),
            json!({"amount": "10"}).to_string(),
            400,
            "invalid_amount",
        ),
        (
            deposit.into(),
            json!({"amount": 1_000_000_000_000_001_i64}).to_string(),
            400,
            "invalid_amount",
        ),
        (
            deposit.into(),
            r#"{"amount": 99999999999999999999999}"#.into(),
            400,
            "invalid_amount",
        ),
        (
            deposit.into(),
            json!({}).to_string(),
            400,
            "invalid_request",
        ),
        (
            deposit.into(),
            json!({"amount": 5, "colour": "red"}).to_string(),
            400,
            "invalid_request",
        ),
        (
            deposit.into(),
            r#"{"amount": 5"#.into(),
            400,
            "invalid_request",
        ),
        (deposit.into(), "[1, 2]".into(), 400, "invalid_request"),
        (
            deposit.into(),
            json!({"amount": 5, "currency": "euro"}).to_string(),
            400,
            "invalid_currency",
        ),
        (
            deposit.into(),
            json!({"amount": 5, "currency": "EUR"}).to_string(),
            422,
            "currency_mismatch",
        ),
        (
            deposit.into(),
            json!({"amount": 5, "metadata": [1]}).to_string(),
            400,
            "invalid_request",
        ),
        // PostgreSQL's jsonb cannot store U+0000: accepted, it would stop the projection.
        (
            deposit.into(),
            r#"{"amount": 5, "metadata": {"note": "a\u0000b"}}"#.to_owned(),
            400,
            "invalid_request",
        ),
        (
            deposit.into(),
            json!({"amount": 5, "reference": ""}).to_string(),
            400,
            "invalid_request",
        ),
        (
            "/v1/accounts/er.in/deposits".into(),
            json!({"amount": 5}).to_string(),
            400,
            "invalid_account_id",
        ),
        (
            "/v1/accounts/er*in/deposits".into(),
            json!({"amount": 5}).to_string(),
            400,
            "invalid_account_id",
        ),
        (
            "/v1/accounts/er%3Ein/deposits".into(),
            json!({"amount": 5}).to_string(),
            400,
            "invalid_account_id",
        ),
        (
            "/v1/accounts/er%20in/deposits".into(),
            json!({"amount": 5}).to_string(),
            400,
            "invalid_account_id",
        ),
        (
            format!("/v1/accounts/{long_id}/deposits"),
            json!({"amount": 5}).to_string(),
            400,
            "invalid_account_id",
        ),
        (
            "/v1/accounts/nobody/deposits".into(),
            json!({"amount": 5}).to_string(),
            404,
            "account_not_found",
        ),
        (
            "/v1/accounts/frank/deposits".into(),
            json!({"amount": 5}).to_string(),
            404,
            "account_not_found",
        ),
        (
            "/v1/accounts".into(),
            json!({"account_id": "a.b"}).to_string(),
            400,
            "invalid_account_id",
        ),
        (
            "/v1/accounts".into(),
            json!({"account_id": "a b"}).to_string(),
            400,
            "invalid_account_id",
        ),
        (
            "/v1/accounts".into(),
            json!({"account_id": "a>"}).to_string(),
            400,
            "invalid_account_id",
        ),
        (
            "/v1/accounts".into(),
            json!({"account_id": long_id}).to_string(),
            400,
            "invalid_account_id",
        ),
        (
            "/v1/accounts".into(),
            json!({"account_id": "z", "currency": "US"}).to_string(),
            400,
            "invalid_currency",
        ),
        (
            "/v1/accounts".into(),
            json!({"account_id": "z", "owner_id": "someone"}).to_string(),
            403,
            "forbidden",
        ),
        (
            "/v1/accounts".into(),
            json!({"account_id": "z", "overdraft_limit": 10}).to_string(),
            403,
            "forbidden",
        ),
        (
            "/v1/accounts".into(),
            json!({"account_id": "z", "overdraft_limit": -1}).to_string(),
            400,
            "invalid_amount",
        ),
        (
            "/v1/accounts".into(),
            json!({"account_id": "erin", "currency": "EUR"}).to_string(),
            409,
            "account_exists",
        ),
        (
            "/v1/accounts/erin/withdrawals".into(),
            json!({"amount": 101}).to_string(),
            422,
            "insufficient_funds",
        ),
        (
            "/v1/transfers".into(),
            json!({"from_account_id": "erin", "to_account_id": "erin", "amount": 1}).to_string(),
            422,
            "same_account",
        ),
        (
            "/v1/transfers".into(),
            json!({"from_account_id": "erin", "to_account_id": "ghost", "amount": 1}).to_string(),
            404,
            "account_not_found",
        ),
        (
            "/v1/transfers".into(),
            json!({"from_account_id": "frank", "to_account_id": "erin", "amount": 1}).to_string(),
            404,
            "account_not_found",
        ),
        (
            "/v1/transfers".into(),
            json!({"from_account_id": "erin", "to_account_id": "euro", "amount": 1}).to_string(),
            422,
            "currency_mismatch",
        ),
        (
            "/v1/transfers".into(),
            json!({"from_account_id": "erin", "to_account_id": "frank", "amount": 0}).to_string(),
            400,
            "invalid_amount",
        ),
        (
            "/v1/transfers".into(),
            json!({"from_account_id": "erin", "to_account_id": "frank"}).to_string(),
            400,
            "invalid_request",
        ),
        (
            "/v1/transfers".into(),
            json!({"from_account_id": "erin", "to_account_id": "fr.ank", "amount": 1}).to_string(),
            400,
            "invalid_account_id",
        ),
    ];
    for (path, body, status, code) in &cases {
        let answer = api
            .post_with(path, Some(&erin), &[], Some(body.clone()))
            .await;
        assert_eq!(
            answer.status.as_u16(),
            *status,
            "{path} {body}: {:?}",
            answer.body
        );
        answer.assert_problem(*status, code);
    }
    assert_eq!(
        last_seq(&client).await,
        before,
        "no bad request left a trace"
    );

    // Overflow: `rich` holds 10^15; about 9,223 deposits of 10^15 reach i64::MAX, and the
    // one that would pass it is refused. Sent concurrently so that they share batches.
    let admin = std::sync::Arc::new(token("root", true));
    let api = std::sync::Arc::new(api);
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(200));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..9_300 {
        let (api, admin, gate) = (api.clone(), admin.clone(), gate.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire().await.expect("semaphore");
            api.post(
                "/v1/accounts/rich/deposits",
                &admin,
                json!({"amount": 1_000_000_000_000_000_i64}),
            )
            .await
        });
    }
    let mut applied = 0;
    let mut overflowed = 0;
    while let Some(answer) = tasks.join_next().await {
        let answer = answer.expect("task");
        if answer.status.as_u16() == 201 {
            applied += 1;
        } else {
            answer.assert_problem(422, "balance_overflow");
            overflowed += 1;
        }
    }
    assert_eq!(
        applied,
        i64::MAX / 1_000_000_000_000_000 - 1,
        "deposits up to i64::MAX"
    );
    assert_eq!(overflowed, 9_300 - applied);
    assert_eq!(last_seq(&client).await, before + applied as u64);
    let before = last_seq(&client).await;

    // Wrong or missing content type, and a body over the size limit.
    let text = api
        .post_with(
            deposit,
            Some(&erin),
            &[("content-type", "text/plain")],
            Some(json!({"amount": 5}).to_string()),
        )
        .await;
    text.assert_problem(415, "unsupported_media_type");
    let huge = json!({"amount": 5, "reference": "x".repeat(100 * 1024)}).to_string();
    api.post_with(deposit, Some(&erin), &[], Some(huge))
        .await
        .assert_problem(413, "payload_too_large");
    // Unknown route and method.
    api.post("/v1/nothing", &erin, json!({}))
        .await
        .assert_problem(404, "not_found");
    let get = api.get(deposit).await;
    get.assert_problem(405, "method_not_allowed");
    // Bad Idempotency-Key.
    api.post_with(
        deposit,
        Some(&erin),
        &[("idempotency-key", "has space")],
        Some(json!({"amount": 5}).to_string()),
    )
    .await
    .assert_problem(400, "invalid_request");

    assert_eq!(
        last_seq(&client).await,
        before,
        "no bad request left a trace"
    );
}

#[tokio::test]
async fn a_balance_batch_outside_one_to_a_hundred_thousand_items_is_refused_whole() {
    let nats = NatsServer::start();
    let api = start_api(&nats.url).await;
    let client = nats.client().await;
    let admin = format!("Bearer {}", token("root", true));
    let before = last_seq(&client).await;
    let body = |items: usize| {
        let map: serde_json::Map<String, serde_json::Value> =
            (0..items).map(|i| (format!("a{i}"), json!(1))).collect();
        Some(serde_json::Value::Object(map).to_string())
    };
    for items in [0, 100_001] {
        let answer = api
            .http
            .send(
                reqwest::Method::PUT,
                "/v1/balances",
                Some(&admin),
                body(items),
            )
            .await;
        answer.assert_problem(400, "invalid_request");
        assert!(
            answer.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("1 to 100000")),
            "{items} items: {:?}",
            answer.body
        );
    }
    assert_eq!(last_seq(&client).await, before, "nothing journaled");
    // The largest batch is accepted.
    let largest = api
        .http
        .send(
            reqwest::Method::PUT,
            "/v1/balances",
            Some(&admin),
            body(100_000),
        )
        .await;
    assert_eq!(largest.status.as_u16(), 202, "{:?}", largest.body["code"]);
}
