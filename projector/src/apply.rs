//! What each journaled event becomes in the read model: pure mapping, no I/O. The row types
//! and the keeping of each key's last state are the read model's ([`read_model::rows`]).

use events::{Envelope, Event};
use read_model::rows::{
    AccountRow, BatchProgress, BatchRow, FailedJob, HoldRow, OrderRow, QueuedJob, RejectedJob,
    Rows, microseconds,
};

pub use read_model::rows::Entry;

/// The history row of an account event (`None` for events that are not account events).
pub fn entry(seq: u64, envelope: &Envelope) -> Option<Entry> {
    let event = &envelope.event;
    let account_id = event.account_id()?.clone();
    let state = event.account_state()?;
    let (amount, counterparty, transfer_id, reference, metadata) = match event {
        Event::AccountOpened(_) => (0, None, None, None, None),
        Event::FundsDeposited(m) => (
            m.amount.minor_units(),
            None,
            None,
            m.reference.clone(),
            m.metadata.clone(),
        ),
        Event::FundsWithdrawn(m) => (
            -m.amount.minor_units(),
            None,
            None,
            m.reference.clone(),
            m.metadata.clone(),
        ),
        Event::TransferSent(t) | Event::ReversalSent(t) => (
            -t.amount.minor_units(),
            Some(t.counterparty_account_id.clone()),
            Some(t.transfer_id),
            t.reference.clone(),
            t.metadata.clone(),
        ),
        Event::TransferReceived(t) | Event::ReversalReceived(t) => (
            t.amount.minor_units(),
            Some(t.counterparty_account_id.clone()),
            Some(t.transfer_id),
            t.reference.clone(),
            t.metadata.clone(),
        ),
        Event::OrderCharged(c) => (-c.amount.minor_units(), None, None, None, None),
        Event::RefundCredited(c) => (c.amount.minor_units(), None, None, None, None),
        // A hold moves money only when captured; placing and voiding change `held_after`.
        Event::HoldCaptured(h) => (
            -h.captured.map_or(0, |c| c.minor_units()),
            None,
            None,
            None,
            None,
        ),
        Event::HoldPlaced(_) | Event::HoldVoided(_) => (0, None, None, None, None),
        Event::BalanceSet(b) => (b.balance.saturating_sub(b.previous), None, None, None, None),
        Event::BatchSubmitted(_) | Event::BatchPartApplied(_) | Event::JobFailed(_) => {
            return None;
        }
        Event::IdempotencyRecorded(_)
        | Event::OrderPlaced(_)
        | Event::OrderPaid(_)
        | Event::OrderRejected(_)
        | Event::OrderRefunded(_)
        | Event::TransferReversed(_) => return None,
    };
    Some(Entry {
        account_id,
        version: state.version,
        seq,
        event_id: envelope.event_id,
        event_type: event.event_type(),
        entry_type: event.history_type()?,
        amount,
        balance_after: state.balance,
        held_after: state.held,
        counterparty_account_id: counterparty,
        transfer_id,
        order_id: match event {
            Event::OrderCharged(c) | Event::RefundCredited(c) => Some(c.order_id),
            _ => None,
        },
        hold_id: event.hold().map(|h| h.hold_id),
        // A batch item's entry carries the item's job, not the batch part's.
        job_id: match event {
            Event::BalanceSet(b) => b.item_job_id,
            _ => envelope.job_id,
        },
        reference: reference.map(|r| r.as_str().to_owned()),
        metadata: metadata.map(serde_json::Value::from),
        occurred_at: microseconds(envelope.occurred_at),
    })
}

/// Adds the message at `seq` to `rows`: its history entry, and the latest state of the
/// account, order, hold, batch or jobs it touches.
pub fn push(rows: &mut Rows, seq: u64, envelope: &Envelope) {
    rows.saw(seq);
    push_batch(rows, envelope);
    let occurred_at = microseconds(envelope.occurred_at);
    if let (Some(order_id), Some(state)) = (envelope.event.order_id(), envelope.event.order_state())
    {
        rows.orders.upsert(OrderRow {
            order_id: *order_id,
            state: state.clone(),
            job_id: envelope.job_id,
            created_at: matches!(envelope.event, Event::OrderPlaced(_)).then_some(occurred_at),
            updated_at: occurred_at,
        });
    }
    if let (Some(hold), Some(state)) = (envelope.event.hold(), envelope.event.hold_state()) {
        rows.holds.upsert(HoldRow {
            hold_id: hold.hold_id,
            state: state.clone(),
            created_at: matches!(envelope.event, Event::HoldPlaced(_)).then_some(occurred_at),
            updated_at: occurred_at,
        });
    }
    let Some(entry) = entry(seq, envelope) else {
        return;
    };
    let Some(state) = envelope.event.account_state() else {
        return;
    };
    rows.accounts.upsert(AccountRow {
        account_id: entry.account_id.clone(),
        state: state.clone(),
        last_seq: seq,
        // An account's first event opens it: `account_opened`, or a batch's `balance_set`.
        opened_at: (state.version == 1).then_some(occurred_at),
        updated_at: occurred_at,
    });
    rows.entries.push(entry);
}

/// A balance batch's chunk, part or failed job.
fn push_batch(rows: &mut Rows, envelope: &Envelope) {
    let at = microseconds(envelope.occurred_at);
    match &envelope.event {
        Event::BatchSubmitted(chunk) => {
            let owner_id = &chunk.state.owner_id;
            if chunk.chunk == 0 {
                rows.batches.push(BatchRow {
                    batch_id: chunk.batch_id,
                    owner_id: owner_id.clone(),
                    total: i32::try_from(chunk.state.total).unwrap_or(i32::MAX),
                    submitted_at: at,
                });
            }
            rows.queued_jobs
                .extend(chunk.items.iter().map(|item| QueuedJob {
                    job_id: item.job_id,
                    account_id: item.account_id.clone(),
                    batch_id: chunk.batch_id,
                    owner_id: owner_id.clone(),
                    submitted_at: at,
                }));
        }
        Event::JobFailed(failure) => rows.failed_jobs.push(FailedJob {
            job_id: failure.failed_job_id,
            kind: failure.executor.clone(),
            code: failure.code.clone(),
            detail: failure.detail.clone(),
            seq: failure.seq,
            at,
        }),
        Event::BatchPartApplied(part) => {
            rows.add_progress(BatchProgress {
                batch_id: part.batch_id,
                applied: i32::try_from(part.applied).unwrap_or(i32::MAX),
                rejected: i32::try_from(part.rejected.len()).unwrap_or(i32::MAX),
                at,
            });
            rows.rejected_jobs
                .extend(part.rejected.iter().map(|item| RejectedJob {
                    job_id: item.job_id,
                    code: item.code.clone(),
                    at,
                }));
        }
        _ => {}
    }
}
