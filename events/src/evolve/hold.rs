//! How events change a hold.

use super::Evolve;
use crate::event::Event;
use crate::hold::{HoldState, HoldStatus};

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
impl Evolve for HoldState {
    type Error = HoldEvolveError;

    fn evolve(prev: Option<&Self>, event: &Event) -> Result<Self, HoldEvolveError> {
        evolve_hold(prev, event)
    }
}

fn evolve_hold(prev: Option<&HoldState>, event: &Event) -> Result<HoldState, HoldEvolveError> {
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
