//! Bearer tokens: HS256 JWTs with `sub` (the principal), `exp` and an optional `role`:
//! `"admin"` (acts on every account) or `"service"` (a back-end acting for its own accounts
//! like any user, with a service's rate limit; see `rate_limit`).

use crate::problem::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use events::OwnerId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use lru::LruCache;
use serde::{Deserialize, Serialize};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};
use thiserror::Error;

/// Shortest accepted secret: HS256 keys shorter than the hash (32 bytes) weaken it.
pub const JWT_SECRET_BYTES_MIN: usize = 32;

/// The role that acts on every account.
pub const ADMIN_ROLE: &str = "admin";
/// The role of a service principal: a user as far as access goes, with a service's quota.
pub const SERVICE_ROLE: &str = "service";

/// Clock skew tolerated on `exp`.
const LEEWAY_S: u64 = 5;

/// Verified tokens an instance remembers. A back-end sends the same token with every request
/// until it expires, and verifying it again (base64, HMAC, JSON) was the largest single cost
/// of the edge layers, ~4 µs a request here. Room for the tokens of 10,000 callers at once, a
/// few megabytes; past that the least recently seen is verified afresh on its next request.
const VERIFIED_LEN_MAX: NonZeroUsize = NonZeroUsize::new(10_000).expect("not zero");

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
    /// Tokens that verified, by their exact text: whom each speaks for and its `exp`. Only
    /// a token that verified is kept, so nothing a client invents takes room here.
    verified: Mutex<LruCache<Box<str>, Verification>>,
}

/// What verifying a token established, until its `exp` (seconds since the epoch).
#[derive(Debug, Clone)]
struct Verification {
    caller: Caller,
    exp: u64,
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
            verified: Mutex::new(LruCache::new(VERIFIED_LEN_MAX)),
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
        self.verify_at(token, jsonwebtoken::get_current_timestamp())
    }

    /// [`Auth::verify`] at `now` (seconds since the epoch). A token seen before is answered
    /// from memory while it has not expired; its signature and claims cannot have changed,
    /// as they are its text.
    fn verify_at(&self, token: &str, now: u64) -> Result<Caller, ApiError> {
        let mut verified = self
            .0
            .verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = verified.get(token) {
            // As `Validation` decides: expired once `exp` is more than the leeway ago.
            if known.exp.saturating_add(LEEWAY_S) >= now {
                return Ok(known.caller.clone());
            }
            verified.pop(token);
            return Err(expired());
        }
        drop(verified);
        let verification = self.decode(token)?;
        let caller = verification.caller.clone();
        self.0
            .verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .put(token.into(), verification);
        Ok(caller)
    }

    /// Checks `token`'s signature and claims.
    fn decode(&self, token: &str) -> Result<Verification, ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.0.decoding, &self.0.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => expired(),
                _ => ApiError::unauthorized("the token is not valid"),
            })?;
        let principal = OwnerId::parse(data.claims.sub)
            .map_err(|_| ApiError::unauthorized("the token's sub is not a valid principal"))?;
        let role = data.claims.role.as_deref();
        Ok(Verification {
            caller: Caller {
                principal,
                admin: role == Some(ADMIN_ROLE),
                service: role == Some(SERVICE_ROLE),
            },
            exp: data.claims.exp,
        })
    }
}

fn expired() -> ApiError {
    ApiError::unauthorized("the token has expired")
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";

    fn auth() -> Auth {
        Auth::new(Some(SECRET)).expect("a valid secret")
    }

    #[test]
    fn a_remembered_token_is_refused_once_it_has_expired() {
        let auth = auth();
        let token = auth.mint("alice", false, 60).expect("minted");
        let caller = auth.verify(&token).expect("valid now");
        assert_eq!(caller.principal.as_str(), "alice");
        let exp = jsonwebtoken::get_current_timestamp() + 60;
        // Within the leeway past `exp` it is still good, as `Validation` would have it...
        assert!(auth.verify_at(&token, exp + LEEWAY_S - 1).is_ok());
        // ...and past it, refused although it verified before.
        let refused = auth
            .verify_at(&token, exp + LEEWAY_S + 2)
            .expect_err("expired");
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        assert!(refused.detail.contains("expired"), "{}", refused.detail);
    }

    #[test]
    fn a_remembered_token_speaks_for_its_own_caller_and_role() {
        let auth = auth();
        let admin = auth.mint("root", true, 60).expect("minted");
        let service = auth
            .mint_with_role("payments", Some(SERVICE_ROLE), 60)
            .expect("minted");
        for _ in 0..2 {
            let caller = auth.verify(&admin).expect("valid");
            assert_eq!((caller.principal.as_str(), caller.admin), ("root", true));
            let caller = auth.verify(&service).expect("valid");
            assert_eq!(
                (caller.principal.as_str(), caller.admin, caller.service),
                ("payments", false, true)
            );
        }
    }

    #[test]
    fn a_token_altered_after_one_verified_is_not_answered_from_memory() {
        let auth = auth();
        let token = auth.mint("alice", false, 60).expect("minted");
        auth.verify(&token).expect("valid");
        // One character of the signature changed (one well inside it: every bit counts).
        let at = token.len() - 10;
        let was = &token[at..=at];
        let altered = format!(
            "{}{}{}",
            &token[..at],
            if was == "A" { "B" } else { "A" },
            &token[at + 1..]
        );
        assert!(auth.verify(&altered).is_err());
        // A token signed with another secret, for the same principal, is not taken either.
        let other = Auth::new(Some("another-secret-of-at-least-32-bytes!"))
            .expect("a valid secret")
            .mint("alice", false, 60)
            .expect("minted");
        assert!(auth.verify(&other).is_err());
    }

    #[test]
    fn memory_holds_at_most_its_limit_of_tokens() {
        let auth = auth();
        for n in 0..VERIFIED_LEN_MAX.get() + 10 {
            let token = auth.mint(&format!("user-{n}"), false, 60).expect("minted");
            auth.verify(&token).expect("valid");
        }
        let remembered = auth.0.verified.lock().expect("not poisoned").len();
        assert_eq!(remembered, VERIFIED_LEN_MAX.get());
    }
}
