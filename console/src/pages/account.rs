//! One account: its figures (kept live by the feed, see `assets/console.js`), the balance
//! chart, the history with cursor paging and the type filter, and the money forms (deposit,
//! withdraw, transfer, hold, capture, void).

use super::{FormView, PageError, Posted, Visit, layout, money, parse_amount};
use crate::AppState;
use crate::api::{Answer, encode};
use crate::chart::balance_chart;
use crate::feed::is_account_id;
use crate::fields::Field;
use crate::session::Session;
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashMap;

/// History entries per page: enough to see a day's activity, few enough for a phone.
const HISTORY_PAGE_LEN: u32 = 10;
/// Entries the chart draws: the most recent hundred, one query's worth.
const CHART_ENTRIES: u32 = 100;
/// The history's `type` filter: the words the query API's history uses, but `opening`, which
/// every account has once.
fn history_types() -> impl Iterator<Item = &'static str> {
    events::HISTORY_TYPES
        .into_iter()
        .filter(|word| *word != "opening")
}

fn not_found(session: &Session) -> PageError {
    PageError::Api(
        crate::api::Problem {
            status: 404,
            code: "account_not_found".into(),
            detail: "There is no such account, or it is not yours.".into(),
        },
        Some(session.clone()),
    )
}

/// The filter and cursor of a history page, read from the query string.
#[derive(Debug, Default)]
struct HistoryQuery {
    kind: Option<String>,
    cursor: Option<String>,
    min_seq: Option<u64>,
}

impl HistoryQuery {
    fn from(query: &HashMap<String, String>) -> Self {
        Self {
            kind: query
                .get("type")
                .filter(|t| history_types().any(|word| word == t.as_str()))
                .cloned(),
            cursor: query.get("cursor").filter(|c| !c.is_empty()).cloned(),
            min_seq: query.get("min_seq").and_then(|s| s.parse().ok()),
        }
    }
}

/// A request for one account's page or a part of it: the visit, the account id (a
/// well-formed one, else the page is "not found" before any API is asked) and the history's
/// filter and cursor.
#[derive(Debug)]
pub struct AccountVisit(Visit, String, HistoryQuery);

impl FromRequestParts<AppState> for AccountVisit {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let visit = Visit::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Query(query) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        if !is_account_id(&id) {
            return Err(not_found(&visit.1).into_response());
        }
        Ok(Self(visit, id, HistoryQuery::from(&query)))
    }
}

