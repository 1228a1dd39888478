//! The accounts page: the signed-in person's accounts (an admin's: any owner's, searched by
//! owner), page by page, and opening a new account.

use super::{FormView, PageError, Posted, Visit, layout, money};
use crate::api::encode;
use crate::fields::Field;
use axum::extract::Query;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashMap;

/// Accounts per page: a screenful on a laptop.
const PAGE_LEN: u32 = 25;

pub async fn page(
    Visit(state, session, headers): Visit,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Markup, PageError> {
    let owner = query
        .get("owner_id")
        .map(|o| o.trim())
        .filter(|o| !o.is_empty() && session.admin);
    let cursor = query.get("cursor").filter(|c| !c.is_empty());
    let mut path = format!("/v1/accounts?limit={PAGE_LEN}");
    if let Some(owner) = owner {
        path.push_str(&format!("&owner_id={}", encode(owner)));
    }
    if let Some(cursor) = cursor {
        path.push_str(&format!("&cursor={}", encode(cursor)));
    }
    let answer = state
        .api
        .query(&session, &path, None)
        .await
        .map_err(|p| PageError::api(p, &session, &headers))?;
    let items = answer.body["items"].as_array().cloned().unwrap_or_default();
    let next = answer.body["next_cursor"].as_str();
    let body = html! {
        h1 { @if session.admin { "Accounts" } @else { "Your accounts" } }
        @if session.admin {
            form.filter method="get" action="/accounts" role="search" {
                div {
                    label for="owner" { "Owner" }
                    input #owner name="owner_id" type="search" value=(owner.unwrap_or("")) placeholder="everyone";
                }
                button type="submit" { "Search" }
            }
        }
        div.table-wrap tabindex="0" role="region" aria-label="Accounts" {
            table {
                caption.muted { @if items.is_empty() { "No accounts yet." } @else { (items.len()) " accounts on this page" } }
                thead { tr { th scope="col" { "Account" } th scope="col" { "Owner" } th.num scope="col" { "Balance" } th.num scope="col" { "Available" } th scope="col" { "Currency" } } }
                tbody {
                    @for account in &items {
                        (row(account))
                    }
                }
            }
        }
        @if let Some(next) = next {
            p.pager {
                a href={ "/accounts?cursor=" (encode(next)) @if let Some(owner) = owner { "&owner_id=" (encode(owner)) } } { "More accounts →" }
            }
        }
        h2 { "Open an account" }
        (open_form(&FormView::default()))
    };
    Ok(layout("Accounts", Some(&session), body))
}

fn row(account: &Value) -> Markup {
    let id = account["account_id"].as_str().unwrap_or("");
    html! {
        tr {
            td { a href={ "/accounts/" (id) } { (id) } }
            td { (account["owner_id"].as_str().unwrap_or("")) }
            td.num { (money(account["balance"].as_i64().unwrap_or(0))) }
            td.num { (account["available"].as_i64().map(money).unwrap_or_default()) }
            td { (account["currency"].as_str().unwrap_or("")) }
        }
    }
}

const OPEN_FIELDS: &[Field] = &[Field::AccountId, Field::Currency];

fn open_form(view: &FormView) -> Markup {
    html! {
        form.card #open-form method="post" action="/accounts" hx-post="/accounts" hx-swap="outerHTML" {
            (view.input("open", Field::AccountId, "Account id (letters, digits, - and _)", "text", true))
            (view.input("open", Field::Currency, "Currency (ISO 4217, default USD)", "text", false))
            (view.footer("open", "Open account"))
        }
    }
}

pub async fn open(
    Visit(state, session, headers): Visit,
    Posted(key, mut view): Posted,
) -> Response {
    let id = view.value(Field::AccountId.name()).trim().to_owned();
    let currency = view.value(Field::Currency.name()).trim().to_uppercase();
    let mut body = json!({ "account_id": id });
    if !currency.is_empty() {
        body["currency"] = json!(currency);
    }
    match state
        .api
        .command(&session.token, Method::POST, "/v1/accounts", &body, &key)
        .await
    {
        Ok(answer) => {
            // Straight to the new account's page.
            let page = super::go_to(&headers, &format!("/accounts/{}", encode(&id)));
            super::remembering(page, &answer)
        }
        Err(problem) if problem.status == 401 => {
            PageError::api(problem, &session, &headers).into_response()
        }
        Err(problem) => {
            view.refused(&problem, OPEN_FIELDS);
            (view.status(), open_form(&view)).into_response()
        }
    }
}
