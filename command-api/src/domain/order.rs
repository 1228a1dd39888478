//! Orders: placed by a customer (`POST /v1/orders`), then paid or rejected exactly once by the
//! payment executor.

use super::account::{check_funds, follow};
use super::{Actor, Aggregates, Decision, DomainError, Outcome};
use events::{
    AccountId, Amount, Currency, Event, Evolve, OrderCharge, OrderEvent, OrderRejection,
    OrderState, OrderStatus,
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
