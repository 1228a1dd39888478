//! The query API's OpenAPI document (`GET /openapi.json`, Swagger UI at `GET /docs`).
//!
//! Operations are described where they are handled (`#[utoipa::path]` on each handler) and
//! query parameters by the handlers' own query types. The answers are built with `json!` in
//! the handlers; the types below describe them. `scripts/fuzz` checks every answer against
//! this document.

// The answer types are read by the document generator only; the handlers build the JSON.
#![allow(dead_code)]

use super::{accounts, batches, entries, health, holds, jobs, orders};
use chrono::{DateTime, Utc};
use http_edge::openapi::{add_header_parameter, header_parameter};
use serde_json::Value;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tally query API",
        description = "The read side of Tally, an event-sourced money ledger: accounts, \
            balances (also as of a past instant), history, jobs, holds, batches and orders, \
            from read models projected from the journal. Amounts are integer minor units. \
            Errors are RFC 9457 problems (`application/problem+json`) with a stable `code`. \
            Every answer carries `Ledger-Seq` (how far the read model was); send a command's \
            `Ledger-Seq` as `Ledger-Min-Seq` to read your own writes."
    ),
    paths(
        accounts::list,
        accounts::get_one,
        accounts::balance,
        entries::list,
        jobs::get_one,
        holds::get_one,
        batches::get_one,
        orders::list,
        orders::get_one,
        health::healthz,
        health::readyz,
    ),
    tags(
        (name = "accounts", description = "Accounts, balances and history"),
        (name = "jobs", description = "What became of a command"),
        (name = "holds", description = "Reservations of money"),
        (name = "batches", description = "Balance batches"),
        (name = "orders", description = "Orders and their payment"),
        (name = "probes", description = "Liveness and readiness"),
    )
)]
struct QueryApiDoc;

/// The whole document: the operations above plus what every API shares (security, problems,
/// edge answers) and the `Ledger-Min-Seq` header every query accepts.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = http_edge::openapi::finish(QueryApiDoc::openapi());
    let min_seq = header_parameter(
        "Ledger-Min-Seq",
        "Read-your-writes: wait (bounded) until the read model has applied the journal up to \
         this stream sequence (a command's `Ledger-Seq`), else `503 projection_lagging`.",
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Int64,
            )))
            .minimum(Some(0))
            .build(),
    );
    add_header_parameter(&mut doc, &min_seq, false);
    doc
}

/// An account as the read model has it.
#[derive(Debug, ToSchema)]
pub struct Account {
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
    #[schema(minimum = 1)]
    version: i64,
    #[schema(example = "open")]
    status: String,
    opened_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// A page of accounts.
#[derive(Debug, ToSchema)]
pub struct AccountPage {
    items: Vec<Account>,
    /// Pass as `cursor` for the next page; `null` on the last.
    next_cursor: Option<String>,
}

/// A balance, now or as of `as_of`.
#[derive(Debug, ToSchema)]
pub struct Balance {
    account_id: String,
    #[schema(pattern = "^[A-Z]{3}$")]
    currency: String,
    balance: i64,
    available: i64,
    /// The account's version at that moment.
    #[schema(minimum = 1)]
    version: i64,
    /// The instant asked for (only when asked).
    #[schema(required = false)]
    as_of: DateTime<Utc>,
}

/// The kinds of history entry (`type`): the filter and the field use the same words.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum EntryType {
    Opening,
    Deposit,
    Withdrawal,
    Transfer,
    Adjustment,
    Payment,
    Hold,
}

/// One change of an account: `balance_after(v) = balance_after(v-1) + amount(v)`.
#[derive(Debug, ToSchema)]
pub struct Entry {
    #[schema(minimum = 1)]
    version: i64,
    /// The journal's stream sequence of the event.
    #[schema(minimum = 1)]
    seq: i64,
    #[schema(rename = "type")]
    entry_type: EntryType,
    /// The journal's name of the event (`funds_deposited`, `transfer_sent`, …).
    event_type: String,
    /// Signed: + credit, − debit.
    amount: i64,
    balance_after: i64,
    #[schema(required = false)]
    counterparty_account_id: String,
    #[schema(required = false)]
    transfer_id: Uuid,
    #[schema(required = false)]
    order_id: Uuid,
    #[schema(required = false)]
    hold_id: Uuid,
    #[schema(required = false)]
    reference: String,
    #[schema(required = false, value_type = Object)]
    metadata: Value,
    job_id: Uuid,
    occurred_at: DateTime<Utc>,
}

