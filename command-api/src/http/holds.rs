//! `POST /v1/accounts/{id}/holds`, `…/holds/{hold_id}/capture`, `…/holds/{hold_id}/void`.

use super::answers::HoldAnswer;
use super::exchange::CommandCall;
use super::problem::{
    ACCOUNT_NOT_FOUND, CAPTURE_EXCEEDS_HOLD, HOLD_EXISTS, HOLD_EXPIRED, HOLD_NOT_ACTIVE,
    HOLD_NOT_FOUND, INSUFFICIENT_FUNDS,
};
use crate::domain::{CaptureHold, Command, PlaceHold, VoidHold};
use axum::response::Response;
use chrono::{SubsecRound, Utc};
use events::{AccountId, Amount};
use http_edge::openapi::AccountIdParam;
use http_edge::{ApiError, ApiPath};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa::openapi::schema::{SchemaType, Type};
use uuid::Uuid;

/// Longest hold: 30 days, the usual ceiling for card authorizations.
pub const EXPIRES_IN_S_MAX: i64 = 30 * 24 * 3600;

/// The document's `expires_in_s`: 1 ..= [`EXPIRES_IN_S_MAX`] seconds, or `null` (never).
fn expires_in_s_schema() -> utoipa::openapi::Object {
    events::schema::integer_between(1, EXPIRES_IN_S_MAX)
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .build()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceHoldRequest {
    /// Minor units to reserve.
    #[schema(value_type = Amount)]
    amount: Value,
    /// Seconds until the system voids the hold (at most 30 days; default: never).
    #[schema(schema_with = expires_in_s_schema)]
    expires_in_s: Option<Value>,
}

http_edge::problems!(PlaceHoldProblems: [ACCOUNT_NOT_FOUND, HOLD_EXISTS, INSUFFICIENT_FUNDS]);

/// Reserve money on an account
#[utoipa::path(
    post,
    path = "/v1/accounts/{id}/holds",
    params(AccountIdParam),
    request_body = PlaceHoldRequest,
    responses(
        (status = 201, description = "placed: available drops, balance does not", body = HoldAnswer),
        PlaceHoldProblems,
    )
)]
pub async fn place_hold(call: CommandCall<ApiPath<String>>) -> Result<Response, ApiError> {
    let account_id = AccountId::parse(&call.path.0)?;
    let request: PlaceHoldRequest = call.body()?;
    let expires_at = match request.expires_in_s {
        None => None,
        Some(raw) => match raw.as_i64() {
            Some(s) if (1..=EXPIRES_IN_S_MAX).contains(&s) && !raw.is_f64() => {
                // Microseconds, as every instant the read model stores.
                Some((Utc::now() + chrono::Duration::seconds(s)).trunc_subsecs(6))
            }
            _ => {
                return Err(ApiError::invalid_request(format!(
                    "expires_in_s must be an integer from 1 to {EXPIRES_IN_S_MAX}"
                )));
            }
        },
    };
    let command = Command::PlaceHold(PlaceHold {
        hold_id: Uuid::now_v7(),
        account_id,
        amount: Amount::from_json(&request.amount)?,
        expires_at,
    });
    call.execute(command).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureHoldRequest {
    /// Minor units to take, at most the held amount (default: all of it); the rest is
    /// released.
    #[schema(value_type = Option<Amount>)]
    amount: Option<Value>,
}

http_edge::problems!(CaptureHoldProblems: [
    ACCOUNT_NOT_FOUND, HOLD_NOT_FOUND, HOLD_NOT_ACTIVE, HOLD_EXPIRED, CAPTURE_EXCEEDS_HOLD
]);

/// Take held money (part or all)
#[utoipa::path(
    post,
    path = "/v1/accounts/{id}/holds/{hold_id}/capture",
    params(HoldPathParams),
    request_body = CaptureHoldRequest,
    responses(
        (status = 201, description = "captured", body = HoldAnswer),
        CaptureHoldProblems,
    )
)]
pub async fn capture_hold(call: CommandCall<HoldPath>) -> Result<Response, ApiError> {
    let (account_id, hold_id) = held(&call.path)?;
    let request: CaptureHoldRequest = call.body()?;
    let command = Command::CaptureHold(CaptureHold {
        hold_id,
        account_id,
        amount: request.amount.as_ref().map(Amount::from_json).transpose()?,
        now: Utc::now(),
    });
    call.execute(command).await
}

/// An empty object.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidHoldRequest {}

http_edge::problems!(VoidHoldProblems: [ACCOUNT_NOT_FOUND, HOLD_NOT_FOUND, HOLD_NOT_ACTIVE]);

/// Release held money
#[utoipa::path(
    post,
    path = "/v1/accounts/{id}/holds/{hold_id}/void",
    params(HoldPathParams),
    request_body = VoidHoldRequest,
    responses(
        (status = 201, description = "voided", body = HoldAnswer),
        VoidHoldProblems,
    )
)]
pub async fn void_hold(call: CommandCall<HoldPath>) -> Result<Response, ApiError> {
    let (account_id, hold_id) = held(&call.path)?;
    let VoidHoldRequest {} = call.body()?;
    let command = Command::VoidHold(VoidHold {
        hold_id,
        account_id,
    });
    call.execute(command).await
}

/// `/v1/accounts/{id}/holds/{hold_id}/…`.
type HoldPath = ApiPath<HoldPathParams>;

/// A hold's path parameters, as the handlers read them and the document describes them.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct HoldPathParams {
    /// the account id
    #[param(value_type = AccountId)]
    id: String,
    /// the hold id
    #[param(value_type = Uuid)]
    hold_id: String,
}

/// The account and hold a hold's path names.
fn held(ApiPath(path): &HoldPath) -> Result<(AccountId, Uuid), ApiError> {
    let hold_id = Uuid::parse_str(&path.hold_id)
        .map_err(|_| ApiError::invalid_request("hold ids are UUIDs"))?;
    Ok((AccountId::parse(&path.id)?, hold_id))
}
