//! Every client operation held against the folded journal, matched by its reference (the
//! operation's key): applied at most once, acknowledged ones present with the answer the
//! client got, failed ones absent, and every idempotency record and journaled transfer
//! belonging to an operation someone sent. A transfer sent in a bulk request is checked
//! against the request's record, at its index.

use super::journal::Folded;
use super::{Leg, Setup, Violations, record_key};
use crate::workload::{OWNER, Operation, Outcome};
use events::ids::OwnerId;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

pub(super) fn check(
    history: &[Operation],
    setup: &Setup,
    folded: &mut Folded,
    violations: &mut Violations,
) {
    let mut by_reference: HashMap<&str, Vec<(&str, &Leg)>> = HashMap::new();
    for (transfer_id, legs) in &folded.sent {
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
        let records = folded.idempotency.get(&record).map_or(0, Vec::len);
        if records != 1 {
            violations.add(
                "idempotency_record_mismatch",
                format!("setup request {key}: {records} idempotency records, expected 1"),
            );
        }
        records_known.insert(record);
    }
    let mut indeterminate_applied = 0;
    for op in history {
        // A transfer sent in a bulk request is answered by the request's record.
        let record_of = op.batch.as_ref().map_or(&op.key, |(key, _)| key);
        let record = principal.as_ref().and_then(|p| record_key(p, record_of));
        if op.keyed
            && let Some(record) = &record
        {
            records_known.insert(record.clone());
        }
        known.insert(op.key.as_str());
        let applied = by_reference
            .get(op.key.as_str())
            .map_or(&[][..], Vec::as_slice);
        let records = record
            .and_then(|record| folded.idempotency.get(&record))
            .map_or(&[][..], Vec::as_slice);
        if check_operation(op, applied, records, folded, violations) {
            indeterminate_applied += 1;
        }
    }
    folded.facts.indeterminate_applied += indeterminate_applied;
    for (record, responses) in &folded.idempotency {
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
}

/// One operation against what the journal holds for it: `applied`, the transfers journaled
/// with its reference, and `records`, the answers its idempotency records hold. True when the
/// client could not tell the outcome and the journal shows the operation applied.
fn check_operation(
    op: &Operation,
    applied: &[(&str, &Leg)],
    records: &[Value],
    folded: &Folded,
    violations: &mut Violations,
) -> bool {
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
                return false;
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
            let receipt = folded.received.get(*journaled_id).and_then(|r| r.first());
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
                .map(|r| match &op.batch {
                    Some((_, index)) => &r["results"][index],
                    None => r,
                })
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
            false
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
            false
        }
        Outcome::Indeterminate { .. } => !applied.is_empty(),
    }
}
