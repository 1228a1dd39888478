//! `ApiError`: every failure as an RFC 9457 problem (`application/problem+json`) with a stable
//! `code`. Handlers use `?`; `From` impls (here for shared types, in each service for its own)
//! decide the kind of problem.
//!
//! Each kind of problem — status, code and meaning — is a [`ProblemKind`] constant, spelled
//! once: the answer reads it, and so do the OpenAPI documents (`openapi::problem_answers`),
//! which therefore cannot promise a status the code does not give. The kinds every API may
//! answer with are here; each service declares its own beside the errors they render.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use events::{AmountError, IdError, money::CurrencyError};
use serde::Serialize;
use utoipa::ToSchema;

/// One kind of problem: what the client branches on (`status`, `code`) and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemKind {
    pub status: StatusCode,
    /// Stable, machine-readable: clients branch on this, never on `detail`.
    pub code: &'static str,
    /// When an API answers with it, for the documents.
    pub meaning: &'static str,
    /// The answer says when to retry (`Retry-After`): the request may succeed later as it is.
    pub retry: bool,
}

impl ProblemKind {
    pub const fn new(status: StatusCode, code: &'static str, meaning: &'static str) -> Self {
        Self {
            status,
            code,
            meaning,
            retry: false,
        }
    }

    /// The same kind, answered with `Retry-After`.
    pub const fn retried(self) -> Self {
        Self {
            retry: true,
            ..self
        }
    }
}

pub const INVALID_REQUEST: ProblemKind = ProblemKind::new(
    StatusCode::BAD_REQUEST,
    "invalid_request",
    "the request is malformed: path, query, header or body (`invalid_account_id`, \
     `invalid_amount` and `invalid_currency` name the field)",
);
pub const INVALID_ACCOUNT_ID: ProblemKind = ProblemKind::new(
    StatusCode::BAD_REQUEST,
    "invalid_account_id",
    "an account id is not 1 to 64 of A-Z, a-z, 0-9, `_` and `-`",
);
pub const INVALID_AMOUNT: ProblemKind = ProblemKind::new(
    StatusCode::BAD_REQUEST,
    "invalid_amount",
    "an amount is not an integer number of minor units in range",
);
pub const INVALID_CURRENCY: ProblemKind = ProblemKind::new(
    StatusCode::BAD_REQUEST,
    "invalid_currency",
    "a currency is not three capital letters (ISO 4217)",
);
pub const UNAUTHORIZED: ProblemKind = ProblemKind::new(
    StatusCode::UNAUTHORIZED,
    "unauthorized",
    "no bearer token, or one that is not valid or has expired",
);
pub const FORBIDDEN: ProblemKind = ProblemKind::new(
    StatusCode::FORBIDDEN,
    "forbidden",
    "only an admin may do this (for someone else, or at all)",
);
pub const NOT_FOUND: ProblemKind =
    ProblemKind::new(StatusCode::NOT_FOUND, "not_found", "no such resource");
/// Both APIs answer it, and alike: another owner's account is as absent as a missing one, so
/// that existence does not leak.
pub const ACCOUNT_NOT_FOUND: ProblemKind = ProblemKind::new(
    StatusCode::NOT_FOUND,
    "account_not_found",
    "no such account, or not the caller's",
);
pub const METHOD_NOT_ALLOWED: ProblemKind = ProblemKind::new(
    StatusCode::METHOD_NOT_ALLOWED,
    "method_not_allowed",
    "this resource does not support that method",
);
pub const PAYLOAD_TOO_LARGE: ProblemKind = ProblemKind::new(
    StatusCode::PAYLOAD_TOO_LARGE,
    "payload_too_large",
    "the body is larger than the limit",
);
pub const UNSUPPORTED_MEDIA_TYPE: ProblemKind = ProblemKind::new(
    StatusCode::UNSUPPORTED_MEDIA_TYPE,
    "unsupported_media_type",
    "the body is not sent as application/json",
);
pub const RATE_LIMITED: ProblemKind = ProblemKind::new(
    StatusCode::TOO_MANY_REQUESTS,
    "rate_limited",
    "the caller (the token's sub, else the client address) sent too many requests",
)
.retried();
pub const INTERNAL: ProblemKind = ProblemKind::new(
    StatusCode::INTERNAL_SERVER_ERROR,
    "internal",
    "a failure of the service; the body carries no detail",
);
pub const UNAVAILABLE: ProblemKind = ProblemKind::new(
    StatusCode::SERVICE_UNAVAILABLE,
    "unavailable",
    "the service cannot answer now (a dependency is down, or the request took too long)",
)
.retried();

