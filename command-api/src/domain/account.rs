//! Commands on accounts and how they are decided.

use super::{Actor, Aggregates, Decision, DomainError, Outcome};
use events::{
    AccountId, AccountMovement, AccountOpened, AccountState, AccountStatus, Amount, Currency,
    Event, Evolve, Metadata, OwnerId, Reference, TransferLeg,
};
use uuid::Uuid;

/// `POST /v1/accounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAccount {
    pub account_id: AccountId,
    pub owner_id: OwnerId,
    pub currency: Currency,
    /// Minor units the balance may go below zero (0 ..= 10^15).
    pub overdraft_limit: i64,
}

/// `POST /v1/accounts/{id}/deposits` and `…/withdrawals`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveFunds {
    pub account_id: AccountId,
    pub amount: Amount,
    /// When given, must be the account's currency: guards against a client's unit mix-up.
    pub currency: Option<Currency>,
    pub reference: Option<Reference>,
    pub metadata: Option<Metadata>,
}

/// `POST /v1/transfers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferFunds {
    pub transfer_id: Uuid,
    pub from: AccountId,
    pub to: AccountId,
    pub amount: Amount,
    pub currency: Option<Currency>,
    pub reference: Option<Reference>,
    pub metadata: Option<Metadata>,
}

/// `POST /v1/accounts/{id}/deposits`.
pub fn deposit(
    actor: &Actor,
    c: &MoveFunds,
    states: &impl Aggregates,
) -> Result<Decision, DomainError> {
    let state = movable(actor, c, states)?;
    moved(c, state, Event::FundsDeposited(movement(c, state)))
}

/// `POST /v1/accounts/{id}/withdrawals`.
pub fn withdraw(
    actor: &Actor,
    c: &MoveFunds,
    states: &impl Aggregates,
) -> Result<Decision, DomainError> {
    let state = movable(actor, c, states)?;
    check_funds(&c.account_id, state, c.amount)?;
    moved(c, state, Event::FundsWithdrawn(movement(c, state)))
}

/// The account a deposit or withdrawal moves money on: the actor's, in the currency named.
fn movable<'s>(
    actor: &Actor,
    c: &MoveFunds,
    states: &'s impl Aggregates,
) -> Result<&'s AccountState, DomainError> {
    let state = owned(actor, &c.account_id, states.account(&c.account_id))?;
    check_currency(&c.account_id, state, c.currency)?;
    Ok(state)
}

/// `POST /v1/accounts`.
pub fn open(c: &OpenAccount, existing: Option<&AccountState>) -> Result<Decision, DomainError> {
    if let Some(state) = existing {
        let same = state.owner_id == c.owner_id
            && state.currency == c.currency
            && state.overdraft_limit == c.overdraft_limit;
        return if same {
            Ok(Decision {
                events: vec![],
                outcome: Outcome::AccountOpened {
                    created: false,
                    account_id: c.account_id.clone(),
                    state: state.clone(),
                },
            })
        } else {
            Err(DomainError::AccountExists(c.account_id.clone()))
        };
    }
    let state = AccountState {
        version: 1,
        balance: 0,
        held: 0,
        currency: c.currency,
        status: AccountStatus::Open,
        owner_id: c.owner_id.clone(),
        overdraft_limit: c.overdraft_limit,
    };
    let event = Event::AccountOpened(AccountOpened {
        account_id: c.account_id.clone(),
        state,
    });
    // Through evolve all the same, so that its rules for opening are the ones applied.
    let state = AccountState::evolve(None, &event)
        .map_err(|_| DomainError::AccountExists(c.account_id.clone()))?;
    Ok(Decision {
        events: vec![event.with_account_state(state.clone())],
        outcome: Outcome::AccountOpened {
            created: true,
            account_id: c.account_id.clone(),
            state,
        },
    })
}

