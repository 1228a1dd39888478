//! An account's live feed, relayed from the query API to the browser.
//!
//! A browser's `EventSource` cannot send an `Authorization` header, so the page opens
//! `/accounts/{id}/events` here and the console calls `GET {QUERY_API_URL}/v1/accounts/{id}/
//! events` with the session's bearer token, passing `Last-Event-ID` and the query string
//! (`after_seq`, `from`) through, and streams the answer back byte for byte as it arrives.
//! The query API decides everything (who may see the account, where to resume, heartbeats,
//! cutting a slow reader with `event: lagged`); an `EventSource` reconnects by itself after
//! the stream ends, resuming with its last event id.

use crate::AppState;
use crate::session::Session;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_edge::headers::LEDGER_MIN_SEQ;

/// Longest `Last-Event-ID` passed on: a journal sequence has at most 20 digits; anything
/// longer is not one, and the query API would refuse it anyway.
const LAST_EVENT_ID_LEN_MAX: usize = 32;

/// Longest query string passed on (`after_seq=<20 digits>&from=now` fits many times over).
const QUERY_LEN_MAX: usize = 256;

pub async fn relay(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(session) = Session::from_headers(&headers) else {
        return (StatusCode::UNAUTHORIZED, "sign in first").into_response();
    };
    if !is_account_id(&id) {
        return (StatusCode::NOT_FOUND, "no such account").into_response();
    }
    let mut url = state.api.url(
        crate::api::Side::Queries,
        &format!("/v1/accounts/{id}/events"),
    );
    if let Some(query) = query.filter(|q| !q.is_empty() && q.len() <= QUERY_LEN_MAX) {
        url.push('?');
        url.push_str(&query);
    }
    let mut request = state
        .api
        .client()
        .get(url)
        .bearer_auth(&session.token)
        .header(header::ACCEPT, "text/event-stream");
    // Like every query of the console: not before the person's own last write is readable
    // (a feed on an account just opened would otherwise be a 404).
    if let Some(seq) = session.seen_seq {
        request = request.header(LEDGER_MIN_SEQ, seq.to_string());
    }
    if let Some(last) = headers
        .get("last-event-id")
        .filter(|v| v.len() <= LAST_EVENT_ID_LEN_MAX)
    {
        request = request.header("last-event-id", last.clone());
    }
    let upstream = match request.send().await {
        Ok(upstream) => upstream,
        Err(e) => {
            tracing::warn!(error = %e, "live feed: the query API could not be reached");
            return (StatusCode::BAD_GATEWAY, "the live feed is unavailable").into_response();
        }
    };
    let status = upstream.status();
    if !status.is_success() {
        // The query API's own answer (404 for another's account, 401, 429 …), without a body
        // an EventSource would not read anyway.
        let status = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        return (status, "the live feed was refused").into_response();
    }
    let mut response = Response::new(Body::from_stream(upstream.bytes_stream()));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // A reverse proxy in front of the console must not hold events back to fill a buffer.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// The APIs' account id pattern, `^[A-Za-z0-9_-]{1,64}$`: checked here so that nothing else
/// can be spliced into the upstream path.
pub fn is_account_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_apis_account_ids_reach_the_upstream_path() {
        assert!(is_account_id("alice-main_2"));
        assert!(!is_account_id(""));
        assert!(!is_account_id("../admin"));
        assert!(!is_account_id("a?b"));
        assert!(!is_account_id(&"a".repeat(65)));
    }
}
