//! History, accounts, jobs: paging, filters, the balance chain and owner scoping.

use crate::support::*;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;

#[tokio::test]
async fn walking_pages_while_writes_land_yields_every_entry_once() {
    let stack = Arc::new(Stack::start().await);
    let projector = stack.start_projector().await;
    stack.open_funded("pat", "pat", 0).await;
    let pat = token("pat", false);
    let mut last = 0;
    for _ in 0..120 {
        let answer = stack
            .commands
            .post("/v1/accounts/pat/deposits", &pat, json!({"amount": 1}))
            .await;
        last = seq_of(&answer);
    }
    // Writers keep depositing while a reader walks the pages.
    let writer = {
        let stack = stack.clone();
        let pat = pat.clone();
        tokio::spawn(async move {
            for _ in 0..60 {
                stack
                    .commands
                    .post("/v1/accounts/pat/deposits", &pat, json!({"amount": 2}))
                    .await;
            }
        })
    };
    let items = all_entries(&stack.queries, &pat, "pat", last).await;
    writer.await.expect("writer");
    let versions: Vec<i64> = items
        .iter()
        .map(|i| i["version"].as_i64().expect("version"))
        .collect();
    let unique: HashSet<i64> = versions.iter().copied().collect();
    assert_eq!(unique.len(), versions.len(), "no entry twice");
    let top = versions[0];
    assert!(
        top >= 121,
        "the first page saw every write before it ({top})"
    );
    let expected: Vec<i64> = (1..=top).rev().collect();
    assert_eq!(versions, expected, "newest first, none missing");
    projector.stop().await.expect("stops");
}

#[tokio::test]
async fn balance_after_chains_and_the_type_filter_selects_one_kind() {
    let stack = Stack::start().await;
    let projector = stack.start_projector().await;
    stack.open_funded("quinn", "q", 1_000).await;
    stack.open_funded("rory", "q", 0).await;
    let q = token("q", false);
    let mut last = 0;
    for i in 0..30 {
        let answer = match i % 3 {
            0 => stack.commands.post("/v1/accounts/quinn/withdrawals", &q, json!({"amount": 7})).await,
            1 => {
                stack
                    .commands
                    .post(
                        "/v1/transfers",
                        &q,
                        json!({"from_account_id": "quinn", "to_account_id": "rory", "amount": 11, "reference": format!("t{i}")}),
                    )
                    .await
            }
            _ => stack.commands.post("/v1/accounts/quinn/deposits", &q, json!({"amount": 3, "metadata": {"i": i}})).await,
        };
        assert_eq!(answer.status.as_u16(), 201, "{:?}", answer.body);
        last = seq_of(&answer);
    }
    let mut items = all_entries(&stack.queries, &q, "quinn", last).await;
    items.reverse();
    assert_eq!(items.len(), 32, "opening, first deposit and 30 movements");
    let mut balance = 0;
    for (index, item) in items.iter().enumerate() {
        assert_eq!(item["version"], index as i64 + 1);
        balance += item["amount"].as_i64().expect("amount");
        assert_eq!(item["balance_after"], balance, "chain at {item}");
    }
    assert_eq!(items[0]["type"], "opening");
    let transfer = items
        .iter()
        .find(|i| i["type"] == "transfer")
        .expect("a transfer");
    assert_eq!(transfer["event_type"], "transfer_sent");
    assert_eq!(transfer["counterparty_account_id"], "rory");
    assert!(transfer["amount"].as_i64().expect("amount") < 0);
    assert!(transfer["transfer_id"].is_string());
    assert!(transfer["reference"].is_string());
    let deposit = items
        .iter()
        .rfind(|i| i["type"] == "deposit")
        .expect("a deposit");
    assert!(deposit["metadata"]["i"].is_number());

    let min = last.to_string();
    let filtered = stack
        .queries
        .get_with(
            "/v1/accounts/quinn/entries?type=transfer&limit=200",
            Some(&q),
            &[("ledger-min-seq", &min)],
        )
        .await;
    let kinds: Vec<&Value> = filtered.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| &i["type"])
        .collect();
    assert_eq!(kinds.len(), 10);
    assert!(kinds.iter().all(|k| *k == "transfer"));
    let rory = all_entries(&stack.queries, &q, "rory", last).await;
    assert!(
        rory.iter()
            .take(10)
            .all(|i| i["type"] == "transfer" && i["event_type"] == "transfer_received")
    );
    stack
        .queries
        .get("/v1/accounts/quinn/entries?type=chargeback", &q)
        .await
        .assert_problem(400, "invalid_request");

    // Page paging.
    let page2 = stack
        .queries
        .get("/v1/accounts/quinn/entries?page=2&page_size=10", &q)
        .await;
    let versions: Vec<i64> = page2.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["version"].as_i64().expect("v"))
        .collect();
    assert_eq!(versions, (13..=22).rev().collect::<Vec<_>>());
    assert_eq!(page2.body["has_more"], true);

    // Balance as of an instant before the last movement: exactly the state after the entry
    // at that instant (version 11), not the current one (version 32) — so an `as_of` that
    // were ignored would fail here.
    let tenth = &items[10];
    let instant = tenth["occurred_at"].as_str().expect("instant");
    let at = stack
        .queries
        .get(
            &format!(
                "/v1/accounts/quinn/balance?as_of={}",
                instant.replace('+', "%2B")
            ),
            &q,
        )
        .await;
    assert_eq!(at.status.as_u16(), 200, "{:?}", at.body);
    assert_eq!(at.body["version"], tenth["version"], "{:?}", at.body);
    assert_eq!(at.body["balance"], tenth["balance_after"], "{:?}", at.body);
    assert_ne!(at.body["balance"], items[31]["balance_after"]);
    projector.stop().await.expect("stops");
}

