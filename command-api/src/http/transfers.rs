//! `POST /v1/transfers`: both legs commit in one atomic batch, or neither does.
//! `POST /v1/transfers/{transfer_id}/reversals`: part or all of a transfer moved back.

use super::answers::{ReversalAnswer, TransferAnswer};
use super::exchange::{CommandCall, NoPath};
use super::problem::{
    ACCOUNT_NOT_FOUND, BALANCE_OVERFLOW, CURRENCY_MISMATCH, INSUFFICIENT_FUNDS,
    REVERSAL_EXCEEDS_TRANSFER, SAME_ACCOUNT, TRANSFER_NOT_FOUND,
};
use crate::domain::{Command, ReverseTransfer, TransferFunds};
use crate::lookup;
use axum::response::Response;
use events::{AccountId, Amount, Currency, Metadata, Reference};
use http_edge::{ApiError, ApiPath};
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
    ACCOUNT_NOT_FOUND, SAME_ACCOUNT, INSUFFICIENT_FUNDS, CURRENCY_MISMATCH, BALANCE_OVERFLOW
]);

/// Transfer money between two accounts
#[utoipa::path(
    post,
    path = "/v1/transfers",
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReversalRequest {
    /// Minor units to move back, at most what is left of the transfer (default: all of it).
    #[schema(value_type = Option<Amount>)]
    amount: Option<Value>,
    #[schema(value_type = Option<Reference>)]
    reference: Option<String>,
}

http_edge::problems!(ReversalProblems: [
    TRANSFER_NOT_FOUND, REVERSAL_EXCEEDS_TRANSFER, INSUFFICIENT_FUNDS, BALANCE_OVERFLOW
]);

/// Move a transfer's money back from its receiver to its sender (part or all)
///
/// Allowed to an admin or the owner of the receiving account; anyone else, the sender included, is
/// answered 404. Several partial reversals may follow one another; together they never exceed the
/// transfer.
#[utoipa::path(
    post,
    path = "/v1/transfers/{transfer_id}/reversals",
    params(("transfer_id" = Uuid, Path, description = "the transfer id")),
    request_body = ReversalRequest,
    responses(
        (status = 201, description = "moved back: the three messages committed together", body = ReversalAnswer),
        ReversalProblems,
    )
)]
pub async fn reverse_transfer(call: CommandCall<ApiPath<String>>) -> Result<Response, ApiError> {
    let request: ReversalRequest = call.body()?;
    let amount = request.amount.as_ref().map(Amount::from_json).transpose()?;
    let reference = request.reference.map(Reference::parse).transpose()?;
    let transfer_id = Uuid::parse_str(&call.path.0)
        .map_err(|_| ApiError::invalid_request("transfer ids are UUIDs"))?;
    let transfer = lookup::transfer(call.app.sources(), transfer_id)
        .await?
        .transfer
        .ok_or_else(|| {
            ApiError::new(
                TRANSFER_NOT_FOUND,
                format!("transfer {transfer_id} not found"),
            )
        })?;
    let command = Command::ReverseTransfer(ReverseTransfer {
        transfer_id,
        transfer,
        amount,
        reference,
    });
    call.execute(command).await
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
