//! `POST /v1/transfers/batch`: transfers decided in order, each on its own or all or nothing,
//! one idempotency key for the whole request, limits, authorization per transfer, gzip
//! bodies, and money conserved beside single transfers.

use crate::support::*;
use events::headers;
use flate2::Compression;
use flate2::write::GzEncoder;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

const BATCH: &str = "/v1/transfers/batch";

fn item(from: &str, to: &str, amount: i64) -> Value {
    json!({"from_account_id": from, "to_account_id": to, "amount": amount})
}

/// The last balance of every account in the journal.
async fn balances(client: &async_nats::Client) -> HashMap<String, i64> {
    let mut last = HashMap::new();
    for message in journal(client).await {
        if let Some(account) = message
            .subject
            .strip_prefix(events::subjects::ACCOUNT_PREFIX)
        {
            let payload: Value = serde_json::from_slice(&message.payload).expect("JSON");
            let balance = payload["state"]["balance"].as_i64().expect("balance");
            last.insert(account.to_owned(), balance);
        }
    }
    last
}

/// How many `transfer_sent` legs the journal holds.
async fn transfers_journaled(client: &async_nats::Client) -> usize {
    transfer_ids_journaled(client).await.values().sum()
}

/// The transfer ids of every `transfer_sent` leg in the journal, with how often each occurs.
async fn transfer_ids_journaled(client: &async_nats::Client) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for message in journal(client).await {
        if message.header(headers::EVENT_TYPE) == Some("transfer_sent") {
            let payload: Value = serde_json::from_slice(&message.payload).expect("JSON");
            let id = payload["transfer_id"]
                .as_str()
                .expect("transfer_id")
                .to_owned();
            *seen.entry(id).or_default() += 1;
        }
    }
    seen
}

fn ledger_seq(answer: &Answer) -> u64 {
    let seq = answer.header("ledger-seq").expect("Ledger-Seq");
    seq.parse().expect("a sequence")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).expect("compress");
    encoder.finish().expect("compress")
}

#[tokio::test]
async fn each_transfer_is_decided_in_order_against_the_balances_the_earlier_ones_left() {
    let nats = NatsServer::start();
    let api = start_api(&nats.url).await;
    open_funded(&api, "ann", "ann", 100).await;
    open_funded(&api, "ann-2", "ann", 0).await;
    open_funded(&api, "ben", "ben", 0).await;
    let client = nats.client().await;
    let ann = token("ann", false);
    let body = json!({"transfers": [
        item("ann", "ann-2", 70),
        item("ann", "ben", 70),
        item("ann-2", "ann", 50),
        item("ann", "ben", 70),
        item("ann", "nobody", 1),
        item("ann", "ann", 1),
    ]});

    let answer = api.post(BATCH, &ann, body).await;

    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let statuses: Vec<(u64, u64, &str)> = answer.body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            let code = r["code"].as_str().unwrap_or("");
            (
                r["index"].as_u64().expect("index"),
                r["status"].as_u64().expect("status"),
                code,
            )
        })
        .collect();
    assert_eq!(
        statuses,
        vec![
            (0, 201, ""),
            (1, 422, "insufficient_funds"),
            // ann-2 received 70 in item 0, so it can send 50 back...
            (2, 201, ""),
            // ...which covers item 3.
            (3, 201, ""),
            (4, 404, "account_not_found"),
            (5, 422, "same_account"),
        ]
    );
    assert_eq!(answer.body["committed"], 3);
    assert_eq!(answer.body["rejected"], 3);
    assert_eq!(answer.body["results"][3]["from"]["balance"], 10);
    assert!(answer.body["results"][3]["transfer_id"].is_string());
    // Another owner's receiving account: its balance is not shown.
    assert!(answer.body["results"][3]["to"].get("balance").is_none());
    let seq = ledger_seq(&answer);
    assert_eq!(seq, last_seq(&client).await, "the last commit's sequence");
    assert_eq!(transfers_journaled(&client).await, 3);
    let balances = balances(&client).await;
    assert_eq!(
        (balances["ann"], balances["ann-2"], balances["ben"]),
        (10, 20, 70)
    );
}

