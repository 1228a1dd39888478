//! Two-phase holds: money reserved on an account (available drops, balance does not), then
//! captured (fully or partly; the rest is released) or voided — by the caller, or by the
//! system when the hold expires. How events change a hold: `evolve/hold.rs`.

use crate::ids::{AccountId, OwnerId};
use crate::money::Amount;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
