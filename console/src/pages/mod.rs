//! The pages, one module per part of the console, and what they share: the layout, how an
//! API's refusal becomes a page, and how a form shows its errors beside its fields.
//!
//! Every form carries a hidden `idempotency_key` made when the form was rendered (UUIDv7), sent
//! as the command's `Idempotency-Key`: submitting one rendered form twice (a double click, a
//! resend) has one effect. Each answer renders the form again with a fresh key.

pub mod account;
pub mod accounts;
pub mod batches;
pub mod operations;
pub mod orders;
pub mod sign_in;

use crate::AppState;
use crate::api::Problem;
use crate::assets::{HTMX_PATH, SCRIPT_PATH, STYLE_PATH};
use crate::fields::{Field, field_for};
use crate::session::{Session, SignedOut};
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};
use std::collections::HashMap;

/// htmx without eval (the CSP forbids it) and without its injected indicator styles (idem);
/// every answer is swapped in, a refusal (4xx) too, since it carries the form with its error.
const HTMX_CONFIG: &str = r#"{"allowEval":false,"includeIndicatorStyles":false,"responseHandling":[{"code":"204","swap":false},{"code":"...","swap":true}]}"#;

/// What every page asks of a request: the app, the signed-in visitor (else to the sign-in
/// page), and the request's headers (whether htmx asked, where a refusal sends a visitor
/// whose token expired).
#[derive(Debug)]
pub struct Visit(pub AppState, pub Session, pub HeaderMap);

impl FromRequestParts<AppState> for Visit {
    type Rejection = SignedOut;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state).await?;
        Ok(Self(state.clone(), session, parts.headers.clone()))
    }
}

/// A submitted form: its idempotency key (see [`key_of`]) and its values, ready to be shown
/// again beside their errors.
#[derive(Debug)]
pub struct Posted(pub String, pub FormView);

impl<S: Send + Sync> FromRequest<S> for Posted {
    type Rejection = FormRejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Form(values) = Form::<HashMap<String, String>>::from_request(request, state).await?;
        Ok(Self(key_of(&values), FormView::with_values(values)))
    }
}

/// A whole page.
pub fn layout(title: &str, session: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="htmx-config" content=(HTMX_CONFIG);
                title { (title) " · Tally" }
                link rel="stylesheet" href=(STYLE_PATH);
                script src=(HTMX_PATH) defer {}
                script src=(SCRIPT_PATH) defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "Tally" }
                    @if let Some(session) = session {
                        nav aria-label="Main" {
                            a href="/accounts" { "Accounts" }
                            a href="/orders" { "Orders" }
                            @if session.admin {
                                a href="/admin/batches" { "Balance batches" }
                                a href="/admin/operations" { "Operations" }
                                a href="/admin/journal" { "Journal" }
                            }
                        }
                        div.who {
                            span { "Signed in as " strong { (session.sub) } @if session.admin { " (admin)" } }
                            form method="post" action="/sign-out" {
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// Why a page could not be shown.
#[derive(Debug)]
pub enum PageError {
    SignedOut(SignedOut),
    /// An API refusal or failure, shown as a page with its status.
    Api(Problem, Option<Session>),
}

impl PageError {
    pub fn api(problem: Problem, session: &Session, headers: &HeaderMap) -> Self {
        if problem.status == 401 {
            // The token expired or was revoked: sign in again.
            return Self::SignedOut(SignedOut::for_headers(headers));
        }
        Self::Api(problem, Some(session.clone()))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            Self::SignedOut(out) => out.into_response(),
            Self::Api(problem, session) => {
                let status =
                    StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_GATEWAY);
                let title = if status == StatusCode::NOT_FOUND {
                    "Not found"
                } else {
                    "Something went wrong"
                };
                let body = html! {
                    h1 { (title) }
                    p role="alert" { (problem.detail) }
                    p { a href="/accounts" { "Back to your accounts" } }
                };
                (status, layout(title, session.as_ref(), body)).into_response()
            }
        }
    }
}

/// Lets admins through; anyone else gets a `403` page saying `detail`. The APIs refuse a
/// user in any case; the console says so before asking them.
// A refusal is rendered at once, never passed far up: its size costs nothing worth boxing.
#[allow(clippy::result_large_err)]
pub fn admins_only(session: &Session, detail: &str) -> Result<(), PageError> {
    if session.admin {
        return Ok(());
    }
    Err(PageError::Api(
        Problem {
            status: 403,
            code: "forbidden".into(),
            detail: detail.into(),
        },
        Some(session.clone()),
    ))
}

pub async fn home(headers: HeaderMap) -> Redirect {
    if Session::from_headers(&headers).is_some() {
        Redirect::to("/accounts")
    } else {
        Redirect::to("/sign-in")
    }
}

pub async fn not_found(headers: HeaderMap) -> Response {
    let session = Session::from_headers(&headers);
    let body = html! {
        h1 { "Not found" }
        p { "There is no such page." }
        p { a href="/" { "Start again" } }
    };
    (
        StatusCode::NOT_FOUND,
        layout("Not found", session.as_ref(), body),
    )
        .into_response()
}

/// After a form succeeded, another page: htmx is told with `HX-Redirect` (a 303 would be
/// followed inside its request and the new page swapped into the form), a plain form gets 303.
pub fn go_to(headers: &HeaderMap, location: &str) -> Response {
    if headers.contains_key("hx-request") {
        match axum::http::HeaderValue::from_str(location) {
            Ok(value) => ([("hx-redirect", value)], StatusCode::OK).into_response(),
            Err(_) => Redirect::to("/").into_response(),
        }
    } else {
        Redirect::to(location).into_response()
    }
}

/// A write's answer with the cookie that makes the next pages wait for that write.
pub fn remembering(mut response: Response, answer: &crate::api::Answer) -> Response {
    if let Some(seq) = answer.ledger_seq {
        response.headers_mut().append(
            axum::http::header::SET_COOKIE,
            crate::session::seq_cookie(seq),
        );
    }
    response
}

/// A fresh idempotency key for a form about to be rendered.
pub fn fresh_key() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// What a form shows: the values typed (kept after a refusal), an error per field, an error
/// about the form as a whole, and a success message.
#[derive(Debug, Default)]
pub struct FormView {
    pub values: HashMap<String, String>,
    pub errors: HashMap<&'static str, String>,
    pub general: Option<String>,
    pub done: Option<String>,
}

impl FormView {
    pub fn with_values(values: HashMap<String, String>) -> Self {
        Self {
            values,
            ..Self::default()
        }
    }

    pub fn value(&self, name: &str) -> &str {
        self.values.get(name).map(String::as_str).unwrap_or("")
    }

    /// Puts an API refusal beside the field it concerns, else above the button.
    pub fn refused(&mut self, problem: &Problem, fields: &[Field]) {
        let message = crate::fields::explain(&problem.code, &problem.detail);
        match field_for(&problem.code, fields) {
            Some(field) => {
                self.errors.insert(field.name(), message);
            }
            None => self.general = Some(message),
        }
    }

    pub fn field_error(&mut self, field: Field, message: impl Into<String>) {
        self.errors.insert(field.name(), message.into());
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty() || self.general.is_some()
    }

    /// 422 when the form carries a refusal (htmx swaps it in all the same), else 200.
    pub fn status(&self) -> StatusCode {
        if self.has_errors() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        }
    }

    /// A labelled input with its error beside it (`aria-describedby`, `aria-invalid`).
    pub fn input(
        &self,
        form: &str,
        field: Field,
        label: &str,
        kind: &str,
        required: bool,
    ) -> Markup {
        let name = field.name();
        let id = format!("{form}-{name}");
        let error_id = format!("{id}-error");
        let error = self.errors.get(name);
        html! {
            label for=(id) { (label) }
            input id=(id) name=(name) type=(kind) value=(self.value(name))
                required[required]
                inputmode=[(kind == "text" && field == Field::Amount).then_some("numeric")]
                aria-invalid=[error.map(|_| "true")]
                aria-describedby=[error.map(|_| error_id.as_str())];
            @if let Some(error) = error {
                p.error id=(error_id) { (error) }
            }
        }
    }

    /// The form's closing part: its general error or success message, the key, the button.
    pub fn footer(&self, form: &str, button: &str) -> Markup {
        html! {
            input type="hidden" name="idempotency_key" value=(fresh_key());
            @if let Some(general) = &self.general {
                p.error id={ (form) "-error" } role="alert" { (general) }
            }
            button type="submit" { (button) }
            @if let Some(done) = &self.done {
                p.ok id={ (form) "-done" } role="status" { (done) }
            }
        }
    }
}

