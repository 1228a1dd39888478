//! `GET /v1/orders/{id}` and `GET /v1/orders?owner_id=&limit=&offset=`.

use super::{db, page_len};
use crate::AppState;
use crate::read_model::{self, OrderRow};
use axum::Json;
use axum::extract::State;
use events::OwnerId;
use http_edge::{ApiError, ApiPath, ApiQuery, Caller};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn order_json(row: &OrderRow) -> Value {
    let mut body = json!({
        "order_id": row.order_id,
        "owner_id": row.owner_id,
        "account_id": row.account_id,
        "amount": row.amount,
        "description": row.description,
        "status": row.status,
        "job_id": row.job_id,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    });
    if !row.currency.is_empty() {
        body["currency"] = json!(row.currency);
    }
    if let Some(reason) = &row.reason {
        body["reason"] = json!(reason);
    }
    body
}

fn order_not_found() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "order_not_found",
        "no such order",
    )
}

pub async fn get_one(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let order_id = super::uuid_id(&raw, "order")?;
    let row = read_model::order(&app.pool, order_id)
        .await
        .map_err(db)?
        .filter(|row| caller.admin || row.owner_id == caller.principal.as_str())
        .ok_or_else(order_not_found)?;
    Ok(Json(order_json(&row)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    owner_id: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let owner = super::listed_owner(&caller, query.owner_id)?;
    let limit = page_len(query.limit)?;
    let offset = query.offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::invalid_request("offset counts from 0"));
    }
    let rows = read_model::orders(
        &app.pool,
        owner.as_ref().map(OwnerId::as_str),
        offset,
        limit,
    )
    .await
    .map_err(db)?;
    Ok(Json(json!({
        "items": rows.iter().map(order_json).collect::<Vec<_>>(),
        "limit": limit,
        "offset": offset,
    })))
}
