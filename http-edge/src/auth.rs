//! Bearer tokens: HS256 JWTs with `sub` (the principal), `exp` and an optional `role`:
//! `"admin"` (acts on every account) or `"service"` (a back-end acting for its own accounts
//! like any user, with a service's rate limit; see `rate_limit`).

use crate::problem::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use events::OwnerId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use thiserror::Error;

/// Shortest accepted secret: HS256 keys shorter than the hash (32 bytes) weaken it.
pub const JWT_SECRET_BYTES_MIN: usize = 32;

/// The role that acts on every account.
pub const ADMIN_ROLE: &str = "admin";
/// The role of a service principal: a user as far as access goes, with a service's quota.
pub const SERVICE_ROLE: &str = "service";

/// Clock skew tolerated on `exp`.
const LEEWAY_S: u64 = 5;

/// The claims Tally reads and writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

#[derive(Debug, Error)]
pub enum AuthConfigError {
    #[error("LEDGER_JWT_SECRET is not set")]
    Missing,
    #[error("LEDGER_JWT_SECRET must be at least {JWT_SECRET_BYTES_MIN} bytes")]
    TooShort,
}

/// Keys and rules for verifying and minting tokens.
#[derive(Clone)]
pub struct Auth(Arc<Keys>);

struct Keys {
    decoding: DecodingKey,
    encoding: EncodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth(HS256, secret hidden)")
    }
}

impl Auth {
    pub fn new(secret: Option<&str>) -> Result<Self, AuthConfigError> {
        let secret = secret.ok_or(AuthConfigError::Missing)?;
        if secret.len() < JWT_SECRET_BYTES_MIN {
            return Err(AuthConfigError::TooShort);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_S;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Self(Arc::new(Keys {
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            validation,
        })))
    }

    /// Mints a token for `sub`, valid for `ttl_s` seconds.
    pub fn mint(&self, sub: &str, admin: bool, ttl_s: u64) -> Result<String, ApiError> {
        self.mint_with_role(sub, admin.then_some(ADMIN_ROLE), ttl_s)
    }

    /// Mints a token for `sub` with `role` ([`ADMIN_ROLE`], [`SERVICE_ROLE`] or none).
    pub fn mint_with_role(
        &self,
        sub: &str,
        role: Option<&str>,
        ttl_s: u64,
    ) -> Result<String, ApiError> {
        let claims = Claims {
            sub: sub.to_owned(),
            exp: jsonwebtoken::get_current_timestamp() + ttl_s,
            role: role.map(str::to_owned),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.0.encoding)
            .map_err(|e| ApiError::internal(&e))
    }

    /// The caller a bearer token speaks for.
    pub fn verify(&self, token: &str) -> Result<Caller, ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.0.decoding, &self.0.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    ApiError::unauthorized("the token has expired")
                }
                _ => ApiError::unauthorized("the token is not valid"),
            })?;
        let principal = OwnerId::parse(data.claims.sub)
            .map_err(|_| ApiError::unauthorized("the token's sub is not a valid principal"))?;
        let role = data.claims.role.as_deref();
        Ok(Caller {
            principal,
            admin: role == Some(ADMIN_ROLE),
            service: role == Some(SERVICE_ROLE),
        })
    }
}

/// Who is calling: a verified token's subject and its role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub principal: OwnerId,
    pub admin: bool,
    /// A service principal: rate-limited as a service, otherwise a user.
    pub service: bool,
}

impl Caller {
    /// Users see and act on their own things only; admins on all.
    pub fn may_access(&self, owner: &OwnerId) -> bool {
        owner.allows(&self.principal, self.admin)
    }
}

/// Anything that holds the token rules, so that a [`Caller`] can be extracted from its state.
pub trait HasAuth {
    fn auth(&self) -> &Auth;
}

/// A caller verified earlier in the same request (by the rate limit, which must know who calls
/// before the handler runs), so that a token is verified once per request.
#[derive(Debug, Clone)]
pub(crate) struct Verified(pub(crate) Caller);

/// The bearer token of a request's `Authorization` header.
pub(crate) fn bearer_token(headers: &axum::http::HeaderMap) -> Result<&str, ApiError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("a bearer token is required"))?;
    header
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("Authorization must be 'Bearer <token>'"))
}

impl<S: HasAuth + Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if let Some(Verified(caller)) = parts.extensions.get::<Verified>() {
            return Ok(caller.clone());
        }
        state.auth().verify(bearer_token(&parts.headers)?)
    }
}
