//! Balance batches: an admin sets many accounts' balances in one request. The request is
//! journaled as `batch_submitted` chunks; the batch executor applies each chunk in parts, each
//! part one atomic batch of `balance_set` events (a `balance_set` on an account that does not
//! exist opens it, as version 1) plus a `batch_part_applied` record that makes the part
//! exactly-once.

use crate::ids::{AccountId, OwnerId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Items per `batch_submitted` message: one applied part per chunk (a ~100 KiB message, well
/// under NATS' 1 MiB limit).
pub const CHUNK_LEN_MAX: usize = PART_LEN_MAX;

/// Items per applied part: one `balance_set` per item (it opens an account that does not
/// exist) plus the part's record fill exactly one atomic batch of JetStream's 1000 messages —
/// the largest batch is the cheapest per message (one fsync per batch).
pub const PART_LEN_MAX: usize = 999;

/// One account's requested balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchItem {
    pub account_id: AccountId,
    /// The balance to set, in minor units (0 ..= 10^15).
    pub balance: i64,
    pub job_id: Uuid,
}

/// The job id of a batch item: derived from the batch and the account, so that a replayed
/// answer lists the same jobs without journaling them twice.
pub fn item_job_id(batch_id: &Uuid, account_id: &AccountId) -> Uuid {
    Uuid::new_v5(batch_id, account_id.as_str().as_bytes())
}

/// The batch as every chunk describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchState {
    /// 1 + this chunk's index.
    pub version: u64,
    pub owner_id: OwnerId,
    pub total: u32,
    pub chunks: u32,
}

/// An item the executor could not apply, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemRejected {
    pub job_id: Uuid,
    pub account_id: AccountId,
    pub code: String,
}
