//! Every answer a command gets over HTTP: one typed struct per answer (the OpenAPI document is
//! derived from the same structs) and [`render`], the one place that turns a command's
//! [`Outcome`] into its answer.
//!
//! The writer journals a rendered answer with each idempotency record, so the HTTP layer
//! installs [`render`] when it starts the writer (ADR 0011); fresh answers are rendered here
//! too, at the edge.

use super::problem::ApiError;
use crate::domain::{Actor, Outcome};
use crate::writer::Rendered;
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
    #[schema(value_type = AccountStatusSchema)]
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
    #[schema(value_type = HoldStatusSchema)]
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
    #[schema(value_type = OrderStatusSchema)]
    pub status: OrderStatus,
    /// Why the order was rejected (only on a replay after the executor rejected it).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, value_type = OrderRejectionSchema)]
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

/// The statuses of the events crate's enums, for the document: they serialize as these
/// snake_case names.
#[derive(Debug, ToSchema)]
#[schema(as = AccountStatus, rename_all = "snake_case")]
#[allow(dead_code)]
pub enum AccountStatusSchema {
    Open,
}

#[derive(Debug, ToSchema)]
#[schema(as = HoldStatus, rename_all = "snake_case")]
#[allow(dead_code)]
pub enum HoldStatusSchema {
    Placed,
    Captured,
    Voided,
}

#[derive(Debug, ToSchema)]
#[schema(as = OrderStatus, rename_all = "snake_case")]
#[allow(dead_code)]
pub enum OrderStatusSchema {
    New,
    Paid,
    Rejected,
}

#[derive(Debug, ToSchema)]
#[schema(as = OrderRejection, rename_all = "snake_case")]
#[allow(dead_code)]
pub enum OrderRejectionSchema {
    AccountNotFound,
    InsufficientFunds,
    CurrencyMismatch,
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

/// The answer to a command's outcome: its HTTP status and JSON body. The receiver's balance
/// of a transfer is shown only to those who may see that account: a transfer must not reveal
/// another owner's money.
pub fn render(actor: &Actor, outcome: &Outcome, job_id: Uuid) -> Rendered {
    match outcome {
        Outcome::AccountOpened {
            created,
            account_id,
            state,
        } => rendered(
            if *created { 201 } else { 200 },
            AccountAnswer::new(account_id, state, job_id),
        ),
        Outcome::FundsMoved {
            account_id,
            amount,
            state,
        } => rendered(
            201,
            MovementAnswer {
                job_id,
                account_id: account_id.clone(),
                amount: *amount,
                currency: state.currency,
                balance: state.balance,
                available: state.available(),
                version: state.version,
            },
        ),
        Outcome::Transferred { .. } => match transfer_answer(actor, outcome, job_id) {
            Some(answer) => rendered(201, answer),
            None => mismatched(outcome),
        },
        Outcome::TransfersBatched { atomic, items } => {
            let mut results = Vec::with_capacity(items.len());
            for item in items {
                results.push(match &item.result {
                    Ok(transferred) => match transfer_answer(actor, transferred, job_id) {
                        Some(transfer) => BulkResult::Committed(BulkCommitted {
                            index: item.index,
                            status: 201,
                            transfer,
                        }),
                        None => return mismatched(transferred),
                    },
                    Err(e) => BulkResult::Rejected(BulkRejected::new(
                        item.index,
                        &ApiError::from(e.clone()),
                    )),
                });
            }
            let committed = items.iter().filter(|i| i.result.is_ok()).count();
            let answer = BulkAnswer {
                results,
                committed,
                rejected: items.len() - committed,
            };
            rendered(if *atomic { 201 } else { 200 }, answer)
        }
        Outcome::HoldChanged {
            hold_id,
            hold,
            account_id,
            account,
        } => rendered(
            201,
            HoldAnswer {
                hold_id: *hold_id,
                job_id,
                account_id: account_id.clone(),
                amount: hold.amount,
                captured: hold.captured,
                status: hold.status,
                expires_at: hold.expires_at,
                balance: account.balance,
                held: account.held,
                available: account.available(),
                version: account.version,
            },
        ),
        Outcome::OrderPlaced {
            order_id, state, ..
        } => rendered(202, OrderAnswer::new(*order_id, state, job_id)),
        Outcome::BatchSubmitted { batch_id, items } => rendered(
            202,
            BatchRecorded {
                batch_id: *batch_id,
                items: *items,
                job_id,
            },
        ),
        // The executors' commands: never answered over HTTP, never journaled with a record.
        other @ (Outcome::OrderDecided { .. }
        | Outcome::JobFailed { .. }
        | Outcome::BatchPartApplied { .. }) => mismatched(other),
    }
}

/// A transfer's answer, if `outcome` is a transfer.
fn transfer_answer(actor: &Actor, outcome: &Outcome, job_id: Uuid) -> Option<TransferAnswer> {
    let Outcome::Transferred {
        transfer_id,
        amount,
        from,
        to,
    } = outcome
    else {
        return None;
    };
    let visible = actor.may_act_on(&to.1);
    Some(TransferAnswer {
        transfer_id: *transfer_id,
        job_id,
        amount: *amount,
        currency: from.1.currency,
        from: TransferFrom {
            account_id: from.0.clone(),
            balance: from.1.balance,
            available: from.1.available(),
            version: from.1.version,
        },
        to: TransferTo {
            account_id: to.0.clone(),
            version: to.1.version,
            balance: visible.then_some(to.1.balance),
            available: visible.then(|| to.1.available()),
        },
    })
}

fn rendered(status: u16, answer: impl Serialize) -> Rendered {
    match serde_json::to_value(answer) {
        Ok(body) => Rendered { status, body },
        Err(e) => {
            tracing::error!(error = %e, "an answer does not serialize");
            internal()
        }
    }
}

/// An outcome no HTTP command has: a programming error, answered as a 500 rather than a
/// panic in the writer.
fn mismatched(outcome: &Outcome) -> Rendered {
    tracing::error!(?outcome, "no HTTP answer for this outcome");
    internal()
}

/// The opaque 500 problem.
fn internal() -> Rendered {
    let problem = http_edge::Problem {
        problem_type: "about:blank",
        title: "Internal Server Error",
        status: 500,
        detail: "an internal error occurred".to_owned(),
        code: "internal",
    };
    Rendered {
        status: 500,
        body: serde_json::to_value(problem).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests;
