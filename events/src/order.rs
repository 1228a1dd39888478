//! The order aggregate: placed by a customer, then paid or rejected exactly once by the
//! payment executor. How events change an order: `evolve/order.rs`.

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
