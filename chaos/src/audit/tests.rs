//! Each violation category, made to fire by a journal or history written by hand.

use super::*;
use crate::workload::{OWNER, Operation, Outcome};
use serde_json::{Value, json};

/// A journal written by hand: `(subject, payload)` in order.
fn journal(messages: &[(String, Value)]) -> Vec<ledger_nats::Stored> {
    messages
        .iter()
        .enumerate()
        .map(|(i, (subject, payload))| ledger_nats::Stored {
            seq: i as u64 + 1,
            subject: subject.clone(),
            msg_id: None,
            headers: async_nats::HeaderMap::new(),
            payload: bytes::Bytes::from(payload.to_string()),
        })
        .collect()
}

fn account(id: &str) -> String {
    format!("ledger.account.{id}")
}

fn state(balance: i64, version: u64) -> Value {
    json!({"balance": balance, "version": version, "overdraft_limit": 0})
}

fn setup() -> Setup {
    Setup {
        admin: "admin".into(),
        accounts: vec!["a".into(), "b".into()],
    }
}

/// The idempotency record of `key` sent by `principal`.
fn record(principal: &str, key: &str, response: Value) -> (String, Value) {
    let principal = OwnerId::parse(principal).expect("principal");
    let key = IdempotencyKey::parse(key).expect("key");
    (
        events::subjects::idempotency(&principal, &key),
        json!({"type": "idempotency_recorded", "response": response}),
    )
}

/// Two accounts of 100 each, opened and funded by the admin with keys.
fn opened() -> Vec<(String, Value)> {
    let mut messages = Vec::new();
    for id in ["a", "b"] {
        messages.push((
            account(id),
            json!({"type": "account_opened", "state": state(0, 1)}),
        ));
        messages.push(record("admin", &format!("open-{id}"), json!({})));
        messages.push((
            account(id),
            json!({"type": "funds_deposited", "amount": 100, "state": state(100, 2)}),
        ));
        messages.push(record("admin", &format!("fund-{id}"), json!({})));
    }
    messages
}

/// The owner's record of an acknowledged transfer.
fn owner_record(key: &str, transfer_id: &str) -> (String, Value) {
    record(OWNER, key, json!({"transfer_id": transfer_id}))
}

fn transfer(id: &str, reference: &str, amount: i64, versions: u64) -> Vec<(String, Value)> {
    let leg = |kind: &str, on: &str, other: &str, balance: i64| {
        (
            account(on),
            json!({"type": kind, "transfer_id": id, "amount": amount,
                   "counterparty_account_id": other, "reference": reference,
                   "state": state(balance, versions)}),
        )
    };
    let moved = amount * (versions as i64 - 2);
    vec![
        leg("transfer_sent", "a", "b", 100 - moved),
        leg("transfer_received", "b", "a", 100 + moved),
    ]
}

fn op(key: &str, outcome: Outcome) -> Operation {
    Operation {
        key: key.to_owned(),
        keyed: true,
        batch: None,
        from: "a".into(),
        to: "b".into(),
        amount: 10,
        attempts: 1,
        outcome,
    }
}

fn ok(transfer_id: &str, versions: u64) -> Outcome {
    let moved = 10 * (versions as i64 - 2);
    Outcome::Ok {
        transfer_id: transfer_id.into(),
        replayed: false,
        from_balance: 100 - moved,
        from_version: versions,
        to_balance: 100 + moved,
        to_version: versions,
    }
}

fn kinds(history: &[Operation], messages: &[(String, Value)]) -> Vec<&'static str> {
    let mut violations = Violations::default();
    audit(history, &journal(messages), &setup(), &mut violations);
    violations.0.keys().copied().collect()
}

#[test]
fn an_acknowledged_transfer_missing_from_the_journal_is_lost() {
    let history = [op("k1", ok("t1", 3))];
    assert!(kinds(&history, &opened()).contains(&"lost"));
}

#[test]
fn one_operation_applied_twice_is_duplicated() {
    let mut messages = opened();
    messages.extend(transfer("t1", "k1", 10, 3));
    messages.extend(transfer("t2", "k1", 10, 4));
    let history = [op("k1", ok("t1", 3))];
    assert!(kinds(&history, &messages).contains(&"duplicated"));
}

#[test]
fn a_transfer_no_client_sent_or_one_refused_is_unexpected() {
    let mut messages = opened();
    messages.extend(transfer("t1", "nobody", 10, 3));
    assert_eq!(kinds(&[], &messages), ["unexpected"]);
    let mut messages = opened();
    messages.extend(transfer("t1", "k1", 10, 3));
    let refused = Outcome::Failed {
        status: 422,
        code: "insufficient_funds".into(),
    };
    assert!(kinds(&[op("k1", refused)], &messages).contains(&"unexpected"));
}

#[test]
fn a_skipped_version_is_a_gap() {
    let mut messages = opened();
    messages.extend(transfer("t1", "k1", 10, 4));
    assert!(kinds(&[op("k1", ok("t1", 4))], &messages).contains(&"version_gap"));
}