#[tokio::test]
async fn owners_see_their_own_accounts_and_jobs_only() {
    let stack = Stack::start().await;
    let projector = stack.start_projector().await;
    stack.open_funded("sam-1", "sam", 10).await;
    stack.open_funded("sam-2", "sam", 0).await;
    let last = stack.open_funded("tess-1", "tess", 10).await;
    let sam = token("sam", false);
    let moved = stack
        .commands
        .post(
            "/v1/transfers",
            &sam,
            json!({"from_account_id": "sam-1", "to_account_id": "tess-1", "amount": 4}),
        )
        .await;
    let job_id = moved.body["job_id"].as_str().expect("job").to_owned();
    let min = seq_of(&moved).max(last).to_string();
    let headers = [("ledger-min-seq", min.as_str())];

    let mine = stack
        .queries
        .get_with("/v1/accounts", Some(&sam), &headers)
        .await;
    let ids: Vec<&str> = mine.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|a| a["account_id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["sam-1", "sam-2"]);
    stack
        .queries
        .get("/v1/accounts?owner_id=tess", &sam)
        .await
        .assert_problem(403, "forbidden");
    let all = stack
        .queries
        .get("/v1/accounts?limit=2", &token("root", true))
        .await;
    assert_eq!(all.body["items"].as_array().expect("items").len(), 2);
    let cursor = all.body["next_cursor"].as_str().expect("more").to_owned();
    let rest = stack
        .queries
        .get(
            &format!("/v1/accounts?limit=2&cursor={cursor}"),
            &token("root", true),
        )
        .await;
    assert_eq!(rest.body["items"][0]["account_id"], "tess-1");

    // Another owner's account and history look missing.
    for path in [
        "/v1/accounts/tess-1",
        "/v1/accounts/tess-1/balance",
        "/v1/accounts/tess-1/entries",
    ] {
        stack
            .queries
            .get(path, &sam)
            .await
            .assert_problem(404, "account_not_found");
    }
    stack
        .queries
        .get_with("/v1/accounts/sam-1", None, &[])
        .await
        .assert_problem(401, "unauthorized");
    stack
        .queries
        .get("/v1/accounts/sa.m", &sam)
        .await
        .assert_problem(400, "invalid_account_id");

    let job = stack.queries.get(&format!("/v1/jobs/{job_id}"), &sam).await;
    assert_eq!(job.status.as_u16(), 200, "{:?}", job.body);
    assert_eq!(job.body["status"], "completed");
    assert_eq!(job.body["kind"], "transfer");
    assert_eq!(job.body["account_id"], "sam-1");
    stack
        .queries
        .get(&format!("/v1/jobs/{job_id}"), &token("tess", false))
        .await
        .assert_problem(404, "job_not_found");
    projector.stop().await.expect("stops");
}
