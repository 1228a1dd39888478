//! `GET /v1/orders/{id}` and `GET /v1/orders?owner_id=&limit=&offset=`.

use super::{db, page_len};
use crate::AppState;
use crate::read_model::{self, OrderRow};
use axum::Json;
use axum::extract::State;
use events::OwnerId;
use http_edge::{ApiError, ApiPath, ApiQuery, Caller, Problem};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;

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

#[utoipa::path(
    get,
    path = "/v1/orders/{id}",
    tag = "orders",
    operation_id = "get_order",
    summary = "An order",
    params(("id" = uuid::Uuid, Path, description = "the order id")),
    responses(
        (status = 200, description = "the order", body = crate::http::openapi::Order),
        (status = 404, description = "`order_not_found`: no such order, or not the caller's", body = Problem, content_type = "application/problem+json"),
    )
)]
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

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Whose orders (users: only their own; admins: anyone's, default everyone's).
    #[param(pattern = "^[!-~]{1,128}$")]
    owner_id: Option<String>,
    /// Items per page.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// Orders to skip.
    #[param(minimum = 0)]
    offset: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/v1/orders",
    tag = "orders",
    operation_id = "list_orders",
    summary = "The caller's orders (admins: anyone's), newest first",
    params(ListQuery),
    responses(
        (status = 200, description = "a page of orders", body = crate::http::openapi::OrderPage),
        (status = 403, description = "`forbidden`: users list their own orders only", body = Problem, content_type = "application/problem+json"),
    )
)]
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
