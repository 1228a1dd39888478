//! Reversals: money of a transfer moved back from its receiver to its sender, in one or
//! several parts that together never exceed the transfer (`POST /v1/transfers/{id}/reversals`).
//!
//! A reversal writes three messages in one atomic batch: `reversal_sent` on the transfer's
//! receiver, `reversal_received` on its sender and `transfer_reversed` on the transfer's own
//! subject, whose post-state's `reversed_total` guards the sum. The transfer's subject is
//! written first by its first reversal; until then its facts come with the command, as the
//! handler found them in the journal (ADR 0018).

use super::account::{check_funds, follow};
use super::{Actor, Aggregates, Decision, DomainError, Outcome, Reversal};
use events::{Amount, Event, Evolve, Reference, TransferLeg, TransferReversal, TransferState};
use uuid::Uuid;

/// `POST /v1/transfers/{transfer_id}/reversals`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReverseTransfer {
    pub transfer_id: Uuid,
    /// The transfer's facts as found in the journal (its accounts are the aggregates the
    /// command touches, so they must be known before loading). Its own subject's state, once
    /// it has one, is what the decision reads; these facts stand in for a transfer never
    /// reversed.
    pub transfer: TransferState,
    /// `None`: all that is left.
    pub amount: Option<Amount>,
    pub reference: Option<Reference>,
}