pub async fn page(
    AccountVisit(Visit(state, session, headers), id, history_query): AccountVisit,
) -> Result<Markup, PageError> {
    let api_error = |p| PageError::api(p, &session, &headers);
    let account = state
        .api
        .query(&session, &format!("/v1/accounts/{id}"), None)
        .await
        .map_err(api_error)?;
    // Everything below reads at least what the account was read at.
    let seq = account.ledger_seq;
    let history = history_page(&state, &session, &id, &history_query, seq)
        .await
        .map_err(api_error)?;
    let chart = chart_markup(&state, &session, &id, seq)
        .await
        .map_err(api_error)?;
    let a = &account.body;
    let currency = a["currency"].as_str().unwrap_or("");
    // Resume the feed right after the journal sequence the figures were read at: nothing
    // in between is missed, nothing already shown is applied twice.
    let feed = match seq {
        Some(seq) => format!("/accounts/{id}/events?after_seq={seq}"),
        None => format!("/accounts/{id}/events?from=now"),
    };
    let body = html! {
        h1 { "Account " (id) }
        p.muted { "Owner " (a["owner_id"].as_str().unwrap_or("")) " · " (currency) " · amounts in minor units" }
        dl.figures data-feed=(feed) aria-live="polite" {
            div { dt { "Balance" } dd #balance { (money(a["balance"].as_i64().unwrap_or(0))) } }
            div { dt { "Held" } dd #held { (money(a["held"].as_i64().unwrap_or(0))) } }
            div { dt { "Available" } dd #available { (a["available"].as_i64().map(money).unwrap_or_default()) } }
        }
        p.feed-status #feed-status { "connecting to the live feed…" }
        div.grid {
            @for form in &MONEY_FORMS {
                (money_form(&id, form, &FormView::default()))
            }
        }
        h2 { "Balance over time" }
        (chart)
        h2 { "History" }
        (history)
    };
    Ok(layout(&format!("Account {id}"), Some(&session), body))
}

/// The history section alone (paging, filtering and refreshing after a live event).
pub async fn history(
    AccountVisit(Visit(state, session, headers), id, query): AccountVisit,
) -> Result<Markup, PageError> {
    history_page(&state, &session, &id, &query, query.min_seq)
        .await
        .map_err(|p| PageError::api(p, &session, &headers))
}

/// The chart alone (refreshed after a live event).
pub async fn chart(
    AccountVisit(Visit(state, session, headers), id, query): AccountVisit,
) -> Result<Markup, PageError> {
    chart_markup(&state, &session, &id, query.min_seq)
        .await
        .map_err(|p| PageError::api(p, &session, &headers))
}

async fn chart_markup(
    state: &AppState,
    session: &Session,
    id: &str,
    min_seq: Option<u64>,
) -> Result<Markup, crate::api::Problem> {
    let answer = state
        .api
        .query(
            session,
            &format!("/v1/accounts/{id}/entries?limit={CHART_ENTRIES}"),
            min_seq,
        )
        .await?;
    let items = answer.body["items"].as_array().cloned().unwrap_or_default();
    // Newest first from the API; the chart runs left to right in time.
    let balances: Vec<i64> = items
        .iter()
        .rev()
        .filter_map(|e| e["balance_after"].as_i64())
        .collect();
    Ok(html! {
        figure #chart data-url={ "/accounts/" (id) "/chart" } {
            (balance_chart(&balances, ""))
        }
    })
}

async fn history_page(
    state: &AppState,
    session: &Session,
    id: &str,
    query: &HistoryQuery,
    min_seq: Option<u64>,
) -> Result<Markup, crate::api::Problem> {
    let mut path = format!("/v1/accounts/{id}/entries?limit={HISTORY_PAGE_LEN}");
    if let Some(kind) = &query.kind {
        path.push_str(&format!("&type={kind}"));
    }
    if let Some(cursor) = &query.cursor {
        path.push_str(&format!("&cursor={}", encode(cursor)));
    }
    let answer: Answer = state.api.query(session, &path, min_seq).await?;
    let items = answer.body["items"].as_array().cloned().unwrap_or_default();
    let next = answer.body["next_cursor"].as_str();
    let kind = query.kind.as_deref().unwrap_or("");
    let first_page = query.cursor.is_none();
    Ok(html! {
        section #history data-first-page=(first_page) data-url={ "/accounts/" (id) "/history?type=" (kind) } aria-label="History" {
            form.filter method="get" action={ "/accounts/" (id) }
                hx-get={ "/accounts/" (id) "/history" } hx-target="#history" hx-swap="outerHTML" hx-trigger="change, submit" {
                div {
                    label for="history-type" { "Show" }
                    select #history-type name="type" {
                        option value="" selected[kind.is_empty()] { "every kind" }
                        @for t in history_types() {
                            option value=(t) selected[kind == t] { (t) }
                        }
                    }
                }
                button type="submit" { "Filter" }
            }
            // Scrolls sideways on a narrow screen: focusable, so a keyboard can scroll it too.
            div.table-wrap tabindex="0" role="region" aria-label="History entries" {
                table {
                    caption.muted { @if items.is_empty() { "No entries." } @else { "Newest first" } }
                    thead { tr {
                        th.num scope="col" { "Version" }
                        th scope="col" { "When" }
                        th scope="col" { "Kind" }
                        th.num scope="col" { "Amount" }
                        th.num scope="col" { "Balance after" }
                        th scope="col" { "Details" }
                    } }
                    tbody {
                        @for entry in &items { (entry_row(entry)) }
                    }
                }
            }
            nav.pager aria-label="History pages" {
                @if !first_page {
                    a href={ "/accounts/" (id) "?type=" (kind) }
                        hx-get={ "/accounts/" (id) "/history?type=" (kind) } hx-target="#history" hx-swap="outerHTML" { "← Newest" }
                }
                @if let Some(next) = next {
                    a href={ "/accounts/" (id) "?type=" (kind) "&cursor=" (encode(next)) }
                        hx-get={ "/accounts/" (id) "/history?type=" (kind) "&cursor=" (encode(next)) }
                        hx-target="#history" hx-swap="outerHTML" { "Older →" }
                }
            }
        }
    })
}

