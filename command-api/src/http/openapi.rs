//! The command API's OpenAPI document (`GET /openapi.json`, Swagger UI at `GET /docs`).
//!
//! Operations are described where they are handled (`#[utoipa::path]` on each handler) and
//! request bodies by the handlers' own request types, so the document reads what the code
//! reads. The answers are built with `json!` in the handlers; the types below describe them.
//! `scripts/fuzz` checks every answer against this document.

// The answer types are read by the document generator only; the handlers build the JSON.
#![allow(dead_code)]

use super::{accounts, balances, health, holds, orders, transfers};
use chrono::{DateTime, Utc};
use http_edge::openapi::{IDEMPOTENCY_KEY_PATTERN, add_header_parameter, header_parameter};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tally command API",
        description = "The write side of Tally, an event-sourced money ledger: accounts, \
            deposits, withdrawals, transfers, holds, balance batches and orders. Amounts are \
            integer minor units (1 to 10^15). Errors are RFC 9457 problems \
            (`application/problem+json`) with a stable `code`. Every command answer carries \
            `Ledger-Seq`, to pass as `Ledger-Min-Seq` to the query API for read-your-writes."
    ),
    paths(
        accounts::open,
        accounts::deposit,
        accounts::withdraw,
        transfers::transfer,
        holds::place,
        holds::capture,
        holds::void,
        balances::set,
        orders::place,
        health::healthz,
        health::readyz,
    ),
    tags(
        (name = "accounts", description = "Opening accounts and moving money in and out"),
        (name = "transfers", description = "Moving money between accounts, atomically"),
        (name = "holds", description = "Reserving money, then capturing or releasing it"),
        (name = "batches", description = "Setting many balances at once (admin)"),
        (name = "orders", description = "Orders paid asynchronously by the payment executor"),
        (name = "probes", description = "Liveness and readiness"),
    )
)]
struct CommandApiDoc;

/// The whole document: the operations above plus what every API shares (security, problems,
/// edge answers) and the `Idempotency-Key` header every command accepts.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = http_edge::openapi::finish(CommandApiDoc::openapi());
    let key = header_parameter(
        "Idempotency-Key",
        "Makes the command safe to retry: a repeat with the same key and request answers the \
         original result (header `Idempotent-Replayed: true`); the same key with another \
         request is `422 idempotency_key_reused`. Scoped to the caller, honoured forever.",
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(IDEMPOTENCY_KEY_PATTERN))
            .build(),
    );
    add_header_parameter(&mut doc, &key, true);
    doc
}

/// An account as the command API shows it.
#[derive(Debug, ToSchema)]
pub struct AccountAnswer {
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    account_id: String,
    owner_id: String,
    #[schema(pattern = "^[A-Z]{3}$")]
    currency: String,
    /// Minor units; as low as `-overdraft_limit`.
    balance: i64,
    /// Minor units reserved by holds.
    #[schema(minimum = 0)]
    held: i64,
    /// `balance - held`.
    available: i64,
    #[schema(minimum = 0)]
    overdraft_limit: i64,
    /// 1 after opening, +1 per change: gapless.
    #[schema(minimum = 1)]
    version: u64,
    status: AccountStatus,
    job_id: Uuid,
}

#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum AccountStatus {
    Open,
}

/// A deposit or withdrawal done.
#[derive(Debug, ToSchema)]
pub struct MovementAnswer {
    job_id: Uuid,
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    account_id: String,
    #[schema(minimum = 1, maximum = 1000000000000000i64)]
    amount: i64,
    #[schema(pattern = "^[A-Z]{3}$")]
    currency: String,
    balance: i64,
    available: i64,
    #[schema(minimum = 1)]
    version: u64,
}

/// A transfer done: both legs committed together.
#[derive(Debug, ToSchema)]
pub struct TransferAnswer {
    transfer_id: Uuid,
    job_id: Uuid,
    #[schema(minimum = 1, maximum = 1000000000000000i64)]
    amount: i64,
    #[schema(pattern = "^[A-Z]{3}$")]
    currency: String,
    from: TransferFrom,
    to: TransferTo,
}

