//! `POST /v1/transfers`: both legs commit in one atomic batch, or neither does.

use super::ApiError;
use super::{ApiJson, IdempotencyHeader, accounts::mismatched, execute, parse_body};
use crate::AppState;
use crate::domain::{Actor, Command, Outcome, TransferFunds};
use crate::writer::Rendered;
use axum::extract::State;
use axum::response::Response;
use events::{AccountId, Amount, Currency, Metadata, Reference};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferRequest {
    from_account_id: String,
    to_account_id: String,
    amount: Value,
    currency: Option<String>,
    reference: Option<String>,
    metadata: Option<Value>,
}

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
