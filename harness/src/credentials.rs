//! Every kind of caller an authorization test tries, as the `Authorization` header it sends:
//! none, the wrong scheme, a token that is not a JWT, one signed with another secret, one not
//! signed at all (`alg: none`), an expired one, and valid tokens for users and admins.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

/// A secret the services under test do not know.
const FOREIGN_SECRET: &str = "a-different-secret-of-at-least-32-bytes";

/// Past the services' 5 s leeway on `exp`, by far.
const EXPIRED_AGO_S: u64 = 3_600;

/// A kind of caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// No `Authorization` header.
    Missing,
    /// `Basic` instead of `Bearer`.
    WrongScheme,
    /// `Bearer` followed by something that is not a JWT.
    Malformed,
    /// An admin token for `sub` signed with a secret the service does not know.
    BadSignature(&'static str),
    /// An admin token for `sub` with `alg: none` and no signature.
    Unsigned(&'static str),
    /// A token for `sub` signed with the right secret that expired an hour ago.
    Expired(&'static str),
    /// A valid user token.
    User(&'static str),
    /// A valid admin token.
    Admin(&'static str),
}

impl Credential {
    /// Every kind that must be answered `401 unauthorized`, forging `sub`'s identity.
    pub fn unauthenticated(sub: &'static str) -> [Self; 6] {
        [
            Self::Missing,
            Self::WrongScheme,
            Self::Malformed,
            Self::BadSignature(sub),
            Self::Unsigned(sub),
            Self::Expired(sub),
        ]
    }

    /// The `Authorization` header this caller sends, for a service whose secret is `secret`.
    pub fn header(self, secret: &str) -> Option<String> {
        let now = jsonwebtoken::get_current_timestamp();
        let in_an_hour = now + 3_600;
        match self {
            Self::Missing => None,
            Self::WrongScheme => Some("Basic Z2luYTpwdw==".into()),
            Self::Malformed => Some("Bearer not.a.jwt".into()),
            Self::BadSignature(sub) => Some(bearer(&sign(FOREIGN_SECRET, sub, in_an_hour, true))),
            Self::Unsigned(sub) => {
                let header =
                    URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string());
                let claims = URL_SAFE_NO_PAD
                    .encode(json!({"sub": sub, "exp": in_an_hour, "role": "admin"}).to_string());
                Some(bearer(&format!("{header}.{claims}.")))
            }
            Self::Expired(sub) => Some(bearer(&sign(secret, sub, now - EXPIRED_AGO_S, false))),
            Self::User(sub) => Some(bearer(&sign(secret, sub, in_an_hour, false))),
            Self::Admin(sub) => Some(bearer(&sign(secret, sub, in_an_hour, true))),
        }
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn sign(secret: &str, sub: &str, exp: u64, admin: bool) -> String {
    let mut claims = json!({"sub": sub, "exp": exp});
    if admin {
        claims["role"] = json!("admin");
    }
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("a token signs")
}
