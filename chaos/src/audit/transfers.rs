//! Both legs of every transfer and reversal, once each, agreeing with each other; every
//! reversal moving money of a known transfer back the other way, never past its amount.

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

/// Each transfer's reversals: from its receiver back to its sender, together at most its
/// amount, each with its `transfer_reversed` on the transfer's subject saying the same.
pub(super) fn check_reversals(folded: &Folded, violations: &mut Violations) {
    for (transfer_id, reversal_ids) in &folded.reversals {
        let Some(original) = folded.sent.get(transfer_id).and_then(|legs| legs.first()) else {
            violations.add(
                "unexpected",
                format!("reversals {reversal_ids:?} of transfer {transfer_id}, never sent"),
            );
            continue;
        };
        let mut reversed = 0_i64;
        for reversal_id in reversal_ids {
            let Some(leg) = folded.sent.get(reversal_id).and_then(|legs| legs.first()) else {
                continue;
            };
            if (leg.account.as_str(), leg.counterparty.as_str())
                != (original.counterparty.as_str(), original.account.as_str())
            {
                violations.add(
                    "unexpected",
                    format!("reversal {reversal_id} of {transfer_id} runs {leg:?}, the transfer {original:?}"),
                );
            }
            reversed = reversed.saturating_add(leg.amount);
        }
        if reversed > original.amount {
            violations.add(
                "over_reversed",
                format!(
                    "transfer {transfer_id} of {} reversed by {reversed}",
                    original.amount
                ),
            );
        }
        let totals = folded
            .reversed_totals
            .get(transfer_id)
            .map_or(&[][..], Vec::as_slice);
        let moved: i64 = totals.iter().map(|(amount, _)| amount).sum();
        if totals.len() != reversal_ids.len()
            || moved != reversed
            || totals.last().map(|(_, total)| *total) != Some(reversed)
        {
            violations.add(
                "reversal_total_mismatch",
                format!("transfer {transfer_id}: legs move {reversed} in {} reversals, its subject says {totals:?}", reversal_ids.len()),
            );
        }
    }
    for transfer_id in folded.reversed_totals.keys() {
        if !folded.reversals.contains_key(transfer_id) {
            violations.add(
                "half_transfer",
                format!("transfer {transfer_id} marked reversed without a reversal's legs"),
            );
        }
    }
}
