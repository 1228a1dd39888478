//! The journal folded into what it says happened: each account's messages checked as they come
//! (versions gapless from 1, each post-state following from the one before, never below the
//! overdraft limit, only the kinds of message the bank sends), transfer legs gathered by
//! transfer id (a reversal's legs by the reversal's id, which is its job's), reversals by the
//! transfer they move back, and idempotency records by key.

use super::{JournalFacts, Leg, Setup, Violations};
use serde_json::Value;
use std::collections::HashMap;

/// What the journal holds, decoded and gathered for the checks that follow.
#[derive(Debug, Default)]
pub(super) struct Folded {
    pub facts: JournalFacts,
    /// Transfer id (or reversal id) → its `transfer_sent` (`reversal_sent`) legs (one,
    /// unless duplicated).
    pub sent: HashMap<String, Vec<Leg>>,
    /// Transfer id (or reversal id) → its `transfer_received` (`reversal_received`) legs.
    pub received: HashMap<String, Vec<Leg>>,
    /// Transfer id → the ids of its reversals, in journal order (from their sent legs).
    pub reversals: HashMap<String, Vec<String>>,
    /// Transfer id → `(amount, reversed_total)` of each `transfer_reversed` on its subject.
    pub reversed_totals: HashMap<String, Vec<(i64, i64)>>,
    /// Idempotency record key (the subject's tail) → the answers its records hold.
    pub idempotency: HashMap<String, Vec<Value>>,
}

/// Folds `journal` in order, adding a violation for every message that does not fit.
pub(super) fn fold(
    journal: &[ledger_nats::Stored],
    setup: &Setup,
    violations: &mut Violations,
) -> Folded {
    let mut folded = Folded {
        facts: JournalFacts {
            messages: journal.len(),
            ..JournalFacts::default()
        },
        ..Folded::default()
    };
    let mut deposits = 0usize;
    for message in journal {
        if message
            .header(ledger_nats::headers::EXPECTED_LAST_SEQUENCE)
            .is_some()
        {
            folded.facts.stream_checked_batches += 1;
        }
        let Ok(payload) = serde_json::from_slice::<Value>(&message.payload) else {
            violations.add(
                "undecodable_message",
                format!("seq {} on {}", message.seq, message.subject),
            );
            continue;
        };
        let kind = payload["type"].as_str().unwrap_or_default();
        if let Some(key) = on_subjects(
            message,
            events::subjects::IDEMPOTENCY_PREFIX,
            (kind, "idempotency_recorded"),
            violations,
        ) {
            // Whose record it is, is checked once the history is known.
            folded
                .idempotency
                .entry(key.to_owned())
                .or_default()
                .push(payload["response"].clone());
            continue;
        }
        if let Some(transfer_id) = on_subjects(
            message,
            events::subjects::TRANSFER_PREFIX,
            (kind, "transfer_reversed"),
            violations,
        ) {
            let state = &payload["state"];
            let (amount, total) = (
                state["amount"].as_i64().unwrap_or(0),
                state["reversed_total"].as_i64().unwrap_or(i64::MAX),
            );
            if total > amount {
                violations.add(
                    "over_reversed",
                    format!(
                        "seq {}: transfer {transfer_id} reversed {total} of {amount}",
                        message.seq
                    ),
                );
            }
            folded
                .reversed_totals
                .entry(transfer_id.to_owned())
                .or_default()
                .push((payload["amount"].as_i64().unwrap_or(0), total));
            continue;
        }
        let Some(account) = message
            .subject
            .strip_prefix(events::subjects::ACCOUNT_PREFIX)
        else {
            misplaced(violations, message, kind);
            continue;
        };
        if kind == "funds_deposited" {
            deposits += 1;
        }
        fold_account_message(
            message.seq,
            account,
            &payload,
            setup,
            &mut folded,
            violations,
        );
    }
    let setup_deposits = setup.accounts.len();
    if deposits != setup_deposits {
        violations.add(
            "unexpected",
            format!("{deposits} deposits in the journal, the bank made {setup_deposits}"),
        );
    }
    folded
}