/// A page of history, newest first.
#[derive(Debug, ToSchema)]
pub struct EntryPage {
    items: Vec<Entry>,
    /// Pass as `cursor` for the next page; `null` on the last.
    next_cursor: Option<String>,
    /// Page paging only.
    #[schema(required = false, minimum = 1)]
    page: i64,
    /// Page paging only.
    #[schema(required = false, minimum = 1, maximum = 200)]
    page_size: i64,
    /// Page paging only.
    #[schema(required = false)]
    has_more: bool,
}

#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Completed,
    Rejected,
    Failed,
}

/// Why a job was rejected or failed.
#[derive(Debug, ToSchema)]
pub struct JobError {
    code: String,
    detail: String,
}

/// A command's job.
#[derive(Debug, ToSchema)]
pub struct Job {
    job_id: Uuid,
    /// `deposit`, `withdrawal`, `transfer`, `open_account`, `balance_set`, `order`, …
    kind: String,
    status: JobStatus,
    #[schema(required = false)]
    account_id: Option<String>,
    #[schema(required = false)]
    batch_id: Option<Uuid>,
    #[schema(required = false)]
    order_id: Uuid,
    #[schema(required = false)]
    error: JobError,
    /// The stream sequence of the job's first event, once applied.
    #[schema(required = false)]
    seq: i64,
    submitted_at: DateTime<Utc>,
    #[schema(required = false)]
    completed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum HoldStatus {
    Placed,
    Captured,
    Voided,
    Expired,
}

/// A hold.
#[derive(Debug, ToSchema)]
pub struct Hold {
    hold_id: Uuid,
    account_id: String,
    #[schema(minimum = 1)]
    amount: i64,
    /// What was taken when captured; 0 otherwise.
    #[schema(minimum = 0)]
    captured: i64,
    status: HoldStatus,
    /// When the system voids the hold; `null`: never.
    expires_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum BatchStatus {
    Running,
    Done,
}

/// A balance batch's progress.
#[derive(Debug, ToSchema)]
pub struct Batch {
    batch_id: Uuid,
    #[schema(minimum = 0)]
    total: i32,
    #[schema(minimum = 0)]
    completed: i32,
    #[schema(minimum = 0)]
    rejected: i32,
    #[schema(minimum = 0)]
    failed: i32,
    status: BatchStatus,
    submitted_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum OrderStatus {
    New,
    Paid,
    Rejected,
}

/// An order.
#[derive(Debug, ToSchema)]
pub struct Order {
    order_id: Uuid,
    owner_id: String,
    account_id: String,
    #[schema(minimum = 1)]
    amount: i64,
    #[schema(required = false, pattern = "^[A-Z]{3}$")]
    currency: String,
    description: Option<String>,
    status: OrderStatus,
    /// Why it was rejected (`account_not_found`, `insufficient_funds`, `currency_mismatch`).
    #[schema(required = false)]
    reason: String,
    job_id: Uuid,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// A page of orders, newest first.
#[derive(Debug, ToSchema)]
pub struct OrderPage {
    items: Vec<Order>,
    limit: i64,
    offset: i64,
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
    /// The read model's checkpoint (stream sequence).
    #[schema(minimum = 0)]
    checkpoint: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_with_its_parameters() {
        let json = serde_json::to_value(document()).expect("document serializes");
        for path in [
            "/v1/accounts",
            "/v1/accounts/{id}",
            "/v1/accounts/{id}/balance",
            "/v1/accounts/{id}/entries",
            "/v1/jobs/{id}",
            "/v1/holds/{id}",
            "/v1/batches/{id}",
            "/v1/orders",
            "/v1/orders/{id}",
            "/healthz",
            "/readyz",
        ] {
            assert!(json["paths"][path]["get"].is_object(), "{path} is missing");
        }
        let entries = &json["paths"]["/v1/accounts/{id}/entries"]["get"];
        let names: Vec<&str> = entries["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        for name in [
            "id",
            "type",
            "limit",
            "cursor",
            "page",
            "page_size",
            "Ledger-Min-Seq",
        ] {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        assert_eq!(entries["security"][0]["bearer"], serde_json::json!([]));
    }
}