/// A problem to answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable, machine-readable: clients branch on this, never on `detail`.
    pub code: &'static str,
    pub detail: String,
    /// Seconds to wait before retrying (`Retry-After`), for 409/429/503.
    pub retry_after_s: Option<u32>,
}

impl ApiError {
    /// A problem of `kind`; one that says to retry does so after a second unless told
    /// otherwise ([`Self::retry_after`]).
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            status: kind.status,
            code: kind.code,
            detail: detail.into(),
            retry_after_s: kind.retry.then_some(1),
        }
    }

    pub fn invalid_request(detail: impl Into<String>) -> Self {
        Self::new(INVALID_REQUEST, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(UNAUTHORIZED, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(FORBIDDEN, detail)
    }

    pub fn not_found() -> Self {
        Self::new(NOT_FOUND, NOT_FOUND.meaning)
    }

    pub fn method_not_allowed() -> Self {
        Self::new(METHOD_NOT_ALLOWED, METHOD_NOT_ALLOWED.meaning)
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(UNAVAILABLE, detail)
    }

    /// A failure that is ours, not the client's: the cause goes to the log, never the body.
    pub fn internal(cause: &dyn std::error::Error) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(INTERNAL, "an internal error occurred")
    }

    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after_s = Some(seconds);
        self
    }
}

/// The body of every error answer (`application/problem+json`, RFC 9457), as it goes on the
/// wire and as the OpenAPI documents describe it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"type": "about:blank", "title": "Unprocessable Entity", "status": 422,
    "detail": "account alice has 450 available, 999999 requested", "code": "insufficient_funds"}))]
pub struct Problem {
    /// Always `about:blank`: `code` carries the meaning.
    #[serde(rename = "type")]
    #[schema(example = "about:blank")]
    pub problem_type: &'static str,
    /// The HTTP status's reason phrase.
    pub title: &'static str,
    /// The HTTP status, repeated.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    /// For people; never parse it.
    pub detail: String,
    /// Stable and machine-readable (`invalid_request`, `account_not_found`, `rate_limited`, …):
    /// clients branch on this.
    #[schema(pattern = "^[a-z_]+$")]
    pub code: &'static str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Problem {
            problem_type: "about:blank",
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            detail: self.detail,
            code: self.code,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after_s {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => Self::new(
                UNSUPPORTED_MEDIA_TYPE,
                "the body must be JSON, sent with Content-Type: application/json",
            ),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::new(PAYLOAD_TOO_LARGE, "the request body is too large")
            }
            other => Self::invalid_request(other.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::invalid_request(rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::invalid_request(rejection.body_text())
    }
}

impl From<IdError> for ApiError {
    fn from(e: IdError) -> Self {
        let kind = match e {
            IdError::AccountId => INVALID_ACCOUNT_ID,
            _ => INVALID_REQUEST,
        };
        Self::new(kind, e.to_string())
    }
}

impl From<AmountError> for ApiError {
    fn from(e: AmountError) -> Self {
        Self::new(INVALID_AMOUNT, e.to_string())
    }
}

impl From<CurrencyError> for ApiError {
    fn from(e: CurrencyError) -> Self {
        Self::new(INVALID_CURRENCY, e.to_string())
    }
}

/// Fallback for unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::not_found()
}

/// Fallback for known routes asked with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}