#[tokio::test]
async fn an_atomic_batch_commits_every_transfer_or_journals_nothing() {
    let nats = NatsServer::start();
    let api = start_api(&nats.url).await;
    open_funded(&api, "cat", "cat", 100).await;
    open_funded(&api, "cat-2", "cat", 0).await;
    open_funded(&api, "dan", "dan", 100).await;
    let client = nats.client().await;
    let cat = token("cat", false);
    let before = last_seq(&client).await;

    let failing = json!({"atomic": true, "transfers": [
        item("cat", "cat-2", 60),
        item("cat-2", "cat", 10),
        item("cat", "cat-2", 60),
    ]});
    let refused = api.post(BATCH, &cat, failing).await;
    refused.assert_problem(422, "insufficient_funds");
    let detail = refused.body["detail"].as_str().expect("detail");
    assert!(detail.starts_with("transfers[2]: "), "{detail}");
    // Another owner's source account refuses the whole batch as a missing account.
    let foreign = json!({"atomic": true, "transfers": [
        item("cat", "cat-2", 1),
        item("dan", "cat", 1),
    ]});
    let hidden = api.post(BATCH, &cat, foreign).await;
    hidden.assert_problem(404, "account_not_found");
    assert_eq!(last_seq(&client).await, before, "nothing journaled");

    let fitting = json!({"atomic": true, "transfers": [
        item("cat", "cat-2", 60),
        item("cat-2", "cat", 10),
        item("cat", "cat-2", 50),
    ]});
    let committed = api.post(BATCH, &cat, fitting).await;
    assert_eq!(
        committed.status,
        StatusCode::CREATED,
        "{:?}",
        committed.body
    );
    assert_eq!(committed.body["committed"], 3);
    assert_eq!(committed.body["rejected"], 0);
    // Six legs, one commit: the batch's messages are the stream's next six.
    let seq = ledger_seq(&committed);
    assert_eq!(seq, before + 6);
    let balances = balances(&client).await;
    assert_eq!((balances["cat"], balances["cat-2"]), (0, 100));
}

#[tokio::test]
async fn a_repeated_batch_replays_every_part_and_another_batch_under_its_key_changes_nothing() {
    let nats = NatsServer::start();
    let api = start_api(&nats.url).await;
    open_funded(&api, "eve", "eve", 1_000_000).await;
    open_funded(&api, "eve-2", "eve", 0).await;
    let client = nats.client().await;
    let eve = token("eve", false);
    // Three parts (499 + 499 + 202), and a rejection in the last.
    let mut transfers: Vec<Value> = (0..1_200).map(|_| item("eve", "eve-2", 1)).collect();
    transfers[1_100] = item("eve", "nobody", 1);
    let body = json!({"transfers": transfers}).to_string();
    let key = [("idempotency-key", "payroll-2026-11")];

    let first = api
        .post_with(BATCH, Some(&eve), &key, Some(body.clone()))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!(first.body["committed"], 1_199);
    assert_eq!(first.body["results"][1_100]["status"], 404);
    assert_eq!(first.header("idempotent-replayed"), None);
    let journaled = last_seq(&client).await;

    let again = api
        .post_with(BATCH, Some(&eve), &key, Some(body.clone()))
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(
        again.body, first.body,
        "the same results, transfer ids included"
    );
    assert_eq!(again.header("ledger-seq"), first.header("ledger-seq"));
    // A restarted instance (nothing cached) replays it from the journal as well.
    api.app.stop().await.expect("stops");
    let api = start_api(&nats.url).await;
    let later = api.post_with(BATCH, Some(&eve), &key, Some(body)).await;
    assert_eq!(later.body, first.body);

    let mut other: Vec<Value> = (0..1_200).map(|_| item("eve", "eve-2", 2)).collect();
    other.truncate(1_000);
    let reused = api
        .post_with(
            BATCH,
            Some(&eve),
            &key,
            Some(json!({"transfers": other}).to_string()),
        )
        .await;
    reused.assert_problem(422, "idempotency_key_reused");
    let single = api
        .post_with(
            "/v1/transfers",
            Some(&eve),
            &key,
            Some(item("eve", "eve-2", 1).to_string()),
        )
        .await;
    single.assert_problem(422, "idempotency_key_reused");
    assert_eq!(
        last_seq(&client).await,
        journaled,
        "nothing journaled since"
    );
    assert_eq!(transfers_journaled(&client).await, 1_199);
}