fn entry_row(entry: &Value) -> Markup {
    let amount = entry["amount"].as_i64().unwrap_or(0);
    let details: Vec<String> = [
        ("to/from", "counterparty_account_id"),
        ("transfer", "transfer_id"),
        ("hold", "hold_id"),
        ("order", "order_id"),
        ("ref", "reference"),
    ]
    .iter()
    .filter_map(|(label, key)| entry[*key].as_str().map(|v| format!("{label} {v}")))
    .collect();
    let when = entry["occurred_at"].as_str().unwrap_or("");
    html! {
        tr {
            td.num { (entry["version"].as_i64().unwrap_or(0)) }
            td { time datetime=(when) { (when.get(..19).unwrap_or(when).replace('T', " ")) } }
            td { (entry["type"].as_str().unwrap_or("")) }
            td.num { @if amount > 0 { "+" } (money(amount)) }
            td.num { (money(entry["balance_after"].as_i64().unwrap_or(0))) }
            td { (details.join(" · ")) }
        }
    }
}

// The forms. Each posts to /accounts/{id}/forms/{action} and is answered with itself: empty
// with a success message, or with what was typed and the refusal beside its field.

fn form_shell(id: &str, action: &str, title: &str, inner: Markup) -> Markup {
    let url = format!("/accounts/{id}/forms/{action}");
    html! {
        form.card #{ (action) "-form" } method="post" action=(url) hx-post=(url) hx-swap="outerHTML" aria-labelledby={ (action) "-title" } {
            h3 #{ (action) "-title" } { (title) }
            (inner)
        }
    }
}

/// A money form as data: its action (also its route and ids), title, fields (field, label,
/// required) and button.
struct MoneyForm {
    action: &'static str,
    title: &'static str,
    fields: &'static [(Field, &'static str, bool)],
    button: &'static str,
}

const AMOUNT: (Field, &str, bool) = (Field::Amount, "Amount", true);
const HOLD_ID: (Field, &str, bool) = (Field::HoldId, "Hold id", true);

/// The account page's forms, in the order it shows them: action, title, fields, button.
const MONEY_FORMS: [MoneyForm; 6] = [
    MoneyForm::new("deposit", "Deposit", &[AMOUNT], "Deposit"),
    MoneyForm::new("withdraw", "Withdraw", &[AMOUNT], "Withdraw"),
    MoneyForm::new(
        "transfer",
        "Transfer",
        &[(Field::Account, "To account", true), AMOUNT],
        "Transfer",
    ),
    MoneyForm::new("hold", "Place a hold", &[AMOUNT], "Hold"),
    MoneyForm::new(
        "capture",
        "Capture a hold",
        &[HOLD_ID, (Field::Amount, "Amount (empty: all of it)", false)],
        "Capture",
    ),
    MoneyForm::new("void", "Void a hold", &[HOLD_ID], "Void"),
];

impl MoneyForm {
    const fn new(
        action: &'static str,
        title: &'static str,
        fields: &'static [(Field, &'static str, bool)],
        button: &'static str,
    ) -> Self {
        Self {
            action,
            title,
            fields,
            button,
        }
    }
}

