//! Verify's own derivation of history rows, kept apart from `apply::entry` (which writes
//! them): its own table of entry types and signs, and `balance_after` as the running sum of
//! the signed amounts, checked against each event's post-state. A wrong sign, type or balance
//! in the projector — or a wrong balance from `evolve` on the command side — then shows as
//! drift instead of being reproduced by the check.

use events::{Envelope, Event};
use read_model::rows::{Entry, microseconds};

/// How an account event moves the balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Movement {
    /// Not at all.
    None,
    /// Up by the event's amount.
    Credit,
    /// Down by the event's amount.
    Debit,
    /// To a new balance: by the difference from the balance before.
    Set,
}

/// Every account event the journal knows: its history word (DESIGN §5: deposit, withdrawal,
/// transfer, adjustment, payment, hold; `opening` for the first row) and its movement.
const ACCOUNT_EVENTS: [(&str, &str, Movement); 13] = [
    ("account_opened", "opening", Movement::None),
    ("funds_deposited", "deposit", Movement::Credit),
    ("funds_withdrawn", "withdrawal", Movement::Debit),
    ("transfer_sent", "transfer", Movement::Debit),
    ("transfer_received", "transfer", Movement::Credit),
    ("order_charged", "payment", Movement::Debit),
    ("hold_placed", "hold", Movement::None),
    ("hold_captured", "hold", Movement::Debit),
    ("hold_voided", "hold", Movement::None),
    ("balance_set", "adjustment", Movement::Set),
    ("reversal_sent", "reversal", Movement::Debit),
    ("reversal_received", "reversal", Movement::Credit),
    ("refund_credited", "refund", Movement::Credit),
];

/// An account event's history row as verify expects it, and any drift of the event itself.
#[derive(Debug)]
pub struct Derived {
    pub entry: Entry,
    /// The event's post-state balance is not the running sum of the account's movements.
    pub drift: Option<String>,
}

/// The row `envelope` (journal sequence `seq`) should have in the account's history, given
/// the running sum of the account's movements before it (`None`: the account's first
/// event). `None` for an event that is not an account event (or a hold's own side).
pub fn derive(seq: u64, envelope: &Envelope, running_before: Option<i64>) -> Option<Derived> {
    let event = &envelope.event;
    let event_type = event.event_type();
    let &(_, entry_type, movement) = ACCOUNT_EVENTS.iter().find(|(t, ..)| *t == event_type)?;
    let state = event.account_state()?;
    let before = running_before.unwrap_or(0);
    let mut drift = None;
    let (magnitude, account_id, counterparty, transfer_id, reference, metadata) = match event {
        Event::AccountOpened(o) => (0, &o.account_id, None, None, None, None),
        Event::FundsDeposited(m) | Event::FundsWithdrawn(m) => (
            m.amount.minor_units(),
            &m.account_id,
            None,
            None,
            m.reference.as_ref(),
            m.metadata.as_ref(),
        ),
        Event::TransferSent(t)
        | Event::TransferReceived(t)
        | Event::ReversalSent(t)
        | Event::ReversalReceived(t) => (
            t.amount.minor_units(),
            &t.account_id,
            Some(t.counterparty_account_id.clone()),
            Some(t.transfer_id),
            t.reference.as_ref(),
            t.metadata.as_ref(),
        ),
        Event::OrderCharged(c) | Event::RefundCredited(c) => (
            c.amount.minor_units(),
            &c.account_id,
            None,
            None,
            None,
            None,
        ),
        Event::HoldPlaced(h) | Event::HoldCaptured(h) | Event::HoldVoided(h) => (
            h.captured.map_or(0, |c| c.minor_units()),
            &h.account_id,
            None,
            None,
            None,
            None,
        ),
        Event::BalanceSet(b) => {
            if b.previous != before {
                drift = Some(format!(
                    "message {seq}: balance_set on {} says the balance was {}, the running \
                     sum is {before}",
                    b.account_id, b.previous
                ));
            }
            (b.balance, &b.account_id, None, None, None, None)
        }
        _ => return None,
    };
    let amount = match movement {
        Movement::None => 0,
        Movement::Credit => magnitude,
        Movement::Debit => magnitude.checked_neg()?,
        Movement::Set => magnitude.checked_sub(before)?,
    };
    let running = before.checked_add(amount)?;
    if state.balance != running && drift.is_none() {
        drift = Some(format!(
            "message {seq}: {event_type} on {account_id} has post-state balance {}, the \
             running sum of its movements is {running}",
            state.balance
        ));
    }
    let entry = Entry {
        account_id: account_id.clone(),
        version: state.version,
        seq,
        event_id: envelope.event_id,
        event_type,
        entry_type,
        amount,
        balance_after: running,
        held_after: state.held,
        counterparty_account_id: counterparty,
        transfer_id,
        order_id: match event {
            Event::OrderCharged(c) | Event::RefundCredited(c) => Some(c.order_id),
            _ => None,
        },
        hold_id: match event {
            Event::HoldPlaced(h) | Event::HoldCaptured(h) | Event::HoldVoided(h) => Some(h.hold_id),
            _ => None,
        },
        job_id: match event {
            Event::BalanceSet(b) => b.item_job_id,
            _ => envelope.job_id,
        },
        reference: reference.map(|r| r.as_str().to_owned()),
        metadata: metadata.cloned().map(serde_json::Value::from),
        occurred_at: microseconds(envelope.occurred_at),
    };
    Some(Derived { entry, drift })
}

