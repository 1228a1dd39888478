//! Exactly-once bookkeeping across crashes, and one active projector at a time.

use crate::support::*;
use projector::consume::Role;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ACCOUNTS: usize = 40;

/// Writes at least `events` journal messages through the command API: transfers among
/// `ACCOUNTS` accounts from 32 concurrent clients.
async fn generate(stack: Arc<Stack>, events: u64) {
    let start = stack.last_seq().await;
    let owner = Arc::new(token("gen", false));
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..32_usize {
        let (stack, owner) = (stack.clone(), owner.clone());
        clients.spawn(async move {
            let mut n = client;
            while stack.last_seq().await < start + events {
                for _ in 0..20 {
                    n += 7;
                    let from = n % ACCOUNTS;
                    let to = (from + 1 + n % (ACCOUNTS - 1)) % ACCOUNTS;
                    stack
                        .commands
                        .post(
                            "/v1/transfers",
                            &owner,
                            json!({"from_account_id": format!("gen-{from}"), "to_account_id": format!("gen-{to}"), "amount": 1 + n % 50}),
                        )
                        .await;
                }
            }
        });
    }
    while let Some(done) = clients.join_next().await {
        done.expect("client");
    }
}

async fn open_accounts(stack: &Stack) {
    for i in 0..ACCOUNTS {
        stack.open_funded(&format!("gen-{i}"), "gen", 100_000).await;
    }
}

/// Entries in the read model = account events in the journal, every (account, version) once,
/// and verify finds no drift.
async fn assert_exactly_once(stack: &Stack) {
    let pool = stack.pool().await;
    let client = stack.nats_client().await;
    let findings = projector::verify::verify(&client, STREAM, &pool)
        .await
        .expect("verify runs");
    assert!(findings.drift.is_empty(), "drift: {:#?}", findings.drift);
    let last = stack.last_seq().await;
    assert_eq!(findings.events, last, "verify covered the whole journal");
    let entries: i64 = sqlx::query_scalar("SELECT count(*) FROM account_entries")
        .fetch_one(&pool)
        .await
        .expect("count");
    let distinct: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT (account_id, version)) FROM account_entries")
            .fetch_one(&pool)
            .await
            .expect("count");
    let mut journal_account_events = 0;
    let mut next = 1;
    while next <= last {
        let page = ledger_nats::direct::range(&client, STREAM, next, 1000)
            .await
            .expect("range");
        for message in &page {
            if message
                .subject
                .starts_with(events::subjects::ACCOUNT_PREFIX)
            {
                journal_account_events += 1;
            }
            next = message.seq + 1;
        }
    }
    assert_eq!(
        entries, journal_account_events,
        "one entry per account event"
    );
    assert_eq!(distinct, entries, "no entry twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_projector_at_random_points_applies_every_event_exactly_once() {
    let stack = Arc::new(Stack::start().await);
    open_accounts(&stack).await;
    let load = tokio::spawn(generate(stack.clone(), 10_000));
    let mut kills = 0;
    while !load.is_finished() {
        let projector = stack.start_projector().await;
        // Kill it somewhere between a few and a few hundred milliseconds in: mid-batch,
        // mid-transaction, between batches — wherever it happens to be.
        let lifetime = Duration::from_millis(rand::random_range(5..300));
        tokio::time::sleep(lifetime).await;
        projector.abort();
        kills += 1;
    }
    load.await.expect("load");
    assert!(kills >= 3, "the projector was killed {kills} times");
    let projector = stack.start_projector().await;
    stack.wait_caught_up(Duration::from_secs(60)).await;
    let events = stack.last_seq().await;
    eprintln!("{events} journal messages; the projector was killed {kills} times");
    assert!(events >= 10_000);
    assert_exactly_once(&stack).await;
    projector.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_projector_waits_and_takes_over_when_the_first_dies() {
    let stack = Arc::new(Stack::start().await);
    open_accounts(&stack).await;
    let first = stack.start_projector().await;
    wait_for_role(&first, Role::Active).await;
    let second = stack.start_projector().await;
    let load = tokio::spawn(generate(stack.clone(), 2_000));
    // While the first lives, the second only waits.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(second.status.role(), Role::Standby);
    assert_eq!(
        second
            .status
            .applied_events
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    first.abort();
    wait_for_role(&second, Role::Active).await;
    load.await.expect("load");
    stack.wait_caught_up(Duration::from_secs(60)).await;
    assert!(
        second
            .status
            .applied_events
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
    assert_exactly_once(&stack).await;
    second.stop().await.expect("stops");
}

async fn wait_for_role(projector: &projector::Projector, role: Role) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while projector.status.role() != role {
        assert!(Instant::now() < deadline, "projector never became {role:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
