//! Per-principal rate limit: a token bucket per caller, keyed by the bearer token's verified
//! `sub`, else (no token, or one that does not verify) by the client's IP address. Over the
//! limit → `429 rate_limited` with `Retry-After`.
//!
//! The key is taken from a *verified* token only: an unverified `sub` would let a client
//! spend someone else's bucket, or dodge its own by inventing subjects.
//!
//! Two classes of caller, each with its own quota (ADR 0015): people and the clients that act
//! for them (the default), and **service principals** — back-ends such as a payment service,
//! whose token says `role: "service"` — that call for many end users at once and need a
//! quota an order of magnitude larger. A service is still limited: a runaway back-end must
//! not take an instance's whole capacity.

use crate::auth::{Auth, Verified, bearer_token};
use crate::problem::{ApiError, RATE_LIMITED};
use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::IntoResponse;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often buckets that have refilled are forgotten, so that memory follows the callers of
/// the last minute rather than every caller ever seen.
const FORGET_FULL_BUCKETS_EVERY: Duration = Duration::from_secs(60);

/// The token buckets, as each API reads them from its command line or environment. Each
/// field is its flag's and its variable's name (`--rate-limit-burst`, `RATE_LIMIT_BURST`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct RateLimit {
    /// Sustained requests a second per caller (the token's `sub`, else the client address);
    /// 0 turns the limit off. Far above any person's client, low enough that one caller
    /// cannot take an instance's whole pool of connections.
    #[arg(long, env, default_value_t = 1_000)]
    pub rate_limit_per_second: u32,
    /// Requests a caller may send at once after being idle (the bucket's size).
    #[arg(long, env, default_value_t = 2_000)]
    pub rate_limit_burst: u32,
    /// Sustained requests a second per service principal (`role: "service"`); 0 turns their
    /// limit off. Twice what one instance commits on this project's reference machine (about
    /// 10,000 transfers a second), so that a back-end is limited by the ledger's capacity
    /// rather than by a quota, yet cannot monopolise a larger machine.
    #[arg(long, env, default_value_t = 20_000)]
    pub service_rate_limit_per_second: u32,
    /// A service principal's bucket size: a second's worth, twice over, for bursts such as a
    /// batch of payouts.
    #[arg(long, env, default_value_t = 40_000)]
    pub service_rate_limit_burst: u32,
}

impl RateLimit {
    pub const OFF: Self = Self {
        rate_limit_per_second: 0,
        rate_limit_burst: 0,
        service_rate_limit_per_second: 0,
        service_rate_limit_burst: 0,
    };

    pub fn is_off(&self) -> bool {
        self.callers().is_none() && self.services().is_none()
    }

    /// A person's bucket (`None`: not limited).
    fn callers(&self) -> Option<Quota> {
        quota(self.rate_limit_per_second, self.rate_limit_burst)
    }

    /// A service principal's bucket (`None`: not limited).
    fn services(&self) -> Option<Quota> {
        quota(
            self.service_rate_limit_per_second,
            self.service_rate_limit_burst,
        )
    }
}