fn money_form(id: &str, form: &MoneyForm, view: &FormView) -> Markup {
    form_shell(
        id,
        form.action,
        form.title,
        html! {
            @for (field, label, required) in form.fields {
                (view.input(form.action, *field, label, "text", *required))
            }
            (view.footer(form.action, form.button))
        },
    )
}

/// A money form's command: the API call it makes and the fields it has, or a field error
/// found before calling.
struct Command {
    path: String,
    body: Value,
    fields: &'static [Field],
}

fn command_of(id: &str, action: &str, view: &mut FormView) -> Option<Command> {
    let amount_text = view.value(Field::Amount.name()).to_owned();
    let hold_text = view.value(Field::HoldId.name()).trim().to_owned();
    let required_amount = |view: &mut FormView| match parse_amount(&amount_text) {
        Ok(amount) => Some(amount),
        Err(message) => {
            view.field_error(Field::Amount, message);
            None
        }
    };
    let hold_id = |view: &mut FormView| match uuid::Uuid::parse_str(&hold_text) {
        Ok(hold) => Some(hold),
        Err(_) => {
            view.field_error(
                Field::HoldId,
                "a hold id looks like 0190…-…: copy it from the hold's answer or the history",
            );
            None
        }
    };
    let command = match action {
        "deposit" | "withdraw" => {
            let amount = required_amount(view)?;
            let what = if action == "deposit" {
                "deposits"
            } else {
                "withdrawals"
            };
            Command {
                path: format!("/v1/accounts/{id}/{what}"),
                body: json!({ "amount": amount }),
                fields: &[Field::Amount],
            }
        }
        "transfer" => {
            let to = view.value(Field::Account.name()).trim().to_owned();
            let amount = required_amount(view);
            if !is_account_id(&to) {
                view.field_error(Field::Account, "an account id: letters, digits, - and _");
            }
            Command {
                path: "/v1/transfers".to_owned(),
                body: json!({ "from_account_id": id, "to_account_id": to, "amount": amount? }),
                fields: &[Field::Account, Field::Amount],
            }
        }
        "hold" => Command {
            path: format!("/v1/accounts/{id}/holds"),
            body: json!({ "amount": required_amount(view)? }),
            fields: &[Field::Amount],
        },
        "capture" => {
            let hold = hold_id(view);
            let body = if amount_text.trim().is_empty() {
                json!({})
            } else {
                json!({ "amount": required_amount(view)? })
            };
            Command {
                path: format!("/v1/accounts/{id}/holds/{}/capture", hold?),
                body,
                fields: &[Field::HoldId, Field::Amount],
            }
        }
        "void" => Command {
            path: format!("/v1/accounts/{id}/holds/{}/void", hold_id(view)?),
            body: json!({}),
            fields: &[Field::HoldId],
        },
        _ => return None,
    };
    (!view.has_errors()).then_some(command)
}

fn render_form(id: &str, action: &str, view: &FormView) -> Markup {
    // Unknown actions are refused before a form is rendered; the last form stands in.
    let form = MONEY_FORMS
        .iter()
        .find(|form| form.action == action)
        .unwrap_or(&MONEY_FORMS[MONEY_FORMS.len() - 1]);
    money_form(id, form, view)
}

/// What a success says, from the command's answer.
fn done_message(action: &str, body: &Value) -> String {
    let n = |v: &Value| v.as_i64().map(money).unwrap_or_default();
    match action {
        "deposit" => format!(
            "Deposited {}; balance {}.",
            n(&body["amount"]),
            n(&body["balance"])
        ),
        "withdraw" => format!(
            "Withdrew {}; balance {}.",
            n(&body["amount"]),
            n(&body["balance"])
        ),
        "transfer" => format!(
            "Sent to {}; balance {}.",
            body["to"]["account_id"].as_str().unwrap_or(""),
            n(&body["from"]["balance"])
        ),
        "hold" => format!("Hold {} placed.", body["hold_id"].as_str().unwrap_or("")),
        "capture" => "Hold captured.".to_owned(),
        _ => "Hold voided.".to_owned(),
    }
}

