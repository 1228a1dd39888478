//! `POST /v1/orders`: journals `order_placed` and answers `202`; the payment executor pays or
//! rejects the order asynchronously.

use super::{ApiError, ApiJson, IdempotencyHeader, accounts::mismatched, execute, parse_body};
use crate::AppState;
use crate::domain::order::DESCRIPTION_LEN_MAX;
use crate::domain::{Actor, Command, Outcome, PlaceOrder};
use crate::writer::Rendered;
use axum::extract::State;
use axum::response::Response;
use events::{AccountId, Amount, Currency, OrderState};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderRequest {
    account_id: String,
    amount: Value,
    currency: Option<String>,
    description: Option<String>,
    order_id: Option<String>,
}

pub async fn place(
    State(app): State<AppState>,
    actor: Actor,
    key: IdempotencyHeader,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let request: OrderRequest = parse_body(&body)?;
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
    let claim = key.claim(&actor, "POST", "/v1/orders", &body);
    execute(&app, actor, command, claim, render_order).await
}

/// An order as the command API shows it.
pub fn order_json(order_id: &Uuid, state: &OrderState) -> Value {
    let mut body = json!({
        "order_id": order_id,
        "account_id": state.account_id,
        "amount": state.amount,
        "status": state.status,
    });
    if let Some(reason) = state.reason {
        body["reason"] = json!(reason.code());
    }
    body
}

fn render_order(_: &Actor, outcome: &Outcome, job_id: Uuid) -> Rendered {
    match outcome {
        Outcome::OrderPlaced {
            order_id, state, ..
        } => {
            let mut body = order_json(order_id, state);
            body["job_id"] = json!(job_id);
            Rendered { status: 202, body }
        }
        other => mismatched(other),
    }
}