#[tokio::test]
async fn malformed_and_oversized_batches_are_refused_whole() {
    let nats = NatsServer::start();
    let api = start_api(&nats.url).await;
    open_funded(&api, "fay", "fay", 1_000).await;
    open_funded(&api, "fay-2", "fay", 0).await;
    let client = nats.client().await;
    let fay = token("fay", false);
    let before = last_seq(&client).await;
    let many = |n: usize| -> Vec<Value> { (0..n).map(|_| item("fay", "fay-2", 1)).collect() };

    let too_many = api
        .post(BATCH, &fay, json!({"transfers": many(8_001)}))
        .await;
    too_many.assert_problem(400, "batch_too_large");
    assert!(
        too_many.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("8000")
    );
    let too_many_atomic = api
        .post(BATCH, &fay, json!({"transfers": many(500), "atomic": true}))
        .await;
    too_many_atomic.assert_problem(400, "batch_too_large");
    assert!(
        too_many_atomic.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("499")
    );
    api.post(BATCH, &fay, json!({"transfers": []}))
        .await
        .assert_problem(400, "invalid_request");
    let id = uuid::Uuid::now_v7().to_string();
    let mut repeated = many(3);
    repeated[0]["transfer_id"] = json!(id);
    repeated[2]["transfer_id"] = json!(id);
    let duplicate = api.post(BATCH, &fay, json!({"transfers": repeated})).await;
    duplicate.assert_problem(400, "invalid_request");
    assert!(
        duplicate.body["detail"]
            .as_str()
            .unwrap_or("")
            .starts_with("transfers[2]")
    );
    let mut not_uuid = many(2);
    not_uuid[1]["transfer_id"] = json!("t-1");
    api.post(BATCH, &fay, json!({"transfers": not_uuid}))
        .await
        .assert_problem(400, "invalid_request");
    // An id a reversal could never find again: not a UUIDv7, or minted long before.
    let minted_an_hour_ago = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        u64::try_from(chrono::Utc::now().timestamp() - 3_600).expect("after 1970"),
        0,
    ));
    for unfindable in [uuid::Uuid::new_v4(), minted_an_hour_ago] {
        let mut items = many(2);
        items[1]["transfer_id"] = json!(unfindable.to_string());
        let refused = api.post(BATCH, &fay, json!({"transfers": items})).await;
        refused.assert_problem(400, "invalid_request");
        assert!(
            refused.body["detail"]
                .as_str()
                .unwrap_or("")
                .contains("UUIDv7"),
            "{:?}",
            refused.body
        );
    }
    let mut bad_amount = many(2);
    bad_amount[1]["amount"] = json!(0);
    api.post(BATCH, &fay, json!({"transfers": bad_amount}))
        .await
        .assert_problem(400, "invalid_amount");
    let mut unknown = many(1);
    unknown[0]["colour"] = json!("red");
    api.post(BATCH, &fay, json!({"transfers": unknown}))
        .await
        .assert_problem(400, "invalid_request");
    api.post(
        BATCH,
        &fay,
        json!({"transfers": many(1), "atomically": true}),
    )
    .await
    .assert_problem(400, "invalid_request");
    assert_eq!(last_seq(&client).await, before, "nothing journaled");

    // A transfer id the client chose is the one journaled.
    let mut chosen = many(1);
    chosen[0]["transfer_id"] = json!(id);
    let answer = api.post(BATCH, &fay, json!({"transfers": chosen})).await;
    assert_eq!(answer.body["results"][0]["transfer_id"], json!(id));
}

#[tokio::test]
async fn batches_and_single_transfers_running_together_conserve_money() {
    let nats = NatsServer::start();
    let api = Arc::new(start_api(&nats.url).await);
    let accounts: Vec<String> = (0..8).map(|i| format!("gus-{i}")).collect();
    for id in &accounts {
        open_funded(&api, id, "gus", 1_000).await;
    }
    let client = nats.client().await;
    let gus = Arc::new(token("gus", false));
    let mut tasks = tokio::task::JoinSet::new();
    for client_no in 0..6_usize {
        let (api, gus, accounts) = (api.clone(), gus.clone(), accounts.clone());
        tasks.spawn(async move {
            let mut committed = 0;
            for round in 0..5_usize {
                let pick = |k: usize| &accounts[(client_no * 7 + round * 3 + k) % accounts.len()];
                if client_no % 2 == 0 {
                    let transfers: Vec<Value> = (0..600)
                        .map(|k| item(pick(k), pick(k + 1), 1 + (k % 400) as i64))
                        .collect();
                    let answer = api.post(BATCH, &gus, json!({"transfers": transfers})).await;
                    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
                    committed += answer.body["committed"].as_u64().expect("count");
                } else {
                    for k in 0..20 {
                        let answer = api
                            .post("/v1/transfers", &gus, item(pick(k), pick(k + 5), 300))
                            .await;
                        assert!(
                            answer.status == StatusCode::CREATED
                                || answer.status == StatusCode::UNPROCESSABLE_ENTITY,
                            "{:?}",
                            answer.body
                        );
                        committed += u64::from(answer.status == StatusCode::CREATED);
                    }
                }
            }
            committed
        });
    }
    let mut committed = 0;
    while let Some(done) = tasks.join_next().await {
        committed += done.expect("client");
    }
    let balances = balances(&client).await;
    assert_eq!(balances.values().sum::<i64>(), 8 * 1_000, "money conserved");
    assert!(balances.values().all(|b| *b >= 0), "{balances:?}");
    assert_eq!(transfers_journaled(&client).await as u64, committed);
    assert!(committed > 0);
}