/// The fields in which a stored row differs from the expected one (empty: the same).
pub fn differences(stored: &Entry, expected: &Entry) -> Vec<&'static str> {
    let fields = [
        ("seq", stored.seq == expected.seq),
        ("event_id", stored.event_id == expected.event_id),
        ("event_type", stored.event_type == expected.event_type),
        ("type", stored.entry_type == expected.entry_type),
        ("amount", stored.amount == expected.amount),
        (
            "balance_after",
            stored.balance_after == expected.balance_after,
        ),
        ("held_after", stored.held_after == expected.held_after),
        (
            "counterparty_account_id",
            stored.counterparty_account_id == expected.counterparty_account_id,
        ),
        ("transfer_id", stored.transfer_id == expected.transfer_id),
        ("order_id", stored.order_id == expected.order_id),
        ("hold_id", stored.hold_id == expected.hold_id),
        ("job_id", stored.job_id == expected.job_id),
        ("reference", stored.reference == expected.reference),
        ("metadata", stored.metadata == expected.metadata),
        ("occurred_at", stored.occurred_at == expected.occurred_at),
    ];
    fields
        .into_iter()
        .filter(|(_, same)| !same)
        .map(|(name, _)| name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply;
    use serde_json::json;

    fn state(version: u64, balance: i64) -> serde_json::Value {
        json!({"version": version, "balance": balance, "held": 0, "currency": "USD",
               "status": "open", "owner_id": "alice", "overdraft_limit": 0})
    }

    fn envelope(event: serde_json::Value) -> Envelope {
        let mut value = json!({"event_id": uuid::Uuid::now_v7(), "schema": 1,
                               "occurred_at": "2026-11-29T12:00:00.123456Z",
                               "job_id": uuid::Uuid::now_v7()});
        for (k, v) in event.as_object().expect("object") {
            value[k] = v.clone();
        }
        Envelope::from_json(value.to_string().as_bytes()).expect("an envelope")
    }

    /// alice: opened, +500, sends 120, receives 30, set to 1000.
    fn alice() -> Vec<Envelope> {
        let t = uuid::Uuid::now_v7();
        vec![
            envelope(
                json!({"type": "account_opened", "account_id": "alice", "state": state(1, 0)}),
            ),
            envelope(
                json!({"type": "funds_deposited", "account_id": "alice", "amount": 500,
                            "state": state(2, 500)}),
            ),
            envelope(
                json!({"type": "transfer_sent", "account_id": "alice", "transfer_id": t,
                            "amount": 120, "counterparty_account_id": "bob",
                            "state": state(3, 380)}),
            ),
            envelope(json!({"type": "transfer_received", "account_id": "alice",
                            "transfer_id": t, "amount": 30,
                            "counterparty_account_id": "bob", "state": state(4, 410)})),
            envelope(
                json!({"type": "balance_set", "account_id": "alice", "balance": 1000,
                            "previous": 410, "batch_id": uuid::Uuid::now_v7(),
                            "item_job_id": uuid::Uuid::now_v7(), "state": state(5, 1000)}),
            ),
        ]
    }

    fn derive_all(envelopes: &[Envelope]) -> Vec<Derived> {
        let mut running = None;
        envelopes
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let derived = derive(i as u64 + 1, e, running).expect("an account event");
                running = Some(derived.entry.balance_after);
                derived
            })
            .collect()
    }

    #[test]
    fn the_derivation_agrees_with_the_projector_on_a_faithful_journal() {
        let envelopes = alice();
        for (i, derived) in derive_all(&envelopes).iter().enumerate() {
            assert!(derived.drift.is_none(), "{:?}", derived.drift);
            let written = apply::entry(i as u64 + 1, &envelopes[i]).expect("a row");
            assert!(
                differences(&written, &derived.entry).is_empty(),
                "{written:?} vs {:?}",
                derived.entry
            );
        }
        let amounts: Vec<i64> = derive_all(&envelopes)
            .iter()
            .map(|d| d.entry.amount)
            .collect();
        assert_eq!(amounts, [0, 500, -120, 30, 590]);
    }

    /// What a bug in `apply::entry` would write — a sign flipped, a type swapped, a balance
    /// off by one — is told apart from the derivation, whichever field it hits.
    #[test]
    fn a_wrong_sign_type_or_balance_in_a_written_row_is_a_difference() {
        let envelopes = alice();
        let derived = derive_all(&envelopes);
        let written = apply::entry(3, &envelopes[2]).expect("a row");
        let flipped = Entry {
            amount: -written.amount,
            ..written.clone()
        };
        assert_eq!(differences(&flipped, &derived[2].entry), ["amount"]);
        let retyped = Entry {
            entry_type: "withdrawal",
            ..written.clone()
        };
        assert_eq!(differences(&retyped, &derived[2].entry), ["type"]);
        let off = Entry {
            balance_after: written.balance_after + 1,
            ..written
        };
        assert_eq!(differences(&off, &derived[2].entry), ["balance_after"]);
    }

    /// A post-state that `evolve` got wrong (here: a transfer received that took money) is
    /// drift even though the row would faithfully copy it.
    #[test]
    fn a_post_state_that_is_not_the_running_sum_is_drift() {
        let mut envelopes = alice();
        envelopes[3] = envelope(json!({"type": "transfer_received", "account_id": "alice",
            "transfer_id": uuid::Uuid::now_v7(), "amount": 30,
            "counterparty_account_id": "bob", "state": state(4, 350)}));
        let derived = derive_all(&envelopes);
        let drift = derived[3].drift.as_deref().expect("drift");
        assert!(
            drift.contains("running sum of its movements is 410"),
            "{drift}"
        );
        // And the row the projector writes from that post-state differs from the expected.
        let written = apply::entry(4, &envelopes[3]).expect("a row");
        assert_eq!(differences(&written, &derived[3].entry), ["balance_after"]);
    }

    #[test]
    fn every_history_word_comes_from_the_table() {
        let words: std::collections::BTreeSet<&str> =
            ACCOUNT_EVENTS.iter().map(|(_, word, _)| *word).collect();
        let design: std::collections::BTreeSet<&str> =
            events::event::HISTORY_TYPES.into_iter().collect();
        assert_eq!(words, design);
    }
}
