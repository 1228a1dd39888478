//! The console's own logic over HTTP, against a stand-in for the two APIs that records what
//! it is sent: the session cookie, the CSRF refusal, the feed relay (bearer, resume point,
//! status), and an API refusal shown beside its field with the form's idempotency key.
//! (The console against the real stack is `tests/browser.rs`.)

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// What the stand-in API received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    uri: String,
    headers: HeaderMap,
    body: String,
}

#[derive(Debug, Clone, Default)]
struct Upstream {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

/// The stand-in: `/v1/accounts/mine/events` streams one event, `/v1/accounts/theirs/events`
/// is another owner's (404), a withdrawal is refused as an overdraft, `/v1/accounts` lists.
async fn answer(State(upstream): State<Upstream>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    upstream.seen.lock().expect("lock").push(Seen {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers: parts.headers.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let problem = |status: StatusCode, code: &str, detail: &str| {
        (
            status,
            [("content-type", "application/problem+json")],
            serde_json::json!({"type": "about:blank", "title": code, "status": status.as_u16(), "code": code, "detail": detail}).to_string(),
        )
            .into_response()
    };
    match parts.uri.path() {
        "/v1/accounts/mine/events" => (
            [("content-type", "text/event-stream")],
            Body::from("id: 8\nevent: deposit\ndata: {\"seq\":8,\"balance\":150}\n\n"),
        )
            .into_response(),
        "/v1/accounts/theirs/events" => problem(
            StatusCode::NOT_FOUND,
            "account_not_found",
            "no account theirs",
        ),
        "/v1/accounts/mine/withdrawals" => problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "insufficient_funds",
            "account mine has 5 available, 900 requested",
        ),
        "/v1/admin/journal" => axum::Json(serde_json::json!({
            "last_seq": 42,
            "next_before_seq": 41,
            "items": [{
                "seq": 42, "subject": "ledger.account.mine", "type": "funds_deposited",
                "headers": {"Ledger-Event-Type": "funds_deposited", "Nats-Msg-Id": "m-42"},
                "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "data": {"type": "funds_deposited"},
            }],
        }))
        .into_response(),
        "/v1/admin/projector" => axum::Json(serde_json::json!({
            "checkpoint": 37,
            "standby_count": 1,
            "active_instance": {
                "application_name": "tally-lock", "pid": 4242, "client_addr": "10.0.0.7",
                "backend_start": "2026-11-29T20:00:00Z",
            },
        }))
        .into_response(),
        "/v1/accounts" => (
            [("ledger-seq", "3")],
            axum::Json(serde_json::json!({"items": [], "next_cursor": null})),
        )
            .into_response(),
        _ => problem(StatusCode::NOT_FOUND, "not_found", "no such route"),
    }
}

struct Setup {
    upstream: Upstream,
    console: String,
    _app: web_console::App,
    http: reqwest::Client,
}

async fn setup() -> Setup {
    setup_with(None).await
}

async fn setup_with(grafana_url: Option<&str>) -> Setup {
    let upstream = Upstream::default();
    let router = Router::new().fallback(answer).with_state(upstream.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let api = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    let mut config = web_console::Config::local(&api, &api);
    config.grafana_url = grafana_url.map(str::to_owned);
    let app = web_console::start(config).await.expect("console starts");
    Setup {
        upstream,
        console: format!("http://{}", app.addr),
        _app: app,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
    }
}

/// A token shaped like the APIs' (the console reads its claims; the stand-in API accepts it).
fn token(sub: &str) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.sig",
        engine.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        engine.encode(format!(r#"{{"sub":"{sub}","exp":9999999999}}"#))
    )
}

/// An admin's token, shaped like the APIs'.
fn admin_token(sub: &str) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.sig",
        engine.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        engine.encode(format!(
            r#"{{"sub":"{sub}","role":"admin","exp":9999999999}}"#
        ))
    )
}

/// An `application/x-www-form-urlencoded` body, as a browser posts a form.
fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", web_console::api::encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn cookie(token: &str) -> String {
    format!("tally_session={token}")
}

#[tokio::test]
async fn the_feed_relay_forwards_the_bearer_and_the_resume_point_and_streams_the_events() {
    let s = setup().await;
    let alice = token("alice");
    let answer = s
        .http
        .get(format!("{}/accounts/mine/events?after_seq=5", s.console))
        .header("cookie", cookie(&alice))
        .header("last-event-id", "7")
        .send()
        .await
        .expect("relay answers");
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.headers()["content-type"].to_str().expect("text"),
        "text/event-stream"
    );
    let body = answer.text().await.expect("body");
    assert!(body.contains("id: 8\nevent: deposit\n"), "{body}");
    let seen = s.upstream.seen();
    let call = seen.last().expect("the API was called");
    assert_eq!(call.uri, "/v1/accounts/mine/events?after_seq=5");
    assert_eq!(
        call.headers["authorization"].to_str().expect("text"),
        format!("Bearer {alice}")
    );
    assert_eq!(call.headers["last-event-id"], "7");
}

