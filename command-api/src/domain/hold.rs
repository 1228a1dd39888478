//! Two-phase holds: place (available drops, balance does not), capture (fully or partly; the
//! rest is released), void, and expiry by the system.

use super::account::{check_funds, owned};
use super::{Actor, Aggregates, Decision, DomainError, Outcome};
use chrono::{DateTime, Utc};
use events::{
    AccountId, AccountState, Amount, Event, Evolve, HoldEvent, HoldSide, HoldState, HoldStatus,
};
use uuid::Uuid;

/// `POST /v1/accounts/{id}/holds`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceHold {
    pub hold_id: Uuid,
    pub account_id: AccountId,
    pub amount: Amount,
    pub expires_at: Option<DateTime<Utc>>,
}

/// `POST /v1/accounts/{id}/holds/{hold_id}/capture`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureHold {
    pub hold_id: Uuid,
    pub account_id: AccountId,
    /// At most the hold's amount; the whole hold when absent.
    pub amount: Option<Amount>,
    /// When the capture is asked for: an expired hold cannot be captured.
    pub now: DateTime<Utc>,
}

/// `POST /v1/accounts/{id}/holds/{hold_id}/void`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoidHold {
    pub hold_id: Uuid,
    pub account_id: AccountId,
}

/// The expiry executor's command for a hold whose time has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpireHold {
    pub hold_id: Uuid,
    pub account_id: AccountId,
    pub now: DateTime<Utc>,
}

pub fn place(
    actor: &Actor,
    c: &PlaceHold,
    states: &impl Aggregates,
) -> Result<Decision, DomainError> {
    if states.hold(&c.hold_id).is_some() {
        return Err(DomainError::HoldExists(c.hold_id));
    }
    let account = owned(actor, &c.account_id, states.account(&c.account_id))?;
    check_funds(&c.account_id, account, c.amount)?;
    let placed = HoldState {
        version: 1,
        status: HoldStatus::Placed,
        account_id: c.account_id.clone(),
        owner_id: account.owner_id.clone(),
        amount: c.amount,
        captured: 0,
        expires_at: c.expires_at,
        expired: false,
    };
    let event = |state: HoldSide| {
        Event::HoldPlaced(HoldEvent {
            hold_id: c.hold_id,
            account_id: c.account_id.clone(),
            hold_amount: c.amount,
            captured: None,
            expires_at: c.expires_at,
            state,
        })
    };
    both_sides(
        c.hold_id,
        &c.account_id,
        account,
        None,
        event,
        HoldSide::Hold(placed),
    )
}

pub fn capture(
    actor: &Actor,
    c: &CaptureHold,
    states: &impl Aggregates,
) -> Result<Decision, DomainError> {
    let (account, hold) = active(actor, c.hold_id, &c.account_id, states)?;
    if hold.is_expired_at(c.now) {
        return Err(DomainError::HoldExpired(c.hold_id));
    }
    let captured = c.amount.unwrap_or(hold.amount);
    if captured > hold.amount {
        return Err(DomainError::CaptureExceedsHold {
            hold_id: c.hold_id,
            held: hold.amount.minor_units(),
            requested: captured.minor_units(),
        });
    }
    let next = HoldState {
        status: HoldStatus::Captured,
        captured: captured.minor_units(),
        ..hold.clone()
    };
    let event = |state: HoldSide| {
        Event::HoldCaptured(HoldEvent {
            hold_id: c.hold_id,
            account_id: c.account_id.clone(),
            hold_amount: hold.amount,
            captured: Some(captured),
            expires_at: hold.expires_at,
            state,
        })
    };
    both_sides(
        c.hold_id,
        &c.account_id,
        account,
        Some(hold),
        event,
        HoldSide::Hold(next),
    )
}

pub fn void(
    actor: &Actor,
    c: &VoidHold,
    states: &impl Aggregates,
) -> Result<Decision, DomainError> {
    let (account, hold) = active(actor, c.hold_id, &c.account_id, states)?;
    released(c.hold_id, &c.account_id, account, hold, false)
}

/// Voids the hold if it is still placed and its time has come; otherwise changes nothing.
pub fn expire(c: &ExpireHold, states: &impl Aggregates) -> Result<Decision, DomainError> {
    let hold = states
        .hold(&c.hold_id)
        .ok_or(DomainError::HoldNotFound(c.hold_id))?;
    let account = states
        .account(&hold.account_id)
        .ok_or_else(|| DomainError::AccountNotFound(hold.account_id.clone()))?;
    if hold.status != HoldStatus::Placed || !hold.is_expired_at(c.now) {
        return Ok(Decision {
            events: vec![],
            outcome: Outcome::HoldChanged {
                hold_id: c.hold_id,
                hold: hold.clone(),
                account_id: hold.account_id.clone(),
                account: account.clone(),
            },
        });
    }
    released(c.hold_id, &hold.account_id, account, hold, true)
}

fn released(
    hold_id: Uuid,
    account_id: &AccountId,
    account: &AccountState,
    hold: &HoldState,
    expired: bool,
) -> Result<Decision, DomainError> {
    let next = HoldState {
        status: HoldStatus::Voided,
        expired,
        ..hold.clone()
    };
    let event = |state: HoldSide| {
        Event::HoldVoided(HoldEvent {
            hold_id,
            account_id: account_id.clone(),
            hold_amount: hold.amount,
            captured: None,
            expires_at: hold.expires_at,
            state,
        })
    };
    both_sides(
        hold_id,
        account_id,
        account,
        Some(hold),
        event,
        HoldSide::Hold(next),
    )
}

/// The hold, placed and on this account, and the account (the caller's, or any for admins).
fn active<'a>(
    actor: &Actor,
    hold_id: Uuid,
    account_id: &AccountId,
    states: &'a impl Aggregates,
) -> Result<(&'a AccountState, &'a HoldState), DomainError> {
    let account = owned(actor, account_id, states.account(account_id))?;
    let hold = states
        .hold(&hold_id)
        .filter(|h| &h.account_id == account_id)
        .ok_or(DomainError::HoldNotFound(hold_id))?;
    if hold.status != HoldStatus::Placed {
        return Err(DomainError::HoldFinal(hold_id));
    }
    Ok((account, hold))
}

/// The account-side and hold-side messages of one hold event, with post-states from `evolve`
/// and `HoldState::evolve`.
fn both_sides(
    hold_id: Uuid,
    account_id: &AccountId,
    account: &AccountState,
    hold: Option<&HoldState>,
    event: impl Fn(HoldSide) -> Event,
    hold_after_hint: HoldSide,
) -> Result<Decision, DomainError> {
    let account_side = event(HoldSide::Account(account.clone()));
    let account_after = AccountState::evolve(Some(account), &account_side)
        .map_err(|_| DomainError::BalanceOverflow(account_id.clone()))?;
    let hold_side = event(hold_after_hint);
    let hold_after =
        HoldState::evolve(hold, &hold_side).map_err(|_| DomainError::HoldFinal(hold_id))?;
    Ok(Decision {
        events: vec![
            event(HoldSide::Account(account_after.clone())),
            event(HoldSide::Hold(hold_after.clone())),
        ],
        outcome: Outcome::HoldChanged {
            hold_id,
            hold: hold_after,
            account_id: account_id.clone(),
            account: account_after,
        },
    })
}
