//! The per-caller rate limit: a token bucket per verified `sub`, else per client address.

use crate::support::*;
use serde_json::json;

#[tokio::test]
async fn a_caller_over_its_limit_gets_429_with_retry_after_while_another_is_still_served() {
    let nats = NatsServer::start();
    let mut config = config(&nats.url);
    // One token a second, three at once: the fourth quick request is over the limit.
    config.rate_limit.rate_limit_per_second = 1;
    config.rate_limit.rate_limit_burst = 3;
    let api = Api::start(config).await;
    let ivy = token("ivy", false);
    let jack = token("jack", false);

    for n in 0..3 {
        let answer = api
            .post(
                "/v1/accounts",
                &ivy,
                json!({"account_id": format!("ivy-{n}")}),
            )
            .await;
        assert!(answer.status.is_success(), "request {n}: {:?}", answer.body);
    }
    let refused = api
        .post("/v1/accounts", &ivy, json!({"account_id": "ivy-3"}))
        .await;
    refused.assert_problem(429, "rate_limited");
    let retry_after: u64 = refused
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in whole seconds");
    assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");

    // Another principal has its own bucket.
    let served = api
        .post("/v1/accounts", &jack, json!({"account_id": "jack"}))
        .await;
    assert_eq!(served.status.as_u16(), 201, "{:?}", served.body);
    // A request without a valid token counts against the client address, not against ivy.
    api.post_with("/v1/accounts", None, &[], Some("{}".into()))
        .await
        .assert_problem(401, "unauthorized");
    // The contract needs no token: it counts against the address, which has room left.
    assert_eq!(api.get("/openapi.json").await.status.as_u16(), 200);

    // The refused command left no trace; after Retry-After, ivy is served again.
    tokio::time::sleep(std::time::Duration::from_secs(retry_after)).await;
    let again = api
        .post("/v1/accounts", &ivy, json!({"account_id": "ivy-3"}))
        .await;
    assert_eq!(again.status.as_u16(), 201, "{:?}", again.body);
}

#[tokio::test]
async fn a_service_principal_has_its_own_larger_quota_and_is_still_limited() {
    let nats = NatsServer::start();
    let mut config = config(&nats.url);
    // People: one request at once. Services: three at once.
    config.rate_limit.rate_limit_per_second = 1;
    config.rate_limit.rate_limit_burst = 1;
    config.rate_limit.service_rate_limit_per_second = 1;
    config.rate_limit.service_rate_limit_burst = 3;
    let api = Api::start(config).await;
    let auth = http_edge::Auth::new(Some(SECRET)).expect("auth");
    let payments = auth
        .mint_with_role("payments", Some(http_edge::auth::SERVICE_ROLE), 600)
        .expect("service token");
    let kim = token("kim", false);

    let opened = api
        .post("/v1/accounts", &kim, json!({"account_id": "kim"}))
        .await;
    assert_eq!(opened.status.as_u16(), 201, "{:?}", opened.body);
    api.post("/v1/accounts", &kim, json!({"account_id": "kim-2"}))
        .await
        .assert_problem(429, "rate_limited");
    // The service is served past a person's quota, within its own…
    for n in 0..3 {
        let answer = api
            .post(
                "/v1/accounts",
                &payments,
                json!({"account_id": format!("payments-{n}")}),
            )
            .await;
        assert_eq!(
            answer.status.as_u16(),
            201,
            "request {n}: {:?}",
            answer.body
        );
    }
    // …and refused beyond it.
    api.post(
        "/v1/accounts",
        &payments,
        json!({"account_id": "payments-3"}),
    )
    .await
    .assert_problem(429, "rate_limited");
    // A service acts for its own accounts only, like any user.
    api.post(
        "/v1/accounts/kim/deposits",
        &auth
            .mint_with_role("payments-2", Some(http_edge::auth::SERVICE_ROLE), 600)
            .expect("service token"),
        json!({"amount": 5}),
    )
    .await
    .assert_problem(404, "account_not_found");
}

#[tokio::test]
async fn the_documents_and_the_docs_page_are_served_without_a_token() {
    let nats = NatsServer::start();
    let api = start_api(&nats.url).await;
    let doc = api.get("/openapi.json").await;
    assert_eq!(doc.status.as_u16(), 200);
    assert_eq!(doc.body["info"]["title"], "Tally command API");
    assert!(doc.body["paths"]["/v1/transfers"]["post"].is_object());
    let page = reqwest::get(format!("{}/docs/", api.http.base))
        .await
        .expect("docs page");
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("swagger"), "{html}");
}
