//! How a reversal changes a transfer.

use super::Evolve;
use crate::event::Event;
use crate::transfer::TransferState;

/// A transfer event that does not follow from the transfer's state before it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferEvolveError {
    #[error("{0} is not a transfer event")]
    NotATransferEvent(&'static str),
    #[error("a reversal names other accounts, amount or currency than the transfer")]
    OtherTransfer,
    #[error("reversals would total {total}, more than the transfer's {amount}")]
    ExceedsTransfer { total: i64, amount: i64 },
}

/// How `transfer_reversed` changes the transfer `prev`. `None` is a transfer never reversed:
/// its first reversal carries the transfer's facts, as found in the journal, and its
/// post-state starts from them.
impl Evolve for TransferState {
    type Error = TransferEvolveError;

    fn evolve(prev: Option<&Self>, event: &Event) -> Result<Self, TransferEvolveError> {
        let Event::TransferReversed(reversal) = event else {
            return Err(TransferEvolveError::NotATransferEvent(event.event_type()));
        };
        let next = &reversal.state;
        let prev = match prev {
            Some(prev) => prev.clone(),
            None => TransferState::unreversed(
                next.from_account_id.clone(),
                next.to_account_id.clone(),
                next.amount,
                next.currency,
            ),
        };
        let same_transfer = prev.from_account_id == next.from_account_id
            && prev.to_account_id == next.to_account_id
            && prev.amount == next.amount
            && prev.currency == next.currency;
        if !same_transfer {
            return Err(TransferEvolveError::OtherTransfer);
        }
        let total = prev
            .reversed_total
            .checked_add(reversal.amount.minor_units())
            .filter(|total| *total <= prev.amount.minor_units())
            .ok_or(TransferEvolveError::ExceedsTransfer {
                total: prev
                    .reversed_total
                    .saturating_add(reversal.amount.minor_units()),
                amount: prev.amount.minor_units(),
            })?;
        Ok(TransferState {
            version: prev.version + 1,
            reversed_total: total,
            ..prev
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::TransferReversal;
    use crate::ids::AccountId;
    use crate::money::{Amount, Currency};

    fn facts() -> TransferState {
        TransferState::unreversed(
            AccountId::parse("alice").expect("valid"),
            AccountId::parse("shop").expect("valid"),
            Amount::new(100).expect("valid"),
            Currency::default(),
        )
    }

    fn reversed(amount: i64, state: TransferState) -> Event {
        Event::TransferReversed(TransferReversal {
            transfer_id: uuid::Uuid::nil(),
            amount: Amount::new(amount).expect("valid"),
            reference: None,
            state,
        })
    }

    #[test]
    fn a_first_reversal_starts_from_the_facts_it_carries() {
        let after = TransferState::evolve(None, &reversed(30, facts())).expect("follows");
        assert_eq!((after.version, after.reversed_total), (1, 30));
        let again =
            TransferState::evolve(Some(&after), &reversed(70, after.clone())).expect("follows");
        assert_eq!(
            (again.version, again.reversed_total, again.remaining()),
            (2, 100, 0)
        );
    }

    #[test]
    fn reversals_beyond_the_transfer_do_not_follow() {
        let after = TransferState::evolve(None, &reversed(60, facts())).expect("follows");
        assert_eq!(
            TransferState::evolve(Some(&after), &reversed(41, after.clone())),
            Err(TransferEvolveError::ExceedsTransfer {
                total: 101,
                amount: 100
            })
        );
    }

    #[test]
    fn a_reversal_of_another_transfer_does_not_follow() {
        let other = TransferState {
            amount: Amount::new(5).expect("valid"),
            ..facts()
        };
        assert_eq!(
            TransferState::evolve(Some(&facts()), &reversed(1, other)),
            Err(TransferEvolveError::OtherTransfer)
        );
    }
}
