//! The console's static files, compiled into the binary: htmx (vendored from the npm package
//! `htmx.org`, see `assets/README.md`), the console's own small script and its style sheet.
//! Nothing is fetched from elsewhere, so the console works offline.

use axum::extract::{Path, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

const HTMX: &str = include_str!("../assets/htmx.min.js");
const SCRIPT: &str = include_str!("../assets/console.js");
const STYLE: &str = include_str!("../assets/console.css");

/// What the pages link to. The version in a name changes when the file does, so a browser may
/// keep each for a day without serving a stale copy after an upgrade.
pub const HTMX_PATH: &str = "/assets/htmx-2.0.11.min.js";
pub const SCRIPT_PATH: &str = "/assets/console-1.js";
pub const STYLE_PATH: &str = "/assets/console-1.css";

pub async fn serve(Path(name): Path<String>) -> Response {
    let (body, content_type) = match format!("/assets/{name}").as_str() {
        HTMX_PATH => (HTMX, "text/javascript; charset=utf-8"),
        SCRIPT_PATH => (SCRIPT, "text/javascript; charset=utf-8"),
        STYLE_PATH => (STYLE, "text/css; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such file").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}

/// Scripts and styles from the console only (no inline script, no eval: htmx is configured
/// without it), no framing by other sites, forms posting only here.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
    form-action 'self'; base-uri 'none'; object-src 'none'";

pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}
