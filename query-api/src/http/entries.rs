//! `GET /v1/accounts/{id}/entries`: an account's history, newest first.
//!
//! Cursor paging (`limit`, `cursor`) is keyed on the entry version, which never changes and
//! only grows: walking the pages while writes land yields every older entry exactly once.
//! Page paging (`page`, `page_size`) is offered for simple clients; its pages shift when new
//! entries arrive.

use super::{accounts::visible_account, db, page_len};
use crate::AppState;
use crate::read_model::{self, EntryRow, From};
use axum::Json;
use axum::extract::State;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use events::HISTORY_TYPES;
use http_edge::Problem;
use http_edge::{ApiError, ApiPath, ApiQuery, Caller};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EntriesQuery {
    /// Only entries of this kind.
    #[serde(rename = "type")]
    #[param(value_type = Option<crate::http::openapi::EntryType>)]
    entry_type: Option<String>,
    /// Items per page (cursor paging; not with `page`/`page_size`).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page number from 1 (page paging; not with `limit`/`cursor`).
    #[param(minimum = 1)]
    page: Option<i64>,
    /// Items per page (page paging).
    #[param(minimum = 1, maximum = 200)]
    page_size: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/v1/accounts/{id}/entries",
    tag = "accounts",
    operation_id = "list_entries",
    summary = "An account's history, newest first",
    params(("id" = String, Path, description = "the account id", pattern = "^[A-Za-z0-9_-]{1,64}$"), EntriesQuery),
    responses(
        (status = 200, description = "a page of entries", body = crate::http::openapi::EntryPage),
        (status = 404, description = "`account_not_found`: no such account, or not the caller's", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<EntriesQuery>,
) -> Result<Json<Value>, ApiError> {
    let account = visible_account(&app, &caller, id).await?;
    if let Some(t) = &query.entry_type
        && !HISTORY_TYPES.contains(&t.as_str())
    {
        return Err(ApiError::invalid_request(format!(
            "type must be one of {}",
            HISTORY_TYPES.join(", ")
        )));
    }
    let paged = query.page.is_some() || query.page_size.is_some();
    if paged && (query.cursor.is_some() || query.limit.is_some()) {
        return Err(ApiError::invalid_request(
            "use either limit/cursor or page/page_size, not both",
        ));
    }
    let (from, limit, page) = if paged {
        let page = query.page.unwrap_or(1);
        if page < 1 {
            return Err(ApiError::invalid_request("page counts from 1"));
        }
        let size = page_len(query.page_size)?;
        let offset = (page - 1)
            .checked_mul(size)
            .ok_or_else(|| ApiError::invalid_request("page is too large"))?;
        (From::Offset(offset), size, Some((page, size)))
    } else {
        let below = query.cursor.as_deref().map(decode_cursor).transpose()?;
        (From::BelowVersion(below), page_len(query.limit)?, None)
    };
    let mut rows = read_model::entries(
        &app.pool,
        &account.account_id,
        query.entry_type.as_deref(),
        from,
        limit + 1,
    )
    .await
    .map_err(db)?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = more
        .then(|| {
            rows.last()
                .map(|r| URL_SAFE_NO_PAD.encode(format!("v{}", r.version)))
        })
        .flatten();
    let mut body = json!({
        "items": rows.iter().map(entry_json).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
    });
    if let Some((page, size)) = page {
        body["page"] = json!(page);
        body["page_size"] = json!(size);
        body["has_more"] = json!(more);
    }
    Ok(Json(body))
}

fn entry_json(row: &EntryRow) -> Value {
    let mut item = Map::new();
    item.insert("version".into(), json!(row.version));
    item.insert("seq".into(), json!(row.seq));
    item.insert("type".into(), json!(row.entry_type));
    item.insert("event_type".into(), json!(row.event_type));
    item.insert("amount".into(), json!(row.amount));
    item.insert("balance_after".into(), json!(row.balance_after));
    let optional = [
        (
            "counterparty_account_id",
            row.counterparty_account_id.as_ref().map(|v| json!(v)),
        ),
        ("transfer_id", row.transfer_id.map(|v| json!(v))),
        ("order_id", row.order_id.map(|v| json!(v))),
        ("hold_id", row.hold_id.map(|v| json!(v))),
        ("reference", row.reference.as_ref().map(|v| json!(v))),
        ("metadata", row.metadata.clone()),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            item.insert(key.into(), value);
        }
    }
    item.insert("job_id".into(), json!(row.job_id));
    item.insert("occurred_at".into(), json!(row.occurred_at));
    Value::Object(item)
}

fn decode_cursor(raw: &str) -> Result<i64, ApiError> {
    URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix('v').and_then(|v| v.parse().ok()))
        .ok_or_else(|| ApiError::invalid_request("cursor is not one this API gave out"))
}