/// `per_second` tokens a second, holding at most `burst`; `None` when either is 0 (no limit).
fn quota(per_second: u32, burst: u32) -> Option<Quota> {
    Some(Quota::per_second(NonZeroU32::new(per_second)?).allow_burst(NonZeroU32::new(burst)?))
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

/// The buckets of one class of caller (`None`: not limited).
type Buckets = Option<DefaultKeyedRateLimiter<CallerKey>>;

/// Both classes' buckets and the rules for telling callers apart.
struct Limiter {
    auth: Auth,
    callers: Buckets,
    services: Buckets,
}

impl Limiter {
    /// Who `request` counts against, and in which class's buckets. A verified caller is kept
    /// in the request's extensions for the handler's [`crate::auth::Caller`] extractor.
    fn key(&self, request: &mut Request) -> (CallerKey, &Buckets) {
        let verified = bearer_token(request.headers())
            .ok()
            .and_then(|token| self.auth.verify(token).ok());
        if let Some(caller) = verified {
            let key = CallerKey::Principal(caller.principal.as_str().to_owned());
            let buckets = if caller.service {
                &self.services
            } else {
                &self.callers
            };
            request.extensions_mut().insert(Verified(caller));
            return (key, buckets);
        }
        let address = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(CallerKey::Unknown, |ConnectInfo(addr)| {
                CallerKey::Address(addr.ip())
            });
        (address, &self.callers)
    }

    /// `Err(seconds to wait)` when the caller's bucket is empty.
    fn check(&self, request: &mut Request) -> Result<(), u32> {
        let (key, buckets) = self.key(request);
        let Some(buckets) = buckets else {
            return Ok(());
        };
        buckets.check_key(&key).map_err(|not_until| {
            // Whole seconds, rounded up: a client that honours Retry-After is served on its
            // next try.
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            u32::try_from(wait.as_secs().saturating_add(1)).unwrap_or(u32::MAX)
        })
    }

    fn forget_full_buckets(&self) {
        for buckets in [&self.callers, &self.services].into_iter().flatten() {
            buckets.retain_recent();
            buckets.shrink_to_fit();
        }
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
    let limiter = Arc::new(Limiter {
        auth,
        callers: limit.callers().map(RateLimiter::keyed),
        services: limit.services().map(RateLimiter::keyed),
    });
    let forgetting: Weak<Limiter> = Arc::downgrade(&limiter);
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(FORGET_FULL_BUCKETS_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(limiter) = forgetting.upgrade() else {
                    return;
                };
                limiter.forget_full_buckets();
            }
        });
    }
    router.layer(axum::middleware::from_fn(
        move |mut request: Request, next: Next| {
            let limiter = limiter.clone();
            async move {
                match limiter.check(&mut request) {
                    Ok(()) => next.run(request).await,
                    Err(seconds) => ApiError::new(
                        RATE_LIMITED,
                        "too many requests from this caller; retry after the time in Retry-After",
                    )
                    .retry_after(seconds)
                    .into_response(),
                }
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Caller, HasAuth};
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    const SECRET: &str = "a secret of at least thirty-two bytes, for tests";

    #[derive(Clone)]
    struct State(Auth);

    impl HasAuth for State {
        fn auth(&self) -> &Auth {
            &self.0
        }
    }

    /// The rate limit (verifying with `limit`'s keys) in front of a handler that answers with
    /// the caller it was given (its extractor verifying with `handler`'s keys).
    fn app(limit: &Auth, handler: &Auth) -> Router {
        let router = Router::new().route(
            "/whoami",
            get(|caller: Caller| async move {
                format!("{} admin={}", caller.principal.as_str(), caller.admin)
            }),
        );
        apply(
            router,
            RateLimit {
                rate_limit_per_second: 1_000,
                rate_limit_burst: 1_000,
                ..RateLimit::OFF
            },
            limit.clone(),
        )
        .with_state(State(handler.clone()))
    }

    async fn call(app: Router, token: &str) -> (u16, String) {
        let request = Request::get("/whoami")
            .header(axum::http::header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .expect("a request");
        let response = app.oneshot(request).await.expect("an answer");
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("a body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn a_token_is_verified_once_a_request_and_the_handler_gets_that_caller() {
        let ours = Auth::new(Some(SECRET)).expect("auth");
        let theirs = Auth::new(Some("another secret of at least thirty-two bytes")).expect("auth");
        let admin = ours.mint("root", true, 60).expect("a token");
        let user = ours.mint("ivy", false, 60).expect("a token");
        assert_eq!(
            call(app(&ours, &ours), &admin).await,
            (200, "root admin=true".into())
        );
        assert_eq!(
            call(app(&ours, &ours), &user).await,
            (200, "ivy admin=false".into())
        );

        // The handler is given the caller the limit verified: with keys that would refuse the
        // token, its extractor is not asked again.
        assert_eq!(
            call(app(&ours, &theirs), &user).await,
            (200, "ivy admin=false".into())
        );

        // A token the limit refuses is not passed on: the handler's extractor decides.
        let forged = theirs.mint("ivy", true, 60).expect("a token");
        let (status, body) = call(app(&ours, &ours), &forged).await;
        assert_eq!(status, 401, "{body}");
        assert!(body.contains("unauthorized"), "{body}");
    }
}