#[tokio::test]
async fn the_feed_relay_passes_on_a_404_for_another_owners_account() {
    let s = setup().await;
    let answer = s
        .http
        .get(format!("{}/accounts/theirs/events", s.console))
        .header("cookie", cookie(&token("alice")))
        .send()
        .await
        .expect("relay answers");
    assert_eq!(answer.status(), 404);
}

#[tokio::test]
async fn the_feed_relay_refuses_a_browser_without_a_session_before_calling_the_api() {
    let s = setup().await;
    let answer = s
        .http
        .get(format!("{}/accounts/mine/events", s.console))
        .send()
        .await
        .expect("relay answers");
    assert_eq!(answer.status(), 401);
    assert!(s.upstream.seen().is_empty());
}

#[tokio::test]
async fn a_form_posted_from_another_site_is_refused_and_reaches_no_api() {
    let s = setup().await;
    for origin in [Some("http://evil.example"), None] {
        let mut request = s
            .http
            .post(format!("{}/accounts/mine/forms/withdraw", s.console))
            .header("cookie", cookie(&token("alice")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("amount", "900"), ("idempotency_key", "k-1")]));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let answer = request.send().await.expect("console answers");
        assert_eq!(answer.status(), 403, "origin {origin:?}");
    }
    assert!(s.upstream.seen().is_empty());
}

#[tokio::test]
async fn an_overdraft_is_shown_beside_the_amount_and_the_forms_key_is_the_idempotency_key() {
    let s = setup().await;
    let alice = token("alice");
    let answer = s
        .http
        .post(format!("{}/accounts/mine/forms/withdraw", s.console))
        .header("cookie", cookie(&alice))
        .header("origin", &s.console)
        .header("hx-request", "true")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("amount", "900"),
            ("idempotency_key", "form-key-1"),
        ]))
        .send()
        .await
        .expect("console answers");
    assert_eq!(answer.status(), 422);
    let html = answer.text().await.expect("body");
    assert!(
        html.contains(r#"<p class="error" id="withdraw-amount-error">Insufficient funds: account mine has 5 available, 900 requested</p>"#),
        "{html}"
    );
    assert!(html.contains(r#"aria-describedby="withdraw-amount-error""#));
    // The re-rendered form carries a fresh key, not the one just used.
    assert!(!html.contains("form-key-1"));
    let seen = s.upstream.seen();
    let call = seen.last().expect("the API was called");
    assert_eq!(
        (call.method.as_str(), call.uri.as_str()),
        ("POST", "/v1/accounts/mine/withdrawals")
    );
    assert_eq!(call.headers["idempotency-key"], "form-key-1");
    assert_eq!(
        call.headers["authorization"].to_str().expect("text"),
        format!("Bearer {alice}")
    );
    assert_eq!(call.body, r#"{"amount":900}"#);
}

#[tokio::test]
async fn signing_in_keeps_the_token_in_an_http_only_cookie_and_out_of_the_url() {
    let s = setup().await;
    let alice = token("alice");
    let answer = s
        .http
        .post(format!("{}/sign-in", s.console))
        .header("origin", &s.console)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("token", alice.as_str())]))
        .send()
        .await
        .expect("console answers");
    assert_eq!(answer.status(), 303);
    let location = answer.headers()["location"].to_str().expect("text");
    assert_eq!(location, "/accounts");
    let set_cookie = answer.headers()["set-cookie"].to_str().expect("text");
    assert_eq!(
        set_cookie,
        format!("tally_session={alice}; HttpOnly; SameSite=Strict; Path=/")
    );
    // The token was checked with the query API before it was kept.
    let seen = s.upstream.seen();
    assert_eq!(
        seen.last().map(|c| c.uri.as_str()),
        Some("/v1/accounts?limit=1")
    );
}

#[tokio::test]
async fn a_page_without_a_session_sends_the_browser_to_sign_in() {
    let s = setup().await;
    let answer = s
        .http
        .get(format!("{}/accounts", s.console))
        .send()
        .await
        .expect("console answers");
    assert_eq!(answer.status(), 303);
    assert_eq!(answer.headers()["location"], "/sign-in");
    let htmx = s
        .http
        .get(format!("{}/accounts/mine/history", s.console))
        .header("hx-request", "true")
        .send()
        .await
        .expect("console answers");
    assert_eq!(htmx.headers()["hx-redirect"], "/sign-in");
}

