//! `GET /v1/orders/{id}` and `GET /v1/orders?owner_id=&limit=&offset=`.

use super::access::{ORDER_NOT_FOUND, OthersListed, QueryCall};
use super::params::{db, stored_word, uuid_id};
use axum::Json;
use chrono::{DateTime, Utc};
use events::{AccountId, Amount, Currency, OrderStatus, OwnerId};
use http_edge::{ApiError, ApiPath, ApiQuery};
use read_model::query::orders;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// An order.
#[derive(Debug, Serialize, ToSchema)]
pub struct Order {
    account_id: AccountId,
    amount: Amount,
    created_at: DateTime<Utc>,
    /// The currency the account must hold, when the order named one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    currency: Option<Currency>,
    description: Option<String>,
    job_id: Uuid,
    order_id: Uuid,
    owner_id: OwnerId,
    /// Why it was rejected (`account_not_found`, `insufficient_funds`, `currency_mismatch`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    reason: Option<String>,
    /// Given back by refunds so far (0 ..= amount).
    #[schema(minimum = 0)]
    refunded_total: i64,
    status: OrderStatus,
    updated_at: DateTime<Utc>,
}

impl Order {
    fn from_row(row: orders::Order) -> Result<Self, ApiError> {
        Ok(Self {
            account_id: row.account_id,
            amount: row.amount,
            created_at: row.created_at,
            currency: row.currency,
            description: row.description,
            job_id: row.job_id,
            order_id: row.order_id,
            owner_id: row.owner_id,
            reason: row.reason,
            refunded_total: row.refunded_total,
            status: stored_word(&row.status)?,
            updated_at: row.updated_at,
        })
    }
}

http_edge::problems!(OrderHidden: [ORDER_NOT_FOUND]);

/// An order
#[utoipa::path(
    get,
    path = "/v1/orders/{id}",
    params(("id" = uuid::Uuid, Path, description = "the order id")),
    responses(
        (status = 200, description = "the order", body = Order),
        OrderHidden,
    )
)]
pub async fn get_order(
    call: QueryCall,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<Order>, ApiError> {
    let order_id = uuid_id(&raw, "order")?;
    let row = orders::order(&call.app.pool, order_id).await.map_err(db)?;
    let row = call.visible_or(row, ORDER_NOT_FOUND)?;
    Ok(Json(Order::from_row(row)?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Whose orders (users: only their own; admins: anyone's, default everyone's).
    #[param(value_type = Option<OwnerId>)]
    owner_id: Option<String>,
    /// Items per page.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// Orders to skip.
    #[param(minimum = 0)]
    offset: Option<i64>,
}

/// A page of orders, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPage {
    items: Vec<Order>,
    limit: i64,
    offset: i64,
}

/// The caller's orders (admins: anyone's), newest first
#[utoipa::path(
    get,
    path = "/v1/orders",
    params(ListQuery),
    responses(
        (status = 200, description = "a page of orders", body = OrderPage),
        OthersListed,
    )
)]
pub async fn list_orders(
    call: QueryCall,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<OrderPage>, ApiError> {
    let (owner, limit) = call.listing(query.owner_id, query.limit)?;
    let offset = query.offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::invalid_request("offset counts from 0"));
    }
    let rows = orders::orders(&call.app.pool, owner.as_ref(), offset, limit)
        .await
        .map_err(db)?;
    Ok(Json(OrderPage {
        items: rows
            .into_iter()
            .map(Order::from_row)
            .collect::<Result<_, _>>()?,
        limit,
        offset,
    }))
}
