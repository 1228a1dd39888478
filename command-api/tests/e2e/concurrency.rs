//! Many concurrent transfers, from two instances: money is conserved, no balance goes
//! negative, versions are gapless, every event follows from the one before — and batches
//! really hold many commands.

use crate::support::*;
use command_api::writer::WriterStats;
use events::{AccountState, Evolve, subjects};
use reqwest::StatusCode;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

const ACCOUNTS: usize = 10;
const INITIAL: i64 = 1_000;
const TASKS: usize = 16;
const TRANSFERS_PER_TASK: usize = 20;

#[tokio::test]
async fn concurrent_transfers_from_two_instances_conserve_money() {
    let nats = NatsServer::start();
    let first = Arc::new(start_api(&nats.url).await);
    let second = Arc::new(start_api(&nats.url).await);
    let ids: Vec<String> = (0..ACCOUNTS).map(|i| format!("acct-{i}")).collect();
    for id in &ids {
        open_funded(&first, id, "owner", INITIAL).await;
    }
    let owner = Arc::new(token("owner", false));
    let ids = Arc::new(ids);
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let api = if task % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        let (owner, ids) = (owner.clone(), ids.clone());
        tasks.spawn(async move {
            let mut outcomes = Vec::new();
            for n in 0..TRANSFERS_PER_TASK {
                // A deterministic spread of pairs and amounts, some larger than any balance.
                let from = (task * 7 + n * 3) % ACCOUNTS;
                let to = (from + 1 + (task + n) % (ACCOUNTS - 1)) % ACCOUNTS;
                let amount = 1 + ((task * 31 + n * 17) % 400) as i64;
                let answer = api
                    .post(
                        "/v1/transfers",
                        &owner,
                        json!({"from_account_id": ids[from], "to_account_id": ids[to], "amount": amount}),
                    )
                    .await;
                outcomes.push(answer);
            }
            outcomes
        });
    }
    let mut committed = 0;
    let mut refused = 0;
    while let Some(outcomes) = tasks.join_next().await {
        for answer in outcomes.expect("task") {
            match answer.status {
                StatusCode::CREATED => committed += 1,
                StatusCode::UNPROCESSABLE_ENTITY => {
                    answer.assert_problem(422, "insufficient_funds");
                    refused += 1;
                }
                other => panic!("unexpected {other}: {:?}", answer.body),
            }
        }
    }
    assert_eq!(committed + refused, TASKS * TRANSFERS_PER_TASK);
    assert!(committed >= 100, "most transfers commit ({committed})");

    // Read everything back from the journal and fold it.
    let client = nats.client().await;
    let journal = journal(&client).await;
    let mut states: HashMap<String, AccountState> = HashMap::new();
    let mut sent = 0;
    for message in &journal {
        let envelope = decode(message);
        let Some(account_id) = envelope.event.account_id() else {
            continue;
        };
        assert_eq!(message.subject, subjects::account(account_id));
        let after = AccountState::evolve(states.get(account_id.as_str()), &envelope.event)
            .expect("every event follows from the state before it");
        assert_eq!(
            Some(&after),
            envelope.event.account_state(),
            "post-state matches the fold"
        );
        let before_version = states.get(account_id.as_str()).map_or(0, |s| s.version);
        assert_eq!(after.version, before_version + 1, "gapless versions");
        assert!(after.balance >= 0, "no negative balance: {after:?}");
        if envelope.event.event_type() == "transfer_sent" {
            sent += 1;
        }
        states.insert(account_id.to_string(), after);
    }
    assert_eq!(
        sent, committed,
        "every acknowledged transfer is journaled exactly once"
    );
    let total: i64 = states.values().map(|s| s.balance).sum();
    assert_eq!(total, INITIAL * ACCOUNTS as i64, "money is conserved");

    // Group commit is real: batches held several commands.
    let mut batches = 0;
    let mut commands = 0;
    let mut largest = 0;
    for api in [&first, &second] {
        let stats = &api.app.stats;
        batches += WriterStats::get(&stats.batches);
        commands += WriterStats::get(&stats.commands);
        largest = largest.max(WriterStats::get(&stats.batch_commands_max));
    }
    let conflicts: u64 = [&first, &second]
        .iter()
        .map(|api| WriterStats::get(&api.app.stats.conflicts))
        .sum();
    eprintln!(
        "{committed} transfers committed, {refused} refused; {commands} commands in {batches} \
         batches (largest {largest}), {conflicts} conflicts"
    );
    assert!(largest > 1, "some batch held more than one command");
    assert!(
        commands > batches,
        "{commands} commands in {batches} batches"
    );
    // The journal agrees: some Nats-Batch-Id spans several jobs.
    let mut jobs_per_batch: HashMap<&str, std::collections::HashSet<&str>> = HashMap::new();
    for message in &journal {
        if let (Some(batch), Some(job)) = (
            message.header(ledger_nats::headers::BATCH_ID),
            message.header("Ledger-Job-Id"),
        ) {
            jobs_per_batch.entry(batch).or_default().insert(job);
        }
    }
    assert!(jobs_per_batch.values().any(|jobs| jobs.len() > 1));
}
