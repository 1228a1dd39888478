//! How the write side's own errors become problems (the problem type itself is
//! `http_edge::ApiError`).

use crate::domain::DomainError;
use crate::writer::{Rejection, WriteFailure};
use axum::http::StatusCode;
pub use http_edge::ApiError;

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let (status, code) = match &e {
            DomainError::AccountNotFound(_) => (StatusCode::NOT_FOUND, "account_not_found"),
            DomainError::AccountExists(_) => (StatusCode::CONFLICT, "account_exists"),
            DomainError::InsufficientFunds { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "insufficient_funds")
            }
            DomainError::CurrencyMismatch { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "currency_mismatch")
            }
            DomainError::SameAccount => (StatusCode::UNPROCESSABLE_ENTITY, "same_account"),
            DomainError::BalanceOverflow(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "balance_overflow")
            }
            DomainError::OrderExists(_) => (StatusCode::CONFLICT, "order_exists"),
            DomainError::OrderNotFound(_) => (StatusCode::NOT_FOUND, "order_not_found"),
            DomainError::HoldNotFound(_) => (StatusCode::NOT_FOUND, "hold_not_found"),
            DomainError::BatchExists(_) => (StatusCode::CONFLICT, "batch_exists"),
            DomainError::HoldExists(_) => (StatusCode::CONFLICT, "hold_exists"),
            DomainError::HoldFinal(_) => (StatusCode::CONFLICT, "hold_not_active"),
            DomainError::HoldExpired(_) => (StatusCode::CONFLICT, "hold_expired"),
            DomainError::CaptureExceedsHold { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "capture_exceeds_hold")
            }
        };
        Self::new(status, code, e.to_string())
    }
}

impl From<Rejection> for ApiError {
    fn from(rejection: Rejection) -> Self {
        match rejection {
            Rejection::Domain(e) => e.into(),
            Rejection::IdempotencyKeyReused => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                rejection.to_string(),
            ),
        }
    }
}

impl From<WriteFailure> for ApiError {
    fn from(failure: WriteFailure) -> Self {
        match failure {
            WriteFailure::Conflict => Self::new(
                StatusCode::CONFLICT,
                "conflict",
                "the accounts were being changed concurrently; retry the request",
            )
            .retry_after(1),
            WriteFailure::Overloaded => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "too many commands are waiting; retry shortly",
            )
            .retry_after(1),
            WriteFailure::Unavailable(reason) => {
                tracing::error!(%reason, "command not completed");
                Self::unavailable(
                    "the journal did not confirm the command; retry with the same Idempotency-Key",
                )
            }
        }
    }
}
