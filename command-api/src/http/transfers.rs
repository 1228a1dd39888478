//! `POST /v1/transfers`: both legs commit in one atomic batch, or neither does.

use super::answers::TransferAnswer;
use super::exchange::{CommandCall, NoPath};
use super::problem::{
    ACCOUNT_NOT_FOUND, BALANCE_OVERFLOW, CONFLICT, CURRENCY_MISMATCH, IDEMPOTENCY_KEY_REUSED,
    INSUFFICIENT_FUNDS, SAME_ACCOUNT,
};
use crate::domain::{Command, TransferFunds};
use axum::response::Response;
use events::{AccountId, Amount, Currency, Metadata, Reference};
use http_edge::ApiError;
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

http_edge::problems!(TransferProblems: [
    ACCOUNT_NOT_FOUND, CONFLICT, SAME_ACCOUNT, INSUFFICIENT_FUNDS, CURRENCY_MISMATCH,
    BALANCE_OVERFLOW, IDEMPOTENCY_KEY_REUSED
]);

#[utoipa::path(
    post,
    path = "/v1/transfers",
    summary = "Transfer money between two accounts",
    request_body = TransferRequest,
    responses(
        (status = 201, description = "both legs committed", body = TransferAnswer),
        TransferProblems,
    )
)]
pub async fn transfer(call: CommandCall<NoPath>) -> Result<Response, ApiError> {
    let request: TransferRequest = call.body()?;
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
    call.execute(Command::TransferFunds(command)).await
}
