//! Both legs of every transfer, once each, agreeing with each other.

use super::Violations;
use super::journal::Folded;

pub(super) fn check(folded: &Folded, violations: &mut Violations) {
    let (sent, received) = (&folded.sent, &folded.received);
    for (transfer_id, legs) in sent {
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
}
