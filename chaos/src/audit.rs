//! The audit after the run has quiesced, in the manner of Jepsen's queue checker: the clients'
//! histories against the whole journal.
//!
//! - **lost**: an acknowledged (2xx) transfer that is not in the journal;
//! - **duplicated**: one operation applied more than once (two transfers with its reference,
//!   a transfer id twice, two idempotency records for one key);
//! - **unexpected**: a journal entry no client sent, or one whose client was told it failed,
//!   an account opened twice or one the bank never opened, an idempotency record for no
//!   known operation;
//! - **idempotency_record_mismatch**: an acknowledged operation whose key has no record, or a
//!   record of another result (a retry would then not be recognized);
//! - per account, versions gapless from 1 and each post-state following from the one before;
//! - each transfer has both legs; the answers agree with the journal; the read model equals
//!   the journal's last states.

use crate::workload::{OWNER, Operation, Outcome};
use events::ids::{IdempotencyKey, OwnerId};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Violations by kind, with the evidence of each.
#[derive(Debug, Default)]
pub struct Violations(pub BTreeMap<&'static str, Vec<String>>);

impl Violations {
    pub fn add(&mut self, kind: &'static str, evidence: String) {
        self.0.entry(kind).or_default().push(evidence);
    }

    pub fn merge(&mut self, other: Violations) {
        for (kind, evidence) in other.0 {
            self.0.entry(kind).or_default().extend(evidence);
        }
    }

    pub fn total(&self) -> usize {
        self.0.values().map(Vec::len).sum()
    }
}

/// What the journal says happened, decoded.
#[derive(Debug, Default)]
pub struct JournalFacts {
    pub messages: usize,
    /// Last `(balance, version)` per account.
    pub accounts: BTreeMap<String, (i64, u64)>,
    /// Indeterminate operations found applied.
    pub indeterminate_applied: usize,
}

#[derive(Debug, Clone)]
struct Leg {
    seq: u64,
    account: String,
    counterparty: String,
    amount: i64,
    reference: String,
    balance: i64,
    version: u64,
}

/// How the bank was opened before any client ran (`workload::open_bank`): each account
/// opened and funded once by `admin`, with the keys `open-<id>` and `fund-<id>`.
#[derive(Debug, Clone)]
pub struct Setup {
    pub admin: String,
    pub accounts: Vec<String>,
}

impl Setup {
    /// The idempotency record key (the subject's tail) of each setup request.
    fn record_keys(&self) -> Vec<(String, String)> {
        let Ok(admin) = OwnerId::parse(&self.admin) else {
            return Vec::new();
        };
        self.accounts
            .iter()
            .flat_map(|id| [format!("open-{id}"), format!("fund-{id}")])
            .filter_map(|key| Some((record_key(&admin, &key)?, key)))
            .collect()
    }
}

/// The tail of the idempotency record subject of `key` sent by `principal`.
fn record_key(principal: &OwnerId, key: &str) -> Option<String> {
    let key = IdempotencyKey::parse(key.to_owned()).ok()?;
    events::subjects::idempotency(principal, &key)
        .strip_prefix(events::subjects::IDEMPOTENCY_PREFIX)
        .map(str::to_owned)
}

/// Audits `history` (every client operation) against `journal` (every stored message, in
/// order), the bank having been opened as `setup` says.
pub fn audit(
    history: &[Operation],
    journal: &[ledger_nats::Stored],
    setup: &Setup,
    violations: &mut Violations,
) -> JournalFacts {
    let setup_deposits = setup.accounts.len();
    let mut facts = JournalFacts {
        messages: journal.len(),
        ..JournalFacts::default()
    };
    let mut sent: HashMap<String, Vec<Leg>> = HashMap::new();
    let mut received: HashMap<String, Vec<Leg>> = HashMap::new();
    let mut idempotency: HashMap<String, Vec<Value>> = HashMap::new();
    let mut deposits = 0usize;
    for message in journal {
        let Ok(payload) = serde_json::from_slice::<Value>(&message.payload) else {
            violations.add(
                "undecodable_message",
                format!("seq {} on {}", message.seq, message.subject),
            );
            continue;
        };
        let kind = payload["type"].as_str().unwrap_or_default();
        if let Some(key) = message
            .subject
            .strip_prefix(events::subjects::IDEMPOTENCY_PREFIX)
        {
            if kind != "idempotency_recorded" {
                violations.add(
                    "unexpected",
                    format!("seq {}: {kind} on {}", message.seq, message.subject),
                );
            }
            // Whose record it is, is checked once the history is known (below).
            idempotency
                .entry(key.to_owned())
                .or_default()
                .push(payload["response"].clone());
            continue;
        }
        let Some(account) = message
            .subject
            .strip_prefix(events::subjects::ACCOUNT_PREFIX)
        else {
            violations.add(
                "unexpected",
                format!("seq {}: {kind} on {}", message.seq, message.subject),
            );
            continue;
        };
        let state = &payload["state"];
        let (balance, version) = (
            state["balance"].as_i64().unwrap_or(i64::MIN),
            state["version"].as_u64().unwrap_or(0),
        );
        let amount = payload["amount"].as_i64().unwrap_or(0);
        let delta = match kind {
            "account_opened" => {
                if facts.accounts.contains_key(account) {
                    violations.add(
                        "unexpected",
                        format!("seq {}: {account} opened again", message.seq),
                    );
                }
                if !setup.accounts.iter().any(|a| a == account) {
                    violations.add(
                        "unexpected",
                        format!(
                            "seq {}: {account} opened, the bank never opened it",
                            message.seq
                        ),
                    );
                }
                0
            }
            "funds_deposited" => {
                deposits += 1;
                amount
            }
            "transfer_sent" => -amount,
            "transfer_received" => amount,
            other => {
                violations.add(
                    "unexpected",
                    format!("seq {}: {other} on {}", message.seq, message.subject),
                );
                0
            }
        };
        // Versions gapless from 1; each post-state follows from the previous one.
        let previous = facts.accounts.get(account).copied();
        let (expected_balance, expected_version) = match previous {
            None => (0, 1),
            Some((b, v)) => (b.saturating_add(delta), v + 1),
        };
        if version != expected_version {
            violations.add(
                "version_gap",
                format!(
                    "seq {}: {account} {kind} at version {version}, expected {expected_version}",
                    message.seq
                ),
            );
        }
        if balance != expected_balance {
            violations.add(
                "balance_does_not_follow",
                format!(
                    "seq {}: {account} {kind} balance {balance}, expected {expected_balance}",
                    message.seq
                ),
            );
        }
        let limit = state["overdraft_limit"].as_i64().unwrap_or(0);
        if balance < -limit {
            violations.add(
                "balance_below_limit",
                format!("seq {}: {account} at {balance}", message.seq),
            );
        }
        facts
            .accounts
            .insert(account.to_owned(), (balance, version));
        if let "transfer_sent" | "transfer_received" = kind {
            let leg = Leg {
                seq: message.seq,
                account: account.to_owned(),
                counterparty: payload["counterparty_account_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                amount,
                reference: payload["reference"].as_str().unwrap_or_default().to_owned(),
                balance,
                version,
            };
            let transfer_id = payload["transfer_id"].as_str().unwrap_or_default();
            let legs = if kind == "transfer_sent" {
                &mut sent
            } else {
                &mut received
            };
            legs.entry(transfer_id.to_owned()).or_default().push(leg);
        }
    }
    if deposits != setup_deposits {
        violations.add(
            "unexpected",
            format!("{deposits} deposits in the journal, the bank made {setup_deposits}"),
        );
    }

    // Both legs of every transfer, once each, agreeing with each other.
    for (transfer_id, legs) in &sent {
        let receipts = received.get(transfer_id).map_or(&[][..], Vec::as_slice);
        if legs.len() > 1 || receipts.len() > 1 {
            violations.add(
                "duplicated",
                format!(
                    "transfer {transfer_id}: {} sent and {} received legs",
                    legs.len(),
                    receipts.len()
                ),
            );
        }
        match (legs.first(), receipts.first()) {
            (Some(out), Some(inn))
                if out.amount == inn.amount
                    && out.counterparty == inn.account
                    && inn.counterparty == out.account => {}
            (out, inn) => violations.add(
                "half_transfer",
                format!("transfer {transfer_id}: sent {out:?}, received {inn:?}"),
            ),
        }
    }
    for transfer_id in received.keys().filter(|id| !sent.contains_key(*id)) {
        violations.add(
            "half_transfer",
            format!("transfer {transfer_id} received but never sent"),
        );
    }

    // The clients' operations against the journal, matched by reference (the key).
    let mut by_reference: HashMap<&str, Vec<(&str, &Leg)>> = HashMap::new();
    for (transfer_id, legs) in &sent {
        for leg in legs {
            by_reference
                .entry(leg.reference.as_str())
                .or_default()
                .push((transfer_id.as_str(), leg));
        }
    }
    let principal = OwnerId::parse(OWNER).ok();
    let mut known: HashSet<&str> = HashSet::new();
    // Every idempotency record must belong to a request that was sent with its key.
    let mut records_known: HashSet<String> = HashSet::new();
    for (record, key) in setup.record_keys() {
        let records = idempotency.get(&record).map_or(0, Vec::len);
        if records != 1 {
            violations.add(
                "idempotency_record_mismatch",
                format!("setup request {key}: {records} idempotency records, expected 1"),
            );
        }
        records_known.insert(record);
    }
    for op in history {
        if op.keyed
            && let Some(record) = principal.as_ref().and_then(|p| record_key(p, &op.key))
        {
            records_known.insert(record);
        }
        known.insert(op.key.as_str());
        let applied = by_reference
            .get(op.key.as_str())
            .map_or(&[][..], Vec::as_slice);
        if applied.len() > 1 {
            violations.add(
                "duplicated",
                format!(
                    "operation {} applied {} times: {applied:?}",
                    op.key,
                    applied.len()
                ),
            );
        }
        let records = principal
            .as_ref()
            .and_then(|p| record_key(p, &op.key))
            .and_then(|record| idempotency.get(&record))
            .map_or(&[][..], Vec::as_slice);
        if records.len() > 1 {
            violations.add(
                "duplicated",
                format!(
                    "operation {}: {} idempotency records",
                    op.key,
                    records.len()
                ),
            );
        }
        for (_, leg) in applied {
            if (leg.counterparty.as_str(), leg.account.as_str(), leg.amount)
                != (op.to.as_str(), op.from.as_str(), op.amount)
            {
                violations.add(
                    "unexpected",
                    format!("operation {} journaled as {leg:?}, sent as {op:?}", op.key),
                );
            }
        }
        match &op.outcome {
            Outcome::Ok {
                transfer_id,
                from_balance,
                from_version,
                to_balance,
                to_version,
                ..
            } => {
                let Some((journaled_id, leg)) = applied.first() else {
                    violations.add(
                        "lost",
                        format!(
                            "operation {} acknowledged as transfer {transfer_id}",
                            op.key
                        ),
                    );
                    continue;
                };
                if journaled_id != transfer_id {
                    violations.add(
                        "answer_mismatch",
                        format!(
                            "operation {} acknowledged as {transfer_id}, journaled as {journaled_id}",
                            op.key
                        ),
                    );
                }
                let receipt = received.get(*journaled_id).and_then(|r| r.first());
                let journaled = (
                    leg.balance,
                    leg.version,
                    receipt.map(|r| r.balance),
                    receipt.map(|r| r.version),
                );
                if journaled
                    != (
                        *from_balance,
                        *from_version,
                        Some(*to_balance),
                        Some(*to_version),
                    )
                {
                    violations.add(
                        "answer_mismatch",
                        format!(
                            "operation {}: answered {from_balance}@{from_version} → \
                             {to_balance}@{to_version}, journaled {journaled:?} (seq {})",
                            op.key, leg.seq
                        ),
                    );
                }
                let recorded = records
                    .first()
                    .and_then(|r| r["transfer_id"].as_str())
                    .map(str::to_owned);
                // A transfer sent without a key has no record to check.
                if op.keyed && recorded.as_ref() != Some(transfer_id) {
                    violations.add(
                        "idempotency_record_mismatch",
                        format!(
                            "operation {}: idempotency record holds {recorded:?}, answer {transfer_id}",
                            op.key
                        ),
                    );
                }
            }
            Outcome::Failed { status, code } => {
                if !applied.is_empty() {
                    violations.add(
                        "unexpected",
                        format!(
                            "operation {} answered {status} {code} yet journaled: {applied:?}",
                            op.key
                        ),
                    );
                }
                // Without a key, a conflict is a definite refusal the client does not retry.
                let refusable = code == "insufficient_funds" || (code == "conflict" && !op.keyed);
                if !refusable {
                    violations.add(
                        "unexpected_answer",
                        format!("operation {} answered {status} {code}", op.key),
                    );
                }
            }
            Outcome::Indeterminate { .. } => {
                if !applied.is_empty() {
                    facts.indeterminate_applied += 1;
                }
            }
        }
    }
    for (record, responses) in &idempotency {
        if !records_known.contains(record) {
            violations.add(
                "unexpected",
                format!("idempotency record {record} for no known operation: {responses:?}"),
            );
        }
    }
    for (reference, applied) in &by_reference {
        if !known.contains(reference) {
            violations.add(
                "unexpected",
                format!("transfer(s) {applied:?} with reference {reference:?}: no client sent it"),
            );
        }
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}
