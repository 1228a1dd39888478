//! Replay: `projector rebuild` over a journal of a million events. The journal is written
//! directly (1000-message atomic batches of valid account events, each with its post-state)
//! because the subject here is the replay, not the write path.

use crate::report::Report;
use crate::stack::STREAM;
use bytes::Bytes;
use chrono::Utc;
use events::{
    AccountId, AccountMovement, AccountOpened, AccountState, AccountStatus, Amount, Currency,
    Envelope, Event, OwnerId, headers, subjects,
};
use harness::{NatsServer, TestDatabase};
use ledger_nats::batch::{BATCH_LEN_MAX, Outbound, publish_atomic};
use std::time::Duration;

pub async fn run(report: &mut Report, events_total: usize, runs: usize) -> anyhow::Result<()> {
    let nats = NatsServer::start();
    let db = TestDatabase::create().await;
    let client = nats.client().await;
    ledger_nats::ensure_stream(&client, STREAM, 1).await?;
    let accounts = (events_total / 100).max(1);
    let per_account = events_total / accounts;
    let mut pending = Vec::with_capacity(BATCH_LEN_MAX);
    let mut states: Vec<AccountState> = Vec::with_capacity(accounts);
    let job = uuid::Uuid::now_v7();
    let now = Utc::now();
    for round in 0..per_account {
        for index in 0..accounts {
            let id = AccountId::parse(format!("r-{index}"))?;
            let event = if round == 0 {
                let state = AccountState {
                    version: 1,
                    balance: 0,
                    held: 0,
                    currency: Currency::default(),
                    status: AccountStatus::Open,
                    owner_id: OwnerId::parse(id.as_str())?,
                    overdraft_limit: 0,
                };
                states.push(state.clone());
                Event::AccountOpened(AccountOpened {
                    account_id: id.clone(),
                    state,
                })
            } else {
                let state = &mut states[index];
                state.version += 1;
                state.balance += 10;
                Event::FundsDeposited(AccountMovement {
                    account_id: id.clone(),
                    amount: Amount::new(10)?,
                    reference: None,
                    metadata: None,
                    state: state.clone(),
                })
            };
            let envelope = Envelope::new(job, now, event);
            pending.push(Outbound {
                subject: subjects::account(&id),
                msg_id: envelope.event_id.to_string(),
                headers: vec![(headers::EVENT_TYPE, envelope.event.event_type().to_owned())],
                payload: Bytes::from(envelope.to_json()),
                expected_last_subject_seq: None,
                expected_last_seq: None,
            });
            if pending.len() == BATCH_LEN_MAX {
                publish_atomic(&client, &pending, Duration::from_secs(30)).await?;
                pending.clear();
            }
        }
    }
    if !pending.is_empty() {
        publish_atomic(&client, &pending, Duration::from_secs(30)).await?;
    }
    // Each run rebuilds the schema the previous one swapped in, over the same journal.
    let mut runs_done = Vec::with_capacity(runs);
    let cpu = crate::cpu::Meter::start(&db.url);
    for run in 1..=runs.max(1) {
        let recording = crate::profile::Recording::start("replay")?;
        let result = projector::rebuild::rebuild(&client, STREAM, &db.url, "ledger", true).await?;
        recording.stop()?;
        if runs > 1 {
            let name = format!("replay ({} events)", result.events);
            report.add(
                &name,
                &format!("run {run}"),
                result.events_per_s(),
                "events/s",
            );
        }
        runs_done.push(result);
    }
    runs_done.sort_by(|a, b| a.events_per_s().total_cmp(&b.events_per_s()));
    let median = runs_done[runs_done.len() / 2];
    let name = format!("replay ({} events)", median.events);
    // The median run's (the only one's, by default).
    report.add(&name, "rebuild rate", median.events_per_s(), "events/s");
    report.add(&name, "rebuild time", median.seconds, "s");
    let events: u64 = runs_done.iter().map(|r| r.events).sum();
    cpu.report(report, &name, events as f64, "event");
    Ok(())
}
