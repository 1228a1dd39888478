//! How events change an order.

use super::Evolve;
use crate::event::Event;
use crate::order::{OrderState, OrderStatus};

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
    #[error("order_refunded on an order that was not charged")]
    NotCharged,
    #[error("refunds would total {total}, more than the charge of {amount}")]
    RefundExceedsCharge { total: i64, amount: i64 },
}

/// How `event` changes the order `prev` (`None`: not placed yet).
impl Evolve for OrderState {
    type Error = OrderEvolveError;

    fn evolve(prev: Option<&Self>, event: &Event) -> Result<Self, OrderEvolveError> {
        evolve_order(prev, event)
    }
}

fn evolve_order(prev: Option<&OrderState>, event: &Event) -> Result<OrderState, OrderEvolveError> {
    let event_type = event.event_type();
    let (status, reason) = match event {
        Event::OrderPlaced(placed) => {
            return match prev {
                None => Ok(OrderState {
                    version: 1,
                    status: OrderStatus::New,
                    reason: None,
                    refunded_total: 0,
                    ..placed.state.clone()
                }),
                Some(_) => Err(OrderEvolveError::AlreadyPlaced),
            };
        }
        Event::OrderRefunded(refund) => {
            let prev = prev.ok_or(OrderEvolveError::NotPlaced(event_type))?;
            if !prev.status.is_charged() {
                return Err(OrderEvolveError::NotCharged);
            }
            let total = prev
                .refunded_total
                .saturating_add(refund.amount.minor_units());
            let amount = prev.amount.minor_units();
            if total > amount {
                return Err(OrderEvolveError::RefundExceedsCharge { total, amount });
            }
            return Ok(OrderState {
                version: prev.version + 1,
                status: if total == amount {
                    OrderStatus::Refunded
                } else {
                    OrderStatus::PartiallyRefunded
                },
                refunded_total: total,
                ..prev.clone()
            });
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
