//! `POST /v1/accounts/{id}/holds`, `…/holds/{hold_id}/capture`, `…/holds/{hold_id}/void`.

use super::answers::HoldAnswer;
use super::exchange::{CommandCall, execute, parse_body};
use crate::domain::{CaptureHold, Command, PlaceHold, VoidHold};
use axum::response::Response;
use chrono::{SubsecRound, Utc};
use events::{AccountId, Amount};
use http_edge::{ApiError, ApiPath, Problem};
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

#[utoipa::path(
    post,
    path = "/v1/accounts/{id}/holds",
    tag = "holds",
    operation_id = "place_hold",
    summary = "Reserve money on an account",
    params(("id" = AccountId, Path, description = "the account id")),
    request_body = PlaceHoldRequest,
    responses(
        (status = 201, description = "placed: available drops, balance does not", body = HoldAnswer),
        (status = 404, description = "`account_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`hold_exists` or `conflict`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`insufficient_funds` or `idempotency_key_reused`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn place(call: CommandCall<ApiPath<String>>) -> Result<Response, ApiError> {
    let (ApiPath(id), app, actor, key, body) = call.into_parts();
    let account_id = AccountId::parse(id)?;
    let request: PlaceHoldRequest = parse_body(&body)?;
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
    let path = format!("/v1/accounts/{account_id}/holds");
    let command = Command::PlaceHold(PlaceHold {
        hold_id: Uuid::now_v7(),
        account_id,
        amount: Amount::from_json(&request.amount)?,
        expires_at,
    });
    let claim = key.claim("POST", &path, &body);
    execute(&app, actor, command, claim).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureHoldRequest {
    /// Minor units to take, at most the held amount (default: all of it); the rest is
    /// released.
    #[schema(value_type = Option<Amount>)]
    amount: Option<Value>,
}

#[utoipa::path(
    post,
    path = "/v1/accounts/{id}/holds/{hold_id}/capture",
    tag = "holds",
    operation_id = "capture_hold",
    summary = "Take held money (part or all)",
    params(("id" = AccountId, Path, description = "the account id"), ("hold_id" = Uuid, Path, description = "the hold id")),
    request_body = CaptureHoldRequest,
    responses(
        (status = 201, description = "captured", body = HoldAnswer),
        (status = 404, description = "`account_not_found` or `hold_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`hold_not_active`, `hold_expired` or `conflict`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`capture_exceeds_hold` or `idempotency_key_reused`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn capture(call: CommandCall<ApiPath<(String, String)>>) -> Result<Response, ApiError> {
    let (ApiPath((id, hold)), app, actor, key, body) = call.into_parts();
    let account_id = AccountId::parse(id)?;
    let hold_id = hold_id(&hold)?;
    let request: CaptureHoldRequest = parse_body(&body)?;
    let path = format!("/v1/accounts/{account_id}/holds/{hold_id}/capture");
    let command = Command::CaptureHold(CaptureHold {
        hold_id,
        account_id,
        amount: request.amount.as_ref().map(Amount::from_json).transpose()?,
        now: Utc::now(),
    });
    let claim = key.claim("POST", &path, &body);
    execute(&app, actor, command, claim).await
}

/// An empty object.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidHoldRequest {}

#[utoipa::path(
    post,
    path = "/v1/accounts/{id}/holds/{hold_id}/void",
    tag = "holds",
    operation_id = "void_hold",
    summary = "Release held money",
    params(("id" = AccountId, Path, description = "the account id"), ("hold_id" = Uuid, Path, description = "the hold id")),
    request_body = VoidHoldRequest,
    responses(
        (status = 201, description = "voided", body = HoldAnswer),
        (status = 404, description = "`account_not_found` or `hold_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`hold_not_active` or `conflict`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused`: the key was used with another request", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn void(call: CommandCall<ApiPath<(String, String)>>) -> Result<Response, ApiError> {
    let (ApiPath((id, hold)), app, actor, key, body) = call.into_parts();
    let account_id = AccountId::parse(id)?;
    let hold_id = hold_id(&hold)?;
    let VoidHoldRequest {} = parse_body(&body)?;
    let path = format!("/v1/accounts/{account_id}/holds/{hold_id}/void");
    let command = Command::VoidHold(VoidHold {
        hold_id,
        account_id,
    });
    let claim = key.claim("POST", &path, &body);
    execute(&app, actor, command, claim).await
}

fn hold_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::invalid_request("hold ids are UUIDs"))
}
