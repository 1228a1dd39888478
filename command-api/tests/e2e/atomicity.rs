//! A transfer is both legs or neither; stale states and unknown outcomes never write twice.

use crate::support::*;
use bytes::Bytes;
use command_api::writer::WriterStats;
use command_api::writer::checks::RUN_LEN_MIN;
use events::headers;
use ledger_nats::batch::{BatchAck, Outbound, PublishError, publish_atomic};
use ledger_nats::headers as nats_headers;
use ledger_nats::{Commit, CommitOptions, commit_atomic};
use reqwest::StatusCode;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

fn message(subject: &str, expected: Option<u64>) -> Outbound {
    Outbound {
        subject: subject.to_owned(),
        msg_id: uuid::Uuid::now_v7().to_string(),
        headers: vec![(headers::EVENT_TYPE, "probe".to_owned())],
        payload: Bytes::from_static(b"{}"),
        expected_last_subject_seq: expected,
        expected_last_seq: None,
    }
}

/// A commit's limits for the tests that call `commit_atomic` themselves.
fn commit_options() -> CommitOptions {
    CommitOptions {
        stream: STREAM.to_owned(),
        timeout: Duration::from_secs(5),
        unknown_outcome_retries_max: 3,
        conflict_lookups: 3,
    }
}

#[tokio::test]
async fn a_batch_whose_second_leg_fails_its_sequence_check_stores_neither_leg() {
    let nats = NatsServer::start();
    let api = start_api(&nats.url).await; // creates the stream
    open_funded(&api, "a", "o", 10).await;
    open_funded(&api, "b", "o", 10).await;
    let client = nats.client().await;
    let before = last_seq(&client).await;
    let subjects = ["ledger.account.a".to_owned(), "ledger.account.b".to_owned()];
    let last = ledger_nats::direct::last_for_subjects(&client, STREAM, &subjects)
        .await
        .expect("direct get");
    let seq_of = |s: &str| {
        last.iter()
            .find(|m| m.subject == s)
            .map(|m| m.seq)
            .expect("seq")
    };
    let (a_seq, b_seq) = (seq_of("ledger.account.a"), seq_of("ledger.account.b"));

    // First leg right, second leg stale.
    let batch = [
        message("ledger.account.a", Some(a_seq)),
        message("ledger.account.b", Some(b_seq - 1)),
    ];
    let refused = publish_atomic(&client, &batch, Duration::from_secs(5)).await;
    assert!(
        matches!(refused, Err(PublishError::WrongLastSequence(_))),
        "{refused:?}"
    );
    assert_eq!(last_seq(&client).await, before, "neither leg stored");

    // The same batch with both checks right is stored whole, contiguously.
    let batch = [
        message("ledger.account.a", Some(a_seq)),
        message("ledger.account.b", Some(b_seq)),
    ];
    let ack = publish_atomic(&client, &batch, Duration::from_secs(5))
        .await
        .expect("stored");
    assert_eq!((ack.first_seq(), ack.seq), (before + 1, before + 2));

    // Resending it (same message ids) is refused whole.
    let resent = publish_atomic(&client, &batch, Duration::from_secs(5)).await;
    assert!(resent.is_err(), "a resent batch is not stored again");
    assert_eq!(last_seq(&client).await, before + 2);
}

#[tokio::test]
async fn a_batch_checked_by_the_stream_is_settled_from_the_place_it_pins() {
    let nats = NatsServer::start();
    let _api = start_api(&nats.url).await; // creates the stream
    let client = nats.client().await;
    let options = commit_options();
    let last = last_seq(&client).await;
    let pinned_after = |subject: &str, seq: u64| Outbound {
        expected_last_seq: Some(seq),
        ..message(subject, None)
    };
    let batch = [
        pinned_after("ledger.account.x", last),
        message("ledger.account.y", None),
    ];
    let stored = commit_atomic(&client, &batch, &options, || {}).await;
    assert_eq!(
        stored,
        Commit::Stored(BatchAck {
            seq: last + 2,
            count: 2
        })
    );

    // The same batch again, as after a lost answer: the server refuses it, and the message
    // after the stream place it pins is its own, so it is settled as stored, once.
    let again = commit_atomic(&client, &batch, &options, || {}).await;
    assert_eq!(again, stored);

    // Another batch pinning the same place finds someone else's message there: a conflict.
    let late = [pinned_after("ledger.account.z", last)];
    let conflict = commit_atomic(&client, &late, &options, || {}).await;
    assert_eq!(conflict, Commit::Conflict);
    assert_eq!(
        last_seq(&client).await,
        last + 2,
        "nothing stored twice or late"
    );
}