pub async fn submit(
    Visit(state, session, headers): Visit,
    Path((id, action)): Path<(String, String)>,
    Posted(key, mut view): Posted,
) -> Response {
    if !is_account_id(&id) || !MONEY_FORMS.iter().any(|form| form.action == action) {
        return not_found(&session).into_response();
    }
    let Some(command) = command_of(&id, &action, &mut view) else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            render_form(&id, &action, &view),
        )
            .into_response();
    };
    match state
        .api
        .command(
            &session.token,
            Method::POST,
            &command.path,
            &command.body,
            &key,
        )
        .await
    {
        // Without script (a plain form post), back to the whole page, which shows the result.
        Ok(answer) if !headers.contains_key("hx-request") => {
            super::remembering(super::go_to(&headers, &format!("/accounts/{id}")), &answer)
        }
        Ok(answer) => {
            let view = FormView {
                done: Some(done_message(&action, &answer.body)),
                ..FormView::default()
            };
            super::remembering(render_form(&id, &action, &view).into_response(), &answer)
        }
        Err(problem) if problem.status == 401 => {
            PageError::api(problem, &session, &headers).into_response()
        }
        Err(problem) => {
            view.refused(&problem, command.fields);
            (view.status(), render_form(&id, &action, &view)).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(pairs: &[(&str, &str)]) -> FormView {
        FormView::with_values(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn a_transfer_form_becomes_a_transfer_from_this_account() {
        let mut form = view(&[("account_id", "bob"), ("amount", "250")]);
        let command = command_of("alice", "transfer", &mut form).expect("command");
        assert_eq!(command.path, "/v1/transfers");
        assert_eq!(
            command.body,
            json!({"from_account_id": "alice", "to_account_id": "bob", "amount": 250})
        );
    }

    #[test]
    fn a_bad_amount_or_hold_id_is_refused_beside_its_field_before_any_call() {
        let mut form = view(&[("amount", "ten")]);
        assert!(command_of("alice", "withdraw", &mut form).is_none());
        assert!(form.errors.contains_key("amount"));
        let mut form = view(&[("hold_id", "nope")]);
        assert!(command_of("alice", "void", &mut form).is_none());
        assert!(form.errors.contains_key("hold_id"));
        let mut form = view(&[("account_id", "../x"), ("amount", "5")]);
        assert!(command_of("alice", "transfer", &mut form).is_none());
        assert!(form.errors.contains_key("account_id"));
    }

    #[test]
    fn a_capture_without_an_amount_captures_the_whole_hold() {
        let hold = uuid::Uuid::now_v7().to_string();
        let mut form = view(&[("hold_id", &hold), ("amount", "")]);
        let command = command_of("alice", "capture", &mut form).expect("command");
        assert_eq!(command.body, json!({}));
        assert_eq!(
            command.path,
            format!("/v1/accounts/alice/holds/{hold}/capture")
        );
    }

    #[test]
    fn reversals_and_refunds_are_filterable_and_render_with_what_they_link() {
        let filter: Vec<&str> = history_types().collect();
        assert!(filter.contains(&"reversal") && filter.contains(&"refund"));
        assert!(!filter.contains(&"opening"));
        let reversal = entry_row(&json!({"version": 4, "type": "reversal", "amount": 30,
            "balance_after": 530, "counterparty_account_id": "shop",
            "transfer_id": "0193-t", "occurred_at": "2026-11-29T10:00:00Z"}))
        .into_string();
        assert!(reversal.contains("reversal"), "{reversal}");
        assert!(
            reversal.contains("to/from shop · transfer 0193-t"),
            "{reversal}"
        );
        let refund = entry_row(&json!({"version": 5, "type": "refund", "amount": 80,
            "balance_after": 610, "order_id": "0193-o", "occurred_at": "2026-11-29T10:01:00Z"}))
        .into_string();
        assert!(refund.contains("order 0193-o"), "{refund}");
    }
}