#[tokio::test]
async fn htmx_and_the_console_script_are_served_from_the_binary() {
    let s = setup().await;
    let page = s
        .http
        .get(format!("{}/sign-in", s.console))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("body");
    for path in [
        web_console::assets::HTMX_PATH,
        web_console::assets::SCRIPT_PATH,
        web_console::assets::STYLE_PATH,
    ] {
        assert!(page.contains(path), "the page does not link {path}");
        let asset = s
            .http
            .get(format!("{}{path}", s.console))
            .send()
            .await
            .expect("asset");
        assert_eq!(asset.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn the_operations_page_shows_the_lag_between_the_journal_and_the_checkpoint() {
    let s = setup().await;
    let admin = admin_token("root");
    for path in ["/admin/operations", "/admin/operations/status"] {
        let answer = s
            .http
            .get(format!("{}{path}", s.console))
            .header("cookie", cookie(&admin))
            .send()
            .await
            .expect("console answers");
        assert_eq!(answer.status(), StatusCode::OK, "{path}");
        let html = answer.text().await.expect("text");
        assert!(html.contains(r#"<dd id="projector-lag">5</dd>"#), "{html}");
        assert!(html.contains(r#"<dd id="standby-count">1</dd>"#), "{html}");
        assert!(html.contains("10.0.0.7") && html.contains("4242"), "{html}");
        assert!(html.contains(r#"hx-trigger="every 2s""#), "{html}");
    }
    let seen = s.upstream.seen();
    let bearer = format!("Bearer {admin}");
    for path in ["/v1/admin/journal", "/v1/admin/projector"] {
        let call = seen
            .iter()
            .find(|c| c.uri.starts_with(path))
            .unwrap_or_else(|| panic!("{path} was not asked: {seen:?}"));
        assert_eq!(
            call.headers
                .get("authorization")
                .and_then(|v| v.to_str().ok()),
            Some(bearer.as_str())
        );
    }
}

#[tokio::test]
async fn the_journal_page_links_each_trace_to_grafana_when_it_is_known_and_pages_by_sequence() {
    let s = setup_with(Some("http://grafana.invalid:3000/")).await;
    let admin = admin_token("root");
    let answer = s
        .http
        .get(format!("{}/admin/journal?before_seq=43", s.console))
        .header("cookie", cookie(&admin))
        .send()
        .await
        .expect("console answers");
    assert_eq!(answer.status(), StatusCode::OK);
    let html = answer.text().await.expect("text");
    assert!(html.contains("ledger.account.mine"), "{html}");
    assert!(html.contains("Nats-Msg-Id: m-42"), "{html}");
    assert!(
        html.contains(r#"href="http://grafana.invalid:3000/explore?schemaVersion=1&amp;panes="#),
        "{html}"
    );
    assert!(
        html.contains(r#"href="/admin/journal?before_seq=41""#),
        "{html}"
    );
    let asked: Vec<String> = s.upstream.seen().into_iter().map(|c| c.uri).collect();
    assert!(
        asked.contains(&"/v1/admin/journal?limit=20&before_seq=43".to_owned()),
        "{asked:?}"
    );

    // Without GRAFANA_URL the trace context is plain text.
    let plain = setup().await;
    let html = plain
        .http
        .get(format!("{}/admin/journal", plain.console))
        .header("cookie", cookie(&admin))
        .send()
        .await
        .expect("console answers")
        .text()
        .await
        .expect("text");
    assert!(
        html.contains("00-4bf92f3577b34da6a3ce929d0e0e4736"),
        "{html}"
    );
    assert!(!html.contains("/explore?"), "{html}");
}

#[tokio::test]
async fn a_user_is_refused_the_operator_pages_before_any_api_is_asked() {
    let s = setup().await;
    let alice = token("alice");
    for path in [
        "/admin/operations",
        "/admin/operations/status",
        "/admin/journal",
    ] {
        let answer = s
            .http
            .get(format!("{}{path}", s.console))
            .header("cookie", cookie(&alice))
            .send()
            .await
            .expect("console answers");
        assert_eq!(answer.status(), StatusCode::FORBIDDEN, "{path}");
    }
    assert!(
        s.upstream
            .seen()
            .iter()
            .all(|c| !c.uri.starts_with("/v1/admin")),
        "{:?}",
        s.upstream.seen()
    );
}
