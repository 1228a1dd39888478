//! The account aggregate's state (how events change it: `evolve/account.rs`).

use crate::ids::OwnerId;
use crate::money::Currency;
use serde::{Deserialize, Serialize};

/// Whether an account takes movements. Only `open` exists so far; the field is journaled from
/// the start so that later statuses (frozen, closed) need no schema change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    Open,
}

/// An account's full state. Every account event carries the state after it, so the last
/// message on `ledger.account.<id>` is the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountState {
    /// 1 after opening, +1 per event: gapless per account.
    pub version: u64,
    /// Minor units; may go down to `-overdraft_limit`.
    pub balance: i64,
    /// Minor units reserved by holds; `available = balance - held`.
    pub held: i64,
    pub currency: Currency,
    pub status: AccountStatus,
    pub owner_id: OwnerId,
    /// How far below zero the balance may go, in minor units (0: not at all).
    pub overdraft_limit: i64,
}

impl AccountState {
    /// What may still be spent: the balance less holds. `None` only on overflow, which the
    /// amount limits make unreachable for states built by `decide`.
    pub fn available(&self) -> Option<i64> {
        self.balance.checked_sub(self.held)
    }
}
