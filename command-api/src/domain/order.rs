//! Orders: placed by a customer (`POST /v1/orders`), then paid or rejected exactly once by the
//! payment executor; a paid order may be refunded by an admin (`POST /v1/orders/{id}/refunds`),
//! in parts that together never exceed the charge.

use super::account::{check_funds, follow};
use super::{Actor, Aggregates, Decision, DomainError, Outcome, Refund};
use events::{
    AccountId, Amount, Currency, Event, Evolve, OrderCharge, OrderEvent, OrderRefund,
    OrderRejection, OrderState, OrderStatus,
};
use uuid::Uuid;

/// Longest order description.
pub const DESCRIPTION_LEN_MAX: usize = 500;

/// `POST /v1/orders`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceOrder {
    pub order_id: Uuid,
    pub account_id: AccountId,
    pub amount: Amount,
    pub currency: Option<Currency>,
    pub description: Option<String>,
}

/// The payment executor's command for an `order_placed` it consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayOrder {
    pub order_id: Uuid,
    /// From the order: the account to charge (known before loading, so that both states are
    /// loaded together).
    pub account_id: AccountId,
}

/// `POST /v1/orders/{order_id}/refunds` (admin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundOrder {
    pub order_id: Uuid,
    /// The order's account, as the handler read it from the order (known before loading, so
    /// that both states are loaded together; the decision checks it against the order).
    pub account_id: AccountId,
    /// `None`: all that is left of the charge.
    pub amount: Option<Amount>,
}

pub fn place(
    actor: &Actor,
    c: &PlaceOrder,
    states: &impl Aggregates,
) -> Result<Decision, DomainError> {
    let placed = OrderState {
        version: 1,
        status: OrderStatus::New,
        owner_id: actor.principal.clone(),
        account_id: c.account_id.clone(),
        amount: c.amount,
        currency: c.currency,
        description: c.description.clone(),
        reason: None,
        refunded_total: 0,
    };
    if let Some(existing) = states.order(&c.order_id) {
        let same = existing.owner_id == placed.owner_id
            && existing.account_id == placed.account_id
            && existing.amount == placed.amount
            && existing.currency == placed.currency
            && existing.description == placed.description;
        return if same {
            Ok(Decision {
                events: vec![],
                outcome: Outcome::OrderPlaced {
                    created: false,
                    order_id: c.order_id,
                    state: existing.clone(),
                },
            })
        } else {
            Err(DomainError::OrderExists(c.order_id))
        };
    }
    let event = Event::OrderPlaced(OrderEvent {
        order_id: c.order_id,
        state: placed,
    });
    let state =
        OrderState::evolve(None, &event).map_err(|_| DomainError::OrderExists(c.order_id))?;
    Ok(Decision {
        events: vec![event],
        outcome: Outcome::OrderPlaced {
            created: true,
            order_id: c.order_id,
            state,
        },
    })
}

