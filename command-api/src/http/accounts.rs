//! `POST /v1/accounts`, `POST /v1/accounts/{id}/deposits`, `POST /v1/accounts/{id}/withdrawals`.

use super::answers::{AccountAnswer, MovementAnswer};
use super::exchange::{CommandCall, NoPath};
use super::problem::{
    ACCOUNT_EXISTS, ACCOUNT_NOT_FOUND, BALANCE_OVERFLOW, CURRENCY_MISMATCH, FORBIDDEN,
    INSUFFICIENT_FUNDS, INVALID_AMOUNT,
};
use crate::domain::{Command, MoveFunds, OpenAccount};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use events::{AMOUNT_MAX, AccountId, Amount, Currency, Metadata, OwnerId, Reference};
use http_edge::openapi::AccountIdParam;
use http_edge::{ApiError, ApiPath};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa::openapi::schema::{SchemaType, Type};

/// Every field is optional: a generated id, the caller as owner, USD, no overdraft.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenAccountRequest {
    /// Generated (a UUID) when absent.
    #[schema(value_type = Option<AccountId>)]
    account_id: Option<String>,
    /// Admins only, for someone else (default: the caller).
    #[schema(value_type = Option<OwnerId>)]
    owner_id: Option<String>,
    /// ISO 4217, fixed for the account's life (default USD).
    #[schema(value_type = Option<Currency>)]
    currency: Option<String>,
    /// Admins only: how far below zero the balance may go, in minor units (default 0).
    #[schema(schema_with = overdraft_limit_schema)]
    overdraft_limit: Option<Value>,
}

http_edge::problems!(OpenAccountProblems: [FORBIDDEN, ACCOUNT_EXISTS]);

/// Open an account
#[utoipa::path(
    post,
    path = "/v1/accounts",
    request_body = OpenAccountRequest,
    responses(
        (status = 201, description = "opened", body = AccountAnswer),
        (status = 200, description = "already open with the same owner, currency and limit", body = AccountAnswer),
        OpenAccountProblems,
    )
)]
pub async fn open_account(call: CommandCall<NoPath>) -> Result<Response, ApiError> {
    let request: OpenAccountRequest = call.body()?;
    let actor = &call.actor;
    let account_id = match request.account_id {
        Some(raw) => AccountId::parse(raw)?,
        None => AccountId::generate(),
    };
    let owner_id = match request.owner_id {
        Some(raw) => OwnerId::parse(raw)?,
        None => actor.principal.clone(),
    };
    if !actor.may_act_for(&owner_id) {
        return Err(ApiError::forbidden("only admins open accounts for others"));
    }
    let overdraft_limit = match request.overdraft_limit {
        None => 0,
        Some(raw) => overdraft_limit(&raw)?,
    };
    if overdraft_limit != 0 && !actor.admin {
        return Err(ApiError::forbidden("only admins grant an overdraft limit"));
    }
    let currency = match request.currency {
        Some(raw) => Currency::parse(&raw)?,
        None => Currency::default(),
    };
    let command = Command::OpenAccount(OpenAccount {
        account_id: account_id.clone(),
        owner_id,
        currency,
        overdraft_limit,
    });
    let location = format!("/v1/accounts/{account_id}");
    let mut response = call.execute(command).await?;
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// The document's `overdraft_limit`: an amount's range, 0 included, or `null` (none).
fn overdraft_limit_schema() -> utoipa::openapi::Object {
    events::schema::integer_between(0, AMOUNT_MAX)
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .build()
}

/// 0 ..= 10^15 minor units, an integer.
fn overdraft_limit(raw: &Value) -> Result<i64, ApiError> {
    match raw.as_i64() {
        Some(limit) if (0..=AMOUNT_MAX).contains(&limit) && raw.is_number() && !raw.is_f64() => {
            Ok(limit)
        }
        _ => Err(ApiError::new(
            INVALID_AMOUNT,
            "overdraft_limit must be an integer from 0 to 10^15 minor units",
        )),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MovementRequest {
    /// Minor units (an integer: `1.0` and `"1"` are refused).
    #[schema(value_type = Amount)]
    amount: Value,
    /// When given, must be the account's currency.
    #[schema(value_type = Option<Currency>)]
    currency: Option<String>,
    /// The client's own reference (invoice number, memo).
    #[schema(value_type = Option<Reference>)]
    reference: Option<String>,
    /// A JSON object of at most 4096 bytes, kept verbatim.
    #[schema(value_type = Option<Metadata>)]
    metadata: Option<Value>,
}

impl MovementRequest {
    fn into_command(self, account_id: AccountId) -> Result<MoveFunds, ApiError> {
        Ok(MoveFunds {
            account_id,
            amount: Amount::from_json(&self.amount)?,
            currency: self.currency.as_deref().map(Currency::parse).transpose()?,
            reference: self.reference.map(Reference::parse).transpose()?,
            metadata: self.metadata.map(Metadata::parse).transpose()?,
        })
    }
}

http_edge::problems!(DepositProblems: [ACCOUNT_NOT_FOUND, CURRENCY_MISMATCH, BALANCE_OVERFLOW]);

/// Deposit money
#[utoipa::path(
    post,
    path = "/v1/accounts/{id}/deposits",
    params(AccountIdParam),
    request_body = MovementRequest,
    responses((status = 201, description = "done", body = MovementAnswer), DepositProblems)
)]
pub async fn deposit(call: CommandCall<ApiPath<String>>) -> Result<Response, ApiError> {
    move_funds(call, Command::DepositFunds).await
}

http_edge::problems!(WithdrawProblems: [ACCOUNT_NOT_FOUND, INSUFFICIENT_FUNDS, CURRENCY_MISMATCH]);

/// Withdraw money
#[utoipa::path(
    post,
    path = "/v1/accounts/{id}/withdrawals",
    params(AccountIdParam),
    request_body = MovementRequest,
    responses((status = 201, description = "done", body = MovementAnswer), WithdrawProblems)
)]
pub async fn withdraw(call: CommandCall<ApiPath<String>>) -> Result<Response, ApiError> {
    move_funds(call, Command::WithdrawFunds).await
}

/// A deposit or a withdrawal on the path's account.
async fn move_funds(
    call: CommandCall<ApiPath<String>>,
    command: fn(MoveFunds) -> Command,
) -> Result<Response, ApiError> {
    let account_id = AccountId::parse(&call.path.0)?;
    let request = call.body::<MovementRequest>()?.into_command(account_id)?;
    call.execute(command(request)).await
}
