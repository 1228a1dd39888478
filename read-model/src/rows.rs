//! What the projector writes: one typed row per table, and [`Rows`], a run of consecutive
//! journal messages turned into rows (the unit [`crate::write`] applies in one transaction).
//!
//! Which event becomes which row is the projector's business (`projector::apply`); this module
//! only keeps the last state per key, so a batch writes each account, order and hold once.

use chrono::{DateTime, SubsecRound, Utc};
use events::{AccountId, AccountState, HoldState, OrderState, OwnerId};
use std::collections::HashMap;
use std::hash::Hash;
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

/// A row kept once per key in a batch: a later state of the same thing merges into it.
pub trait Keyed {
    type Key: Eq + Hash;
    fn key(&self) -> Self::Key;
    /// Takes `newer`'s state, keeping what only the first sight knows (when it began).
    fn merge(&mut self, newer: Self);
}

impl Keyed for AccountRow {
    type Key = AccountId;
    fn key(&self) -> AccountId {
        self.account_id.clone()
    }
    fn merge(&mut self, newer: Self) {
        let opened_at = self.opened_at.or(newer.opened_at);
        *self = Self { opened_at, ..newer };
    }
}

impl Keyed for OrderRow {
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.order_id
    }
    /// The order keeps its placing and the job that placed it.
    fn merge(&mut self, newer: Self) {
        let (created_at, job_id) = (self.created_at.or(newer.created_at), self.job_id);
        *self = Self {
            created_at,
            job_id,
            ..newer
        };
    }
}

impl Keyed for HoldRow {
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.hold_id
    }
    fn merge(&mut self, newer: Self) {
        let created_at = self.created_at.or(newer.created_at);
        *self = Self {
            created_at,
            ..newer
        };
    }
}

/// The latest row per key, in order of first appearance (each key written once per batch).
#[derive(Debug)]
pub struct Latest<R: Keyed> {
    rows: Vec<R>,
    index: HashMap<R::Key, usize>,
}

impl<R: Keyed> Default for Latest<R> {
    fn default() -> Self {
        Self {
            rows: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<R: Keyed> Latest<R> {
    /// Adds `row`, or merges it into the earlier row with the same key.
    pub fn upsert(&mut self, row: R) {
        let key = row.key();
        match self.index.get(&key).and_then(|&i| self.rows.get_mut(i)) {
            Some(old) => old.merge(row),
            None => {
                self.index.insert(key, self.rows.len());
                self.rows.push(row);
            }
        }
    }

    /// Upserts each of `later`'s rows, in their order.
    pub fn absorb(&mut self, later: Self) {
        for row in later.rows {
            self.upsert(row);
        }
    }
}

impl<R: Keyed> std::ops::Deref for Latest<R> {
    type Target = [R];
    fn deref(&self) -> &[R] {
        &self.rows
    }
}

/// A batch of consecutive journal messages, turned into rows.
#[derive(Debug, Default)]
pub struct Rows {
    pub entries: Vec<Entry>,
    pub accounts: Latest<AccountRow>,
    pub orders: Latest<OrderRow>,
    pub holds: Latest<HoldRow>,
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

    /// Rows of every kind.
    pub fn len(&self) -> usize {
        self.entries.len()
            + self.accounts.len()
            + self.orders.len()
            + self.holds.len()
            + self.batches.len()
            + self.queued_jobs.len()
            + self.rejected_jobs.len()
            + self.failed_jobs.len()
            + self.batch_progress.len()
    }

    /// Adds the rows of the run of messages that follows this one, as if they had been
    /// pushed here: later states of the same account, order or hold merge into this run's.
    pub fn absorb(&mut self, later: Self) {
        self.entries.extend(later.entries);
        self.accounts.absorb(later.accounts);
        self.orders.absorb(later.orders);
        self.holds.absorb(later.holds);
        self.batches.extend(later.batches);
        self.queued_jobs.extend(later.queued_jobs);
        self.rejected_jobs.extend(later.rejected_jobs);
        self.failed_jobs.extend(later.failed_jobs);
        for progress in later.batch_progress {
            self.add_progress(progress);
        }
        self.saw(later.last_seq);
    }
}
