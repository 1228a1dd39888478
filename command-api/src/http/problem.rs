//! The write side's own kinds of problem, and how its errors become problems (the problem
//! type itself is `http_edge::ApiError`). Each kind is spelled once here; the handlers list
//! the kinds each operation may answer with (`http_edge::problems!`), so the document reads
//! the statuses the code gives.

use crate::domain::DomainError;
use crate::writer::{Rejection, WriteFailure};
use axum::http::StatusCode;
pub use http_edge::ApiError;
pub use http_edge::problem::{
    ACCOUNT_NOT_FOUND, FORBIDDEN, INVALID_AMOUNT, ProblemKind, UNAVAILABLE,
};

const fn kind(status: StatusCode, code: &'static str, meaning: &'static str) -> ProblemKind {
    ProblemKind::new(status, code, meaning)
}

pub const ACCOUNT_EXISTS: ProblemKind = kind(
    StatusCode::CONFLICT,
    "account_exists",
    "the account is open with another owner, currency or limit",
);
pub const INSUFFICIENT_FUNDS: ProblemKind = kind(
    StatusCode::UNPROCESSABLE_ENTITY,
    "insufficient_funds",
    "the account's available balance (with its overdraft limit) does not cover the amount",
);
pub const CURRENCY_MISMATCH: ProblemKind = kind(
    StatusCode::UNPROCESSABLE_ENTITY,
    "currency_mismatch",
    "the currency named is not the account's",
);
pub const SAME_ACCOUNT: ProblemKind = kind(
    StatusCode::UNPROCESSABLE_ENTITY,
    "same_account",
    "a transfer's two accounts are one",
);
pub const BALANCE_OVERFLOW: ProblemKind = kind(
    StatusCode::UNPROCESSABLE_ENTITY,
    "balance_overflow",
    "the balance would leave the range an amount may have",
);
pub const ORDER_EXISTS: ProblemKind = kind(
    StatusCode::CONFLICT,
    "order_exists",
    "an order with this id was placed already",
);
pub const ORDER_NOT_FOUND: ProblemKind =
    kind(StatusCode::NOT_FOUND, "order_not_found", "no such order");
