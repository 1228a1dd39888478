//! `GET /v1/holds/{id}`: a hold's status (`placed`, `captured`, `voided`, `expired`).

use super::access::{HOLD_NOT_FOUND, QueryCall};
use super::params::{db, stored_word, uuid_id};
use axum::Json;
use chrono::{DateTime, Utc};
use events::{AccountId, Amount};
use http_edge::{ApiError, ApiPath};
use read_model::query::holds;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HoldStatus {
    Placed,
    Captured,
    Voided,
    Expired,
}

/// A hold.
#[derive(Debug, Serialize, ToSchema)]
pub struct Hold {
    account_id: AccountId,
    amount: Amount,
    /// What was taken when captured; 0 otherwise.
    #[schema(minimum = 0)]
    captured: i64,
    created_at: DateTime<Utc>,
    /// When the system voids the hold; `null`: never.
    expires_at: Option<DateTime<Utc>>,
    hold_id: Uuid,
    status: HoldStatus,
    updated_at: DateTime<Utc>,
}

http_edge::problems!(HoldHidden: [HOLD_NOT_FOUND]);

/// A hold
#[utoipa::path(
    get,
    path = "/v1/holds/{id}",
    params(("id" = uuid::Uuid, Path, description = "the hold id")),
    responses(
        (status = 200, description = "the hold", body = Hold),
        HoldHidden,
    )
)]
pub async fn get_hold(
    call: QueryCall,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<Hold>, ApiError> {
    let hold_id = uuid_id(&raw, "hold")?;
    let row = holds::hold(&call.app.pool, hold_id).await.map_err(db)?;
    let row = call.visible_or(row, HOLD_NOT_FOUND)?;
    Ok(Json(Hold {
        account_id: row.account_id,
        amount: row.amount,
        captured: row.captured,
        created_at: row.created_at,
        expires_at: row.expires_at,
        hold_id: row.hold_id,
        status: stored_word(&row.status)?,
        updated_at: row.updated_at,
    }))
}
