//! Balance batches (admins): a file of `account_id,amount` lines or a JSON object
//! `{"<account_id>": <amount>, …}` becomes one `PUT /v1/balances`; then a progress bar fed by
//! `GET /v1/batches/{id}`, asked again every half second until the batch is `done`.

use super::{FormView, PageError, Visit, admins_only, key_of, layout};
use crate::feed::is_account_id;
use crate::fields::Field;
use crate::session::Session;
use axum::extract::{Multipart, Path};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use reqwest::Method;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// Largest upload read: the command API takes balance bodies up to 16 MiB
/// (BALANCES_BODY_BYTES_MAX), and a CSV line is shorter than its JSON member.
pub const UPLOAD_BYTES_MAX: usize = 16 * 1024 * 1024;
/// How often a running batch's progress is asked for: chunks of a thousand items commit in
/// tens of milliseconds, so half a second shows the bar moving without flooding the API.
const POLL: &str = "every 500ms";
/// What a user who finds the batch pages is told.
const BATCHES_FOR_ADMINS: &str = "Balance batches are for admins.";

pub async fn page(session: Session) -> Result<Markup, PageError> {
    admins_only(&session, BATCHES_FOR_ADMINS)?;
    let body = html! {
        h1 { "Balance batches" }
        p.muted { "Sets each listed account's balance (opening accounts that do not exist yet)." }
        div.grid.two { (upload_form(&FormView::default(), None)) }
    };
    Ok(layout("Balance batches", Some(&session), body))
}

fn upload_form(view: &FormView, submitted: Option<Markup>) -> Markup {
    let error = view.errors.get(Field::Batch.name());
    html! {
        form.card #batch-form method="post" action="/admin/batches" enctype="multipart/form-data"
            hx-post="/admin/batches" hx-encoding="multipart/form-data" hx-swap="outerHTML" aria-labelledby="batch-title" {
            h3 #batch-title { "Upload a batch" }
            label for="batch-file" { "File: CSV (" code { "account_id,amount" } " lines) or JSON" }
            input #batch-file name="file" type="file" accept=".csv,.json,text/csv,application/json"
                aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| "batch-batch-error")];
            label for="batch-text" { "…or paste it here" }
            textarea #batch-text name="text" aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| "batch-batch-error")] {
                (view.value("text"))
            }
            @if let Some(error) = error {
                p.error #batch-batch-error { (error) }
            }
            (view.footer("batch", "Submit batch"))
            @if let Some(submitted) = submitted { (submitted) }
        }
    }
}

/// A batch's items from an upload: a JSON object, else CSV lines. An error names the line.
pub fn parse_batch(text: &str) -> Result<Map<String, Value>, String> {
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.is_empty() {
        return Err("the batch is empty".to_owned());
    }
    let mut items = Map::new();
    if trimmed.starts_with('{') {
        let object: Map<String, Value> = serde_json::from_str(trimmed)
            .map_err(|e| format!("not a JSON object of account ids to amounts: {e}"))?;
        for (id, amount) in object {
            let amount = amount
                .as_i64()
                .filter(|a| *a >= 0)
                .ok_or_else(|| format!("{id}: the amount must be a whole number ≥ 0"))?;
            if !is_account_id(&id) {
                return Err(format!("{id}: not an account id"));
            }
            items.insert(id, json!(amount));
        }
        return Ok(items);
    }
    for (n, line) in trimmed.lines().enumerate() {
        let line = line.trim();
        let number = n + 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if number == 1 && line.eq_ignore_ascii_case("account_id,amount") {
            continue;
        }
        let Some((id, amount)) = line.split_once(',') else {
            return Err(format!("line {number}: expected account_id,amount"));
        };
        let (id, amount) = (id.trim(), amount.trim());
        if !is_account_id(id) {
            return Err(format!("line {number}: `{id}` is not an account id"));
        }
        let amount: i64 = amount
            .parse()
            .ok()
            .filter(|a| *a >= 0)
            .ok_or_else(|| format!("line {number}: the amount must be a whole number ≥ 0"))?;
        if items.insert(id.to_owned(), json!(amount)).is_some() {
            return Err(format!("line {number}: {id} is listed twice"));
        }
    }
    if items.is_empty() {
        return Err("the batch has no items".to_owned());
    }
    Ok(items)
}