#[tokio::test]
async fn a_gzip_compressed_batch_is_accepted_and_a_zip_bomb_is_too_large() {
    let nats = NatsServer::start();
    let mut config = config(&nats.url);
    config.transfer_batch_body_bytes_max = 1024 * 1024;
    let api = Api::start(config).await;
    open_funded(&api, "hal", "hal", 1_000).await;
    open_funded(&api, "hal-2", "hal", 0).await;
    let client = nats.client().await;
    let hal = token("hal", false);
    let http = reqwest::Client::new();
    let post = |body: Vec<u8>| {
        http.post(format!("{}{BATCH}", api.http.base))
            .bearer_auth(&hal)
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(body)
    };

    let transfers: Vec<Value> = (0..10).map(|_| item("hal", "hal-2", 1)).collect();
    let body = json!({"transfers": transfers}).to_string();
    let answer = Answer::read(post(gzip(body.as_bytes())).send().await.expect("sent")).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.body["committed"], 10);
    let before = last_seq(&client).await;

    // 64 MB of JSON white space is 64 KB gzipped: refused once the limit is passed, not
    // inflated whole.
    let mut bomb = b"{\"transfers\": [".to_vec();
    bomb.extend(std::iter::repeat_n(b' ', 64 * 1024 * 1024));
    bomb.extend(b"]}");
    let compressed = gzip(&bomb);
    assert!(compressed.len() < 1024 * 1024);
    let refused = Answer::read(post(compressed).send().await.expect("sent")).await;
    refused.assert_problem(413, "payload_too_large");
    let garbled = Answer::read(post(b"not gzip".to_vec()).send().await.expect("sent")).await;
    assert_eq!(garbled.status.as_u16(), 400, "{:?}", garbled.body);
    let deflated = http
        .post(format!("{}{BATCH}", api.http.base))
        .bearer_auth(&hal)
        .header("content-type", "application/json")
        .header("content-encoding", "compress")
        .body("x")
        .send()
        .await
        .expect("sent");
    Answer::read(deflated)
        .await
        .assert_problem(415, "unsupported_media_type");
    assert_eq!(last_seq(&client).await, before, "nothing journaled");

    // Answers are compressed for a client that accepts it.
    let compressed_answer = http
        .post(format!("{}{BATCH}", api.http.base))
        .bearer_auth(&hal)
        .header("content-type", "application/json")
        .header("accept-encoding", "gzip")
        .body(body)
        .send()
        .await
        .expect("sent");
    assert_eq!(compressed_answer.status(), StatusCode::OK);
    assert_eq!(
        compressed_answer
            .headers()
            .get("content-encoding")
            .and_then(|v| v.to_str().ok()),
        Some("gzip")
    );
    let bytes = compressed_answer.bytes().await.expect("body");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text)
        .expect("gunzip");
    let answer: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(answer["committed"], 10);
}