/// Pays the order from its account, or rejects it with a reason. An order already decided is
/// left alone: redelivered or repeated, payment happens once.
pub fn pay(c: &PayOrder, states: &impl Aggregates) -> Result<Decision, DomainError> {
    let order = states
        .order(&c.order_id)
        .ok_or(DomainError::OrderNotFound(c.order_id))?;
    if order.status != OrderStatus::New {
        return Ok(Decision {
            events: vec![],
            outcome: Outcome::OrderDecided {
                order_id: c.order_id,
                state: order.clone(),
            },
        });
    }
    let account = states
        .account(&order.account_id)
        .filter(|a| a.owner_id == order.owner_id);
    let rejection = match account {
        None => Some(OrderRejection::AccountNotFound),
        Some(a) if order.currency.is_some_and(|c| c != a.currency) => {
            Some(OrderRejection::CurrencyMismatch)
        }
        Some(a) => check_funds(&order.account_id, a, order.amount)
            .err()
            .map(|_| OrderRejection::InsufficientFunds),
    };
    let mut events = Vec::with_capacity(2);
    let decided = match (rejection, account) {
        (None, Some(account)) => {
            let charge = Event::OrderCharged(OrderCharge {
                account_id: order.account_id.clone(),
                order_id: c.order_id,
                amount: order.amount,
                state: account.clone(),
            });
            let after = follow(&order.account_id, account, charge.clone())?;
            let paid = Event::OrderPaid(OrderEvent {
                order_id: c.order_id,
                state: order.clone(),
            });
            let state = OrderState::evolve(Some(order), &paid)
                .map_err(|_| DomainError::OrderNotFound(c.order_id))?;
            events.push(Event::OrderPaid(OrderEvent {
                order_id: c.order_id,
                state: state.clone(),
            }));
            events.push(charge.with_account_state(after));
            state
        }
        (reason, _) => {
            let rejected = Event::OrderRejected(OrderEvent {
                order_id: c.order_id,
                state: OrderState {
                    reason: reason.or(Some(OrderRejection::AccountNotFound)),
                    ..order.clone()
                },
            });
            let state = OrderState::evolve(Some(order), &rejected)
                .map_err(|_| DomainError::OrderNotFound(c.order_id))?;
            events.push(Event::OrderRejected(OrderEvent {
                order_id: c.order_id,
                state: state.clone(),
            }));
            state
        }
    };
    Ok(Decision {
        events,
        outcome: Outcome::OrderDecided {
            order_id: c.order_id,
            state: decided,
        },
    })
}

/// Gives `amount` (default: what is left) of a paid order's charge back to its account:
/// `order_refunded` on the order, `refund_credited` on the account, in one atomic batch.
/// Admins only; the HTTP edge refuses everyone else before a command exists.
pub fn refund(
    actor: &Actor,
    c: &RefundOrder,
    states: &impl Aggregates,
) -> Result<Decision, DomainError> {
    let order = states
        .order(&c.order_id)
        .filter(|o| actor.may_act_for(&o.owner_id) && o.account_id == c.account_id)
        .ok_or(DomainError::OrderNotFound(c.order_id))?;
    if !order.status.is_charged() {
        return Err(DomainError::OrderNotPaid(c.order_id));
    }
    let refundable = order.refundable();
    let amount = match c.amount {
        Some(amount) if amount.minor_units() <= refundable => amount,
        None if refundable > 0 => {
            Amount::new(refundable).map_err(|_| DomainError::OrderNotFound(c.order_id))?
        }
        requested => {
            return Err(DomainError::RefundExceedsCharge {
                order_id: c.order_id,
                refundable,
                requested: requested.map_or(refundable, Amount::minor_units),
            });
        }
    };
    let account = states
        .account(&order.account_id)
        .ok_or_else(|| DomainError::AccountNotFound(order.account_id.clone()))?;
    let credit = Event::RefundCredited(OrderCharge {
        account_id: order.account_id.clone(),
        order_id: c.order_id,
        amount,
        state: account.clone(),
    });
    let account_after = follow(&order.account_id, account, credit.clone())?;
    let refunded = OrderRefund {
        order_id: c.order_id,
        amount,
        state: order.clone(),
    };
    let order_after = OrderState::evolve(Some(order), &Event::OrderRefunded(refunded.clone()))
        .map_err(|_| DomainError::RefundExceedsCharge {
            order_id: c.order_id,
            refundable,
            requested: amount.minor_units(),
        })?;
    Ok(Decision {
        events: vec![
            Event::OrderRefunded(OrderRefund {
                state: order_after.clone(),
                ..refunded
            }),
            credit.with_account_state(account_after.clone()),
        ],
        outcome: Outcome::OrderRefunded(Box::new(Refund {
            order_id: c.order_id,
            amount,
            order: order_after,
            account: (order.account_id.clone(), account_after),
        })),
    })
}