#[test]
fn a_transfer_with_one_leg_is_half_a_transfer() {
    let mut messages = opened();
    messages.extend(transfer("t1", "k1", 10, 3).into_iter().take(1));
    assert!(kinds(&[], &messages).contains(&"half_transfer"));
}

#[test]
fn a_clean_history_has_no_violation() {
    let mut messages = opened();
    messages.extend(transfer("t1", "k1", 10, 3));
    messages.push(owner_record("k1", "t1"));
    assert!(kinds(&[op("k1", ok("t1", 3))], &messages).is_empty());
    let indeterminate = Outcome::Indeterminate {
        last_error: "timeout".into(),
    };
    assert!(kinds(&[op("k1", indeterminate)], &messages).is_empty());
    // Without the record, a retry of the acknowledged operation would not be recognized.
    messages.pop();
    assert_eq!(
        kinds(&[op("k1", ok("t1", 3))], &messages),
        ["idempotency_record_mismatch"]
    );
}

#[test]
fn a_transfer_without_a_key_needs_no_record_but_may_still_not_be_applied_twice() {
    let keyless = |outcome| Operation {
        keyed: false,
        ..op("r1", outcome)
    };
    let mut messages = opened();
    messages.extend(transfer("t1", "r1", 10, 3));
    assert!(kinds(&[keyless(ok("t1", 3))], &messages).is_empty());
    messages.extend(transfer("t2", "r1", 10, 4));
    assert!(kinds(&[keyless(ok("t1", 3))], &messages).contains(&"duplicated"));
    let conflict = Outcome::Failed {
        status: 409,
        code: "conflict".into(),
    };
    assert!(kinds(&[keyless(conflict.clone())], &opened()).is_empty());
    assert_eq!(
        kinds(&[op("r1", conflict)], &opened()),
        ["unexpected_answer"]
    );
}

#[test]
fn a_message_that_is_not_json_is_undecodable() {
    let mut stored = journal(&opened());
    stored.push(ledger_nats::Stored {
        seq: stored.len() as u64 + 1,
        subject: account("a"),
        msg_id: None,
        headers: async_nats::HeaderMap::new(),
        payload: bytes::Bytes::from_static(b"{not json"),
    });
    let mut violations = Violations::default();
    audit(&[], &stored, &setup(), &mut violations);
    let kinds: Vec<_> = violations.0.keys().copied().collect();
    assert_eq!(kinds, ["undecodable_message"]);
}

#[test]
fn a_post_state_that_does_not_follow_from_the_one_before_is_caught() {
    let mut messages = opened();
    let mut legs = transfer("t1", "k1", 10, 3);
    legs[1].1["state"]["balance"] = json!(111);
    messages.extend(legs);
    messages.push(owner_record("k1", "t1"));
    let history = [op("k1", ok("t1", 3))];
    assert!(kinds(&history, &messages).contains(&"balance_does_not_follow"));
}

#[test]
fn a_balance_below_its_overdraft_limit_is_caught() {
    let mut messages = opened();
    messages.extend(transfer("t1", "k1", 150, 3));
    messages.push(owner_record("k1", "t1"));
    let history = [Operation {
        amount: 150,
        ..op("k1", ok("t1", 3))
    }];
    let found = kinds(&history, &messages);
    assert!(found.contains(&"balance_below_limit"), "{found:?}");
    assert!(!found.contains(&"balance_does_not_follow"), "{found:?}");
}

#[test]
fn an_answer_that_differs_from_the_journal_is_a_mismatch() {
    let mut messages = opened();
    messages.extend(transfer("t1", "k1", 10, 3));
    messages.push(owner_record("k1", "t1"));
    // Another transfer id than the journal's.
    let found = kinds(&[op("k1", ok("t9", 3))], &messages);
    assert!(found.contains(&"answer_mismatch"), "{found:?}");
    // The right id, other post-states.
    let mut answer = ok("t1", 3);
    if let Outcome::Ok { to_balance, .. } = &mut answer {
        *to_balance += 1;
    }
    assert_eq!(kinds(&[op("k1", answer)], &messages), ["answer_mismatch"]);
}

#[test]
fn one_transfer_id_twice_or_two_records_for_one_key_is_duplicated() {
    let mut messages = opened();
    let legs = transfer("t1", "k1", 10, 3);
    messages.extend(legs.clone());
    let mut again = transfer("t1", "k1", 10, 4);
    again[0].1["reference"] = json!("k2");
    messages.extend(again);
    messages.push(owner_record("k1", "t1"));
    let history = [op("k1", ok("t1", 3)), op("k2", ok("t1", 4))];
    assert!(kinds(&history, &messages).contains(&"duplicated"));

    let mut messages = opened();
    messages.extend(legs);
    messages.push(owner_record("k1", "t1"));
    messages.push(owner_record("k1", "t1"));
    assert_eq!(kinds(&[op("k1", ok("t1", 3))], &messages), ["duplicated"]);
}

