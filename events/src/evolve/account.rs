//! How events change an account: the one definition of its arithmetic.

use super::Evolve;
use crate::account::{AccountState, AccountStatus};
use crate::event::Event;
use thiserror::Error;

/// An event that does not follow from the state before it: the journal and the fold disagree.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AccountEvolveError {
    #[error("{event_type} on an account that does not exist")]
    NotOpened { event_type: &'static str },
    #[error("account_opened on an account that already exists")]
    AlreadyOpened,
    #[error("{event_type} is not an account event")]
    NotAnAccountEvent { event_type: &'static str },
    #[error("balance arithmetic overflowed")]
    Overflow,
}

/// How `event` changes the account `prev` (`None`: not opened yet).
///
/// This is the one definition of the account's arithmetic: the command side's `decide` builds
/// each event's post-state by calling it, and `projector verify` checks that every journaled
/// event's `state` equals `AccountState::evolve(previous state, event)`.
impl Evolve for AccountState {
    type Error = AccountEvolveError;

    fn evolve(prev: Option<&Self>, event: &Event) -> Result<Self, AccountEvolveError> {
        evolve_account(prev, event)
    }
}

fn evolve_account(
    prev: Option<&AccountState>,
    event: &Event,
) -> Result<AccountState, AccountEvolveError> {
    let event_type = event.event_type();
    if let Event::AccountOpened(opened) = event {
        return match prev {
            None => Ok(AccountState {
                version: 1,
                balance: 0,
                held: 0,
                currency: opened.state.currency,
                status: AccountStatus::Open,
                owner_id: opened.state.owner_id.clone(),
                overdraft_limit: opened.state.overdraft_limit,
            }),
            Some(_) => Err(AccountEvolveError::AlreadyOpened),
        };
    }
    if let (Event::BalanceSet(set), None) = (event, prev) {
        // A balance batch opens the accounts it names that do not exist yet: one message per
        // item instead of `account_opened` + `balance_set`.
        return Ok(AccountState {
            version: 1,
            balance: set.balance,
            held: 0,
            currency: set.state.currency,
            status: AccountStatus::Open,
            owner_id: set.state.owner_id.clone(),
            overdraft_limit: set.state.overdraft_limit,
        });
    }
    let prev = prev.ok_or(AccountEvolveError::NotOpened { event_type })?;
    if let Some(hold) = event.hold() {
        let reserved = hold.hold_amount.minor_units();
        let (balance, held) = match event {
            Event::HoldPlaced(_) => (Some(prev.balance), prev.held.checked_add(reserved)),
            Event::HoldCaptured(_) => (
                prev.balance
                    .checked_sub(hold.captured.map_or(0, |c| c.minor_units())),
                prev.held.checked_sub(reserved),
            ),
            _ => (Some(prev.balance), prev.held.checked_sub(reserved)),
        };
        return Ok(AccountState {
            version: prev
                .version
                .checked_add(1)
                .ok_or(AccountEvolveError::Overflow)?,
            balance: balance.ok_or(AccountEvolveError::Overflow)?,
            held: held.ok_or(AccountEvolveError::Overflow)?,
            ..prev.clone()
        });
    }
    if let Event::BalanceSet(set) = event {
        return Ok(AccountState {
            version: prev
                .version
                .checked_add(1)
                .ok_or(AccountEvolveError::Overflow)?,
            balance: set.balance,
            ..prev.clone()
        });
    }
    let delta = match event {
        Event::FundsDeposited(m) => m.amount.minor_units(),
        Event::TransferReceived(t) | Event::ReversalReceived(t) => t.amount.minor_units(),
        Event::RefundCredited(c) => c.amount.minor_units(),
        Event::FundsWithdrawn(m) => -m.amount.minor_units(),
        Event::TransferSent(t) | Event::ReversalSent(t) => -t.amount.minor_units(),
        Event::OrderCharged(c) => -c.amount.minor_units(),
        Event::AccountOpened(_)
        | Event::IdempotencyRecorded(_)
        | Event::OrderPlaced(_)
        | Event::OrderPaid(_)
        | Event::OrderRejected(_)
        | Event::HoldPlaced(_)
        | Event::HoldCaptured(_)
        | Event::HoldVoided(_)
        | Event::BalanceSet(_)
        | Event::BatchSubmitted(_)
        | Event::BatchPartApplied(_)
        | Event::JobFailed(_)
        | Event::TransferReversed(_)
        | Event::OrderRefunded(_) => {
            return Err(AccountEvolveError::NotAnAccountEvent { event_type });
        }
    };
    Ok(AccountState {
        version: prev
            .version
            .checked_add(1)
            .ok_or(AccountEvolveError::Overflow)?,
        balance: prev
            .balance
            .checked_add(delta)
            .ok_or(AccountEvolveError::Overflow)?,
        ..prev.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{AccountMovement, AccountOpened, TransferLeg};
    use crate::ids::AccountId;
    use crate::ids::OwnerId;
    use crate::money::Amount;
    use crate::money::Currency;

    fn alice() -> AccountId {
        AccountId::parse("alice").expect("valid")
    }

    fn opened_state() -> AccountState {
        AccountState {
            version: 1,
            balance: 0,
            held: 0,
            currency: Currency::default(),
            status: AccountStatus::Open,
            owner_id: OwnerId::parse("alice").expect("valid"),
            overdraft_limit: 0,
        }
    }

    fn movement(amount: i64, state: AccountState) -> AccountMovement {
        AccountMovement {
            account_id: alice(),
            amount: Amount::new(amount).expect("valid"),
            reference: None,
            metadata: None,
            state,
        }
    }

    #[test]
    fn opening_starts_at_version_one_with_nothing() {
        let event = Event::AccountOpened(AccountOpened {
            account_id: alice(),
            state: opened_state(),
        });
        assert_eq!(AccountState::evolve(None, &event), Ok(opened_state()));
    }

    #[test]
    fn a_balance_set_on_a_missing_account_opens_it_at_that_balance() {
        let set = Event::BalanceSet(crate::event::BalanceSet {
            account_id: alice(),
            balance: 700,
            previous: 0,
            batch_id: uuid::Uuid::nil(),
            item_job_id: uuid::Uuid::nil(),
            state: AccountState {
                version: 0,
                ..opened_state()
            },
        });
        let opened = AccountState::evolve(None, &set).expect("opens");
        assert_eq!(
            opened,
            AccountState {
                balance: 700,
                ..opened_state()
            }
        );
        let again = AccountState::evolve(Some(&opened), &set).expect("sets");
        assert_eq!((again.version, again.balance), (2, 700));
    }

    #[test]
    fn opening_twice_does_not_follow() {
        let event = Event::AccountOpened(AccountOpened {
            account_id: alice(),
            state: opened_state(),
        });
        assert_eq!(
            AccountState::evolve(Some(&opened_state()), &event),
            Err(AccountEvolveError::AlreadyOpened)
        );
    }

    #[test]
    fn deposits_and_withdrawals_move_the_balance_and_the_version() {
        let given = opened_state();
        let deposited = AccountState::evolve(
            Some(&given),
            &Event::FundsDeposited(movement(100, given.clone())),
        )
        .expect("follows");
        assert_eq!((deposited.version, deposited.balance), (2, 100));
        let withdrawn = AccountState::evolve(
            Some(&deposited),
            &Event::FundsWithdrawn(movement(30, given.clone())),
        )
        .expect("follows");
        assert_eq!((withdrawn.version, withdrawn.balance), (3, 70));
    }

    #[test]
    fn transfer_legs_debit_the_sender_and_credit_the_receiver() {
        let given = AccountState {
            balance: 50,
            ..opened_state()
        };
        let leg = TransferLeg {
            account_id: alice(),
            transfer_id: uuid::Uuid::now_v7(),
            amount: Amount::new(20).expect("valid"),
            counterparty_account_id: AccountId::parse("bob").expect("valid"),
            reference: None,
            metadata: None,
            state: given.clone(),
        };
        let sent =
            AccountState::evolve(Some(&given), &Event::TransferSent(leg.clone())).expect("follows");
        let received =
            AccountState::evolve(Some(&given), &Event::TransferReceived(leg)).expect("follows");
        assert_eq!((sent.balance, received.balance), (30, 70));
        assert_eq!((sent.version, received.version), (2, 2));
    }

    #[test]
    fn movements_on_an_unopened_account_do_not_follow() {
        let event = Event::FundsDeposited(movement(1, opened_state()));
        assert_eq!(
            AccountState::evolve(None, &event),
            Err(AccountEvolveError::NotOpened {
                event_type: "funds_deposited"
            })
        );
    }

    #[test]
    fn overflowing_balances_do_not_follow() {
        let given = AccountState {
            balance: i64::MAX,
            ..opened_state()
        };
        let event = Event::FundsDeposited(movement(1, given.clone()));
        assert_eq!(
            AccountState::evolve(Some(&given), &event),
            Err(AccountEvolveError::Overflow)
        );
    }
}
