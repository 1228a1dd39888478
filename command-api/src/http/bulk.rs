//! `POST /v1/transfers/batch`: many transfers in one request, each decided in order against
//! the balances the earlier ones left.
//!
//! Atomic, the request is one command in one atomic journal batch: every transfer or none.
//! Not atomic, it is cut into parts of [`PART_LEN_MAX`] transfers, each one command filling
//! one atomic batch with its own idempotency record, queued in order through the group-commit
//! writer; the answers of the parts are put together here (ADR 0017).

use super::answers::{BulkAnswer, BulkRejected, BulkResult};
use super::exchange::{CommandCall, Exchanged, NoPath, respond_as};
use super::problem::{
    ACCOUNT_NOT_FOUND, BALANCE_OVERFLOW, BATCH_TOO_LARGE, CURRENCY_MISMATCH, INSUFFICIENT_FUNDS,
    SAME_ACCOUNT,
};
use super::transfers::TransferRequest;
use crate::domain::{Command, TransferBatch, TransferFunds};
use crate::lookup;
use crate::writer::Rendered;
use axum::response::Response;
use events::{AccountId, Amount, Currency, Metadata, Reference};
use http_edge::ApiError;
use ledger_nats::batch::BATCH_LEN_MAX;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use utoipa::ToSchema;
use uuid::Uuid;

/// Most transfers in a request that is not atomic: TigerBeetle's batches hold 8,190; 8,000
/// items of ~150 bytes are about a megabyte of JSON, answered within a second or so.
pub const ITEMS_MAX: usize = 8_000;

/// Transfers per journal batch: two legs each and the part's idempotency record,
/// 2 × 499 + 1 = 999 messages, within the server's 1000 per atomic batch.
pub const PART_LEN_MAX: usize = (BATCH_LEN_MAX - 1) / 2;

/// Most transfers in an atomic request: all of it must fit one atomic batch, with its
/// idempotency record.
pub const ATOMIC_ITEMS_MAX: usize = PART_LEN_MAX;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferBatchRequest {
    /// 1 to 8,000 transfers (atomic: 1 to 499), decided in this order.
    #[schema(min_items = 1, max_items = 8000)]
    transfers: Vec<BatchedTransfer>,
    /// All or nothing (default: each transfer on its own).
    #[serde(default)]
    atomic: bool,
}

/// A transfer of a batch: a single transfer's fields, and optionally its id.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchedTransfer {
    /// The caller's account (admins: any).
    #[schema(value_type = AccountId)]
    from_account_id: String,
    #[schema(value_type = AccountId)]
    to_account_id: String,
    /// Minor units.
    #[schema(value_type = Amount)]
    amount: Value,
    /// When given, must be both accounts' currency.
    #[schema(value_type = Option<Currency>)]
    currency: Option<String>,
    #[schema(value_type = Option<Reference>)]
    reference: Option<String>,
    /// A JSON object of at most 4096 bytes, kept verbatim.
    #[schema(value_type = Option<Metadata>)]
    metadata: Option<Value>,
    /// The transfer's id, a UUIDv7 the client minted within the 60 s before the request
    /// (reversals find a transfer by its id's instant); default: a new one. Unique within the
    /// request.
    #[schema(value_type = Option<Uuid>)]
    transfer_id: Option<String>,
}

http_edge::problems!(TransferBatchProblems: [
    BATCH_TOO_LARGE, ACCOUNT_NOT_FOUND, SAME_ACCOUNT, INSUFFICIENT_FUNDS, CURRENCY_MISMATCH,
    BALANCE_OVERFLOW
]);

/// Transfer money in bulk: each transfer on its own, or all or nothing
///
/// Transfers are decided in the request's order, each against the balances the earlier ones left.
/// Not atomic (up to 8,000): `200` with a result per transfer (`201` committed, or the problem a
/// single transfer would get). Atomic (up to 499): `201` with every transfer, or the first failing
/// transfer's problem (its index in `detail`) and nothing journaled. The body may be sent
/// gzip-compressed (`Content-Encoding: gzip`).
#[utoipa::path(
    post,
    path = "/v1/transfers/batch",
    request_body = TransferBatchRequest,
    responses(
        (status = 200, description = "not atomic: every transfer decided", body = BulkAnswer),
        (status = 201, description = "atomic: every transfer committed", body = BulkAnswer),
        TransferBatchProblems,
    )
)]
pub async fn transfer_batch(call: CommandCall<NoPath>) -> Result<Response, ApiError> {
    let request: TransferBatchRequest = call.body()?;
    let transfers = commands(request.transfers, request.atomic)?;
    let total = transfers.len();
    if request.atomic {
        let command = Command::TransferBatch(TransferBatch {
            first_index: 0,
            transfers,
            atomic: true,
        });
        return call.execute(command).await;
    }
    let parts: Vec<Command> = transfers
        .chunks(PART_LEN_MAX)
        .enumerate()
        .map(|(part, transfers)| {
            Command::TransferBatch(TransferBatch {
                first_index: part * PART_LEN_MAX,
                transfers: transfers.to_vec(),
                atomic: false,
            })
        })
        .collect();
    let answers = call.submit_parts(parts).await?;
    Ok(joined(answers, total))
}

