//! Extractors whose rejections are [`ApiError`] problems rather than axum's plain text.

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
