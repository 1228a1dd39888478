//! What the projector writes: one typed row per table, and [`Rows`], a run of consecutive
//! journal messages turned into rows (the unit [`crate::write`] applies in one transaction).
//!
//! Which event becomes which row is the projector's business (`projector::apply`); this module
//! only keeps the last state per key, so a batch writes each account, order and hold once.

use chrono::{DateTime, SubsecRound, Utc};
use events::{AccountId, AccountState, HoldState, OrderState, OwnerId};
use std::collections::HashMap;
use uuid::Uuid;

/// Instants as the read model stores them (PostgreSQL keeps microseconds): cut before
/// writing, so that what is written is exactly what `verify` expects, whatever precision the
/// journal has.
pub fn microseconds(instant: DateTime<Utc>) -> DateTime<Utc> {
    instant.trunc_subsecs(6)
}

/// Stream sequences and versions fit `bigint` for the lifetime of any ledger (2^63).
pub fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A `bigint` column that holds a sequence or a version (never negative) as `u64`.
pub fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

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
    pub state: OrderState,
    pub job_id: Uuid,
    /// When the order was placed, if that is in the batch.
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// A hold row as of its last event in a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct HoldRow {
    pub hold_id: Uuid,
    pub state: HoldState,
    /// When the hold was placed, if that is in the batch.
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// A balance batch's first sight (any chunk carries its totals).
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRow {
    pub batch_id: Uuid,
    pub owner_id: OwnerId,
    pub total: i32,
    pub submitted_at: DateTime<Utc>,
}

/// A batch item's job, queued until its entry (completed) or its rejection is projected.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedJob {
    pub job_id: Uuid,
    pub account_id: AccountId,
    pub batch_id: Uuid,
    pub owner_id: OwnerId,
    pub submitted_at: DateTime<Utc>,
}

/// A batch item the executor refused.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedJob {
    pub job_id: Uuid,
    pub code: String,
    pub at: DateTime<Utc>,
}

/// A job an executor gave up on (its owner is not in the journal's record: only admins see it).
#[derive(Debug, Clone, PartialEq)]
pub struct FailedJob {
    pub job_id: Uuid,
    /// The executor that gave up: the job's kind.
    pub kind: String,
    pub code: String,
    pub detail: String,
    /// Where the failing message was in the journal.
    pub seq: u64,
    pub at: DateTime<Utc>,
}

/// A balance batch's items applied and rejected in one run of messages, and when last.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchProgress {
    pub batch_id: Uuid,
    pub applied: i32,
    pub rejected: i32,
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
    pub failed_jobs: Vec<FailedJob>,
    /// One per batch seen in this run of messages.
    pub batch_progress: Vec<BatchProgress>,
    /// Stream sequence of the batch's last message (any subject).
    pub last_seq: u64,
}

impl Rows {
    /// Notes that the message at `seq` is part of the batch (whether or not it makes rows).
    pub fn saw(&mut self, seq: u64) {
        self.last_seq = self.last_seq.max(seq);
    }

    /// The account's latest row: replaces an earlier one of the batch, keeping its opening.
    pub fn upsert_account(&mut self, row: AccountRow) {
        let key = row.account_id.clone();
        upsert(
            &mut self.accounts,
            &mut self.account_index,
            key,
            row,
            |old, new| {
                old.opened_at = old.opened_at.or(new.opened_at);
                old.state = new.state;
                old.last_seq = new.last_seq;
                old.updated_at = new.updated_at;
            },
        );
    }

    /// The order's latest row: replaces an earlier one of the batch, keeping its placing and
    /// its job.
    pub fn upsert_order(&mut self, row: OrderRow) {
        let key = row.order_id;
        upsert(
            &mut self.orders,
            &mut self.order_index,
            key,
            row,
            |old, new| {
                old.created_at = old.created_at.or(new.created_at);
                old.state = new.state;
                old.updated_at = new.updated_at;
            },
        );
    }

    /// The hold's latest row: replaces an earlier one of the batch, keeping its placing.
    pub fn upsert_hold(&mut self, row: HoldRow) {
        let key = row.hold_id;
        upsert(
            &mut self.holds,
            &mut self.hold_index,
            key,
            row,
            |old, new| {
                old.created_at = old.created_at.or(new.created_at);
                old.state = new.state;
                old.updated_at = new.updated_at;
            },
        );
    }

    /// Adds a batch part's counts to the batch's progress in this run of messages.
    pub fn add_progress(&mut self, part: BatchProgress) {
        match self
            .batch_progress
            .iter_mut()
            .find(|p| p.batch_id == part.batch_id)
        {
            Some(p) => {
                p.applied += part.applied;
                p.rejected += part.rejected;
                p.at = part.at;
            }
            None => self.batch_progress.push(part),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.last_seq == 0
    }
}

/// Merges `row` into the one of `rows` with the same `key` (`index` says where it is), or
/// appends it: one row per key, in order of first appearance.
fn upsert<K: Eq + std::hash::Hash, R>(
    rows: &mut Vec<R>,
    index: &mut HashMap<K, usize>,
    key: K,
    row: R,
    merge: impl FnOnce(&mut R, R),
) {
    match index.get(&key).and_then(|&i| rows.get_mut(i)) {
        Some(old) => merge(old, row),
        None => {
            index.insert(key, rows.len());
            rows.push(row);
        }
    }
}
