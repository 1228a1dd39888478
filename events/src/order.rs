//! The order aggregate: placed by a customer, then paid or rejected exactly once by the
//! payment executor; a paid order may then be refunded by an admin, in parts or whole. How events change an order: `evolve/order.rs`.

use crate::ids::{AccountId, OwnerId};
use crate::money::{Amount, Currency};
use serde::{Deserialize, Serialize};

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    New,
    Paid,
    Rejected,
    /// Paid, then part of the charge given back.
    PartiallyRefunded,
    /// Paid, then all of the charge given back.
    Refunded,
}

impl OrderStatus {
    /// Whether the order's account was charged (and so may be refunded).
    pub fn is_charged(self) -> bool {
        matches!(self, Self::Paid | Self::PartiallyRefunded | Self::Refunded)
    }
}

/// Why an order was not paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// Minor units given back by refunds (0 ..= amount). Absent from messages written before
    /// refunds existed, and from orders never refunded.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub refunded_total: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl OrderState {
    /// What may still be refunded: the charge less refunds (0 for an order not charged).
    pub fn refundable(&self) -> i64 {
        if self.status.is_charged() {
            self.amount
                .minor_units()
                .saturating_sub(self.refunded_total)
        } else {
            0
        }
    }
}
