//! Bearer tokens and owner scoping.

use crate::support::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::json;

fn signed(secret: &str, sub: &str, exp: u64, role: Option<&str>) -> String {
    let mut claims = json!({"sub": sub, "exp": exp});
    if let Some(role) = role {
        claims["role"] = json!(role);
    }
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("token")
}

fn in_an_hour() -> u64 {
    jsonwebtoken::get_current_timestamp() + 3_600
}

#[tokio::test]
async fn requests_without_a_valid_token_are_refused_and_owners_are_separated() {
    let nats = NatsServer::start();
    let api = start_api(&nats.url).await;
    open_funded(&api, "gina", "gina", 100).await;
    let client = nats.client().await;
    let before = last_seq(&client).await;
    let deposit = "/v1/accounts/gina/deposits";
    let body = Some(json!({"amount": 5}).to_string());

    let none = api.post_with(deposit, None, &[], body.clone()).await;
    none.assert_problem(401, "unauthorized");
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    let malformed = api
        .post_with(
            deposit,
            None,
            &[("authorization", "Basic Z2luYTpwdw==")],
            body.clone(),
        )
        .await;
    malformed.assert_problem(401, "unauthorized");
    let garbage = api
        .post_with(deposit, Some("not.a.jwt"), &[], body.clone())
        .await;
    garbage.assert_problem(401, "unauthorized");
    let bad_signature = signed(
        "another-secret-of-at-least-32-bytes!!",
        "gina",
        in_an_hour(),
        None,
    );
    api.post_with(deposit, Some(&bad_signature), &[], body.clone())
        .await
        .assert_problem(401, "unauthorized");
    let expired = signed(
        SECRET,
        "gina",
        jsonwebtoken::get_current_timestamp() - 3_600,
        None,
    );
    let answer = api
        .post_with(deposit, Some(&expired), &[], body.clone())
        .await;
    answer.assert_problem(401, "unauthorized");
    assert!(
        answer.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("expired")
    );
    // Another owner sees "not found", never "forbidden": existence does not leak.
    let other = token("hank", false);
    api.post_with(deposit, Some(&other), &[], body.clone())
        .await
        .assert_problem(404, "account_not_found");
    api.post_with(
        "/v1/accounts/gina/withdrawals",
        Some(&other),
        &[],
        body.clone(),
    )
    .await
    .assert_problem(404, "account_not_found");
    api.post_with(
        "/v1/transfers",
        Some(&other),
        &[],
        Some(json!({"from_account_id": "gina", "to_account_id": "gina2", "amount": 1}).to_string()),
    )
    .await
    .assert_problem(404, "account_not_found");
    // A role other than admin grants nothing.
    let pretender = signed(SECRET, "hank", in_an_hour(), Some("superuser"));
    api.post_with(deposit, Some(&pretender), &[], body.clone())
        .await
        .assert_problem(404, "account_not_found");
    assert_eq!(
        last_seq(&client).await,
        before,
        "refused requests leave no trace"
    );

    // The owner and an admin may act.
    let owner = api
        .post_with(deposit, Some(&token("gina", false)), &[], body.clone())
        .await;
    assert_eq!(owner.status, StatusCode::CREATED);
    let admin = api
        .post_with(
            deposit,
            Some(&signed(SECRET, "ops", in_an_hour(), Some("admin"))),
            &[],
            body,
        )
        .await;
    assert_eq!(admin.status, StatusCode::CREATED);
    assert_eq!(admin.body["balance"], 110);
    // Admins open accounts for others, with an overdraft.
    let opened = api
        .post(
            "/v1/accounts",
            &token("ops", true),
            json!({"account_id": "ivy", "owner_id": "ivy", "overdraft_limit": 50}),
        )
        .await;
    assert_eq!(opened.status, StatusCode::CREATED);
    assert_eq!(opened.body["owner_id"], "ivy");
    let overdrawn = api
        .post(
            "/v1/accounts/ivy/withdrawals",
            &token("ivy", false),
            json!({"amount": 50}),
        )
        .await;
    assert_eq!(overdrawn.status, StatusCode::CREATED);
    assert_eq!(overdrawn.body["balance"], -50);
    api.post(
        "/v1/accounts/ivy/withdrawals",
        &token("ivy", false),
        json!({"amount": 1}),
    )
    .await
    .assert_problem(422, "insufficient_funds");
}
