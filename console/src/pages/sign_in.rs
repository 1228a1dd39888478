//! Signing in with a bearer token (checked against the query API before it is kept), the
//! development identities, and signing out.

use super::{FormView, layout};
use crate::AppState;
use crate::fields::Field;
use crate::session::{Session, sign_in_cookie, sign_out_cookie};
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use std::collections::HashMap;

pub async fn page(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Markup {
    render(
        &state,
        &FormView::default(),
        query.get("dev").map(String::as_str),
    )
}

fn render(state: &AppState, view: &FormView, dev: Option<&str>) -> Markup {
    let body = html! {
        h1 { "Sign in" }
        form.card method="post" action="/sign-in" {
            (view.input("sign-in", Field::Token, "Bearer token", "password", true))
            p.muted { "A token from " code { "command-api token --sub <name>" } " or from your operator. It is kept in a cookie only this console can read." }
            (view.footer("sign-in", "Sign in"))
        }
        @if !state.dev_tokens.is_empty() {
            section.dev aria-labelledby="dev-heading" {
                h2 #dev-heading { "Development identities" }
                p.muted { "Offered because this console was started with CONSOLE_DEV_TOKENS." }
                @for name in state.dev_tokens.keys() {
                    form method="post" action="/sign-in/dev" {
                        input type="hidden" name="identity" value=(name);
                        button type="submit" autofocus[dev == Some(name.as_str())] { "Sign in as " (name) }
                    }
                }
            }
        }
    };
    layout("Sign in", None, body)
}

pub async fn submit(
    State(state): State<AppState>,
    Form(values): Form<HashMap<String, String>>,
) -> Response {
    let token = values
        .get("token")
        .map(|t| t.trim().to_owned())
        .unwrap_or_default();
    let mut view = FormView::default();
    let Some(session) = Session::from_token(&token) else {
        view.field_error(
            Field::Token,
            "this is not a bearer token (three dot-separated parts)",
        );
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            render(&state, &view, None),
        )
            .into_response();
    };
    // The query API says whether the token is good; the console keeps only tokens it accepts.
    match state
        .api
        .query(&session, "/v1/accounts?limit=1", None)
        .await
    {
        Ok(_) => signed_in(&state, &session.token),
        Err(problem) => {
            view.refused(&problem, &[Field::Token]);
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                render(&state, &view, None),
            )
                .into_response()
        }
    }
}

pub async fn dev(
    State(state): State<AppState>,
    Form(values): Form<HashMap<String, String>>,
) -> Response {
    let identity = values.get("identity").map(String::as_str).unwrap_or("");
    match state.dev_tokens.get(identity) {
        Some(token) => signed_in(&state, token),
        None => (StatusCode::NOT_FOUND, "no such development identity").into_response(),
    }
}

fn signed_in(state: &AppState, token: &str) -> Response {
    let mut response = Redirect::to("/accounts").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        sign_in_cookie(token, state.cookie_secure),
    );
    response
}

pub async fn sign_out() -> Response {
    let mut response = Redirect::to("/sign-in").into_response();
    let headers = response.headers_mut();
    headers.insert(header::SET_COOKIE, sign_out_cookie());
    headers.append(
        header::SET_COOKIE,
        axum::http::HeaderValue::from_static(
            "tally_seq=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
        ),
    );
    response
}
