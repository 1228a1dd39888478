//! Which answer a command's [`Outcome`] gets over HTTP: [`render`], the one place that turns
//! an outcome into its status and typed answer ([`super::answers`]).
//!
//! The writer journals a rendered answer with each idempotency record, so the HTTP layer
//! installs [`render`] when it starts the writer (ADR 0011); fresh answers are rendered here
//! too, at the edge.

use super::answers::{
    AccountAnswer, BatchRecorded, BulkAnswer, BulkCommitted, BulkRejected, BulkResult, HoldAnswer,
    MovementAnswer, OrderAnswer, RefundAnswer, ReversalAnswer, TransferAnswer, TransferFrom,
    TransferTo,
};
use super::problem::ApiError;
use crate::domain::{Actor, Outcome};
use crate::writer::Rendered;
use serde::Serialize;
use uuid::Uuid;

/// The answer to a command's outcome: its HTTP status and JSON body. The receiver's balance
/// of a transfer is shown only to those who may see that account: a transfer must not reveal
/// another owner's money.
pub fn render(actor: &Actor, outcome: &Outcome, job_id: Uuid) -> Rendered {
    match outcome {
        Outcome::AccountOpened {
            created,
            account_id,
            state,
        } => rendered(
            if *created { 201 } else { 200 },
            AccountAnswer::new(account_id, state, job_id),
        ),
        Outcome::FundsMoved {
            account_id,
            amount,
            state,
        } => rendered(
            201,
            MovementAnswer {
                job_id,
                account_id: account_id.clone(),
                amount: *amount,
                currency: state.currency,
                balance: state.balance,
                available: state.available(),
                version: state.version,
            },
        ),
        Outcome::Transferred { .. } => match transfer_answer(actor, outcome, job_id) {
            Some(answer) => rendered(201, answer),
            None => mismatched(outcome),
        },
        Outcome::TransfersBatched { atomic, items } => {
            let mut results = Vec::with_capacity(items.len());
            for item in items {
                results.push(match &item.result {
                    Ok(transferred) => match transfer_answer(actor, transferred, job_id) {
                        Some(transfer) => BulkResult::Committed(BulkCommitted {
                            index: item.index,
                            status: 201,
                            transfer,
                        }),
                        None => return mismatched(transferred),
                    },
                    Err(e) => BulkResult::Rejected(BulkRejected::new(
                        item.index,
                        &ApiError::from(e.clone()),
                    )),
                });
            }
            let committed = items.iter().filter(|i| i.result.is_ok()).count();
            let answer = BulkAnswer {
                results,
                committed,
                rejected: items.len() - committed,
            };
            rendered(if *atomic { 201 } else { 200 }, answer)
        }
        Outcome::Reversed(reversal) => rendered(
            201,
            ReversalAnswer {
                reversal_id: job_id,
                transfer_id: reversal.transfer_id,
                amount: reversal.amount,
                currency: reversal.transfer.currency,
                reversed_total: reversal.transfer.reversed_total,
                from: TransferFrom::new(&reversal.from),
                to: TransferTo::new(actor, &reversal.to),
            },
        ),
        Outcome::OrderRefunded(refund) => rendered(
            201,
            RefundAnswer {
                order_id: refund.order_id,
                job_id,
                amount: refund.amount,
                refunded_total: refund.order.refunded_total,
                status: refund.order.status,
                account: TransferFrom::new(&refund.account),
            },
        ),
        Outcome::HoldChanged {
            hold_id,
            hold,
            account_id,
            account,
        } => rendered(
            201,
            HoldAnswer {
                hold_id: *hold_id,
                job_id,
                account_id: account_id.clone(),
                amount: hold.amount,
                captured: hold.captured,
                status: hold.status,
                expires_at: hold.expires_at,
                balance: account.balance,
                held: account.held,
                available: account.available(),
                version: account.version,
            },
        ),
        Outcome::OrderPlaced {
            order_id, state, ..
        } => rendered(202, OrderAnswer::new(*order_id, state, job_id)),
        Outcome::BatchSubmitted { batch_id, items } => rendered(
            202,
            BatchRecorded {
                batch_id: *batch_id,
                items: *items,
                job_id,
            },
        ),
        // The executors' commands: never answered over HTTP, never journaled with a record.
        other @ (Outcome::OrderDecided { .. }
        | Outcome::JobFailed { .. }
        | Outcome::BatchPartApplied { .. }) => mismatched(other),
    }
}

/// A transfer's answer, if `outcome` is a transfer.
fn transfer_answer(actor: &Actor, outcome: &Outcome, job_id: Uuid) -> Option<TransferAnswer> {
    let Outcome::Transferred {
        transfer_id,
        amount,
        from,
        to,
    } = outcome
    else {
        return None;
    };
    Some(TransferAnswer {
        transfer_id: *transfer_id,
        job_id,
        amount: *amount,
        currency: from.1.currency,
        from: TransferFrom::new(from),
        to: TransferTo::new(actor, to),
    })
}

fn rendered(status: u16, answer: impl Serialize) -> Rendered {
    match serde_json::to_value(answer) {
        Ok(body) => Rendered { status, body },
        Err(e) => {
            tracing::error!(error = %e, "an answer does not serialize");
            internal()
        }
    }
}

/// An outcome no HTTP command has: a programming error, answered as a 500 rather than a
/// panic in the writer.
fn mismatched(outcome: &Outcome) -> Rendered {
    tracing::error!(?outcome, "no HTTP answer for this outcome");
    internal()
}

/// The opaque 500 problem.
fn internal() -> Rendered {
    let problem = http_edge::Problem {
        problem_type: "about:blank",
        title: "Internal Server Error",
        status: 500,
        detail: "an internal error occurred".to_owned(),
        code: "internal",
    };
    Rendered {
        status: 500,
        body: serde_json::to_value(problem).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests;