#[tokio::test]
async fn a_batch_cut_off_by_an_instance_crash_completes_on_another_with_each_transfer_once() {
    let nats = NatsServer::start();
    let first = start_api(&nats.url).await;
    open_funded(&first, "ivy", "ivy", 1_000_000).await;
    open_funded(&first, "ivy-2", "ivy", 0).await;
    let client = nats.client().await;
    let ivy = token("ivy", false);
    let before = last_seq(&client).await;
    // The largest batch: 17 journal batches of at most 499 transfers, one after another.
    let transfers: Vec<Value> = (0..8_000).map(|_| item("ivy", "ivy-2", 1)).collect();
    let body = json!({"transfers": transfers}).to_string();
    let key = "settlement-2026-11-30";

    let cut_off = {
        let (url, ivy, body) = (
            format!("{}{BATCH}", first.http.base),
            ivy.clone(),
            body.clone(),
        );
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(ivy)
                .header("content-type", "application/json")
                .header("idempotency-key", key)
                .body(body)
                .send()
                .await
        })
    };
    // Crash the instance once some parts are journaled and before all are.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while last_seq(&client).await < before + 1_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "no part was journaled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    first.app.abort();
    let journaled_at_crash = transfers_journaled(&client).await;
    assert!(
        journaled_at_crash < 8_000,
        "the crash came after the whole batch ({journaled_at_crash} transfers)"
    );
    // The client sees the connection drop, or the dying instance's answer: the parts it did
    // not commit fail as a whole, each of their transfers with a 5xx result to retry.
    if let Ok(answer) = cut_off.await.expect("client task") {
        assert_eq!(answer.status(), StatusCode::OK);
        let body: Value = answer.json().await.expect("JSON");
        assert!(
            body["committed"].as_u64() < Some(8_000),
            "{}",
            body["committed"]
        );
        assert_eq!(
            body["results"][7_999]["status"].as_u64().map(|s| s >= 500),
            Some(true)
        );
    }

    // The client retries the same request under the same key on another instance.
    let second = start_api(&nats.url).await;
    let retried = second
        .post_with(
            BATCH,
            Some(&ivy),
            &[("idempotency-key", key)],
            Some(body.clone()),
        )
        .await;
    assert_eq!(retried.status, StatusCode::OK, "{:?}", retried.body);
    assert_eq!(
        retried.body["committed"], 8_000,
        "{:?}",
        retried.body["rejected"]
    );
    let answered: Vec<String> = retried.body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["transfer_id"].as_str().expect("transfer_id").to_owned())
        .collect();
    let journaled = transfer_ids_journaled(&client).await;
    assert_eq!(journaled.len(), 8_000, "every transfer journaled");
    assert!(journaled.values().all(|n| *n == 1), "none journaled twice");
    assert!(
        answered.iter().all(|id| journaled.contains_key(id)),
        "every answered transfer id is the journaled one"
    );
    let balances = balances(&client).await;
    assert_eq!(balances["ivy"], 1_000_000 - 8_000);
    assert_eq!(balances["ivy-2"], 8_000);

    // Once more: every part replays, nothing new is journaled.
    let settled = last_seq(&client).await;
    let again = second
        .post_with(BATCH, Some(&ivy), &[("idempotency-key", key)], Some(body))
        .await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, retried.body);
    let since: Vec<(String, Option<String>)> = journal(&client)
        .await
        .into_iter()
        .filter(|m| m.seq > settled)
        .map(|m| {
            (
                m.subject.clone(),
                m.header(headers::EVENT_TYPE).map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(since, vec![], "nothing journaled by the replay");
}

#[tokio::test]
async fn two_instances_sharing_accounts_conserve_money_and_journal_each_committed_transfer_once() {
    let nats = NatsServer::start();
    let instances = [
        Arc::new(start_api(&nats.url).await),
        Arc::new(start_api(&nats.url).await),
    ];
    let accounts: Vec<String> = (0..6).map(|i| format!("hal-{i}")).collect();
    for id in &accounts {
        open_funded(&instances[0], id, "hal", 5_000).await;
    }
    let client = nats.client().await;
    let hal = Arc::new(token("hal", false));
    let mut tasks = tokio::task::JoinSet::new();
    for client_no in 0..4_usize {
        let (api, hal, accounts) = (
            instances[client_no % 2].clone(),
            hal.clone(),
            accounts.clone(),
        );
        tasks.spawn(async move {
            let mut committed = 0;
            for round in 0..4_usize {
                let pick = |k: usize| &accounts[(client_no * 5 + round * 7 + k) % accounts.len()];
                let atomic = (client_no + round) % 3 == 0;
                let transfers: Vec<Value> = (0..300)
                    .map(|k| item(pick(k), pick(k + 1), 1 + (k % 90) as i64))
                    .collect();
                let answer = api
                    .post(
                        BATCH,
                        &hal,
                        json!({"transfers": transfers, "atomic": atomic}),
                    )
                    .await;
                match (atomic, answer.status.as_u16()) {
                    (false, 200) => committed += answer.body["committed"].as_u64().expect("count"),
                    (true, 201) => committed += 300,
                    // All or nothing: a refusal journals none of the 300.
                    (true, 422) => {}
                    (_, status) => panic!("{status}: {:?}", answer.body),
                }
            }
            committed
        });
    }
    let mut committed = 0;
    while let Some(done) = tasks.join_next().await {
        committed += done.expect("client");
    }
    let balances = balances(&client).await;
    assert_eq!(balances.values().sum::<i64>(), 6 * 5_000, "money conserved");
    assert!(balances.values().all(|b| *b >= 0), "{balances:?}");
    let journaled = transfer_ids_journaled(&client).await;
    assert!(journaled.values().all(|n| *n == 1), "none journaled twice");
    assert_eq!(journaled.len() as u64, committed);
    assert!(committed > 0);
}