#[tokio::test]
async fn a_conflict_is_settled_from_the_subject_the_refusal_names() {
    let nats = NatsServer::start();
    let _api = start_api(&nats.url).await; // creates the stream
    let client = nats.client().await;
    // A batch that pins forty new subjects; someone else writes the 24th first, between
    // messages on subjects the batch does not pin.
    let subjects: Vec<String> = (0..40).map(|i| format!("ledger.account.p{i}")).collect();
    let moved = &subjects[23];
    let write = |subject: String| {
        let client = client.clone();
        async move {
            publish_atomic(&client, &[message(&subject, None)], Duration::from_secs(5))
                .await
                .expect("the other writer's message is stored")
        }
    };
    write("ledger.account.q1".to_owned()).await;
    let elsewhere = write(moved.clone()).await;
    write("ledger.account.q2".to_owned()).await;
    let batch: Vec<Outbound> = subjects.iter().map(|s| message(s, Some(0))).collect();
    let refusal = match publish_atomic(&client, &batch, Duration::from_secs(5)).await {
        Err(PublishError::WrongLastSequence(refusal)) => refusal,
        other => panic!("expected a wrong last sequence, got {other:?}"),
    };
    assert!(
        refusal.description.ends_with(&elsewhere.seq.to_string()),
        "the refusal names where the moved subject ends: {refusal:?}"
    );

    // The refusal points at one place among the forty: the moved subject's.
    let pins = ledger_nats::commit::pins(&batch);
    assert_eq!(pins.len(), 40);
    let likely = ledger_nats::commit::likely_witnesses(&client, STREAM, &pins, &refusal).await;
    let named: Vec<Option<&str>> = likely.iter().map(|pin| pin.subject()).collect();
    assert_eq!(named, vec![Some(moved.as_str())]);

    // Settled as a conflict, and nothing of the batch is stored.
    let options = commit_options();
    assert_eq!(
        commit_atomic(&client, &batch, &options, || {}).await,
        Commit::Conflict
    );
    assert_eq!(last_seq(&client).await, elsewhere.seq + 1);
}

#[tokio::test]
async fn a_stale_cached_state_conflicts_and_is_redecided_without_double_writes() {
    let nats = NatsServer::start();
    let first = start_api(&nats.url).await;
    let second = start_api(&nats.url).await;
    open_funded(&first, "m", "o", 100).await;
    open_funded(&first, "n", "o", 0).await;
    let owner = token("o", false);
    // The first instance caches m and n; the second then moves m and n behind its back.
    let warm = first
        .post(
            "/v1/transfers",
            &owner,
            json!({"from_account_id": "m", "to_account_id": "n", "amount": 1}),
        )
        .await;
    assert_eq!(warm.status, StatusCode::CREATED);
    let behind = second
        .post(
            "/v1/transfers",
            &owner,
            json!({"from_account_id": "n", "to_account_id": "m", "amount": 1}),
        )
        .await;
    assert_eq!(behind.status, StatusCode::CREATED);
    let conflicts_before = WriterStats::get(&first.app.stats.conflicts);

    let transfer = first
        .post(
            "/v1/transfers",
            &owner,
            json!({"from_account_id": "m", "to_account_id": "n", "amount": 60}),
        )
        .await;
    assert_eq!(transfer.status, StatusCode::CREATED, "{:?}", transfer.body);
    assert_eq!(
        transfer.body["from"]["balance"], 40,
        "decided on the reloaded state"
    );
    assert_eq!(transfer.body["from"]["version"], 5);
    assert!(WriterStats::get(&first.app.stats.conflicts) > conflicts_before);

    // A rejection resting on a stale cache is re-checked against the journal: the second
    // instance tops m up, and the first must see it.
    let topped = second
        .post("/v1/accounts/m/deposits", &owner, json!({"amount": 500}))
        .await;
    assert_eq!(topped.status, StatusCode::CREATED);
    let big = first
        .post("/v1/accounts/m/withdrawals", &owner, json!({"amount": 540}))
        .await;
    assert_eq!(big.status, StatusCode::CREATED, "{:?}", big.body);
    assert_eq!(big.body["balance"], 0);

    let client = nats.client().await;
    let legs = journal(&client)
        .await
        .iter()
        .filter(|m| m.header(headers::EVENT_TYPE) == Some("transfer_sent"))
        .count();
    assert_eq!(legs, 3, "each transfer journaled once");
}

