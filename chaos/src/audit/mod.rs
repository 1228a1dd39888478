//! The audit after the run has quiesced, in the manner of Jepsen's queue checker: the clients'
//! histories against the whole journal.
//!
//! - **lost**: an acknowledged (2xx) transfer that is not in the journal;
//! - **duplicated**: one operation applied more than once (two transfers with its reference,
//!   a transfer id twice, two idempotency records for one key);
//! - **unexpected**: a journal entry no client sent, or one whose client was told it failed,
//!   an account opened twice or one the bank never opened, an idempotency record for no
//!   known operation;
//! - **idempotency_record_mismatch**: an acknowledged operation whose key has no record, or a
//!   record of another result (a retry would then not be recognized);
//! - per account, versions gapless from 1 and each post-state following from the one before;
//! - each transfer and reversal has both legs; a transfer's reversals run back the other way
//!   and never exceed it (**over_reversed**); the answers agree with the journal; the read
//!   model equals the journal's last states.

//!
//! [`journal`] folds the journal into what it says happened (checking each account's messages
//! as it goes); [`transfers`] checks both legs of every transfer; [`history`] holds every
//! client operation against the folded journal.

mod history;
mod journal;
mod transfers;

use crate::workload::Operation;
use events::ids::{IdempotencyKey, OwnerId};
use std::collections::BTreeMap;

/// Violations by kind, with the evidence of each.
#[derive(Debug, Default)]
pub struct Violations(pub BTreeMap<&'static str, Vec<String>>);

impl Violations {
    pub fn add(&mut self, kind: &'static str, evidence: String) {
        self.0.entry(kind).or_default().push(evidence);
    }

    pub fn merge(&mut self, other: Violations) {
        for (kind, evidence) in other.0 {
            self.0.entry(kind).or_default().extend(evidence);
        }
    }

    pub fn total(&self) -> usize {
        self.0.values().map(Vec::len).sum()
    }
}

/// What the journal says happened, decoded.
#[derive(Debug, Default)]
pub struct JournalFacts {
    pub messages: usize,
    /// Batches whose concurrency check was the stream's (`Nats-Expected-Last-Sequence`, the
    /// writer's run of its own commits) rather than each subject's alone.
    pub stream_checked_batches: usize,
    /// Last `(balance, version)` per account.
    pub accounts: BTreeMap<String, (i64, u64)>,
    /// Indeterminate operations found applied.
    pub indeterminate_applied: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct Leg {
    seq: u64,
    account: String,
    counterparty: String,
    amount: i64,
    reference: String,
    balance: i64,
    version: u64,
}

/// How the bank was opened before any client ran (`workload::open_bank`): each account
/// opened and funded once by `admin`, with the keys `open-<id>` and `fund-<id>`.
#[derive(Debug, Clone)]
pub struct Setup {
    pub admin: String,
    pub accounts: Vec<String>,
}

impl Setup {
    /// The idempotency record key (the subject's tail) of each setup request.
    pub(crate) fn record_keys(&self) -> Vec<(String, String)> {
        let Ok(admin) = OwnerId::parse(&self.admin) else {
            return Vec::new();
        };
        self.accounts
            .iter()
            .flat_map(|id| [format!("open-{id}"), format!("fund-{id}")])
            .filter_map(|key| Some((record_key(&admin, &key)?, key)))
            .collect()
    }
}

/// The tail of the idempotency record subject of `key` sent by `principal`.
pub(crate) fn record_key(principal: &OwnerId, key: &str) -> Option<String> {
    let key = IdempotencyKey::parse(key.to_owned()).ok()?;
    events::subjects::idempotency(principal, &key)
        .strip_prefix(events::subjects::IDEMPOTENCY_PREFIX)
        .map(str::to_owned)
}

/// Audits `history` (every client operation) against `journal` (every stored message, in
/// order), the bank having been opened as `setup` says.
pub fn audit(
    history: &[Operation],
    journal: &[ledger_nats::Stored],
    setup: &Setup,
    violations: &mut Violations,
) -> JournalFacts {
    let mut folded = journal::fold(journal, setup, violations);
    transfers::check(&folded, violations);
    transfers::check_reversals(&folded, violations);
    history::check(history, setup, &mut folded, violations);
    folded.facts
}

#[cfg(test)]
mod tests;
