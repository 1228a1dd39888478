//! Orders: placing one, watching it turn `paid` or `rejected`, and the list of one's orders.
//!
//! An order is paid asynchronously (the command API's payment executor), so its status is
//! polled: the status fragment asks again every half second (`hx-trigger="every 500ms"`)
//! until the order is final, then renders without the trigger, which ends the polling.

use super::{FormView, PageError, Posted, Visit, layout, money, parse_amount};
use crate::feed::is_account_id;
use crate::fields::Field;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use reqwest::Method;
use serde_json::{Value, json};

/// Orders listed: the most recent fifty, a screenful or two.
const LIST_LEN: u32 = 50;
/// How often a pending order's status is asked for: the payment executor settles an order
/// within milliseconds, so half a second feels immediate without hammering the query API.
const POLL: &str = "every 500ms";

const PLACE_FIELDS: &[Field] = &[Field::Account, Field::Amount];

pub async fn page(Visit(state, session, headers): Visit) -> Result<Markup, PageError> {
    let answer = state
        .api
        .query(&session, &format!("/v1/orders?limit={LIST_LEN}"), None)
        .await
        .map_err(|p| PageError::api(p, &session, &headers))?;
    let items = answer.body["items"].as_array().cloned().unwrap_or_default();
    let body = html! {
        h1 { "Orders" }
        div.grid.two {
            (place_form(&FormView::default(), None))
        }
        h2 { "Recent orders" }
        div.table-wrap tabindex="0" role="region" aria-label="Orders" {
            table {
                caption.muted { @if items.is_empty() { "No orders yet." } @else { "Newest first" } }
                thead { tr {
                    th scope="col" { "Order" } th scope="col" { "Account" } th.num scope="col" { "Amount" }
                    th scope="col" { "Description" } th scope="col" { "Status" }
                } }
                tbody {
                    @for order in &items {
                        tr {
                            td { code { (order["order_id"].as_str().unwrap_or("")) } }
                            td { (order["account_id"].as_str().unwrap_or("")) }
                            td.num { (money(order["amount"].as_i64().unwrap_or(0))) }
                            td { (order["description"].as_str().unwrap_or("")) }
                            td { (status_text(order)) }
                        }
                    }
                }
            }
        }
    };
    Ok(layout("Orders", Some(&session), body))
}

fn place_form(view: &FormView, placed: Option<Markup>) -> Markup {
    html! {
        form.card #place-form method="post" action="/orders" hx-post="/orders" hx-swap="outerHTML" aria-labelledby="place-title" {
            h3 #place-title { "Place an order" }
            (view.input("place", Field::Account, "Account to charge", "text", true))
            (view.input("place", Field::Amount, "Amount", "text", true))
            label for="place-description" { "Description" }
            input #place-description name="description" type="text" value=(view.value("description"));
            (view.footer("place", "Place order"))
            @if let Some(placed) = placed { (placed) }
        }
    }
}

pub async fn place(
    Visit(state, session, headers): Visit,
    Posted(key, mut view): Posted,
) -> Response {
    let account = view.value(Field::Account.name()).trim().to_owned();
    if !is_account_id(&account) {
        view.field_error(Field::Account, "an account id: letters, digits, - and _");
    }
    let amount = match parse_amount(view.value(Field::Amount.name())) {
        Ok(amount) => Some(amount),
        Err(message) => {
            view.field_error(Field::Amount, message);
            None
        }
    };
    let (Some(amount), false) = (amount, view.has_errors()) else {
        return (view.status(), place_form(&view, None)).into_response();
    };
    let mut body = json!({ "account_id": account, "amount": amount });
    let description = view.value("description").trim();
    if !description.is_empty() {
        body["description"] = json!(description);
    }
    match state
        .api
        .command(&session.token, Method::POST, "/v1/orders", &body, &key)
        .await
    {
        // Without script (a plain form post), back to the list, which shows the order.
        Ok(answer) if !headers.contains_key("hx-request") => {
            super::remembering(super::go_to(&headers, "/orders"), &answer)
        }
        Ok(answer) => {
            let order_id = answer.body["order_id"].as_str().unwrap_or("").to_owned();
            let placed = status_fragment(&order_id, &json!({"status": "new"}));
            super::remembering(
                place_form(&FormView::default(), Some(placed)).into_response(),
                &answer,
            )
        }
        Err(problem) if problem.status == 401 => {
            PageError::api(problem, &session, &headers).into_response()
        }
        Err(problem) => {
            view.refused(&problem, PLACE_FIELDS);
            (view.status(), place_form(&view, None)).into_response()
        }
    }
}

/// A placed order's status, asking again until it is final.
pub async fn status(
    Visit(state, session, headers): Visit,
    Path(id): Path<String>,
) -> Result<Markup, PageError> {
    let Ok(order_id) = uuid::Uuid::parse_str(&id) else {
        return Err(PageError::Api(
            crate::api::Problem {
                status: 404,
                code: "order_not_found".into(),
                detail: "no such order".into(),
            },
            Some(session),
        ));
    };
    let order = match state
        .api
        .query(&session, &format!("/v1/orders/{order_id}"), None)
        .await
    {
        Ok(answer) => answer.body,
        // Not projected yet: still new.
        Err(problem) if problem.status == 404 => json!({"status": "new"}),
        Err(problem) => return Err(PageError::api(problem, &session, &headers)),
    };
    Ok(status_fragment(&order_id.to_string(), &order))
}

fn is_final(order: &Value) -> bool {
    matches!(
        order["status"].as_str(),
        Some("paid" | "rejected" | "partially_refunded" | "refunded")
    )
}

fn status_text(order: &Value) -> Markup {
    let status = order["status"].as_str().unwrap_or("new");
    html! {
        span class={ "status-" (status) } { (status) }
        @if let Some(reason) = order["reason"].as_str() { " (" (reason) ")" }
    }
}

fn status_fragment(order_id: &str, order: &Value) -> Markup {
    let url = format!("/orders/{order_id}/status");
    html! {
        @if is_final(order) {
            p.order-status #{ "order-" (order_id) } role="status" {
                "Order " code { (order_id) } ": " (status_text(order))
            }
        } @else {
            p.order-status #{ "order-" (order_id) } role="status" hx-get=(url) hx-trigger=(POLL) hx-swap="outerHTML" {
                "Order " code { (order_id) } ": " (status_text(order)) " …"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_order_keeps_asking_and_a_final_one_stops() {
        let pending = status_fragment("o-1", &json!({"status": "new"})).into_string();
        assert!(pending.contains(r#"hx-trigger="every 500ms""#), "{pending}");
        let paid = status_fragment("o-1", &json!({"status": "paid"})).into_string();
        assert!(!paid.contains("hx-trigger"), "{paid}");
        assert!(paid.contains("status-paid"));
        let rejected = status_fragment(
            "o-1",
            &json!({"status": "rejected", "reason": "insufficient_funds"}),
        )
        .into_string();
        assert!(rejected.contains("insufficient_funds") && !rejected.contains("hx-trigger"));
    }
}
