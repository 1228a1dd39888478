//! `POST /v1/transfers`: both legs commit in one atomic batch, or neither does.

use super::ApiError;
use super::{ApiJson, IdempotencyHeader, accounts::mismatched, execute, parse_body};
use crate::AppState;
use crate::domain::{Actor, Command, Outcome, TransferFunds};
use crate::writer::Rendered;
use axum::extract::State;
use axum::response::Response;
use events::{AccountId, Amount, Currency, Metadata, Reference};
use http_edge::Problem;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// The caller's account (admins: any).
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    from_account_id: String,
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    to_account_id: String,
    /// Minor units.
    #[schema(value_type = i64, minimum = 1, maximum = 1000000000000000i64)]
    amount: Value,
    /// When given, must be both accounts' currency.
    #[schema(pattern = "^[A-Z]{3}$")]
    currency: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    reference: Option<String>,
    /// A JSON object of at most 4096 bytes, kept verbatim.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
}

#[utoipa::path(
    post,
    path = "/v1/transfers",
    tag = "transfers",
    operation_id = "transfer",
    summary = "Transfer money between two accounts",
    request_body = TransferRequest,
    responses(
        (status = 201, description = "both legs committed", body = crate::http::openapi::TransferAnswer),
        (status = 404, description = "`account_not_found`: either account is missing, or the sender is not the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`conflict`: the accounts were changed concurrently; retry (Retry-After)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`same_account`, `insufficient_funds`, `currency_mismatch`, `balance_overflow` or `idempotency_key_reused`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn transfer(
    State(app): State<AppState>,
    actor: Actor,
    key: IdempotencyHeader,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let request: TransferRequest = parse_body(&body)?;
    let command = TransferFunds {
        transfer_id: Uuid::now_v7(),
        from: AccountId::parse(request.from_account_id)?,
        to: AccountId::parse(request.to_account_id)?,
        amount: Amount::from_json(&request.amount)?,
        currency: request
            .currency
            .as_deref()
            .map(Currency::parse)
            .transpose()?,
        reference: request.reference.map(Reference::parse).transpose()?,
        metadata: request.metadata.map(Metadata::parse).transpose()?,
    };
    let claim = key.claim(&actor, "POST", "/v1/transfers", &body);
    execute(
        &app,
        actor,
        Command::TransferFunds(command),
        claim,
        render_transfer,
    )
    .await
}

/// The receiver's balance is shown only to those who may see that account: a transfer must
/// not reveal another owner's money.
fn render_transfer(actor: &Actor, outcome: &Outcome, job_id: Uuid) -> Rendered {
    let Outcome::Transferred {
        transfer_id,
        amount,
        from,
        to,
    } = outcome
    else {
        return mismatched(outcome);
    };
    let mut to_json = json!({"account_id": to.0, "version": to.1.version});
    if actor.may_act_on(&to.1) {
        to_json["balance"] = json!(to.1.balance);
        to_json["available"] = json!(to.1.available());
    }
    Rendered {
        status: 201,
        body: json!({
            "transfer_id": transfer_id,
            "job_id": job_id,
            "amount": amount,
            "currency": from.1.currency,
            "from": {
                "account_id": from.0,
                "balance": from.1.balance,
                "available": from.1.available(),
                "version": from.1.version,
            },
            "to": to_json,
        }),
    }
}
