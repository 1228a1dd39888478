//! Extractors whose rejections are [`ApiError`] problems rather than axum's plain text, and
//! the one reading of a page length that every listing takes.

use crate::problem::ApiError;
use axum::extract::{FromRequest, FromRequestParts};

/// A JSON body (syntax, content type and size rejections are problems).
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// A path parameter.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// Query parameters (unknown or malformed ones are problems).
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// How many items a listing returns per page: `default` when the client does not say, at most
/// `max` (each listing bounds its pages so that one request cannot ask for everything).
#[derive(Debug, Clone, Copy)]
pub struct PageLen {
    pub default: i64,
    pub max: i64,
}

impl PageLen {
    /// The client's page length (`raw`), checked: 1 ..= `max`.
    pub fn of(self, raw: Option<i64>) -> Result<i64, ApiError> {
        match raw {
            None => Ok(self.default),
            Some(n) if (1..=self.max).contains(&n) => Ok(n),
            Some(_) => Err(ApiError::invalid_request(format!(
                "page sizes are 1 to {}",
                self.max
            ))),
        }
    }
}
