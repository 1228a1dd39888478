//! The writer's bounded cache of aggregate states and subject sequences.
//!
//! An entry is the last message on a subject as this instance knows it: its stream sequence
//! (the expected last subject sequence for the next write) and the decoded aggregate. Entries
//! may be stale when other instances write; the expected-sequence check at commit catches
//! that, and the writer then drops the entries and reloads them.

use events::{
    AccountState, Envelope, Event, HoldState, IdempotencyRecorded, OrderState, TransferState,
};
use ledger_nats::Stored;
use lru::LruCache;
use std::num::NonZeroUsize;

/// What a subject holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Aggregate {
    /// No message on the subject yet.
    Absent,
    Account(AccountState),
    Order(OrderState),
    Hold(HoldState),
    Transfer(TransferState),
    Idempotency(IdempotencyRecorded),
    /// A subject with a message that carries no state of its own (batch chunks and records):
    /// what matters is that it exists.
    Recorded,
}

impl Aggregate {
    /// The state an event leaves its aggregate in.
    pub fn after(event: &Event) -> Self {
        match event {
            Event::IdempotencyRecorded(record) => Self::Idempotency(record.clone()),
            other => {
                if let Some(account) = other.account_state() {
                    Self::Account(account.clone())
                } else if let Some(order) = other.order_state() {
                    Self::Order(order.clone())
                } else if let Some(hold) = other.hold_state() {
                    Self::Hold(hold.clone())
                } else if let Some(transfer) = other.transfer_state() {
                    Self::Transfer(transfer.clone())
                } else {
                    Self::Recorded
                }
            }
        }
    }
}

/// A subject's last message as known here.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    /// Stream sequence of the subject's last message; 0 when the subject is empty.
    pub seq: u64,
    pub aggregate: Aggregate,
    /// The stream sequence as of which this is known to be the subject's last message: the
    /// ack of this instance's own commit that wrote it, or this instance's last ack when it
    /// was read from a single-replica stream (which answers reads after the writes it
    /// acknowledged). `None` when a read may have been stale (a follower may answer). Lets the
    /// stream check stand in for the subject's (`checks.rs`).
    pub current_at: Option<u64>,
}

impl Slot {
    pub const ABSENT: Slot = Slot {
        seq: 0,
        aggregate: Aggregate::Absent,
        current_at: None,
    };

    /// Decodes a stored message into the aggregate state it carries.
    pub fn from_stored(stored: &Stored) -> Result<Self, serde_json::Error> {
        let envelope = Envelope::from_json(&stored.payload)?;
        Ok(Self {
            seq: stored.seq,
            aggregate: Aggregate::after(&envelope.event),
            current_at: None,
        })
    }
}

/// Least-recently-used map from subject to [`Slot`].
#[derive(Debug)]
pub struct StateCache {
    slots: LruCache<String, Slot>,
}

impl StateCache {
    pub fn new(len_max: NonZeroUsize) -> Self {
        Self {
            slots: LruCache::new(len_max),
        }
    }

    pub fn get(&mut self, subject: &str) -> Option<&Slot> {
        self.slots.get(subject)
    }

    pub fn contains(&self, subject: &str) -> bool {
        self.slots.contains(subject)
    }

    pub fn put(&mut self, subject: String, slot: Slot) {
        self.slots.put(subject, slot);
    }

    pub fn forget(&mut self, subject: &str) {
        self.slots.pop(subject);
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}