pub async fn upload(Visit(state, session, headers): Visit, mut multipart: Multipart) -> Response {
    if let Err(refused) = admins_only(&session, BATCHES_FOR_ADMINS) {
        return refused.into_response();
    }
    let mut values = HashMap::new();
    let mut file = String::new();
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or("").to_owned();
                let text = match field.text().await {
                    Ok(text) => text,
                    Err(e) => return bad_upload(values, &e.body_text()),
                };
                if name == "file" {
                    file = text;
                } else {
                    values.insert(name, text);
                }
            }
            Ok(None) => break,
            Err(e) => return bad_upload(values, &e.body_text()),
        }
    }
    let key = key_of(&values);
    let source = if file.trim().is_empty() {
        values.get("text").cloned().unwrap_or_default()
    } else {
        file
    };
    let mut view = FormView::with_values(values);
    let items = match parse_batch(&source) {
        Ok(items) => items,
        Err(message) => {
            view.field_error(Field::Batch, message);
            return (view.status(), upload_form(&view, None)).into_response();
        }
    };
    let count = items.len();
    match state
        .api
        .command(
            &session.token,
            Method::PUT,
            "/v1/balances",
            &Value::Object(items),
            &key,
        )
        .await
    {
        Ok(answer) => {
            let batch_id = answer.body["batch_id"].as_str().unwrap_or("").to_owned();
            let started = json!({"status": "running", "total": count, "completed": 0, "rejected": 0, "failed": 0});
            upload_form(
                &FormView::default(),
                Some(progress_fragment(&batch_id, &started)),
            )
            .into_response()
        }
        Err(problem) if problem.status == 401 => {
            PageError::api(problem, &session, &headers).into_response()
        }
        Err(problem) => {
            view.refused(&problem, &[Field::Batch]);
            view.errors
                .entry(Field::Batch.name())
                .or_insert_with(|| view.general.take().unwrap_or_default());
            (view.status(), upload_form(&view, None)).into_response()
        }
    }
}

fn bad_upload(values: HashMap<String, String>, message: &str) -> Response {
    let mut view = FormView::with_values(values);
    view.field_error(
        Field::Batch,
        format!("the upload could not be read: {message}"),
    );
    (StatusCode::UNPROCESSABLE_ENTITY, upload_form(&view, None)).into_response()
}

pub async fn progress(
    Visit(state, session, headers): Visit,
    Path(id): Path<String>,
) -> Result<Markup, PageError> {
    let Ok(batch_id) = uuid::Uuid::parse_str(&id) else {
        return Err(PageError::Api(
            crate::api::Problem {
                status: 404,
                code: "not_found".into(),
                detail: "no such batch".into(),
            },
            Some(session),
        ));
    };
    let batch = match state
        .api
        .query(&session, &format!("/v1/batches/{batch_id}"), None)
        .await
    {
        Ok(answer) => answer.body,
        // Not projected yet: nothing applied so far.
        Err(problem) if problem.status == 404 => json!({"status": "running"}),
        Err(problem) => return Err(PageError::api(problem, &session, &headers)),
    };
    Ok(progress_fragment(&batch_id.to_string(), &batch))
}

fn progress_fragment(batch_id: &str, batch: &Value) -> Markup {
    let count = |key: &str| batch[key].as_u64().unwrap_or(0);
    let total = count("total");
    let finished = count("completed") + count("rejected") + count("failed");
    let done = batch["status"].as_str() == Some("done");
    let status = if done { "done" } else { "running" };
    let url = format!("/admin/batches/{batch_id}/progress");
    let inner = html! {
        p { "Batch " code { (batch_id) } ": " span class={ "status-" (status) } #batch-status { (status) } }
        label for={ "progress-" (batch_id) } { (finished) " of " (total) " items applied (" (count("completed")) " set, " (count("rejected")) " rejected, " (count("failed")) " failed)" }
        progress #{ "progress-" (batch_id) } max=(total.max(1)) value=(finished) {}
    };
    html! {
        @if done {
            div.batch-progress #{ "batch-" (batch_id) } role="status" { (inner) }
        } @else {
            div.batch-progress #{ "batch-" (batch_id) } role="status" hx-get=(url) hx-trigger=(POLL) hx-swap="outerHTML" { (inner) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_batch_is_read_line_by_line_with_an_optional_header() {
        let items =
            parse_batch("account_id,amount\nalice, 100\n\n# comment\nbob,0\n").expect("parses");
        assert_eq!(Value::Object(items), json!({"alice": 100, "bob": 0}));
    }

    #[test]
    fn a_json_batch_is_taken_as_it_is() {
        let items = parse_batch(r#"{"alice": 5, "carol": 7}"#).expect("parses");
        assert_eq!(Value::Object(items), json!({"alice": 5, "carol": 7}));
    }

    #[test]
    fn a_bad_line_is_named_by_its_number() {
        assert_eq!(
            parse_batch("alice,1\nbob,-3").expect_err("refused"),
            "line 2: the amount must be a whole number ≥ 0"
        );
        assert!(
            parse_batch("alice,1\nalice,2")
                .expect_err("refused")
                .contains("twice")
        );
        assert!(
            parse_batch("a b,1")
                .expect_err("refused")
                .contains("not an account id")
        );
        assert!(parse_batch("").is_err());
        assert!(parse_batch(r#"{"alice": 1.5}"#).is_err());
    }

    #[test]
    fn the_bar_keeps_asking_until_the_batch_is_done() {
        let running = progress_fragment(
            "b",
            &json!({"status": "running", "total": 4, "completed": 1}),
        )
        .into_string();
        assert!(
            running.contains("hx-trigger") && running.contains(r#"value="1""#),
            "{running}"
        );
        let done = progress_fragment(
            "b",
            &json!({"status": "done", "total": 4, "completed": 3, "rejected": 1}),
        )
        .into_string();
        assert!(
            !done.contains("hx-trigger") && done.contains(r#"value="4""#),
            "{done}"
        );
    }
}
