//! The fields of each event, beside the envelope's in one flat JSON object.

use crate::account::AccountState;
use crate::batch::{BatchItem, BatchState, ItemRejected};
use crate::hold::HoldState;
use crate::ids::{AccountId, Metadata, OwnerId, Reference};
use crate::money::Amount;
use crate::order::OrderState;
use crate::transfer::TransferState;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `account_opened`: the state is the new account (version 1, balance 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountOpened {
    pub account_id: AccountId,
    pub state: AccountState,
}

/// `funds_deposited` / `funds_withdrawn`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountMovement {
    pub account_id: AccountId,
    pub amount: Amount,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    pub state: AccountState,
}

/// `transfer_sent` (on the sender) / `transfer_received` (on the receiver): the two legs of
/// one transfer, committed in one atomic batch. Also the two legs of a reversal,
/// `reversal_sent` (on the transfer's receiver, who pays back) / `reversal_received` (on its
/// sender): `transfer_id` names the transfer reversed, the envelope's `job_id` the reversal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferLeg {
    pub account_id: AccountId,
    pub transfer_id: Uuid,
    pub amount: Amount,
    /// The other side: the receiver on `transfer_sent`, the sender on `transfer_received`.
    pub counterparty_account_id: AccountId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    pub state: AccountState,
}

/// `order_placed` / `order_paid` / `order_rejected`, on `ledger.order.<order_id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderEvent {
    pub order_id: Uuid,
    pub state: OrderState,
}

/// `order_refunded`: money of a paid order given back, on `ledger.order.<order_id>`, committed
/// atomically with the account's `refund_credited`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderRefund {
    pub order_id: Uuid,
    /// Given back now; the state's `refunded_total` is the sum so far.
    pub amount: Amount,
    pub state: OrderState,
}

/// `transfer_reversed`: the transfer's side of a reversal, on `ledger.transfer.<transfer_id>`,
/// committed atomically with the two account legs. The first one creates the subject
/// (expected sequence 0) and carries the transfer's facts as found in the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferReversal {
    pub transfer_id: Uuid,
    /// Moved back now; the state's `reversed_total` is the sum so far.
    pub amount: Amount,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<Reference>,
    pub state: TransferState,
}

/// `order_charged` (and `refund_credited`, money of the order given back): the account's side of a paid order, committed atomically with
/// `order_paid`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderCharge {
    pub account_id: AccountId,
    pub order_id: Uuid,
    pub amount: Amount,
    pub state: AccountState,
}

/// `hold_placed` / `hold_captured` / `hold_voided`: journaled twice in one atomic batch — on
/// the account (with the account's post-state) and on `ledger.hold.<hold_id>` (with the hold's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldEvent {
    pub hold_id: Uuid,
    pub account_id: AccountId,
    /// The hold's whole amount: reserved when placed, released when captured or voided.
    pub hold_amount: Amount,
    /// Taken from the balance (captures only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    pub state: HoldSide,
}

/// Which aggregate a hold event's message belongs to, by its post-state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HoldSide {
    Account(AccountState),
    Hold(HoldState),
}

/// `batch_submitted`: one chunk (≤ 1000 items) of a balance batch, on `ledger.batch.<batch_id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchSubmitted {
    pub batch_id: Uuid,
    /// 0-based index of this chunk.
    pub chunk: u32,
    pub items: Vec<BatchItem>,
    pub state: BatchState,
}

/// `balance_set`: an account's balance set by a balance batch (history type `adjustment`). On
/// an account that does not exist it opens it (post-state version 1, `previous` 0): the
/// account's first event is then this one rather than `account_opened`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BalanceSet {
    pub account_id: AccountId,
    /// The balance asked for.
    pub balance: i64,
    /// The balance before (0 for an account the batch opened): the history's signed amount
    /// is `balance - previous`.
    pub previous: i64,
    pub batch_id: Uuid,
    /// The item's own job (the envelope's job is the batch part's).
    pub item_job_id: Uuid,
    pub state: AccountState,
}

/// `batch_part_applied`: the record that a part of a chunk was applied, committed in the same
/// atomic batch as the part's events with expected sequence 0 — a second attempt at the same
/// part fails its check and changes nothing. On `ledger.batch.<batch_id>.<chunk>.<part>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchPartApplied {
    pub batch_id: Uuid,
    pub chunk: u32,
    pub part: u32,
    pub applied: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<ItemRejected>,
}

/// `job_failed`: an executor gave up on a message (undecodable, or still failing after its
/// bounded retries). On `ledger.job.<job_id>` with expected sequence 0: recorded once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFailed {
    /// The job that failed (named apart from the envelope's own `job_id`, which the flat
    /// JSON already uses).
    pub failed_job_id: Uuid,
    /// The executor that gave up.
    pub executor: String,
    /// Where the message was: its subject and stream sequence.
    pub subject: String,
    pub seq: u64,
    pub code: String,
    pub detail: String,
}

/// `idempotency_recorded`: binds a caller's `Idempotency-Key` to the request it first came
/// with and the answer it got, forever.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdempotencyRecorded {
    pub principal: OwnerId,
    /// SHA-256 (hex) of method, path and canonical JSON body.
    pub fingerprint: String,
    /// The HTTP status of the original answer.
    pub status: u16,
    /// The original answer's body.
    pub response: serde_json::Value,
}
