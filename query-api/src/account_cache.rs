//! Hot accounts without a query: a bounded read-through cache of account rows that is exact,
//! not merely fresh enough.
//!
//! Balance reads are the API's most frequent request and mostly ask for the same accounts
//! again. The cache keeps the rows it has read and forgets an account as soon as the read model
//! changes it: when the checkpoint moves from `a` to `b`, [`AccountCache::advance`] reads which
//! accounts have history entries with `a < seq <= b` (every change of an account is one) and
//! evicts them, and only then does the query API announce `b` to its handlers
//! ([`crate::checkpoint`] calls it before raising the checkpoint). So a row the cache hands
//! out is the account as of at least the checkpoint every request is stamped with
//! (`Ledger-Seq`), and `Ledger-Min-Seq` keeps its promise.
//!
//! A row read from the database is kept only if it was read at or after the checkpoint the
//! cache is current through (the read returns the checkpoint from the same snapshot): an older
//! read might miss a change whose eviction has already happened.

use events::AccountId;
use lru::LruCache;
use read_model::query::accounts::{self, Account};
use sqlx::PgPool;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};

/// Accounts a checkpoint move may name before the cache forgets everything instead: one query
/// of a few thousand ids is cheaper than reloading the cache, a larger jump (a catch-up after
/// an outage, a rebuild swapped in) is cheaper to start over from.
const CHANGED_LEN_MAX: i64 = 10_000;

/// The cache; cloning it is cheap. A cache of length 0 keeps nothing.
#[derive(Debug, Clone)]
pub struct AccountCache(Option<Arc<Mutex<Rows>>>);

#[derive(Debug)]
struct Rows {
    /// Every change up to this sequence has evicted its account.
    current_through: u64,
    rows: LruCache<AccountId, Account>,
}

impl AccountCache {
    /// A cache of at most `len_max` accounts, current through `checkpoint` (it starts empty).
    pub fn new(len_max: usize, checkpoint: u64) -> Self {
        Self(NonZeroUsize::new(len_max).map(|len| {
            Arc::new(Mutex::new(Rows {
                current_through: checkpoint,
                rows: LruCache::new(len),
            }))
        }))
    }

    /// The account, from the cache if it holds it, else from the read model (and kept).
    pub async fn account(
        &self,
        pool: &PgPool,
        account_id: &AccountId,
    ) -> Result<Option<Account>, sqlx::Error> {
        let Some(shared) = &self.0 else {
            return accounts::account(pool, account_id).await;
        };
        if let Some(row) = lock(shared).rows.get(account_id) {
            metrics::counter!("tally_account_cache_total", "outcome" => "hit").increment(1);
            return Ok(Some(row.clone()));
        }
        metrics::counter!("tally_account_cache_total", "outcome" => "miss").increment(1);
        let Some(read) = accounts::account_at(pool, account_id).await? else {
            return Ok(None);
        };
        let mut cached = lock(shared);
        if u64::try_from(read.read_at).unwrap_or(0) >= cached.current_through {
            cached.rows.put(account_id.clone(), read.account.clone());
        }
        Ok(Some(read.account))
    }

    /// Forgets every account that changed up to `checkpoint`; afterwards the cache is current
    /// through it. If the read model cannot say which changed, forgets everything.
    pub async fn advance(&self, pool: &PgPool, checkpoint: u64) {
        let Some(shared) = &self.0 else {
            return;
        };
        let after = lock(shared).current_through;
        if checkpoint <= after {
            return;
        }
        let changed =
            accounts::changed_between(pool, to_i64(after), to_i64(checkpoint), CHANGED_LEN_MAX)
                .await;
        let mut cached = lock(shared);
        match changed {
            Ok(ids) if (ids.len() as i64) < CHANGED_LEN_MAX => {
                for id in ids {
                    if let Ok(id) = AccountId::parse(id) {
                        cached.rows.pop(&id);
                    }
                }
            }
            Ok(_) => cached.rows.clear(),
            Err(e) => {
                tracing::warn!(error = %e, "reading which accounts changed failed; forgetting every cached account");
                cached.rows.clear();
            }
        }
        cached.current_through = checkpoint;
    }
}

fn lock(shared: &Mutex<Rows>) -> MutexGuard<'_, Rows> {
    // Every change under the lock is one call on the map: a panic leaves it consistent.
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sequences are `bigint` in the read model and below 2^63 in the journal.
fn to_i64(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}
