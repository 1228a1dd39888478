//! `GET /v1/accounts`, `GET /v1/accounts/{id}`, `GET /v1/accounts/{id}/balance`.

use super::{db, page_len};
use crate::AppState;
use crate::read_model::{self, AccountRow};
use axum::Json;
use axum::extract::State;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use events::{AccountId, OwnerId};
use http_edge::Problem;
use http_edge::{ApiError, ApiPath, ApiQuery, Caller};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;

/// The account if it exists and the caller may see it; otherwise "not found", so that
/// other owners' accounts are indistinguishable from missing ones.
pub async fn visible_account(
    app: &AppState,
    caller: &Caller,
    raw_id: String,
) -> Result<AccountRow, ApiError> {
    let account_id = AccountId::parse(raw_id)?;
    let row = read_model::account(&app.pool, account_id.as_str())
        .await
        .map_err(db)?;
    match row {
        Some(row) if caller.admin || row.owner_id == caller.principal.as_str() => Ok(row),
        _ => Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "account_not_found",
            format!("account {account_id} not found"),
        )),
    }
}

fn account_json(row: &AccountRow) -> Value {
    json!({
        "account_id": row.account_id,
        "owner_id": row.owner_id,
        "currency": row.currency,
        "balance": row.balance,
        "held": row.held,
        "available": row.balance.checked_sub(row.held),
        "overdraft_limit": row.overdraft_limit,
        "version": row.version,
        "status": row.status,
        "opened_at": row.opened_at,
        "updated_at": row.updated_at,
    })
}

#[utoipa::path(
    get,
    path = "/v1/accounts/{id}",
    tag = "accounts",
    operation_id = "get_account",
    summary = "An account",
    params(("id" = String, Path, description = "the account id", pattern = "^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 200, description = "the account", body = crate::http::openapi::Account),
        (status = 404, description = "`account_not_found`: no such account, or not the caller's", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_one(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let row = visible_account(&app, &caller, id).await?;
    Ok(Json(account_json(&row)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BalanceQuery {
    /// An RFC 3339 instant: the balance as it was then (default: now).
    #[param(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    as_of: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/accounts/{id}/balance",
    tag = "accounts",
    operation_id = "get_balance",
    summary = "An account's balance, now or as of a past instant",
    params(("id" = String, Path, description = "the account id", pattern = "^[A-Za-z0-9_-]{1,64}$"), BalanceQuery),
    responses(
        (status = 200, description = "the balance", body = crate::http::openapi::Balance),
        (status = 404, description = "`account_not_found`: no such account (then), or not the caller's", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn balance(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<BalanceQuery>,
) -> Result<Json<Value>, ApiError> {
    let row = visible_account(&app, &caller, id).await?;
    let Some(raw) = query.as_of else {
        return Ok(Json(json!({
            "account_id": row.account_id,
            "currency": row.currency,
            "balance": row.balance,
            "available": row.balance.checked_sub(row.held),
            "version": row.version,
        })));
    };
    let instant = DateTime::parse_from_rfc3339(&raw)
        .map_err(|_| ApiError::invalid_request("as_of must be an RFC 3339 instant"))?
        .with_timezone(&Utc);
    let at = read_model::balance_at(&app.pool, &row.account_id, instant)
        .await
        .map_err(db)?
        .ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "account_not_found",
                format!("account {} did not exist at {raw}", row.account_id),
            )
        })?;
    Ok(Json(json!({
        "account_id": row.account_id,
        "currency": row.currency,
        "balance": at.balance_after,
        "available": at.balance_after.checked_sub(at.held_after),
        "version": at.version,
        "as_of": instant,
    })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Whose accounts (users: only their own; admins: anyone's, default everyone's).
    #[param(pattern = "^[!-~]{1,128}$")]
    owner_id: Option<String>,
    /// Items per page.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The caller's accounts (an admin's: anyone's, or one owner's), by account id.
#[utoipa::path(
    get,
    path = "/v1/accounts",
    tag = "accounts",
    operation_id = "list_accounts",
    summary = "The caller's accounts (admins: anyone's), by account id",
    params(ListQuery),
    responses(
        (status = 200, description = "a page of accounts", body = crate::http::openapi::AccountPage),
        (status = 403, description = "`forbidden`: users list their own accounts only", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let owner = super::listed_owner(&caller, query.owner_id)?;
    let limit = page_len(query.limit)?;
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let owner = owner.as_ref().map(OwnerId::as_str);
    let mut rows = read_model::accounts(&app.pool, owner, after.as_deref(), limit + 1)
        .await
        .map_err(db)?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = more
        .then(|| rows.last().map(|r| URL_SAFE_NO_PAD.encode(&r.account_id)))
        .flatten();
    Ok(Json(json!({
        "items": rows.iter().map(account_json).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
    })))
}

fn decode_cursor(raw: &str) -> Result<String, ApiError> {
    URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| ApiError::invalid_request("cursor is not one this API gave out"))
}
