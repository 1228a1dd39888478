//! Rebuild reproduces the read model while the query API keeps answering; verify catches
//! tampering, and waits for a replica that trails the leader rather than report drift.

use crate::support::*;
use ledger_nats::direct::{DirectGetError, JetStream, Journal, Stored};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// Every row of every read-model table, as text, in a stable order.
async fn snapshot(stack: &Stack) -> Vec<String> {
    let pool = stack.pool().await;
    let mut rows = Vec::new();
    for (table, order) in [
        ("accounts", "account_id"),
        ("account_entries", "account_id, version"),
        ("jobs", "job_id"),
        ("batches", "batch_id"),
        ("orders", "order_id"),
        ("holds", "hold_id"),
        ("projection_checkpoint", "name"),
    ] {
        let text: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT t::text FROM {table} t ORDER BY {order}"
        )))
        .fetch_all(&pool)
        .await
        .expect("snapshot");
        rows.extend(text.into_iter().map(|row| format!("{table} {row}")));
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_reproduces_the_read_model_while_queries_keep_being_answered() {
    let stack = Arc::new(Stack::start().await);
    let projector = stack.start_projector().await;
    for i in 0..10 {
        stack.open_funded(&format!("r-{i}"), "r", 1_000).await;
    }
    let r = token("r", false);
    for n in 0..300_i64 {
        let from = n % 10;
        stack
            .commands
            .post(
                "/v1/transfers",
                &r,
                json!({"from_account_id": format!("r-{from}"), "to_account_id": format!("r-{}", (from + 3) % 10), "amount": 1 + n % 9}),
            )
            .await;
    }
    stack.wait_caught_up(Duration::from_secs(30)).await;
    let before = snapshot(&stack).await;
    assert!(before.len() > 600);

    // Readers hammer the query API throughout the rebuild.
    let stop = Arc::new(AtomicBool::new(false));
    let (answered, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut readers = tokio::task::JoinSet::new();
    for reader in 0..4 {
        let (stack, stop, answered, failed, r) = (
            stack.clone(),
            stop.clone(),
            answered.clone(),
            failed.clone(),
            r.clone(),
        );
        readers.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let path = match reader % 2 {
                    0 => format!("/v1/accounts/r-{reader}/balance"),
                    _ => format!("/v1/accounts/r-{reader}/entries?limit=5"),
                };
                let answer = stack.queries.get(&path, &r).await;
                if answer.status.as_u16() == 200 {
                    answered.fetch_add(1, Ordering::Relaxed);
                } else {
                    eprintln!("during rebuild: {} {:?}", answer.status, answer.body);
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    let client = stack.nats_client().await;
    let report = projector::rebuild::rebuild(&client, STREAM, &stack.db.url, SCHEMA, false)
        .await
        .expect("rebuild");
    stop.store(true, Ordering::Relaxed);
    while let Some(done) = readers.join_next().await {
        done.expect("reader");
    }
    assert_eq!(report.events, stack.last_seq().await);
    assert!(answered.load(Ordering::Relaxed) > 0);
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "every query during the rebuild was answered"
    );
    let after = snapshot(&stack).await;
    assert_eq!(after, before, "the rebuilt read model has the same rows");

    // The live projector carries on in the swapped-in schema.
    let more = stack
        .commands
        .post("/v1/accounts/r-1/deposits", &r, json!({"amount": 5}))
        .await;
    let seq = seq_of(&more).to_string();
    let balance = stack
        .queries
        .get_with(
            "/v1/accounts/r-1/balance",
            Some(&r),
            &[("ledger-min-seq", &seq)],
        )
        .await;
    assert_eq!(balance.status.as_u16(), 200, "{:?}", balance.body);
    assert_eq!(balance.body["balance"], more.body["balance"]);
    projector.stop().await.expect("stops");
}

/// Waits (bounded) until the query API answers `path` with 200 and a body that is `done`.
async fn settled(stack: &Stack, path: &str, token: &str, done: impl Fn(&Value) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let answer = stack.queries.get(path, token).await;
        if answer.status.as_u16() == 200 && done(&answer.body) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{path} did not settle: {:?}",
            answer.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_reproduces_jobs_batches_orders_and_holds() {
    let stack = Stack::start().await;
    let projector = stack.start_projector().await;
    let (admin, h) = (token("root", true), token("h", false));
    stack.open_funded("h-1", "h", 1_000).await;
    // A balance batch: a batch row, its items' jobs, and accounts it opens.
    let batch: Value = reqwest::Client::new()
        .put(format!("{}/v1/balances", stack.commands.base))
        .bearer_auth(&admin)
        .json(&json!({"h-1": 900, "h-2": 50, "h-3": 75}))
        .send()
        .await
        .expect("batch sent")
        .json()
        .await
        .expect("batch answer");
    let batch_path = format!("/v1/batches/{}", batch["batch_id"].as_str().expect("id"));
    settled(&stack, &batch_path, &admin, |b| b["status"] == "done").await;
    // Holds: one captured in part, one voided, each a row updated across events.
    let mut holds = Vec::new();
    for amount in [300, 100] {
        let placed = stack
            .commands
            .post("/v1/accounts/h-1/holds", &h, json!({"amount": amount}))
            .await;
        assert_eq!(placed.status.as_u16(), 201, "{:?}", placed.body);
        holds.push(placed.body["hold_id"].as_str().expect("id").to_owned());
    }
    for (hold, action, body) in [
        (&holds[0], "capture", json!({"amount": 200})),
        (&holds[1], "void", json!({})),
    ] {
        let done = stack
            .commands
            .post(&format!("/v1/accounts/h-1/holds/{hold}/{action}"), &h, body)
            .await;
        assert_eq!(done.status.as_u16(), 201, "{action}: {:?}", done.body);
    }
    // An order, placed and then paid or rejected by the executor.
    let order = stack
        .commands
        .post(
            "/v1/orders",
            &h,
            json!({"account_id": "h-1", "amount": 40, "description": "tea"}),
        )
        .await;
    assert_eq!(order.status.as_u16(), 202, "{:?}", order.body);
    let order_path = format!(
        "/v1/orders/{}",
        order.body["order_id"].as_str().expect("id")
    );
    settled(&stack, &order_path, &h, |o| o["status"] != "new").await;
    stack.wait_caught_up(Duration::from_secs(30)).await;
    let before = snapshot(&stack).await;
    for table in ["jobs ", "batches ", "orders ", "holds "] {
        assert!(
            before.iter().any(|row| row.starts_with(table)),
            "the scenario wrote {table}rows: {before:#?}"
        );
    }

    let client = stack.nats_client().await;
    let report = projector::rebuild::rebuild(&client, STREAM, &stack.db.url, SCHEMA, false)
        .await
        .expect("rebuild");
    assert_eq!(report.events, stack.last_seq().await);
    let after = snapshot(&stack).await;
    assert_eq!(after, before, "the rebuilt read model has the same rows");
    projector.stop().await.expect("stops");
}

#[tokio::test]
async fn verify_passes_on_a_faithful_read_model_and_reports_a_tampered_row() {
    let stack = Stack::start().await;
    let projector = stack.start_projector().await;
    stack.open_funded("v-1", "v", 500).await;
    stack.open_funded("v-2", "v", 0).await;
    stack
        .commands
        .post(
            "/v1/transfers",
            &token("v", false),
            json!({"from_account_id": "v-1", "to_account_id": "v-2", "amount": 120}),
        )
        .await;
    stack.wait_caught_up(Duration::from_secs(30)).await;
    projector.stop().await.expect("stops");
    let clean = stack.verify().await;
    assert!(clean.drift.is_empty(), "{:#?}", clean.drift);
    assert_eq!(clean.accounts, 2);
    let pool = stack.pool().await;

    sqlx::query("UPDATE accounts SET balance = balance + 1 WHERE account_id = 'v-2'")
        .execute(&pool)
        .await
        .expect("tamper");
    let drift = stack.verify().await;
    assert!(
        drift.drift.iter().any(|line| line.contains("account v-2")),
        "{:#?}",
        drift.drift
    );

    sqlx::query("UPDATE accounts SET balance = balance - 1 WHERE account_id = 'v-2'")
        .execute(&pool)
        .await
        .expect("untamper");
    sqlx::query(
        "UPDATE account_entries SET amount = amount + 1 WHERE account_id = 'v-1' AND version = 3",
    )
    .execute(&pool)
    .await
    .expect("tamper");
    let drift = stack.verify().await;
    assert!(
        drift.drift.iter().any(|line| line.contains("entry v-1 v3")),
        "{:#?}",
        drift.drift
    );

    // The rows a projector with a sign bug would write: the transfer received as a debit,
    // with a `balance_after` that chains from it and the type of a withdrawal. The rows
    // agree among themselves; only an independent derivation tells them wrong.
    sqlx::query(
        "UPDATE account_entries SET amount = amount - 1 WHERE account_id = 'v-1' AND version = 3",
    )
    .execute(&pool)
    .await
    .expect("untamper");
    sqlx::query(
        "UPDATE account_entries SET amount = -amount, balance_after = balance_after - 2 * amount,
                entry_type = 'withdrawal'
         WHERE account_id = 'v-2' AND event_type = 'transfer_received'",
    )
    .execute(&pool)
    .await
    .expect("plant a buggy row");
    let drift = stack.verify().await;
    assert!(
        drift.drift.iter().any(|line| line.contains("entry v-2")
            && line.contains("amount")
            && line.contains("balance_after")
            && line.contains("type")),
        "{:#?}",
        drift.drift
    );
}

/// The journal as a replica that trails the leader answers it: without its last `behind`
/// messages for the first `short_pages` page reads, and knowing no subject's last message for
/// the first `short_lasts` last-by-subject reads. The leader's end is the stream's own.
struct TrailingReplica<'a> {
    stream: JetStream<'a>,
    end: u64,
    behind: u64,
    short_pages: AtomicU32,
    short_lasts: AtomicU32,
    pages_read: AtomicU32,
    lasts_read: AtomicU32,
    leader_lasts_read: AtomicU32,
    /// An account whose subject the leader answers nothing for.
    leader_lacks: Option<&'static str>,
}

/// A replica stuck for good (a store that failed): every page whole, but never an account's
/// last message.
fn stuck_replica(stream: JetStream<'_>, end: u64) -> TrailingReplica<'_> {
    TrailingReplica {
        stream,
        end,
        behind: 0,
        short_pages: AtomicU32::new(0),
        short_lasts: AtomicU32::new(u32::MAX),
        pages_read: AtomicU32::new(0),
        lasts_read: AtomicU32::new(0),
        leader_lasts_read: AtomicU32::new(0),
        leader_lacks: None,
    }
}

/// Takes one of the short answers left, if any.
fn one_short(left: &AtomicU32) -> bool {
    left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

impl Journal for TrailingReplica<'_> {
    async fn page(&self, from_seq: u64) -> Result<Vec<Stored>, DirectGetError> {
        self.pages_read.fetch_add(1, Ordering::SeqCst);
        let mut page = self.stream.page(from_seq).await?;
        if one_short(&self.short_pages) {
            page.retain(|m| m.seq + self.behind <= self.end);
        }
        Ok(page)
    }

    async fn end(&self) -> Result<u64, DirectGetError> {
        self.stream.end().await
    }

    async fn leader_message(&self, seq: u64) -> Result<Option<Stored>, DirectGetError> {
        self.stream.leader_message(seq).await
    }

    async fn last_for_subjects(&self, subjects: &[String]) -> Result<Vec<Stored>, DirectGetError> {
        self.lasts_read.fetch_add(1, Ordering::SeqCst);
        if one_short(&self.short_lasts) {
            return Ok(Vec::new());
        }
        self.stream.last_for_subjects(subjects).await
    }

    async fn leader_last(&self, subject: &str) -> Result<Option<Stored>, DirectGetError> {
        self.leader_lasts_read.fetch_add(1, Ordering::SeqCst);
        if self.leader_lacks.is_some_and(|id| {
            subject == events::subjects::account(&events::AccountId::parse(id).expect("id"))
        }) {
            return Ok(None);
        }
        self.stream.leader_last(subject).await
    }
}

#[tokio::test]
async fn verify_waits_for_a_replica_that_trails_the_leader_and_reports_no_drift() {
    let stack = Stack::start().await;
    let projector = stack.start_projector().await;
    stack.open_funded("t-1", "t", 500).await;
    stack.open_funded("t-2", "t", 0).await;
    let moved = stack
        .commands
        .post(
            "/v1/transfers",
            &token("t", false),
            json!({"from_account_id": "t-1", "to_account_id": "t-2", "amount": 70}),
        )
        .await;
    assert_eq!(moved.status.as_u16(), 201, "{:?}", moved.body);
    stack.wait_caught_up(Duration::from_secs(30)).await;
    projector.stop().await.expect("stops");

    let nats = stack.nats_client().await;
    let stream = JetStream {
        nats: &nats,
        stream: STREAM,
    };
    let end = stack.last_seq().await;
    // The replica lacks the transfer's two legs: the first page stops short of the
    // checkpoint, and the next two reads find nothing where the leader holds messages.
    let replica = TrailingReplica {
        stream,
        end,
        behind: 2,
        short_pages: AtomicU32::new(3),
        short_lasts: AtomicU32::new(2),
        pages_read: AtomicU32::new(0),
        lasts_read: AtomicU32::new(0),
        leader_lasts_read: AtomicU32::new(0),
        leader_lacks: None,
    };
    let findings = projector::verify::verify_against(
        &replica,
        &stack.pool().await,
        projector::verify::REPLICA_CATCH_UP_WAIT,
    )
    .await
    .expect("verify waits for the replica");
    assert!(findings.drift.is_empty(), "{:#?}", findings.drift);
    assert_eq!(
        findings.events, end,
        "every message up to the checkpoint folded"
    );
    assert_eq!(findings.accounts, 2);
    // The short page, two empty ones, then the rest; two empty last-by-subject answers, then
    // the whole one.
    assert_eq!(replica.pages_read.load(Ordering::SeqCst), 4);
    assert_eq!(replica.lasts_read.load(Ordering::SeqCst), 3);
    assert_eq!(replica.leader_lasts_read.load(Ordering::SeqCst), 0);

    // A replica stuck for good (a store that failed) never answers the accounts' last
    // messages: past its patience, verify reads them from the leader, and finds no drift.
    let stuck = stuck_replica(stream, end);
    let findings =
        projector::verify::verify_against(&stuck, &stack.pool().await, Duration::from_millis(300))
            .await
            .expect("verify reads past the stuck replica");
    assert!(findings.drift.is_empty(), "{:#?}", findings.drift);
    assert_eq!(
        stuck.leader_lasts_read.load(Ordering::SeqCst),
        2,
        "one per account"
    );

    // The leader's answers are what is compared: one it does not have is drift.
    let stuck = TrailingReplica {
        leader_lacks: Some("t-2"),
        ..stuck_replica(stream, end)
    };
    let findings =
        projector::verify::verify_against(&stuck, &stack.pool().await, Duration::from_millis(300))
            .await
            .expect("verify");
    assert_eq!(
        findings.drift,
        vec!["the stream holds no message on t-2's subject".to_owned()]
    );
}