/// A whole number of minor units typed into an amount field (the API checks its range).
pub fn parse_amount(text: &str) -> Result<i64, &'static str> {
    text.trim()
        .parse::<i64>()
        .map_err(|_| "enter a whole number of minor units (e.g. cents), like 1250")
}

/// The idempotency key a submitted form carries; a form without one (a hand-made request)
/// gets a fresh one, which makes it a new request.
pub fn key_of(values: &HashMap<String, String>) -> String {
    values
        .get("idempotency_key")
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
        .cloned()
        .unwrap_or_else(fresh_key)
}

/// Money in minor units as the console shows it.
pub fn money(amount: i64) -> String {
    amount.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_rendered_beside_the_field_it_concerns() {
        let mut view = FormView::default();
        view.refused(
            &Problem {
                status: 422,
                code: "insufficient_funds".into(),
                detail: "not enough money".into(),
            },
            &[Field::Amount],
        );
        let html = view
            .input("withdraw", Field::Amount, "Amount", "text", true)
            .into_string();
        assert!(
            html.contains(r#"aria-describedby="withdraw-amount-error""#),
            "{html}"
        );
        assert!(
            html.contains(r#"<p class="error" id="withdraw-amount-error">Insufficient funds: not enough money</p>"#),
            "{html}"
        );
        assert_eq!(view.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn every_rendered_form_carries_a_fresh_idempotency_key() {
        let view = FormView::default();
        let first = view.footer("deposit", "Deposit").into_string();
        let second = view.footer("deposit", "Deposit").into_string();
        assert!(first.contains(r#"name="idempotency_key""#));
        assert_ne!(first, second);
    }

    #[test]
    fn a_submitted_key_is_kept_and_a_missing_or_bad_one_replaced() {
        let mut values = HashMap::new();
        values.insert("idempotency_key".to_owned(), "k-1".to_owned());
        assert_eq!(key_of(&values), "k-1");
        values.insert("idempotency_key".to_owned(), "has space".to_owned());
        assert_ne!(key_of(&values), "has space");
        assert!(!key_of(&HashMap::new()).is_empty());
    }

    #[test]
    fn amounts_are_whole_minor_units() {
        assert_eq!(parse_amount(" 1250 "), Ok(1250));
        assert!(parse_amount("12.50").is_err());
        assert!(parse_amount("").is_err());
    }
}
