//! The order aggregate: placed by a customer, then paid or rejected exactly once by the
//! payment executor.

use crate::ids::{AccountId, OwnerId};
use crate::money::{Amount, Currency};
use serde::{Deserialize, Serialize};

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    New,
    Paid,
    Rejected,
}

/// Why an order was not paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderRejection {
    AccountNotFound,
    InsufficientFunds,
    CurrencyMismatch,
}

impl OrderRejection {
    pub fn code(self) -> &'static str {
        match self {
            Self::AccountNotFound => "account_not_found",
            Self::InsufficientFunds => "insufficient_funds",
            Self::CurrencyMismatch => "currency_mismatch",
        }
    }
}

/// An order's full state, carried by every order event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderState {
    /// 1 when placed, 2 once decided: the payment's expected sequence check rests on this.
    pub version: u64,
    pub status: OrderStatus,
    pub owner_id: OwnerId,
    pub account_id: AccountId,
    pub amount: Amount,
    /// When given, the account must hold this currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<OrderRejection>,
}

/// An order event that does not follow from the order's state before it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderEvolveError {
    #[error("order_placed on an order that exists")]
    AlreadyPlaced,
    #[error("{0} on an order that does not exist")]
    NotPlaced(&'static str),
    #[error("{0} on an order that is already decided")]
    AlreadyDecided(&'static str),
    #[error("{0} is not an order event")]
    NotAnOrderEvent(&'static str),
}

/// How `event` changes the order `prev` (`None`: not placed yet).
impl crate::Evolve for OrderState {
    type Error = OrderEvolveError;

    fn evolve(prev: Option<&Self>, event: &crate::Event) -> Result<Self, OrderEvolveError> {
        evolve_order(prev, event)
    }
}

fn evolve_order(
    prev: Option<&OrderState>,
    event: &crate::Event,
) -> Result<OrderState, OrderEvolveError> {
    use crate::Event;
    let event_type = event.event_type();
    let (status, reason) = match event {
        Event::OrderPlaced(placed) => {
            return match prev {
                None => Ok(OrderState {
                    version: 1,
                    status: OrderStatus::New,
                    reason: None,
                    ..placed.state.clone()
                }),
                Some(_) => Err(OrderEvolveError::AlreadyPlaced),
            };
        }
        Event::OrderPaid(_) => (OrderStatus::Paid, None),
        Event::OrderRejected(e) => (OrderStatus::Rejected, e.state.reason),
        _ => return Err(OrderEvolveError::NotAnOrderEvent(event_type)),
    };
    let prev = prev.ok_or(OrderEvolveError::NotPlaced(event_type))?;
    if prev.status != OrderStatus::New {
        return Err(OrderEvolveError::AlreadyDecided(event_type));
    }
    Ok(OrderState {
        version: prev.version + 1,
        status,
        reason,
        ..prev.clone()
    })
}
