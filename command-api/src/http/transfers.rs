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
    pub(super) from_account_id: String,
    #[schema(value_type = AccountId)]
    pub(super) to_account_id: String,
    /// Minor units.
    #[schema(value_type = Amount)]
    pub(super) amount: Value,
    /// When given, must be both accounts' currency.
    #[schema(value_type = Option<Currency>)]
    pub(super) currency: Option<String>,
    #[schema(value_type = Option<Reference>)]
    pub(super) reference: Option<String>,
    /// A JSON object of at most 4096 bytes, kept verbatim.
    #[schema(value_type = Option<Metadata>)]
    pub(super) metadata: Option<Value>,
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
    let command = request.command(Uuid::now_v7())?;
    call.execute(Command::TransferFunds(command)).await
}

impl TransferRequest {
    /// The transfer this request asks for, as `transfer_id`.
    pub(super) fn command(self, transfer_id: Uuid) -> Result<TransferFunds, ApiError> {
        Ok(TransferFunds {
            transfer_id,
            from: AccountId::parse(self.from_account_id)?,
            to: AccountId::parse(self.to_account_id)?,
            amount: Amount::from_json(&self.amount)?,
            currency: self.currency.as_deref().map(Currency::parse).transpose()?,
            reference: self.reference.map(Reference::parse).transpose()?,
            metadata: self.metadata.map(Metadata::parse).transpose()?,
        })
    }
}