/// `POST /v1/transfers`.
pub fn transfer(
    actor: &Actor,
    c: &TransferFunds,
    states: &impl Aggregates,
) -> Result<Decision, DomainError> {
    if c.from == c.to {
        return Err(DomainError::SameAccount);
    }
    let from = owned(actor, &c.from, states.account(&c.from))?;
    let to = states
        .account(&c.to)
        .ok_or_else(|| DomainError::AccountNotFound(c.to.clone()))?;
    check_currency(&c.from, from, c.currency)?;
    check_currency(&c.to, to, Some(from.currency))?;
    check_funds(&c.from, from, c.amount)?;
    let leg =
        |account_id: &AccountId, counterparty: &AccountId, state: &AccountState| TransferLeg {
            account_id: account_id.clone(),
            transfer_id: c.transfer_id,
            amount: c.amount,
            counterparty_account_id: counterparty.clone(),
            reference: c.reference.clone(),
            metadata: c.metadata.clone(),
            state: state.clone(),
        };
    let sent = Event::TransferSent(leg(&c.from, &c.to, from));
    let received = Event::TransferReceived(leg(&c.to, &c.from, to));
    let from_after = follow(&c.from, from, sent.clone())?;
    let to_after = follow(&c.to, to, received.clone())?;
    Ok(Decision {
        events: vec![
            sent.with_account_state(from_after.clone()),
            received.with_account_state(to_after.clone()),
        ],
        outcome: Outcome::Transferred {
            transfer_id: c.transfer_id,
            amount: c.amount,
            from: (c.from.clone(), from_after),
            to: (c.to.clone(), to_after),
        },
    })
}

/// The account if it exists and `actor` may act on it; otherwise "not found", so that other
/// owners' accounts are indistinguishable from missing ones.
pub(super) fn owned<'a>(
    actor: &Actor,
    id: &AccountId,
    state: Option<&'a AccountState>,
) -> Result<&'a AccountState, DomainError> {
    state
        .filter(|s| actor.may_act_on(s))
        .ok_or_else(|| DomainError::AccountNotFound(id.clone()))
}

pub(super) fn check_currency(
    id: &AccountId,
    state: &AccountState,
    requested: Option<Currency>,
) -> Result<(), DomainError> {
    match requested {
        Some(requested) if requested != state.currency => Err(DomainError::CurrencyMismatch {
            account_id: id.clone(),
            account: state.currency,
            requested,
        }),
        _ => Ok(()),
    }
}

/// Spending `amount` must leave the available balance at or above `-overdraft_limit`.
pub(super) fn check_funds(
    id: &AccountId,
    state: &AccountState,
    amount: Amount,
) -> Result<(), DomainError> {
    let available = state
        .available()
        .ok_or_else(|| DomainError::BalanceOverflow(id.clone()))?;
    let floor = state.overdraft_limit.checked_neg().unwrap_or(i64::MIN);
    match available.checked_sub(amount.minor_units()) {
        Some(after) if after >= floor => Ok(()),
        _ => Err(DomainError::InsufficientFunds {
            account_id: id.clone(),
            available,
            requested: amount.minor_units(),
        }),
    }
}

fn movement(c: &MoveFunds, state: &AccountState) -> AccountMovement {
    AccountMovement {
        account_id: c.account_id.clone(),
        amount: c.amount,
        reference: c.reference.clone(),
        metadata: c.metadata.clone(),
        state: state.clone(),
    }
}

/// The post-state of `event` on `state`, by `evolve`; overflow is the only way it can fail
/// for events built here.
pub(super) fn follow(
    id: &AccountId,
    state: &AccountState,
    event: Event,
) -> Result<AccountState, DomainError> {
    AccountState::evolve(Some(state), &event).map_err(|_| DomainError::BalanceOverflow(id.clone()))
}

fn moved(c: &MoveFunds, state: &AccountState, event: Event) -> Result<Decision, DomainError> {
    let after = follow(&c.account_id, state, event.clone())?;
    Ok(Decision {
        events: vec![event.with_account_state(after.clone())],
        outcome: Outcome::FundsMoved {
            account_id: c.account_id.clone(),
            amount: c.amount,
            state: after,
        },
    })
}

#[cfg(test)]
mod tests;
