//! Balance batches: 10,000 items journaled in chunks and applied exactly once, even when the
//! executor is killed mid-batch.

use crate::support::*;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn request(items: usize) -> (Map<String, Value>, HashMap<String, i64>) {
    let mut body = Map::new();
    let mut expected = HashMap::new();
    for i in 0..items {
        let id = format!("b-{i:05}");
        let balance = (i as i64 * 37) % 100_000;
        body.insert(id.clone(), json!(balance));
        expected.insert(id, balance);
    }
    (body, expected)
}

async fn assert_balances(stack_pool: &sqlx::PgPool, expected: &HashMap<String, i64>) {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT account_id, balance FROM accounts WHERE account_id LIKE 'b-%'")
            .fetch_all(stack_pool)
            .await
            .expect("balances");
    assert_eq!(rows.len(), expected.len(), "every account exists");
    for (id, balance) in rows {
        assert_eq!(Some(&balance), expected.get(&id), "balance of {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_thousand_item_batch_completes_every_job_once() {
    let stack = Stack::start().await;
    let projector = stack.start_projector().await;
    let admin = token("root", true);
    // A tenth of the accounts exist already, with other balances.
    for i in (0..10_000).step_by(10).take(50) {
        stack
            .open_funded(&format!("b-{i:05}"), &format!("b-{i:05}"), 999)
            .await;
    }
    let (body, expected) = request(10_000);
    let key = [("idempotency-key", "nightly-2026-11-22")];
    let submitted = reqwest::Client::new()
        .put(format!("{}/v1/balances", stack.commands.base))
        .bearer_auth(&admin)
        .header("idempotency-key", key[0].1)
        .json(&Value::Object(body.clone()))
        .send()
        .await
        .expect("put");
    assert_eq!(submitted.status().as_u16(), 202);
    let answer: Value = submitted.json().await.expect("json");
    let batch_id = answer["batch_id"].as_str().expect("batch id").to_owned();
    let jobs = answer["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len(), 10_000);
    assert!(jobs.iter().all(|j| j["status"] == "queued"));

    let batch = wait_done(&stack.queries, &admin, &batch_id, Duration::from_secs(120)).await;
    assert_eq!(batch["total"], 10_000);
    assert_eq!(batch["completed"], 10_000);
    assert_eq!(batch["rejected"], 0);
    let pool = stack.pool().await;
    assert_balances(&pool, &expected).await;
    // Every job is completed: its entry carries it.
    let job_ids: Vec<uuid::Uuid> = jobs
        .iter()
        .map(|j| uuid::Uuid::parse_str(j["job_id"].as_str().expect("id")).expect("uuid"))
        .collect();
    let done: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT job_id) FROM account_entries WHERE job_id = ANY($1)",
    )
    .bind(&job_ids)
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!(done, 10_000);
    for job in jobs.iter().step_by(997) {
        let status = stack
            .queries
            .get(
                &format!("/v1/jobs/{}", job["job_id"].as_str().expect("id")),
                &admin,
            )
            .await;
        assert_eq!(status.body["status"], "completed", "{:?}", status.body);
    }
    // Resubmitting with the same key returns the same batch.
    let again = reqwest::Client::new()
        .put(format!("{}/v1/balances", stack.commands.base))
        .bearer_auth(&admin)
        .header("idempotency-key", key[0].1)
        .json(&Value::Object(body))
        .send()
        .await
        .expect("put");
    assert_eq!(again.status().as_u16(), 202);
    assert_eq!(
        again
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let replayed: Value = again.json().await.expect("json");
    assert_eq!(replayed, answer, "the same batch and jobs");
    let client = stack.nats_client().await;
    assert_eq!(count_events(&client, "balance_set").await, 10_000);
    assert_eq!(
        count_events(&client, "batch_submitted").await,
        11,
        "one submission, 11 chunks of up to 999 items"
    );
    let findings = projector::verify::verify(&client, STREAM, &pool)
        .await
        .expect("verify");
    assert!(findings.drift.is_empty(), "{:#?}", findings.drift);
    // An account the batch opened: one message, version 1, its history starts there.
    let opened = stack.queries.get("/v1/accounts/b-00001", &admin).await;
    assert_eq!(opened.body["version"], 1, "{:?}", opened.body);
    assert_eq!(opened.body["balance"], 37);
    assert_eq!(opened.body["owner_id"], "b-00001");
    assert!(opened.body["opened_at"].is_string());
    let history = stack
        .queries
        .get("/v1/accounts/b-00001/entries", &admin)
        .await;
    assert_eq!(history.body["items"][0]["version"], 1);
    assert_eq!(history.body["items"][0]["type"], "adjustment");
    assert_eq!(history.body["items"][0]["amount"], 37);
    assert_eq!(count_events(&client, "account_opened").await, 50);
    projector.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_batch_executor_mid_batch_applies_no_item_twice_and_loses_none() {
    let nats = NatsServer::start();
    let db = TestDatabase::create().await;
    let first = command_api::start(command_config(&nats.url))
        .await
        .expect("starts");
    let admin = token("root", true);
    let (body, expected) = request(10_000);
    let submitted = reqwest::Client::new()
        .put(format!("http://{}/v1/balances", first.addr))
        .bearer_auth(&admin)
        .json(&Value::Object(body))
        .send()
        .await
        .expect("put");
    assert_eq!(submitted.status().as_u16(), 202);
    let answer: Value = submitted.json().await.expect("json");
    let batch_id = answer["batch_id"].as_str().expect("id").to_owned();
    // Let the executor get going, then kill the instance where it stands.
    let client = nats.client().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while count_events(&client, "batch_part_applied").await < 2 {
        assert!(Instant::now() < deadline, "the executor never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.abort();
    let applied_before = count_events(&client, "batch_part_applied").await;

    let mut config = command_config(&nats.url);
    config.batch_ack_wait_ms = Some(500);
    let second = command_api::start(config).await.expect("restarts");
    let query = query_api::start(query_config(&db.url))
        .await
        .expect("starts");
    let queries = Http::new(format!("http://{}", query.addr));
    let mut projector_config = projector::Config::local(&nats.url, &db.url);
    projector_config.batch_len_max = 1_000;
    let projector = projector::start(projector_config).await.expect("projector");
    let batch = wait_done(&queries, &admin, &batch_id, Duration::from_secs(120)).await;
    assert_eq!(batch["completed"], 10_000);
    eprintln!("killed after {applied_before} of 11 parts");
    assert!(applied_before < 11, "killed mid-batch");
    assert_eq!(
        count_events(&client, "balance_set").await,
        10_000,
        "no item twice, none lost"
    );
    assert_eq!(count_events(&client, "batch_part_applied").await, 11);
    let pool = read_model::connect(&db.url, SCHEMA, "tally", 2)
        .await
        .expect("pool");
    assert_balances(&pool, &expected).await;
    projector.stop().await.expect("stops");
    second.stop().await.expect("stops");
}