#[tokio::test]
async fn a_run_of_own_commits_checks_the_stream_and_another_instances_write_still_conflicts() {
    let nats = NatsServer::start();
    let first = start_api(&nats.url).await;
    let second = start_api(&nats.url).await;
    open_funded(&first, "m", "o", 1_000).await;
    open_funded(&first, "n", "o", 0).await;
    let owner = token("o", false);
    let m_to_n = json!({"from_account_id": "m", "to_account_id": "n", "amount": 1});
    // One instance alone: its commits follow one another, and once the run is long enough
    // the subjects it wrote are proven by the stream check instead of their own.
    for _ in 0..RUN_LEN_MIN {
        let answer = first.post("/v1/transfers", &owner, m_to_n.clone()).await;
        assert_eq!(answer.status, StatusCode::CREATED);
    }
    // The run's next batch also writes a subject no one has written yet: a key's record.
    let keyed = first
        .post_with(
            "/v1/transfers",
            Some(&owner),
            &[("Idempotency-Key", "run-1")],
            Some(m_to_n.to_string()),
        )
        .await;
    assert_eq!(keyed.status, StatusCode::CREATED, "{:?}", keyed.body);
    let client = nats.client().await;
    let stored = journal(&client).await;
    let last_batch = last_batch_of(&stored);
    let first_message = last_batch[0];
    assert_eq!(
        first_message.header(nats_headers::EXPECTED_LAST_SEQUENCE),
        Some((first_message.seq - 1).to_string().as_str()),
        "the batch's first message checks the stream"
    );
    let legs = last_batch
        .iter()
        .filter(|m| m.subject.starts_with(events::subjects::ACCOUNT_PREFIX))
        .count();
    assert_eq!(legs, 2, "the batch holds the transfer's two legs");
    assert!(
        last_batch
            .iter()
            .any(|m| m.subject.starts_with(events::subjects::IDEMPOTENCY_PREFIX)),
        "and the key's record"
    );
    // The legs' states were written by this instance during the run; the record's absence
    // was read from the single replica after the run's last commit.
    for message in &last_batch {
        assert_eq!(
            message.header(nats_headers::EXPECTED_LAST_SUBJECT_SEQUENCE),
            None,
            "{} is known as of a point in the run",
            message.subject
        );
    }

    // The second instance moves m behind the first's back: the stream check fails, the
    // conflict is confirmed, and the first instance re-decides on the reloaded state.
    let back = json!({"from_account_id": "n", "to_account_id": "m", "amount": 5});
    let behind = second.post("/v1/transfers", &owner, back).await;
    assert_eq!(behind.status, StatusCode::CREATED);
    let conflicts_before = WriterStats::get(&first.app.stats.conflicts);
    let after = first.post("/v1/transfers", &owner, m_to_n).await;
    assert_eq!(after.status, StatusCode::CREATED, "{:?}", after.body);
    let expected_balance = 1_000 - i64::from(RUN_LEN_MIN) - 1 + 5 - 1;
    assert_eq!(after.body["from"]["balance"], expected_balance);
    assert!(WriterStats::get(&first.app.stats.conflicts) > conflicts_before);
    let legs = journal(&client)
        .await
        .iter()
        .filter(|m| m.header(headers::EVENT_TYPE) == Some("transfer_sent"))
        .count();
    assert_eq!(
        legs,
        usize::try_from(RUN_LEN_MIN).unwrap_or(0) + 3,
        "each transfer journaled once"
    );
}

/// The messages of the journal's last atomic batch, in order.
fn last_batch_of(stored: &[ledger_nats::Stored]) -> Vec<&ledger_nats::Stored> {
    let batch_id = stored
        .last()
        .and_then(|m| m.header(nats_headers::BATCH_ID))
        .expect("the last message belongs to a batch");
    stored
        .iter()
        .filter(|m| m.header(nats_headers::BATCH_ID) == Some(batch_id))
        .collect()
}

#[tokio::test]
async fn commits_of_unknown_outcome_are_resolved_without_writing_twice() {
    let nats = NatsServer::start();
    let mut config = config(&nats.url);
    // Shorter than a durable commit (~12 ms): most commits time out before their ack
    // arrives, though the server stores them; the writer must find out, not write again.
    config.commit_timeout_ms = 1;
    config.unknown_outcome_retries_max = 50;
    let api = Arc::new(Api::start(config).await);
    let admin = Arc::new(token("root", true));
    let opened = api
        .post(
            "/v1/accounts",
            &admin,
            json!({"account_id": "p", "owner_id": "o"}),
        )
        .await;
    assert!(opened.status.is_success() || opened.status == StatusCode::SERVICE_UNAVAILABLE);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let (api, admin) = (api.clone(), admin.clone());
        tasks.spawn(async move {
            let key = format!("unknown-{i}");
            // Retry as a careful client would: same key until a definite answer.
            for _ in 0..20 {
                let answer = api
                    .post_with(
                        "/v1/accounts/p/deposits",
                        Some(&admin),
                        &[("idempotency-key", &key)],
                        Some(json!({"amount": 1}).to_string()),
                    )
                    .await;
                if answer.status != StatusCode::SERVICE_UNAVAILABLE {
                    return answer;
                }
            }
            panic!("no definite answer for {key}");
        });
    }
    while let Some(answer) = tasks.join_next().await {
        let answer = answer.expect("task");
        assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
    }
    assert!(
        WriterStats::get(&api.app.stats.unknown_outcomes) > 0,
        "the path was exercised"
    );
    let client = nats.client().await;
    let deposits = journal(&client)
        .await
        .iter()
        .filter(|m| m.header(headers::EVENT_TYPE) == Some("funds_deposited"))
        .count();
    assert_eq!(deposits, 40, "every deposit exactly once");
}
