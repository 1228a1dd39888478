//! Per-principal rate limit: a token bucket per caller, keyed by the bearer token's verified
//! `sub`, else (no token, or one that does not verify) by the client's IP address. Over the
//! limit → `429 rate_limited` with `Retry-After`.
//!
//! The key is taken from a *verified* token only: an unverified `sub` would let a client
//! spend someone else's bucket, or dodge its own by inventing subjects.

use crate::auth::Auth;
use crate::problem::{ApiError, RATE_LIMITED};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, header};
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tower_governor::GovernorError;
use tower_governor::GovernorLayer;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::KeyExtractor;

/// How often buckets that have refilled are forgotten, so that memory follows the callers of
/// the last minute rather than every caller ever seen.
const FORGET_FULL_BUCKETS_EVERY: Duration = Duration::from_secs(60);

/// A token bucket per caller: `per_second` tokens a second, holding at most `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests a second per caller; 0 turns the limit off.
    pub per_second: u32,
    /// Requests a caller may send at once after being idle.
    pub burst: u32,
}

impl RateLimit {
    pub const OFF: Self = Self {
        per_second: 0,
        burst: 0,
    };

    pub fn is_off(&self) -> bool {
        self.per_second == 0 || self.burst == 0
    }
}

/// Who a request counts against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CallerKey {
    /// A verified token's `sub`.
    Principal(String),
    /// The peer address, for requests without a valid token.
    Address(IpAddr),
    /// Neither (a request that did not come over a socket, as in some tests).
    Unknown,
}

/// Finds the [`CallerKey`] of a request.
#[derive(Debug, Clone)]
pub struct CallerKeyExtractor {
    auth: Auth,
}

impl KeyExtractor for CallerKeyExtractor {
    type Key = CallerKey;

    fn extract<T>(&self, request: &Request<T>) -> Result<CallerKey, GovernorError> {
        let verified = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(|token| self.auth.verify(token.trim()).ok());
        if let Some(caller) = verified {
            return Ok(CallerKey::Principal(caller.principal.as_str().to_owned()));
        }
        Ok(request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(CallerKey::Unknown, |ConnectInfo(addr)| {
                CallerKey::Address(addr.ip())
            }))
    }
}

/// `router` with `limit` enforced on every route (unchanged when the limit is off).
pub fn apply<S>(router: Router<S>, limit: RateLimit, auth: Auth) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    if limit.is_off() {
        return router;
    }
    // tower_governor's `per_second(n)` means one token every n seconds; the period between
    // two tokens is what it needs.
    let period = Duration::from_nanos(1_000_000_000 / u64::from(limit.per_second))
        .max(Duration::from_nanos(1));
    let config = GovernorConfigBuilder::default()
        .key_extractor(CallerKeyExtractor { auth })
        .period(period)
        .burst_size(limit.burst)
        .finish();
    let Some(config) = config else {
        return router;
    };
    let limiter: Weak<_> = Arc::downgrade(config.limiter());
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(FORGET_FULL_BUCKETS_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(limiter) = limiter.upgrade() else {
                    return;
                };
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        });
    }
    router.layer(GovernorLayer::new(config).error_handler(too_many_requests))
}

fn too_many_requests(error: GovernorError) -> Response<Body> {
    match error {
        GovernorError::TooManyRequests { wait_time, .. } => {
            // The limiter rounds the wait down to whole seconds; rounding up instead means a
            // client that honours Retry-After is served on its next try.
            let seconds = u32::try_from(wait_time.saturating_add(1)).unwrap_or(u32::MAX);
            ApiError::new(
                RATE_LIMITED,
                "too many requests from this caller; retry after the time in Retry-After",
            )
            .retry_after(seconds)
            .into_response()
        }
        other => ApiError::internal(&other).into_response(),
    }
}
