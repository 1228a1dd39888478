//! `POST /v1/orders`: journals `order_placed` and answers `202`; the payment executor pays or
//! rejects the order asynchronously. `POST /v1/orders/{order_id}/refunds` (admin): gives
//! money of a paid order back to its account.

use super::answers::{OrderAnswer, RefundAnswer};
use super::exchange::{CommandCall, NoPath};
use super::problem::{
    ACCOUNT_NOT_FOUND, BALANCE_OVERFLOW, CURRENCY_MISMATCH, FORBIDDEN, ORDER_EXISTS,
    ORDER_NOT_FOUND, ORDER_NOT_PAID, REFUND_EXCEEDS_CHARGE,
};
use crate::domain::order::DESCRIPTION_LEN_MAX;
use crate::domain::{Command, PlaceOrder, RefundOrder};
use crate::lookup;
use axum::response::Response;
use events::{AccountId, Amount, Currency};
use http_edge::{ApiError, ApiPath};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    /// The account to charge.
    #[schema(value_type = AccountId)]
    account_id: String,
    /// Minor units.
    #[schema(value_type = Amount)]
    amount: Value,
    #[schema(value_type = Option<Currency>)]
    currency: Option<String>,
    /// At most 500 characters, no control characters.
    #[schema(schema_with = description_schema)]
    description: Option<String>,
    /// The client's own id for the order (default: generated).
    #[schema(format = Uuid)]
    order_id: Option<String>,
}

/// An order's description: free text without control characters (as a reference), at most
/// `DESCRIPTION_LEN_MAX` characters.
fn description_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .max_length(Some(DESCRIPTION_LEN_MAX))
        .pattern(Some(events::schema::TEXT_PATTERN))
        .build()
}

http_edge::problems!(PlaceOrderProblems: [ACCOUNT_NOT_FOUND, ORDER_EXISTS, CURRENCY_MISMATCH]);

/// Place an order; the payment executor pays or rejects it
#[utoipa::path(
    post,
    path = "/v1/orders",
    request_body = OrderRequest,
    responses(
        (status = 202, description = "placed (status `new`); follow it with the query API's GET /v1/orders/{id}", body = OrderAnswer),
        PlaceOrderProblems,
    )
)]
pub async fn place_order(call: CommandCall<NoPath>) -> Result<Response, ApiError> {
    let request: OrderRequest = call.body()?;
    let order_id = match request.order_id {
        Some(raw) => Uuid::parse_str(&raw)
            .map_err(|_| ApiError::invalid_request("order_id must be a UUID"))?,
        None => Uuid::now_v7(),
    };
    if let Some(description) = &request.description
        && (description.chars().count() > DESCRIPTION_LEN_MAX
            || description.chars().any(char::is_control))
    {
        return Err(ApiError::invalid_request(format!(
            "description is at most {DESCRIPTION_LEN_MAX} characters, without control characters"
        )));
    }
    let command = Command::PlaceOrder(PlaceOrder {
        order_id,
        account_id: AccountId::parse(request.account_id)?,
        amount: Amount::from_json(&request.amount)?,
        currency: request
            .currency
            .as_deref()
            .map(Currency::parse)
            .transpose()?,
        description: request.description,
    });
    call.execute(command).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// Minor units to give back, at most what is left of the charge (default: all of it).
    #[schema(value_type = Option<Amount>)]
    amount: Option<Value>,
}

http_edge::problems!(RefundProblems: [
    FORBIDDEN, ORDER_NOT_FOUND, ORDER_NOT_PAID, REFUND_EXCEEDS_CHARGE, BALANCE_OVERFLOW
]);

/// Give money of a paid order back to its account (admin)
///
/// The order becomes `partially_refunded`, or `refunded` once all of its charge is back. Refunds
/// together never exceed the charge.
#[utoipa::path(
    post,
    path = "/v1/orders/{order_id}/refunds",
    params(("order_id" = Uuid, Path, description = "the order id")),
    request_body = RefundRequest,
    responses(
        (status = 201, description = "given back: the order's and the account's messages committed together", body = RefundAnswer),
        RefundProblems,
    )
)]
pub async fn refund_order(call: CommandCall<ApiPath<String>>) -> Result<Response, ApiError> {
    if !call.actor.admin {
        return Err(ApiError::forbidden("only admins refund orders"));
    }
    let request: RefundRequest = call.body()?;
    let amount = request.amount.as_ref().map(Amount::from_json).transpose()?;
    let order_id = Uuid::parse_str(&call.path.0)
        .map_err(|_| ApiError::invalid_request("order ids are UUIDs"))?;
    let order = lookup::order(call.app.sources(), order_id)
        .await?
        .ok_or_else(|| ApiError::new(ORDER_NOT_FOUND, format!("order {order_id} not found")))?;
    let command = Command::RefundOrder(RefundOrder {
        order_id,
        account_id: order.account_id,
        amount,
    });
    call.execute(command).await
}