/// Moves `amount` (default: what is left) of the transfer back from its receiver to its
/// sender. Only an admin or the receiver's owner may: anyone else — the sender included — is
/// told the transfer does not exist.
pub fn reverse(
    actor: &Actor,
    c: &ReverseTransfer,
    states: &impl Aggregates,
) -> Result<Decision, DomainError> {
    let not_found = || DomainError::TransferNotFound(c.transfer_id);
    let transfer = states.transfer(&c.transfer_id).unwrap_or(&c.transfer);
    let (from_id, to_id) = (&transfer.from_account_id, &transfer.to_account_id);
    let receiver = states
        .account(to_id)
        .filter(|a| actor.may_act_on(a))
        .ok_or_else(not_found)?;
    let sender = states.account(from_id).ok_or_else(not_found)?;
    let remaining = transfer.remaining();
    let amount = match c.amount {
        Some(amount) if amount.minor_units() <= remaining => amount,
        None if remaining > 0 => Amount::new(remaining).map_err(|_| not_found())?,
        requested => {
            return Err(DomainError::ReversalExceedsTransfer {
                transfer_id: c.transfer_id,
                remaining,
                requested: requested.map_or(remaining, Amount::minor_units),
            });
        }
    };
    check_funds(to_id, receiver, amount)?;
    let leg = |account_id: &events::AccountId,
               counterparty: &events::AccountId,
               state: &events::AccountState| TransferLeg {
        account_id: account_id.clone(),
        transfer_id: c.transfer_id,
        amount,
        counterparty_account_id: counterparty.clone(),
        reference: c.reference.clone(),
        metadata: None,
        state: state.clone(),
    };
    let sent = Event::ReversalSent(leg(to_id, from_id, receiver));
    let received = Event::ReversalReceived(leg(from_id, to_id, sender));
    let receiver_after = follow(to_id, receiver, sent.clone())?;
    let sender_after = follow(from_id, sender, received.clone())?;
    let reversed = Event::TransferReversed(TransferReversal {
        transfer_id: c.transfer_id,
        amount,
        reference: c.reference.clone(),
        state: transfer.clone(),
    });
    let previous = (transfer.version > 0).then_some(transfer);
    let transfer_after = TransferState::evolve(previous, &reversed).map_err(|_| {
        DomainError::ReversalExceedsTransfer {
            transfer_id: c.transfer_id,
            remaining,
            requested: amount.minor_units(),
        }
    })?;
    Ok(Decision {
        events: vec![
            sent.with_account_state(receiver_after.clone()),
            received.with_account_state(sender_after.clone()),
            Event::TransferReversed(TransferReversal {
                transfer_id: c.transfer_id,
                amount,
                reference: c.reference.clone(),
                state: transfer_after.clone(),
            }),
        ],
        outcome: Outcome::Reversed(Box::new(Reversal {
            transfer_id: c.transfer_id,
            amount,
            transfer: transfer_after,
            from: (to_id.clone(), receiver_after),
            to: (from_id.clone(), sender_after),
        })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AggregateKey;
    use crate::domain::fixtures::open_account;
    use events::{AccountId, AccountState, Currency, OrderState, OwnerId};
    use std::collections::HashMap;

    #[derive(Default)]
    struct Given {
        accounts: HashMap<AccountId, AccountState>,
        transfers: HashMap<Uuid, TransferState>,
    }

    impl Aggregates for Given {
        fn account(&self, id: &AccountId) -> Option<&AccountState> {
            self.accounts.get(id)
        }
        fn order(&self, _: &Uuid) -> Option<&OrderState> {
            None
        }
        fn hold(&self, _: &Uuid) -> Option<&events::HoldState> {
            None
        }
        fn transfer(&self, id: &Uuid) -> Option<&TransferState> {
            self.transfers.get(id)
        }
        fn recorded(&self, _: &AggregateKey) -> bool {
            false
        }
    }

    fn actor(principal: &str) -> Actor {
        Actor {
            principal: OwnerId::parse(principal).expect("valid"),
            admin: false,
        }
    }

    fn admin() -> Actor {
        Actor {
            admin: true,
            ..actor("root")
        }
    }

    fn open_state(owner: &str, balance: i64) -> AccountState {
        AccountState {
            version: 2,
            ..open_account(owner, balance)
        }
    }

    fn id(raw: &str) -> AccountId {
        AccountId::parse(raw).expect("valid")
    }

    fn amount(n: i64) -> Amount {
        Amount::new(n).expect("valid")
    }

    /// alice paid the shop 100; the shop holds 150, alice 0.
    fn given() -> (Given, ReverseTransfer) {
        let transfer_id = Uuid::now_v7();
        let facts =
            TransferState::unreversed(id("alice"), id("shop"), amount(100), Currency::default());
        let mut given = Given::default();
        given.accounts.insert(id("alice"), open_state("alice", 0));
        given.accounts.insert(id("shop"), open_state("shop", 150));
        let command = ReverseTransfer {
            transfer_id,
            transfer: facts,
            amount: None,
            reference: None,
        };
        (given, command)
    }

    #[test]
    fn a_reversal_moves_all_that_is_left_back_to_the_sender_by_default() {
        let (given, command) = given();
        let decision = reverse(&actor("shop"), &command, &given).expect("reversed");
        let Outcome::Reversed(reversal) = &decision.outcome else {
            panic!("not a reversal: {:?}", decision.outcome);
        };
        let Reversal {
            amount,
            transfer,
            from,
            to,
            ..
        } = reversal.as_ref();
        assert_eq!(amount.minor_units(), 100);
        assert_eq!((transfer.version, transfer.reversed_total), (1, 100));
        assert_eq!((from.0.as_str(), from.1.balance), ("shop", 50));
        assert_eq!((to.0.as_str(), to.1.balance), ("alice", 100));
        let types: Vec<_> = decision.events.iter().map(Event::event_type).collect();
        assert_eq!(
            types,
            ["reversal_sent", "reversal_received", "transfer_reversed"]
        );
    }

    #[test]
    fn partial_reversals_follow_one_another_up_to_the_transfer_and_no_further() {
        let (mut given, mut command) = given();
        command.amount = Some(amount(60));
        let first = reverse(&actor("shop"), &command, &given).expect("first part");
        let Outcome::Reversed(first) = first.outcome else {
            panic!("not a reversal");
        };
        given.transfers.insert(command.transfer_id, first.transfer);
        command.amount = Some(amount(41));
        assert_eq!(
            reverse(&admin(), &command, &given),
            Err(DomainError::ReversalExceedsTransfer {
                transfer_id: command.transfer_id,
                remaining: 40,
                requested: 41
            })
        );
        command.amount = None;
        let rest = reverse(&admin(), &command, &given).expect("the rest");
        let Outcome::Reversed(rest) = rest.outcome else {
            panic!("not a reversal");
        };
        assert_eq!(
            (rest.amount.minor_units(), rest.transfer.reversed_total),
            (40, 100)
        );
        given.transfers.insert(command.transfer_id, rest.transfer);
        assert!(matches!(
            reverse(&admin(), &command, &given),
            Err(DomainError::ReversalExceedsTransfer { remaining: 0, .. })
        ));
    }

    #[test]
    fn the_sender_and_strangers_are_told_the_transfer_does_not_exist() {
        let (given, command) = given();
        for who in ["alice", "mallory"] {
            assert_eq!(
                reverse(&actor(who), &command, &given),
                Err(DomainError::TransferNotFound(command.transfer_id))
            );
        }
    }

    #[test]
    fn the_receiver_needs_the_funds() {
        let (mut given, command) = given();
        given.accounts.insert(id("shop"), open_state("shop", 30));
        assert!(matches!(
            reverse(&actor("shop"), &command, &given),
            Err(DomainError::InsufficientFunds { requested: 100, .. })
        ));
    }
}
