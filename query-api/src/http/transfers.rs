//! `GET /v1/transfers/{id}`: a transfer with its reversals, for either side's owner (or an
//! admin).

use super::access::{ProblemKind, QueryCall};
use super::params::{db, uuid_id};
use axum::Json;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use events::{AccountId, Amount, Currency};
use http_edge::{ApiError, ApiPath};
use read_model::query::transfers::{self, TransferLeg};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

pub const TRANSFER_NOT_FOUND: ProblemKind = ProblemKind::new(
    StatusCode::NOT_FOUND,
    "transfer_not_found",
    "no such transfer, or neither of its accounts is the caller's",
);

/// A transfer and what of it was moved back.
#[derive(Debug, Serialize, ToSchema)]
pub struct Transfer {
    amount: Amount,
    currency: Currency,
    /// The account the transfer debited.
    from_account_id: AccountId,
    occurred_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    reference: Option<String>,
    /// Moved back by every reversal so far (0 ..= amount).
    #[schema(minimum = 0)]
    reversed_total: i64,
    /// Its reversals, oldest first.
    reversals: Vec<Reversal>,
    /// The account the transfer credited.
    to_account_id: AccountId,
    transfer_id: Uuid,
}

/// Part or all of a transfer moved back from its receiver to its sender.
#[derive(Debug, Serialize, ToSchema)]
pub struct Reversal {
    amount: Amount,
    occurred_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    reference: Option<String>,
    reversal_id: Uuid,
}

http_edge::problems!(TransferHidden: [TRANSFER_NOT_FOUND]);

/// A transfer with its reversals
#[utoipa::path(
    get,
    path = "/v1/transfers/{id}",
    params(("id" = uuid::Uuid, Path, description = "the transfer id")),
    responses(
        (status = 200, description = "the transfer", body = Transfer),
        TransferHidden,
    )
)]
pub async fn get_transfer(
    call: QueryCall,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<Transfer>, ApiError> {
    let transfer_id = uuid_id(&raw, "transfer")?;
    let legs = transfers::legs(&call.app.pool, transfer_id)
        .await
        .map_err(db)?;
    let hidden = || {
        ApiError::new(
            TRANSFER_NOT_FOUND,
            format!("transfer {transfer_id} not found"),
        )
    };
    let visible = legs
        .iter()
        .filter(|leg| leg.event_type.starts_with("transfer_"))
        .any(|leg| call.may_see(Some(&leg.owner_id)));
    if !visible {
        return Err(hidden());
    }
    let sent = legs
        .iter()
        .find(|leg| leg.event_type == "transfer_sent")
        .ok_or_else(hidden)?;
    let to_account_id = sent
        .counterparty_account_id
        .as_deref()
        .and_then(|id| AccountId::parse(id).ok())
        .ok_or_else(hidden)?;
    let reversals: Vec<Reversal> = legs
        .iter()
        .filter(|leg| leg.event_type == "reversal_received")
        .filter_map(reversal)
        .collect();
    Ok(Json(Transfer {
        amount: Amount::new(sent.amount.saturating_neg()).map_err(|_| hidden())?,
        currency: sent.currency,
        from_account_id: sent.account_id.clone(),
        occurred_at: sent.occurred_at,
        reference: sent.reference.clone(),
        reversed_total: reversals.iter().map(|r| r.amount.minor_units()).sum(),
        reversals,
        to_account_id,
        transfer_id,
    }))
}

/// A reversal as its sender's leg (`reversal_received`) records it.
fn reversal(leg: &TransferLeg) -> Option<Reversal> {
    Some(Reversal {
        amount: Amount::new(leg.amount).ok()?,
        occurred_at: leg.occurred_at,
        reference: leg.reference.clone(),
        reversal_id: leg.job_id,
    })
}
