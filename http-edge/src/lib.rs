//! The HTTP edge both APIs share, so that they authenticate and fail alike:
//! - [`auth`]: HS256 bearer tokens → a [`auth::Caller`];
//! - [`problem`]: [`problem::ApiError`], every failure as an RFC 9457 problem with a stable code;
//! - [`extract`]: JSON body, path and query extractors whose rejections are problems, and
//!   page lengths;
//! - [`rate_limit`]: a token bucket per caller (verified `sub`, else client address) → 429;
//! - [`openapi`]: what both OpenAPI documents share, and the `/openapi.json` and `/docs` routes;
//! - [`server`]: the layers every API wears and a server task with graceful shutdown;
//! - [`metrics`]: `GET /metrics` and request timing;
//! - [`headers`]: the HTTP headers Tally's APIs define;
//! - [`probes`]: `GET /healthz` and the readiness answer, alike for every service.
//!
//! Logs, traces and the metrics recorder are the `telemetry` crate's.

pub mod auth;
pub mod extract;
pub mod headers;
pub mod metrics;
pub mod openapi;
pub mod probes;
pub mod problem;
pub mod rate_limit;
pub mod server;

pub use auth::{Auth, Caller, HasAuth};
pub use extract::{ApiJson, ApiPath, ApiQuery, PageLen};
pub use problem::{ApiError, Problem};
pub use rate_limit::RateLimit;
