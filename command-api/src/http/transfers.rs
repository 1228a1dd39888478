//! `POST /v1/transfers`: both legs commit in one atomic batch, or neither does.

use super::answers::TransferAnswer;
use super::exchange::{CommandCall, NoPath, execute, parse_body};
use crate::domain::{Command, TransferFunds};
use axum::response::Response;
use events::{AccountId, Amount, Currency, Metadata, Reference};
use http_edge::{ApiError, Problem};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// The caller's account (admins: any).
    #[schema(value_type = AccountId)]
    from_account_id: String,
    #[schema(value_type = AccountId)]
    to_account_id: String,
    /// Minor units.
    #[schema(value_type = Amount)]
    amount: Value,
    /// When given, must be both accounts' currency.
    #[schema(value_type = Option<Currency>)]
    currency: Option<String>,
    #[schema(value_type = Option<Reference>)]
    reference: Option<String>,
    /// A JSON object of at most 4096 bytes, kept verbatim.
    #[schema(value_type = Option<Metadata>)]
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
        (status = 201, description = "both legs committed", body = TransferAnswer),
        (status = 404, description = "`account_not_found`: either account is missing, or the sender is not the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`conflict`: the accounts were changed concurrently; retry (Retry-After)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`same_account`, `insufficient_funds`, `currency_mismatch`, `balance_overflow` or `idempotency_key_reused`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn transfer(call: CommandCall<NoPath>) -> Result<Response, ApiError> {
    let (NoPath, app, actor, key, body) = call.into_parts();
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
    let claim = key.claim("POST", "/v1/transfers", &body);
    execute(&app, actor, Command::TransferFunds(command), claim).await
}