/// What follows `prefix` in the message's subject, when it is one of those subjects; a
/// message there of another type than the one those subjects hold (`(kind, held)`) is
/// reported.
fn on_subjects<'m>(
    message: &'m ledger_nats::Stored,
    prefix: &str,
    (kind, held): (&str, &str),
    violations: &mut Violations,
) -> Option<&'m str> {
    let rest = message.subject.strip_prefix(prefix)?;
    if kind != held {
        misplaced(violations, message, kind);
    }
    Some(rest)
}

/// A message of a type its subject does not hold.
fn misplaced(violations: &mut Violations, message: &ledger_nats::Stored, kind: &str) {
    violations.add(
        "unexpected",
        format!("seq {}: {kind} on {}", message.seq, message.subject),
    );
}

/// One message on an account's subject: checked against the account's state so far, then
/// folded in (and, for a transfer leg, gathered under its transfer id).
fn fold_account_message(
    seq: u64,
    account: &str,
    payload: &Value,
    setup: &Setup,
    folded: &mut Folded,
    violations: &mut Violations,
) {
    let kind = payload["type"].as_str().unwrap_or_default();
    let state = &payload["state"];
    let (balance, version) = (
        state["balance"].as_i64().unwrap_or(i64::MIN),
        state["version"].as_u64().unwrap_or(0),
    );
    let amount = payload["amount"].as_i64().unwrap_or(0);
    let delta = match kind {
        "account_opened" => {
            if folded.facts.accounts.contains_key(account) {
                violations.add("unexpected", format!("seq {seq}: {account} opened again"));
            }
            if !setup.accounts.iter().any(|a| a == account) {
                violations.add(
                    "unexpected",
                    format!("seq {seq}: {account} opened, the bank never opened it"),
                );
            }
            0
        }
        "funds_deposited" | "transfer_received" | "reversal_received" => amount,
        "transfer_sent" | "reversal_sent" => -amount,
        other => {
            violations.add(
                "unexpected",
                format!(
                    "seq {seq}: {other} on {}{account}",
                    events::subjects::ACCOUNT_PREFIX
                ),
            );
            0
        }
    };
    // Versions gapless from 1; each post-state follows from the previous one.
    let previous = folded.facts.accounts.get(account).copied();
    let (expected_balance, expected_version) = match previous {
        None => (0, 1),
        Some((b, v)) => (b.saturating_add(delta), v + 1),
    };
    if version != expected_version {
        violations.add(
            "version_gap",
            format!(
                "seq {seq}: {account} {kind} at version {version}, expected {expected_version}"
            ),
        );
    }
    if balance != expected_balance {
        violations.add(
            "balance_does_not_follow",
            format!("seq {seq}: {account} {kind} balance {balance}, expected {expected_balance}"),
        );
    }
    let limit = state["overdraft_limit"].as_i64().unwrap_or(0);
    if balance < -limit {
        violations.add(
            "balance_below_limit",
            format!("seq {seq}: {account} at {balance}"),
        );
    }
    folded
        .facts
        .accounts
        .insert(account.to_owned(), (balance, version));
    let legs = match kind {
        "transfer_sent" | "reversal_sent" => &mut folded.sent,
        "transfer_received" | "reversal_received" => &mut folded.received,
        _ => return,
    };
    let leg = Leg {
        seq,
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
    if kind.starts_with("reversal_") {
        // A reversal is one job: its id names both of its legs.
        let reversal_id = payload["job_id"].as_str().unwrap_or_default();
        legs.entry(reversal_id.to_owned()).or_default().push(leg);
        if kind == "reversal_sent" {
            folded
                .reversals
                .entry(transfer_id.to_owned())
                .or_default()
                .push(reversal_id.to_owned());
        }
        return;
    }
    legs.entry(transfer_id.to_owned()).or_default().push(leg);
}