/// The request's transfers, checked: 1 to the limit, each valid, ids unique.
fn commands(requested: Vec<BatchedTransfer>, atomic: bool) -> Result<Vec<TransferFunds>, ApiError> {
    let limit = if atomic { ATOMIC_ITEMS_MAX } else { ITEMS_MAX };
    if requested.is_empty() {
        return Err(ApiError::invalid_request(
            "a batch holds at least one transfer",
        ));
    }
    if requested.len() > limit {
        let kind = if atomic { "an atomic" } else { "a" };
        return Err(ApiError::new(
            BATCH_TOO_LARGE,
            format!(
                "{kind} batch holds at most {limit} transfers; this one holds {}",
                requested.len()
            ),
        ));
    }
    let now = chrono::Utc::now();
    let mut seen: HashMap<Uuid, usize> = HashMap::with_capacity(requested.len());
    let mut transfers = Vec::with_capacity(requested.len());
    for (index, item) in requested.into_iter().enumerate() {
        let at = |e: ApiError| ApiError {
            detail: format!("transfers[{index}]: {}", e.detail),
            ..e
        };
        let transfer_id = match &item.transfer_id {
            None => Uuid::now_v7(),
            Some(raw) => {
                let id = Uuid::parse_str(raw).map_err(|_| {
                    at(ApiError::invalid_request(format!(
                        "transfer_id must be a UUID, not {raw:?}"
                    )))
                })?;
                // Reversals find a transfer by its id's instant (ADR 0018).
                if !lookup::findable_client_id(id, now) {
                    return Err(at(ApiError::invalid_request(format!(
                        "transfer_id must be a UUIDv7 minted within the {} s before the request \
                         (reversals find a transfer by its id's instant), not {raw:?}",
                        lookup::CLIENT_ID_LEAD.num_seconds()
                    ))));
                }
                id
            }
        };
        if let Some(first) = seen.insert(transfer_id, index) {
            return Err(at(ApiError::invalid_request(format!(
                "transfer_id {transfer_id} is also transfers[{first}]'s"
            ))));
        }
        let request = TransferRequest {
            from_account_id: item.from_account_id,
            to_account_id: item.to_account_id,
            amount: item.amount,
            currency: item.currency,
            reference: item.reference,
            metadata: item.metadata,
        };
        transfers.push(request.command(transfer_id).map_err(at)?);
    }
    Ok(transfers)
}

/// The parts' answers as one: their results in order (a part that failed as a whole gives
/// each of its transfers that failure), the counts summed, the `Ledger-Seq` of the last
/// commit, and `Idempotent-Replayed` when every part was a replay.
fn joined(answers: Vec<Result<Exchanged, ApiError>>, total: usize) -> Response {
    let mut results: Vec<Value> = Vec::new();
    let (mut committed, mut rejected) = (0, 0);
    let (mut seq, mut replayed) = (0, true);
    for (part, answer) in answers.into_iter().enumerate() {
        match answer {
            Ok(mut exchanged) => {
                let body = &mut exchanged.answer.body;
                committed += body["committed"].as_u64().unwrap_or(0);
                rejected += body["rejected"].as_u64().unwrap_or(0);
                // Moved, not copied: 8,000 results are a few megabytes of values.
                if let Value::Array(part_results) = body["results"].take() {
                    results.extend(part_results);
                }
                seq = seq.max(exchanged.seq);
                replayed &= exchanged.replayed;
            }
            Err(problem) => {
                let first = part * PART_LEN_MAX;
                let len = PART_LEN_MAX.min(total.saturating_sub(first));
                for index in first..first + len {
                    let result = BulkResult::Rejected(BulkRejected::new(index, &problem));
                    results.push(serde_json::to_value(result).unwrap_or_default());
                }
                rejected += len as u64;
                replayed = false;
            }
        }
    }
    let exchanged = Exchanged {
        answer: Rendered {
            status: 200,
            body: Value::Null,
        },
        seq,
        replayed,
    };
    // Serialized straight from the parts' results: a `json!` of them would first copy all
    // 8,000 into a new value (a profile of bulk transfers found the copy and its drop at
    // ~7 % of the services' CPU).
    respond_as(
        &exchanged,
        Joined {
            committed,
            rejected,
            results,
        },
    )
}

/// The answer of a request cut into parts, its fields in the order a single part's answer
/// has them (a JSON object's keys, sorted).
#[derive(Serialize)]
struct Joined {
    committed: u64,
    rejected: u64,
    results: Vec<Value>,
}
