//! The transfer aggregate: a transfer's facts once it has been reversed, on
//! `ledger.transfer.<transfer_id>`. A transfer itself is journaled as two account messages
//! only (`transfer_sent`, `transfer_received`); its own subject is written first by its first
//! reversal, with the facts the command side found in the journal (ADR 0018). How events
//! change it: `evolve/transfer.rs`.

use crate::ids::AccountId;
use crate::money::{Amount, Currency};
use serde::{Deserialize, Serialize};

/// A transfer's facts and how much of it has been reversed, carried by every
/// `transfer_reversed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferState {
    /// 0 for a transfer never reversed (its subject is empty), +1 per reversal.
    pub version: u64,
    /// The account the transfer debited (a reversal credits it).
    pub from_account_id: AccountId,
    /// The account the transfer credited (a reversal debits it).
    pub to_account_id: AccountId,
    /// The transfer's amount: what all its reversals together may reach.
    pub amount: Amount,
    pub currency: Currency,
    /// Minor units moved back so far (0 ..= amount).
    pub reversed_total: i64,
}

impl TransferState {
    /// The transfer as journaled, before any reversal.
    pub fn unreversed(
        from_account_id: AccountId,
        to_account_id: AccountId,
        amount: Amount,
        currency: Currency,
    ) -> Self {
        Self {
            version: 0,
            from_account_id,
            to_account_id,
            amount,
            currency,
            reversed_total: 0,
        }
    }

    /// What may still be reversed (0 once fully reversed).
    pub fn remaining(&self) -> i64 {
        self.amount
            .minor_units()
            .saturating_sub(self.reversed_total)
    }
}
