//! Two-phase holds: money reserved on an account (available drops, balance does not), then
//! captured (fully or partly; the rest is released) or voided — by the caller, or by the
//! system when the hold expires.

use crate::ids::{AccountId, OwnerId};
use crate::money::Amount;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldStatus {
    Placed,
    Captured,
    Voided,
}

/// A hold's full state, carried by the hold-side message of every hold event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldState {
    pub version: u64,
    pub status: HoldStatus,
    pub account_id: AccountId,
    pub owner_id: OwnerId,
    /// What the hold reserves.
    pub amount: Amount,
    /// What was taken when captured (≤ amount); 0 otherwise.
    pub captured: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Voided by the system because it expired.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expired: bool,
}

impl HoldState {
    /// Whether the hold is past its expiry at `now`.
    pub fn is_expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// A hold event that does not follow from the hold's state before it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoldEvolveError {
    #[error("hold_placed on a hold that exists")]
    AlreadyPlaced,
    #[error("{0} on a hold that does not exist")]
    NotPlaced(&'static str),
    #[error("{0} on a hold that is already captured or voided")]
    AlreadyFinal(&'static str),
    #[error("{0} is not a hold-side event")]
    NotAHoldEvent(&'static str),
}

/// How the hold-side message `event` changes the hold `prev`.
impl crate::Evolve for HoldState {
    type Error = HoldEvolveError;

    fn evolve(prev: Option<&Self>, event: &crate::Event) -> Result<Self, HoldEvolveError> {
        evolve_hold(prev, event)
    }
}

fn evolve_hold(
    prev: Option<&HoldState>,
    event: &crate::Event,
) -> Result<HoldState, HoldEvolveError> {
    use crate::Event;
    let event_type = event.event_type();
    let Some(next) = event.hold_state() else {
        return Err(HoldEvolveError::NotAHoldEvent(event_type));
    };
    let hold = event
        .hold()
        .ok_or(HoldEvolveError::NotAHoldEvent(event_type))?;
    if let Event::HoldPlaced(_) = event {
        return match prev {
            None => Ok(HoldState {
                version: 1,
                status: HoldStatus::Placed,
                captured: 0,
                expired: false,
                amount: hold.hold_amount,
                expires_at: hold.expires_at,
                ..next.clone()
            }),
            Some(_) => Err(HoldEvolveError::AlreadyPlaced),
        };
    }
    let prev = prev.ok_or(HoldEvolveError::NotPlaced(event_type))?;
    if prev.status != HoldStatus::Placed {
        return Err(HoldEvolveError::AlreadyFinal(event_type));
    }
    let (status, captured, expired) = match event {
        Event::HoldCaptured(_) => (
            HoldStatus::Captured,
            hold.captured.map_or(0, |c| c.minor_units()),
            false,
        ),
        _ => (HoldStatus::Voided, 0, next.expired),
    };
    Ok(HoldState {
        version: prev.version + 1,
        status,
        captured,
        expired,
        ..prev.clone()
    })
}