/// The sending account after the transfer.
#[derive(Debug, ToSchema)]
pub struct TransferFrom {
    account_id: String,
    balance: i64,
    available: i64,
    #[schema(minimum = 1)]
    version: u64,
}

/// The receiving account after the transfer; its balance only for callers who may see it.
#[derive(Debug, ToSchema)]
pub struct TransferTo {
    account_id: String,
    #[schema(minimum = 1)]
    version: u64,
    #[schema(required = false)]
    balance: i64,
    #[schema(required = false)]
    available: i64,
}

/// A hold after a change, with its account.
#[derive(Debug, ToSchema)]
pub struct HoldAnswer {
    hold_id: Uuid,
    job_id: Uuid,
    account_id: String,
    /// What the hold reserves.
    #[schema(minimum = 1, maximum = 1000000000000000i64)]
    amount: i64,
    /// What was taken when captured; 0 otherwise.
    #[schema(minimum = 0)]
    captured: i64,
    status: HoldStatus,
    /// When the system voids the hold; `null`: never.
    expires_at: Option<DateTime<Utc>>,
    balance: i64,
    #[schema(minimum = 0)]
    held: i64,
    available: i64,
    #[schema(minimum = 1)]
    version: u64,
}

#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum HoldStatus {
    Placed,
    Captured,
    Voided,
}

/// A balance batch, journaled: a job per item, applied by the batch executor.
#[derive(Debug, ToSchema)]
pub struct BatchAnswer {
    batch_id: Uuid,
    jobs: Vec<BatchJob>,
}

#[derive(Debug, ToSchema)]
pub struct BatchJob {
    job_id: Uuid,
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    account_id: String,
    status: QueuedStatus,
}

#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum QueuedStatus {
    Queued,
}

/// An order, placed: the payment executor pays or rejects it.
#[derive(Debug, ToSchema)]
pub struct OrderAnswer {
    order_id: Uuid,
    job_id: Uuid,
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    account_id: String,
    #[schema(minimum = 1, maximum = 1000000000000000i64)]
    amount: i64,
    status: OrderStatus,
    /// Why the order was rejected (only on a replay after the executor rejected it).
    #[schema(required = false)]
    reason: OrderRejection,
}

#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum OrderStatus {
    New,
    Paid,
    Rejected,
}

#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum OrderRejection {
    AccountNotFound,
    InsufficientFunds,
    CurrencyMismatch,
}

/// `GET /healthz`.
#[derive(Debug, ToSchema)]
pub struct Alive {
    #[schema(example = "ok")]
    status: String,
}

/// `GET /readyz`.
#[derive(Debug, ToSchema)]
pub struct Ready {
    #[schema(example = "ready")]
    status: String,
    /// The journal's last stream sequence.
    #[schema(minimum = 0)]
    last_seq: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_and_every_v1_operation_needs_a_token() {
        let doc = document();
        let json = serde_json::to_value(&doc).expect("document serializes");
        let paths: Vec<&str> = json["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .map(String::as_str)
            .collect();
        for path in [
            "/v1/accounts",
            "/v1/accounts/{id}/deposits",
            "/v1/accounts/{id}/withdrawals",
            "/v1/transfers",
            "/v1/accounts/{id}/holds",
            "/v1/accounts/{id}/holds/{hold_id}/capture",
            "/v1/accounts/{id}/holds/{hold_id}/void",
            "/v1/balances",
            "/v1/orders",
            "/healthz",
            "/readyz",
        ] {
            assert!(paths.contains(&path), "{path} is missing from {paths:?}");
        }
        let deposit = &json["paths"]["/v1/accounts/{id}/deposits"]["post"];
        assert_eq!(deposit["security"][0]["bearer"], serde_json::json!([]));
        assert!(deposit["responses"]["429"].is_object());
        assert_eq!(
            json["components"]["schemas"]["MovementRequest"]["additionalProperties"],
            false
        );
    }
}
