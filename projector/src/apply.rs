//! What each journaled event becomes in the read model: pure mapping, no I/O.

use chrono::{DateTime, SubsecRound, Utc};
use events::{AccountId, AccountState, Envelope, Event};
use std::collections::HashMap;
use uuid::Uuid;

/// One row of `account_entries`.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub account_id: AccountId,
    pub version: u64,
    pub seq: u64,
    pub event_id: Uuid,
    pub event_type: &'static str,
    pub entry_type: &'static str,
    /// Signed: + credit, − debit.
    pub amount: i64,
    pub balance_after: i64,
    pub held_after: i64,
    pub counterparty_account_id: Option<AccountId>,
    pub transfer_id: Option<Uuid>,
    pub order_id: Option<Uuid>,
    pub hold_id: Option<Uuid>,
    pub job_id: Uuid,
    pub reference: Option<String>,
    pub metadata: Option<serde_json::Value>,
    pub occurred_at: DateTime<Utc>,
}

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
        Event::TransferSent(t) => (
            -t.amount.minor_units(),
            Some(t.counterparty_account_id.clone()),
            Some(t.transfer_id),
            t.reference.clone(),
            t.metadata.clone(),
        ),
        Event::TransferReceived(t) => (
            t.amount.minor_units(),
            Some(t.counterparty_account_id.clone()),
            Some(t.transfer_id),
            t.reference.clone(),
            t.metadata.clone(),
        ),
        Event::OrderCharged(c) => (-c.amount.minor_units(), None, None, None, None),
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
        | Event::OrderRejected(_) => return None,
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
            Event::OrderCharged(c) => Some(c.order_id),
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

/// Instants as the read model stores them (PostgreSQL keeps microseconds): cut here, so that
/// what is written is exactly what `verify` expects, whatever precision the journal has.
pub fn microseconds(instant: DateTime<Utc>) -> DateTime<Utc> {
    instant.trunc_subsecs(6)
}

/// An account row as of its last event in a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountRow {
    pub account_id: AccountId,
    pub state: AccountState,
    pub last_seq: u64,
    /// When the account was opened, if its opening is in the batch.
    pub opened_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// An order row as of its last event in a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRow {
    pub order_id: Uuid,
    pub state: events::OrderState,
    pub job_id: Uuid,
    /// When the order was placed, if that is in the batch.
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// A hold row as of its last event in a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct HoldRow {
    pub hold_id: Uuid,
    pub state: events::HoldState,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// A balance batch's first sight (any chunk carries its totals).
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRow {
    pub batch_id: Uuid,
    pub owner_id: String,
    pub total: i32,
    pub submitted_at: DateTime<Utc>,
}

/// A batch item's job, queued until its entry (completed) or its rejection is projected.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedJob {
    pub job_id: Uuid,
    pub account_id: String,
    pub batch_id: Uuid,
    pub owner_id: String,
    pub submitted_at: DateTime<Utc>,
}

/// A batch item the executor refused.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedJob {
    pub job_id: Uuid,
    pub code: String,
    pub at: DateTime<Utc>,
}

/// A batch of consecutive journal messages, turned into rows.
#[derive(Debug, Default)]
pub struct Rows {
    pub entries: Vec<Entry>,
    /// Last state per account, in order of first appearance.
    pub accounts: Vec<AccountRow>,
    /// Where each account's row is in `accounts`.
    account_index: HashMap<AccountId, usize>,
    /// Last state per order.
    pub orders: Vec<OrderRow>,
    order_index: HashMap<Uuid, usize>,
    /// Last state per hold.
    pub holds: Vec<HoldRow>,
    hold_index: HashMap<Uuid, usize>,
    pub batches: Vec<BatchRow>,
    pub queued_jobs: Vec<QueuedJob>,
    pub rejected_jobs: Vec<RejectedJob>,
    /// Jobs an executor gave up on.
    pub failed_jobs: Vec<(events::JobFailed, DateTime<Utc>)>,
    /// Per batch: items applied and rejected in this run of messages, and when last.
    pub batch_progress: Vec<(Uuid, i32, i32, DateTime<Utc>)>,
    /// Stream sequence of the batch's last message (any subject).
    pub last_seq: u64,
}

