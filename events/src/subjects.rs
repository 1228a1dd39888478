//! Where each aggregate lives in the `LEDGER` stream.
//!
//! | subject | aggregate |
//! |---|---|
//! | `ledger.account.<account_id>` | account |
//! | `ledger.order.<order_id>` | order |
//! | `ledger.hold.<hold_id>` | hold |
//! | `ledger.batch.<batch_id>` (chunks), `….<chunk>.<part>` (progress) | balance batch |
//! | `ledger.job.<job_id>` | job failure record |
//! | `ledger.idem.<sha256(principal, key)>` (and `….<part>`) | idempotency record |
//!
//! The stream itself captures `ledger.>` (see `nats/ledger-stream.json`).

use crate::ids::{AccountId, IdempotencyKey, OwnerId};
use sha2::{Digest, Sha256};

/// Prefix of every subject in the journal.
pub const ROOT: &str = "ledger";

/// Prefix of account subjects, with its trailing dot.
pub const ACCOUNT_PREFIX: &str = "ledger.account.";

/// Prefix of order subjects, with its trailing dot.
pub const ORDER_PREFIX: &str = "ledger.order.";

/// Prefix of hold subjects, with its trailing dot.
pub const HOLD_PREFIX: &str = "ledger.hold.";

/// Prefix of balance-batch subjects, with its trailing dot.
pub const BATCH_PREFIX: &str = "ledger.batch.";

/// Prefix of job-failure subjects, with its trailing dot.
pub const JOB_PREFIX: &str = "ledger.job.";

/// Prefix of idempotency-record subjects, with its trailing dot.
pub const IDEMPOTENCY_PREFIX: &str = "ledger.idem.";

/// The subject of an account's events.
pub fn account(id: &AccountId) -> String {
    format!("{ACCOUNT_PREFIX}{id}")
}

/// The subject of an order's events.
pub fn order(id: &uuid::Uuid) -> String {
    format!("{ORDER_PREFIX}{id}")
}

/// The subject of a hold's events (the hold side).
pub fn hold(id: &uuid::Uuid) -> String {
    format!("{HOLD_PREFIX}{id}")
}

/// The subject of a balance batch's chunks.
pub fn batch(id: &uuid::Uuid) -> String {
    format!("{BATCH_PREFIX}{id}")
}

/// The subject of the record that a part of a batch chunk was applied (one message, ever).
pub fn batch_part(id: &uuid::Uuid, chunk: u32, part: u32) -> String {
    format!("{BATCH_PREFIX}{id}.{chunk}.{part}")
}

/// The subject of a job's failure record.
pub fn job(id: &uuid::Uuid) -> String {
    format!("{JOB_PREFIX}{id}")
}

/// The subject of the record that binds `key` for `principal`: keys are scoped to the caller,
/// and hashing keeps arbitrary key bytes out of the subject.
pub fn idempotency(principal: &OwnerId, key: &IdempotencyKey) -> String {
    let mut hash = Sha256::new();
    hash.update(principal.as_str().as_bytes());
    // A separator that neither part may contain keeps ("ab","c") apart from ("a","bc").
    hash.update([0u8]);
    hash.update(key.as_str().as_bytes());
    format!("{IDEMPOTENCY_PREFIX}{}", hex::encode(hash.finalize()))
}

/// The subject of the record of part `part` of a request answered in parts (a bulk
/// transfer request commits one record per journal batch it takes). Part 0 is the request's
/// own record, [`idempotency`], so a single command and a bulk request never share a key.
pub fn idempotency_part(principal: &OwnerId, key: &IdempotencyKey, part: u32) -> String {
    let own = idempotency(principal, key);
    match part {
        0 => own,
        part => format!("{own}.{part}"),
    }
}

/// The account id of an account subject, if it is one.
pub fn account_id_of(subject: &str) -> Option<AccountId> {
    subject
        .strip_prefix(ACCOUNT_PREFIX)
        .and_then(|id| AccountId::parse(id).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_subjects_round_trip() {
        let id = AccountId::parse("alice").expect("valid");
        assert_eq!(account(&id), "ledger.account.alice");
        assert_eq!(account_id_of("ledger.account.alice"), Some(id));
        assert_eq!(account_id_of("ledger.idem.abc"), None);
    }

    #[test]
    fn idempotency_subjects_are_scoped_to_the_principal() {
        let key = IdempotencyKey::parse("k1").expect("valid");
        let alice = OwnerId::parse("alice").expect("valid");
        let bob = OwnerId::parse("bob").expect("valid");
        let subject = idempotency(&alice, &key);
        assert!(subject.starts_with(IDEMPOTENCY_PREFIX));
        assert_eq!(subject.len(), IDEMPOTENCY_PREFIX.len() + 64);
        assert_ne!(subject, idempotency(&bob, &key));
        assert_eq!(subject, idempotency(&alice, &key));
        assert_eq!(idempotency_part(&alice, &key, 0), subject);
        assert_eq!(idempotency_part(&alice, &key, 3), format!("{subject}.3"));
    }
}
