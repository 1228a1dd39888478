//! Every answer a command gets over HTTP: one typed struct per answer, from which the OpenAPI
//! document is derived too. Which outcome gets which answer is [`super::render`].

use super::problem::ApiError;
use crate::domain::Actor;
use chrono::{DateTime, Utc};
use events::{
    AccountId, AccountState, AccountStatus, Amount, Currency, HoldStatus, OrderRejection,
    OrderState, OrderStatus, OwnerId,
};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// An account as the command API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountAnswer {
    pub account_id: AccountId,
    pub owner_id: OwnerId,
    pub currency: Currency,
    /// Minor units; as low as `-overdraft_limit`.
    pub balance: i64,
    /// Minor units reserved by holds.
    #[schema(minimum = 0)]
    pub held: i64,
    /// `balance - held`.
    #[schema(value_type = i64)]
    pub available: Option<i64>,
    #[schema(minimum = 0)]
    pub overdraft_limit: i64,
    /// 1 after opening, +1 per change: gapless.
    #[schema(minimum = 1)]
    pub version: u64,
    pub status: AccountStatus,
    pub job_id: Uuid,
}

/// A deposit or withdrawal done.
#[derive(Debug, Serialize, ToSchema)]
pub struct MovementAnswer {
    pub job_id: Uuid,
    pub account_id: AccountId,
    pub amount: Amount,
    pub currency: Currency,
    pub balance: i64,
    #[schema(value_type = i64)]
    pub available: Option<i64>,
    #[schema(minimum = 1)]
    pub version: u64,
}

/// A transfer done: both legs committed together.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransferAnswer {
    pub transfer_id: Uuid,
    pub job_id: Uuid,
    pub amount: Amount,
    pub currency: Currency,
    pub from: TransferFrom,
    pub to: TransferTo,
}

/// The sending account after the transfer.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransferFrom {
    pub account_id: AccountId,
    pub balance: i64,
    #[schema(value_type = i64)]
    pub available: Option<i64>,
    #[schema(minimum = 1)]
    pub version: u64,
}

/// The receiving account after the transfer; its balance only for callers who may see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransferTo {
    pub account_id: AccountId,
    #[schema(minimum = 1)]
    pub version: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, value_type = i64)]
    pub balance: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, value_type = i64)]
    pub available: Option<Option<i64>>,
}

/// A reversal done: money of a transfer moved back from its receiver (`from`) to its sender
/// (`to`), all three messages committed together.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReversalAnswer {
    /// The reversal's id (also its job's).
    pub reversal_id: Uuid,
    pub transfer_id: Uuid,
    /// Moved back now.
    pub amount: Amount,
    pub currency: Currency,
    /// Moved back by every reversal of the transfer so far (at most its amount).
    #[schema(minimum = 1)]
    pub reversed_total: i64,
    /// The transfer's receiver, whose money went back.
    pub from: TransferFrom,
    /// The transfer's sender; its balance only for callers who may see it.
    pub to: TransferTo,
}

/// A refund done: money of a paid order given back to its account.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefundAnswer {
    pub order_id: Uuid,
    pub job_id: Uuid,
    /// Given back now.
    pub amount: Amount,
    /// Given back by every refund of the order so far (at most its amount).
    #[schema(minimum = 1)]
    pub refunded_total: i64,
    pub status: OrderStatus,
    /// The order's account after the refund.
    pub account: TransferFrom,
}

/// The answer to `POST /v1/transfers/batch`: a result per transfer, in the request's order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkAnswer {
    pub results: Vec<BulkResult>,
    /// Transfers committed.
    #[schema(minimum = 0)]
    pub committed: usize,
    /// Transfers not committed: refused, or (status 409 or 503) not decided — resend the
    /// request with the same `Idempotency-Key` to settle those.
    #[schema(minimum = 0)]
    pub rejected: usize,
}

