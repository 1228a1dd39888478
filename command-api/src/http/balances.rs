//! `PUT /v1/balances` (admin): sets many balances at once. The request is journaled as
//! `batch_submitted` chunks in one atomic batch and answered `202` with a job per item; the
//! batch executor applies it.

use super::answers::{BatchAnswer, BatchJob, QueuedStatus};
use super::exchange::{CommandCall, NoPath, respond_as};
use super::problem::{BATCH_EXISTS, FORBIDDEN, INVALID_AMOUNT};
use crate::domain::{Command, SubmitBatch};
use axum::response::Response;
use events::batch::{BatchItem, item_job_id};
use events::{AMOUNT_MAX, AccountId};
use http_edge::ApiError;
use serde_json::{Map, Value};
use uuid::Uuid;

/// Most items per request: the seed workload's 100,000 users.
pub const ITEMS_MAX: usize = 100_000;

/// `{"<account_id>": <balance>, …}`: 1 to 100,000 accounts, balances 0 ..= 10^15 minor units;
/// missing accounts are opened (owned by the caller, in USD).
#[derive(Debug)]
pub struct BalancesRequest;

impl utoipa::PartialSchema for BalancesRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "The balance to set per account id: 1 to 100,000 items, 0 to 10^15 minor units",
            ))
            .property_names(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(http_edge::openapi::ACCOUNT_ID_PATTERN)),
            ))
            .additional_properties(Some(AdditionalProperties::RefOr(
                utoipa::openapi::RefOr::T(
                    http_edge::openapi::integer_between(0, AMOUNT_MAX).into(),
                ),
            )))
            .min_properties(Some(1))
            .max_properties(Some(ITEMS_MAX))
            .into()
    }
}

impl utoipa::ToSchema for BalancesRequest {}

http_edge::problems!(SetBalancesProblems: [FORBIDDEN, BATCH_EXISTS]);

/// Set many balances at once (admin)
#[utoipa::path(
    put,
    path = "/v1/balances",
    request_body = BalancesRequest,
    responses(
        (status = 202, description = "journaled; a job per item, applied by the batch executor", body = BatchAnswer),
        SetBalancesProblems,
    )
)]
pub async fn set_balances(mut call: CommandCall<NoPath>) -> Result<Response, ApiError> {
    if !call.actor.admin {
        return Err(ApiError::forbidden("only admins set balances in bulk"));
    }
    // Moved out of the request, not copied: 100,000 entries are megabytes of values.
    let Value::Object(requested) = call.take_body() else {
        return Err(ApiError::invalid_request(
            "the body must be a JSON object of account ids and balances",
        ));
    };
    if requested.is_empty() || requested.len() > ITEMS_MAX {
        return Err(ApiError::invalid_request(format!(
            "a batch sets 1 to {ITEMS_MAX} balances"
        )));
    }
    let batch_id = Uuid::now_v7();
    let submitted = items(&batch_id, &requested)?;
    let jobs = |items: &[BatchItem]| -> Vec<BatchJob> {
        items
            .iter()
            .map(|item| BatchJob {
                job_id: item.job_id,
                account_id: item.account_id.clone(),
                status: QueuedStatus::Queued,
            })
            .collect()
    };
    let listed = jobs(&submitted);
    let command = Command::SubmitBatch(SubmitBatch {
        batch_id,
        items: submitted,
    });
    let exchanged = call.submit(command).await?;
    // The journaled answer names the batch only (a 100,000-job list would not fit a message);
    // the job ids follow from the batch id and the accounts, so a replay of an earlier batch
    // lists that batch's.
    let answered = exchanged.answer.body["batch_id"]
        .as_str()
        .and_then(|raw| Uuid::parse_str(raw).ok())
        .unwrap_or(batch_id);
    let jobs = if answered == batch_id {
        listed
    } else {
        jobs(&items(&answered, &requested)?)
    };
    // Serialized straight into the response: no `Value` tree of 100,000 jobs in between.
    Ok(respond_as(
        &exchanged,
        BatchAnswer {
            batch_id: answered,
            jobs,
        },
    ))
}

fn items(batch_id: &Uuid, requested: &Map<String, Value>) -> Result<Vec<BatchItem>, ApiError> {
    requested
        .iter()
        .map(|(raw_id, raw_balance)| {
            let account_id = AccountId::parse(raw_id.as_str())?;
            let balance = match raw_balance.as_i64() {
                Some(b) if (0..=AMOUNT_MAX).contains(&b) && !raw_balance.is_f64() => b,
                _ => {
                    return Err(ApiError::new(
                        INVALID_AMOUNT,
                        format!("the balance of {raw_id} must be an integer from 0 to 10^15"),
                    ));
                }
            };
            Ok(BatchItem {
                job_id: item_job_id(batch_id, &account_id),
                account_id,
                balance,
            })
        })
        .collect()
}