pub const TRANSFER_NOT_FOUND: ProblemKind = kind(
    StatusCode::NOT_FOUND,
    "transfer_not_found",
    "no such transfer that the caller may reverse",
);
pub const REVERSAL_EXCEEDS_TRANSFER: ProblemKind = kind(
    StatusCode::UNPROCESSABLE_ENTITY,
    "reversal_exceeds_transfer",
    "the amount is more than what is left of the transfer to reverse",
);
pub const ORDER_NOT_PAID: ProblemKind = kind(
    StatusCode::CONFLICT,
    "order_not_paid",
    "the order was not paid (new or rejected): there is nothing to refund",
);
pub const REFUND_EXCEEDS_CHARGE: ProblemKind = kind(
    StatusCode::UNPROCESSABLE_ENTITY,
    "refund_exceeds_charge",
    "the amount is more than what is left of the order's charge to refund",
);
pub const HOLD_NOT_FOUND: ProblemKind = kind(
    StatusCode::NOT_FOUND,
    "hold_not_found",
    "no such hold on this account",
);
pub const BATCH_EXISTS: ProblemKind = kind(
    StatusCode::CONFLICT,
    "batch_exists",
    "a batch with this id was submitted already",
);
pub const HOLD_EXISTS: ProblemKind = kind(
    StatusCode::CONFLICT,
    "hold_exists",
    "a hold with this id was placed already",
);
pub const HOLD_NOT_ACTIVE: ProblemKind = kind(
    StatusCode::CONFLICT,
    "hold_not_active",
    "the hold was captured or voided already",
);
pub const HOLD_EXPIRED: ProblemKind = kind(
    StatusCode::CONFLICT,
    "hold_expired",
    "the hold's time ran out",
);
pub const CAPTURE_EXCEEDS_HOLD: ProblemKind = kind(
    StatusCode::UNPROCESSABLE_ENTITY,
    "capture_exceeds_hold",
    "the amount to capture is more than the hold's",
);
pub const IDEMPOTENCY_KEY_REUSED: ProblemKind = kind(
    StatusCode::UNPROCESSABLE_ENTITY,
    "idempotency_key_reused",
    "the Idempotency-Key was used with another request",
);
pub const CONFLICT: ProblemKind = kind(
    StatusCode::CONFLICT,
    "conflict",
    "the accounts were changed concurrently; retry (Retry-After)",
)
.retried();
pub const BATCH_TOO_LARGE: ProblemKind = kind(
    StatusCode::BAD_REQUEST,
    "batch_too_large",
    "the request holds more items than one request may (the limit is in `detail`)",
);
/// Every command may meet it: the writer's queue is full.
pub const OVERLOADED: ProblemKind = kind(
    StatusCode::SERVICE_UNAVAILABLE,
    "overloaded",
    "too many commands are waiting; retry shortly",
)
.retried();

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let kind = match &e {
            // An atomic batch answers as its first rejected item would, naming the item.
            DomainError::BulkItemRejected { error, .. } => {
                let item = Self::from(error.as_ref().clone());
                return Self {
                    detail: e.to_string(),
                    ..item
                };
            }
            DomainError::AccountNotFound(_) => ACCOUNT_NOT_FOUND,
            DomainError::AccountExists(_) => ACCOUNT_EXISTS,
            DomainError::InsufficientFunds { .. } => INSUFFICIENT_FUNDS,
            DomainError::CurrencyMismatch { .. } => CURRENCY_MISMATCH,
            DomainError::SameAccount => SAME_ACCOUNT,
            DomainError::BalanceOverflow(_) => BALANCE_OVERFLOW,
            DomainError::OrderExists(_) => ORDER_EXISTS,
            DomainError::OrderNotFound(_) => ORDER_NOT_FOUND,
            DomainError::HoldNotFound(_) => HOLD_NOT_FOUND,
            DomainError::TransferNotFound(_) => TRANSFER_NOT_FOUND,
            DomainError::ReversalExceedsTransfer { .. } => REVERSAL_EXCEEDS_TRANSFER,
            DomainError::OrderNotPaid(_) => ORDER_NOT_PAID,
            DomainError::RefundExceedsCharge { .. } => REFUND_EXCEEDS_CHARGE,
            DomainError::BatchExists(_) => BATCH_EXISTS,
            DomainError::HoldExists(_) => HOLD_EXISTS,
            DomainError::HoldFinal(_) => HOLD_NOT_ACTIVE,
            DomainError::HoldExpired(_) => HOLD_EXPIRED,
            DomainError::CaptureExceedsHold { .. } => CAPTURE_EXCEEDS_HOLD,
        };
        Self::new(kind, e.to_string())
    }
}

impl From<Rejection> for ApiError {
    fn from(rejection: Rejection) -> Self {
        match rejection {
            Rejection::Domain(e) => e.into(),
            Rejection::IdempotencyKeyReused => {
                Self::new(IDEMPOTENCY_KEY_REUSED, rejection.to_string())
            }
        }
    }
}

impl From<WriteFailure> for ApiError {
    fn from(failure: WriteFailure) -> Self {
        match failure {
            WriteFailure::Conflict => Self::new(
                CONFLICT,
                "the accounts were being changed concurrently; retry the request",
            ),
            WriteFailure::Overloaded => {
                Self::new(OVERLOADED, "too many commands are waiting; retry shortly")
            }
            WriteFailure::Unavailable(reason) => {
                tracing::error!(%reason, "command not completed");
                Self::unavailable(
                    "the journal did not confirm the command; retry with the same Idempotency-Key",
                )
            }
        }
    }
}

impl From<crate::lookup::LookupError> for ApiError {
    fn from(e: crate::lookup::LookupError) -> Self {
        if let crate::lookup::LookupError::Busy = e {
            tracing::warn!(error = %e, "a transfer look-up was refused");
            return Self::unavailable(
                "too many transfer look-ups are reading the journal; retry shortly",
            )
            .retry_after(1);
        }
        tracing::error!(error = %e, "reading the journal failed");
        Self::unavailable("the journal could not be read; retry shortly")
    }
}