impl Rows {
    pub fn push(&mut self, seq: u64, envelope: &Envelope) {
        self.last_seq = self.last_seq.max(seq);
        self.push_batch(envelope);
        if let (Some(order_id), Some(state)) =
            (envelope.event.order_id(), envelope.event.order_state())
        {
            self.push_order(*order_id, state, envelope);
        }
        if let (Some(hold), Some(state)) = (envelope.event.hold(), envelope.event.hold_state()) {
            let occurred_at = microseconds(envelope.occurred_at);
            let created_at = matches!(envelope.event, Event::HoldPlaced(_)).then_some(occurred_at);
            match self
                .hold_index
                .get(&hold.hold_id)
                .and_then(|&i| self.holds.get_mut(i))
            {
                Some(row) => {
                    row.state = state.clone();
                    row.updated_at = occurred_at;
                    row.created_at = row.created_at.or(created_at);
                }
                None => {
                    self.hold_index.insert(hold.hold_id, self.holds.len());
                    self.holds.push(HoldRow {
                        hold_id: hold.hold_id,
                        state: state.clone(),
                        created_at,
                        updated_at: occurred_at,
                    });
                }
            }
        }
        let Some(entry) = entry(seq, envelope) else {
            return;
        };
        let Some(state) = envelope.event.account_state() else {
            return;
        };
        let occurred_at = microseconds(envelope.occurred_at);
        // An account's first event opens it: `account_opened`, or a batch's `balance_set`.
        let opened_at = (state.version == 1).then_some(occurred_at);
        match self
            .account_index
            .get(&entry.account_id)
            .and_then(|&index| self.accounts.get_mut(index))
        {
            Some(row) => {
                row.state = state.clone();
                row.last_seq = seq;
                row.updated_at = occurred_at;
                row.opened_at = row.opened_at.or(opened_at);
            }
            None => {
                self.account_index
                    .insert(entry.account_id.clone(), self.accounts.len());
                self.accounts.push(AccountRow {
                    account_id: entry.account_id.clone(),
                    state: state.clone(),
                    last_seq: seq,
                    opened_at,
                    updated_at: occurred_at,
                });
            }
        }
        self.entries.push(entry);
    }

    fn push_order(&mut self, order_id: Uuid, state: &events::OrderState, envelope: &Envelope) {
        let occurred_at = microseconds(envelope.occurred_at);
        let created_at = matches!(envelope.event, Event::OrderPlaced(_)).then_some(occurred_at);
        match self
            .order_index
            .get(&order_id)
            .and_then(|&i| self.orders.get_mut(i))
        {
            Some(row) => {
                row.state = state.clone();
                row.updated_at = occurred_at;
                row.created_at = row.created_at.or(created_at);
            }
            None => {
                self.order_index.insert(order_id, self.orders.len());
                self.orders.push(OrderRow {
                    order_id,
                    state: state.clone(),
                    job_id: envelope.job_id,
                    created_at,
                    updated_at: occurred_at,
                });
            }
        }
    }

    fn push_batch(&mut self, envelope: &Envelope) {
        let at = microseconds(envelope.occurred_at);
        match &envelope.event {
            Event::BatchSubmitted(chunk) => {
                let owner_id = chunk.state.owner_id.to_string();
                if chunk.chunk == 0 {
                    self.batches.push(BatchRow {
                        batch_id: chunk.batch_id,
                        owner_id: owner_id.clone(),
                        total: i32::try_from(chunk.state.total).unwrap_or(i32::MAX),
                        submitted_at: at,
                    });
                }
                self.queued_jobs
                    .extend(chunk.items.iter().map(|item| QueuedJob {
                        job_id: item.job_id,
                        account_id: item.account_id.to_string(),
                        batch_id: chunk.batch_id,
                        owner_id: owner_id.clone(),
                        submitted_at: at,
                    }));
            }
            Event::JobFailed(failure) => self.failed_jobs.push((failure.clone(), at)),
            Event::BatchPartApplied(part) => {
                let rejected = i32::try_from(part.rejected.len()).unwrap_or(i32::MAX);
                let applied = i32::try_from(part.applied).unwrap_or(i32::MAX);
                match self
                    .batch_progress
                    .iter_mut()
                    .find(|(id, ..)| *id == part.batch_id)
                {
                    Some((_, a, r, last)) => {
                        *a += applied;
                        *r += rejected;
                        *last = at;
                    }
                    None => self
                        .batch_progress
                        .push((part.batch_id, applied, rejected, at)),
                }
                self.rejected_jobs
                    .extend(part.rejected.iter().map(|item| RejectedJob {
                        job_id: item.job_id,
                        code: item.code.clone(),
                        at,
                    }));
            }
            _ => {}
        }
    }

    pub fn is_empty(&self) -> bool {
        self.last_seq == 0
    }
}