/// One transfer of a batch: committed (status 201, the transfer's answer) or not (the
/// problem's status, code and detail).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum BulkResult {
    Committed(BulkCommitted),
    Rejected(BulkRejected),
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkCommitted {
    /// The transfer's index in the request.
    #[schema(minimum = 0)]
    pub index: usize,
    /// 201.
    #[schema(minimum = 201, maximum = 201)]
    pub status: u16,
    #[serde(flatten)]
    pub transfer: TransferAnswer,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkRejected {
    /// The transfer's index in the request.
    #[schema(minimum = 0)]
    pub index: usize,
    /// The status a single transfer would have been answered with.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    /// The problem's stable code (`insufficient_funds`, `account_not_found`, …).
    pub code: String,
    pub detail: String,
}

impl BulkRejected {
    pub fn new(index: usize, problem: &ApiError) -> Self {
        Self {
            index,
            status: problem.status.as_u16(),
            code: problem.code.to_owned(),
            detail: problem.detail.clone(),
        }
    }
}

/// A hold after a change, with its account.
#[derive(Debug, Serialize, ToSchema)]
pub struct HoldAnswer {
    pub hold_id: Uuid,
    pub job_id: Uuid,
    pub account_id: AccountId,
    /// What the hold reserves.
    pub amount: Amount,
    /// What was taken when captured; 0 otherwise.
    #[schema(minimum = 0)]
    pub captured: i64,
    pub status: HoldStatus,
    /// When the system voids the hold; `null`: never.
    pub expires_at: Option<DateTime<Utc>>,
    pub balance: i64,
    #[schema(minimum = 0)]
    pub held: i64,
    #[schema(value_type = i64)]
    pub available: Option<i64>,
    #[schema(minimum = 1)]
    pub version: u64,
}

/// An order, placed: the payment executor pays or rejects it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderAnswer {
    pub order_id: Uuid,
    pub job_id: Uuid,
    pub account_id: AccountId,
    pub amount: Amount,
    pub status: OrderStatus,
    /// Why the order was rejected (only on a replay after the executor rejected it).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, value_type = OrderRejection)]
    pub reason: Option<OrderRejection>,
}

/// A balance batch, journaled: a job per item, applied by the batch executor.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchAnswer {
    pub batch_id: Uuid,
    pub jobs: Vec<BatchJob>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchJob {
    pub job_id: Uuid,
    pub account_id: AccountId,
    pub status: QueuedStatus,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueuedStatus {
    Queued,
}

/// What an idempotency record keeps of a balance batch's answer: the batch only (a
/// 100,000-job list would not fit a message); the jobs follow from the batch id and the
/// accounts, so a replay lists the same ones. Never sent as it is.
#[derive(Debug, Serialize)]
pub struct BatchRecorded {
    pub batch_id: Uuid,
    pub items: usize,
    pub job_id: Uuid,
}

impl AccountAnswer {
    pub fn new(account_id: &AccountId, state: &AccountState, job_id: Uuid) -> Self {
        Self {
            account_id: account_id.clone(),
            owner_id: state.owner_id.clone(),
            currency: state.currency,
            balance: state.balance,
            held: state.held,
            available: state.available(),
            overdraft_limit: state.overdraft_limit,
            version: state.version,
            status: state.status,
            job_id,
        }
    }
}

impl TransferFrom {
    /// An account a command moved money on, shown whole (the caller acts on it).
    pub fn new((account_id, state): &(AccountId, AccountState)) -> Self {
        Self {
            account_id: account_id.clone(),
            balance: state.balance,
            available: state.available(),
            version: state.version,
        }
    }
}

impl TransferTo {
    /// The other account of a transfer or reversal: its balance only for a caller who may
    /// see it (a transfer must not reveal another owner's money).
    pub fn new(actor: &Actor, (account_id, state): &(AccountId, AccountState)) -> Self {
        let visible = actor.may_act_on(state);
        Self {
            account_id: account_id.clone(),
            version: state.version,
            balance: visible.then_some(state.balance),
            available: visible.then(|| state.available()),
        }
    }
}

impl OrderAnswer {
    pub fn new(order_id: Uuid, state: &OrderState, job_id: Uuid) -> Self {
        Self {
            order_id,
            job_id,
            account_id: state.account_id.clone(),
            amount: state.amount,
            status: state.status,
            reason: state.reason,
        }
    }
}
