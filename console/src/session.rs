//! Who is signed in, and the guard on every state-changing request.
//!
//! The bearer token lives in one cookie, `HttpOnly` (no script can read it), `SameSite=Strict`
//! (no other site's page can make the browser send it) and `Path=/`; it never appears in a URL.
//! [`same_origin`] refuses any non-GET request whose `Origin` (or, lacking one, `Referer`) is
//! not this console's own host: with the strict cookie, that is the console's CSRF defence.

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;

pub const COOKIE: &str = "tally_session";
/// The journal sequence of the last write made through the console in this browser: every
/// query waits for it (`Ledger-Min-Seq`), so a page after a write shows that write.
pub const SEQ_COOKIE: &str = "tally_seq";

/// Longest token the console keeps: the APIs' tokens are a few hundred bytes; a browser
/// keeps cookies up to 4 KiB, and anything longer is not a token this ledger issues.
pub const TOKEN_LEN_MAX: usize = 3_000;

/// A signed-in person: the token (sent as the bearer on every API call) and what its claims
/// say, for showing the right menus. The claims are read, not verified: the APIs verify the
/// token on every call, so a forged claim gains nothing but a menu the API then refuses.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub sub: String,
    pub admin: bool,
    /// From [`SEQ_COOKIE`].
    pub seen_seq: Option<u64>,
}

impl Session {
    pub fn from_token(token: &str) -> Option<Self> {
        if token.is_empty() || token.len() > TOKEN_LEN_MAX {
            return None;
        }
        let payload = token.split('.').nth(1)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()?;
        let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        Some(Self {
            token: token.to_owned(),
            sub: claims["sub"].as_str()?.to_owned(),
            admin: claims["role"].as_str() == Some("admin"),
            seen_seq: None,
        })
    }

    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let mut session = Self::from_token(&cookie_value(headers, COOKIE)?)?;
        session.seen_seq = cookie_value(headers, SEQ_COOKIE).and_then(|v| v.parse().ok());
        Some(session)
    }
}

/// The value of one cookie in the request's `Cookie` header(s).
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// The `Set-Cookie` that signs in. A token is base64url with dots: nothing in it needs quoting.
pub fn sign_in_cookie(token: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/{secure}"
    ))
    .unwrap_or_else(|_| sign_out_cookie())
}

/// The `Set-Cookie` that remembers the journal sequence of a write just made.
pub fn seq_cookie(seq: u64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{SEQ_COOKIE}={seq}; HttpOnly; SameSite=Strict; Path=/"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("tally_seq=0; Path=/; Max-Age=0"))
}

/// The `Set-Cookie` that signs out (the cookie expires at once).
pub fn sign_out_cookie() -> HeaderValue {
    HeaderValue::from_static("tally_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

/// Not signed in (or the API refused the token): to the sign-in page. An htmx request gets
/// `HX-Redirect`, so the whole page moves rather than a fragment turning into a form.
#[derive(Debug)]
pub struct SignedOut {
    htmx: bool,
}

impl SignedOut {
    pub fn for_headers(headers: &HeaderMap) -> Self {
        Self {
            htmx: headers.contains_key("hx-request"),
        }
    }
}

impl IntoResponse for SignedOut {
    fn into_response(self) -> Response {
        let mut response = if self.htmx {
            let mut r = StatusCode::NO_CONTENT.into_response();
            r.headers_mut()
                .insert("hx-redirect", HeaderValue::from_static("/sign-in"));
            r
        } else {
            Redirect::to("/sign-in").into_response()
        };
        response
            .headers_mut()
            .insert(header::SET_COOKIE, sign_out_cookie());
        response
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = SignedOut;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Session::from_headers(&parts.headers).ok_or_else(|| SignedOut::for_headers(&parts.headers))
    }
}

/// Refuses a state-changing request that does not come from one of the console's own pages.
pub async fn same_origin(request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) || is_same_origin(request.headers())
    {
        return next.run(request).await;
    }
    tracing::warn!(
        origin = ?request.headers().get(header::ORIGIN),
        host = ?request.headers().get(header::HOST),
        "refused a cross-site form"
    );
    (
        StatusCode::FORBIDDEN,
        "refused: this form did not come from the console's own pages",
    )
        .into_response()
}

/// Whether the request's `Origin` (else `Referer`) names the host it was sent to. Browsers
/// send `Origin` on every POST; a request with neither header is refused, since only a
/// non-browser client omits both, and it has the APIs for that.
pub fn is_same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let source = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    let Some(source) = source else {
        return false;
    };
    let Some(rest) = source
        .strip_prefix("http://")
        .or_else(|| source.strip_prefix("https://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority.eq_ignore_ascii_case(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).expect("value"));
        }
        map
    }

    fn token(claims: &str) -> String {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.signature",
            engine.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
            engine.encode(claims)
        )
    }

    #[test]
    fn a_session_is_read_from_its_cookie_among_others() {
        let admin = token(r#"{"sub":"root","role":"admin","exp":1}"#);
        let map = headers(&[("cookie", &format!("theme=dark; tally_session={admin}; x=1"))]);
        let session = Session::from_headers(&map).expect("session");
        assert_eq!(session.sub, "root");
        assert!(session.admin);
        assert_eq!(session.token, admin);
    }

    #[test]
    fn no_cookie_or_a_token_without_claims_is_no_session() {
        assert!(Session::from_headers(&headers(&[("cookie", "theme=dark")])).is_none());
        assert!(Session::from_token("not-a-token").is_none());
        assert!(Session::from_token(&token(r#"{"role":"admin"}"#)).is_none());
        assert!(Session::from_token(&"a".repeat(TOKEN_LEN_MAX + 1)).is_none());
    }

    #[test]
    fn the_session_cookie_is_http_only_strict_and_site_wide() {
        let cookie = sign_in_cookie("a.b.c", false);
        let text = cookie.to_str().expect("ascii");
        assert!(text.starts_with("tally_session=a.b.c;"), "{text}");
        for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(text.contains(part), "{text} lacks {part}");
        }
        assert!(!text.contains("Secure"));
        assert!(
            sign_in_cookie("a.b.c", true)
                .to_str()
                .expect("ascii")
                .ends_with("; Secure")
        );
        assert!(
            sign_out_cookie()
                .to_str()
                .expect("ascii")
                .contains("Max-Age=0")
        );
    }

    #[test]
    fn a_form_is_same_origin_only_when_origin_or_referer_names_the_host() {
        let host = ("host", "127.0.0.1:8083");
        assert!(is_same_origin(&headers(&[
            host,
            ("origin", "http://127.0.0.1:8083")
        ])));
        assert!(is_same_origin(&headers(&[
            host,
            ("referer", "http://127.0.0.1:8083/accounts/a?x=1")
        ])));
        assert!(!is_same_origin(&headers(&[
            host,
            ("origin", "http://evil.example")
        ])));
        assert!(!is_same_origin(&headers(&[
            host,
            ("origin", "http://127.0.0.1:8083.evil.example")
        ])));
        assert!(!is_same_origin(&headers(&[host, ("origin", "null")])));
        assert!(!is_same_origin(&headers(&[host])));
    }
}