#[test]
fn a_receipt_never_sent_is_half_a_transfer() {
    let mut messages = opened();
    messages.extend(transfer("t1", "k1", 10, 3).into_iter().skip(1));
    assert!(kinds(&[], &messages).contains(&"half_transfer"));
}

#[test]
fn an_account_opened_twice_or_by_nobody_is_unexpected() {
    let mut messages = opened();
    messages.push((
        account("a"),
        json!({"type": "account_opened", "state": state(100, 3)}),
    ));
    assert_eq!(kinds(&[], &messages), ["unexpected"]);
    let mut messages = opened();
    messages.push((
        account("z"),
        json!({"type": "account_opened", "state": state(0, 1)}),
    ));
    assert_eq!(kinds(&[], &messages), ["unexpected"]);
}

#[test]
fn an_idempotency_record_of_no_known_operation_is_unexpected() {
    let mut messages = opened();
    messages.push(owner_record("nobody-sent-this", "t1"));
    assert_eq!(kinds(&[], &messages), ["unexpected"]);
    // A keyless transfer has no record: one for its reference is unexpected too.
    let mut messages = opened();
    messages.extend(transfer("t1", "r1", 10, 3));
    messages.push(owner_record("r1", "t1"));
    let keyless = Operation {
        keyed: false,
        ..op("r1", ok("t1", 3))
    };
    assert_eq!(kinds(&[keyless], &messages), ["unexpected"]);
    // Something else than a record on a record's subject.
    let mut messages = opened();
    messages.extend(transfer("t1", "k1", 10, 3));
    let (subject, _) = owner_record("k1", "t1");
    messages.push((
        subject,
        json!({"type": "funds_deposited", "response": {"transfer_id": "t1"}}),
    ));
    assert_eq!(kinds(&[op("k1", ok("t1", 3))], &messages), ["unexpected"]);
}

#[test]
fn a_setup_request_without_its_record_is_a_record_mismatch() {
    let mut messages = opened();
    messages.retain(|(subject, _)| {
        let principal = OwnerId::parse("admin").expect("admin");
        let key = IdempotencyKey::parse("fund-b").expect("key");
        *subject != events::subjects::idempotency(&principal, &key)
    });
    assert_eq!(kinds(&[], &messages), ["idempotency_record_mismatch"]);
}

#[test]
fn other_events_subjects_deposits_or_amounts_than_the_bank_made_are_unexpected() {
    // An event kind the bank never causes.
    let mut messages = opened();
    messages.push((
        account("a"),
        json!({"type": "funds_withdrawn", "amount": 5, "state": state(100, 3)}),
    ));
    assert_eq!(kinds(&[], &messages), ["unexpected"]);
    // A subject outside accounts and records.
    let mut messages = opened();
    messages.push(("ledger.order.x".into(), json!({"type": "order_placed"})));
    assert_eq!(kinds(&[], &messages), ["unexpected"]);
    // A deposit more than the bank made.
    let mut messages = opened();
    messages.push((
        account("a"),
        json!({"type": "funds_deposited", "amount": 5, "state": state(105, 3)}),
    ));
    assert_eq!(kinds(&[], &messages), ["unexpected"]);
    // An operation journaled with another amount than sent.
    let mut messages = opened();
    messages.extend(transfer("t1", "k1", 10, 3));
    messages.push(owner_record("k1", "t1"));
    let sent = Operation {
        amount: 11,
        ..op("k1", ok("t1", 3))
    };
    assert_eq!(kinds(&[sent], &messages), ["unexpected"]);
}

#[test]
fn a_bulk_transfer_is_checked_against_its_requests_record_at_its_index() {
    // Two transfers of one bulk request under key "b1": r1 committed as t1, r2 refused.
    let in_batch = |reference: &str, index: usize, outcome| Operation {
        batch: Some(("b1".into(), index)),
        ..op(reference, outcome)
    };
    let refused = Outcome::Failed {
        status: 422,
        code: "insufficient_funds".into(),
    };
    let history = [in_batch("r1", 0, ok("t1", 3)), in_batch("r2", 1, refused)];
    let bulk_record = |transfer_id: &str| {
        record(
            OWNER,
            "b1",
            json!({"results": [
                {"index": 0, "status": 201, "transfer_id": transfer_id},
                {"index": 1, "status": 422, "code": "insufficient_funds"},
            ]}),
        )
    };
    let mut messages = opened();
    messages.extend(transfer("t1", "r1", 10, 3));
    messages.push(bulk_record("t1"));
    assert!(kinds(&history, &messages).is_empty());
    // The record answers another transfer at the item's index.
    messages.pop();
    messages.push(bulk_record("t9"));
    assert_eq!(kinds(&history, &messages), ["idempotency_record_mismatch"]);
    // The refused transfer journaled all the same.
    let mut messages = opened();
    messages.extend(transfer("t1", "r1", 10, 3));
    messages.extend(transfer("t2", "r2", 10, 4));
    messages.push(bulk_record("t1"));
    assert_eq!(kinds(&history, &messages), ["unexpected"]);
}
