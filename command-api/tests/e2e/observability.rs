//! What operators see: Prometheus metrics on `/metrics`.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::json;

/// The value of the first sample of `name` whose labels include every `labels` pair (0 if
/// there is none).
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter(|(series, _)| {
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            metric == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .find_map(|(_, value)| value.parse().ok())
        .unwrap_or(0.0)
}

/// The metrics text the API at `base` serves.
pub async fn metrics(base: &str) -> String {
    let response = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics answer");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/plain")),
        "Prometheus text"
    );
    response.text().await.expect("text")
}

#[tokio::test]
async fn metrics_count_commands_by_type_and_outcome_and_time_requests_and_commits() {
    let nats = NatsServer::start();
    let api = start_api(&nats.url).await;
    let base = format!("http://{}", api.app.addr);
    let deposits = [("type", "deposit"), ("outcome", "accepted")];
    let refused = [("type", "withdraw"), ("outcome", "rejected")];
    let timed = [
        ("service", "command-api"),
        ("route", "/v1/accounts/{id}/deposits"),
        ("status", "201"),
    ];
    let before = metrics(&base).await;
    let dora = token("dora", false);
    api.post("/v1/accounts", &dora, json!({"account_id": "dora"}))
        .await;
    for _ in 0..3 {
        let deposited = api
            .post("/v1/accounts/dora/deposits", &dora, json!({"amount": 10}))
            .await;
        assert_eq!(deposited.status, StatusCode::CREATED);
    }
    let overdrawn = api
        .post(
            "/v1/accounts/dora/withdrawals",
            &dora,
            json!({"amount": 1000}),
        )
        .await;
    assert_eq!(overdrawn.status, StatusCode::UNPROCESSABLE_ENTITY);

    let after = metrics(&base).await;
    let grew = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    // Other tests in this process may add to the same series: at least ours are counted.
    assert!(grew("tally_commands_total", &deposits) >= 3.0, "{after}");
    assert!(grew("tally_commands_total", &refused) >= 1.0, "{after}");
    assert!(
        grew("tally_http_request_duration_seconds_count", &timed) >= 3.0,
        "{after}"
    );
    assert!(
        grew("tally_writer_batch_messages_count", &[]) >= 4.0,
        "{after}"
    );
    assert!(grew("tally_publish_seconds_count", &[]) >= 4.0, "{after}");
    assert!(
        after.contains("tally_publish_seconds_bucket{le=\"0.005\"}"),
        "publish latency is a histogram: {after}"
    );
}

#[tokio::test]
async fn every_answer_echoes_its_request_id_and_the_callers_correlation_id() {
    let nats = NatsServer::start();
    let api = start_api(&nats.url).await;
    let rita = token("rita", false);
    let given = api
        .post_with(
            "/v1/accounts",
            Some(&rita),
            &[
                ("x-request-id", "req-42"),
                ("x-correlation-id", "checkout-7"),
            ],
            Some(json!({"account_id": "rita"}).to_string()),
        )
        .await;
    assert_eq!(given.status, StatusCode::CREATED, "{:?}", given.body);
    assert_eq!(given.header("x-request-id"), Some("req-42"));
    assert_eq!(given.header("x-correlation-id"), Some("checkout-7"));
    // Without one, the API makes a request id up (a UUID) — on problems too.
    let refused = api
        .post_with("/v1/accounts", None, &[], Some("{}".to_owned()))
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let made_up = refused.header("x-request-id").expect("a request id");
    assert!(uuid::Uuid::parse_str(made_up).is_ok(), "{made_up}");
    assert_eq!(refused.header("x-correlation-id"), None);
}
