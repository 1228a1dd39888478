//! The live feed's hub: one per query-API instance, shared by every open feed.
//!
//! The hub follows the same checkpoint as read-your-writes ([`crate::checkpoint`]). When it
//! moves from `a` to `b`, the hub reads the entries `a < seq <= b` of every account once (in
//! bounded pages) and hands each to the subscribers of its account through their bounded
//! channels: one query per checkpoint move, whatever the number of subscribers. Because the
//! projector writes the rows and moves the checkpoint in one transaction, nothing reaches a
//! subscriber before a query with `Ledger-Min-Seq` would see it.
//!
//! A subscriber registers first and is told [`Subscription::live_from`], the last sequence the
//! hub handed out before it registered: it reads its account's entries up to there from the
//! read model (its catch-up) and everything above arrives on its channel. A subscriber whose
//! channel is full when the hub hands it an entry is cut off and marked lagged; it resumes with
//! `Last-Event-ID` rather than being buffered without bound.

use events::AccountId;
use read_model::query::feed::{self as rows, FeedEntry};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

/// Entries read per query, by the hub and by a catch-up: a few hundred rows of ~0.5 KB keep
/// each query short and its memory small while still amortizing the round trip.
pub const PAGE_LEN: i64 = 500;
/// Pause before reading again after the read model failed to answer.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// How many may listen, how far each may fall behind, and how the streams are paced.
#[derive(Debug, Clone, Copy)]
pub struct FeedLimits {
    /// Entries a subscriber may have waiting before it is cut off as lagged.
    pub buffer_len_max: usize,
    /// Open feeds per instance; beyond it a new one is refused with `503`.
    pub subscribers_max: usize,
    /// Longest silence on an open feed before a heartbeat comment.
    pub heartbeat: Duration,
    /// Longest life of one stream; the client resumes with `Last-Event-ID`.
    pub stream_max: Duration,
}

/// Why a feed could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Every subscriber slot of this instance is taken.
    Full,
    /// The instance is shutting down.
    Closed,
}

/// The shared hub; cloning it is cheap.
#[derive(Debug, Clone)]
pub struct Hub(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    pool: PgPool,
    limits: FeedLimits,
    slots: Arc<Semaphore>,
    routing: Mutex<Routing>,
    closed: AtomicBool,
}

#[derive(Debug)]
struct Routing {
    /// The highest sequence handed out: every entry above it reaches the subscribers
    /// registered now through their channels. Only the dispatch task moves it.
    dispatched: u64,
    next_id: u64,
    subscribers: HashMap<AccountId, Vec<Subscriber>>,
}

#[derive(Debug)]
struct Subscriber {
    id: u64,
    sender: mpsc::Sender<Arc<FeedEntry>>,
    lagged: Arc<AtomicBool>,
}

/// One open feed's place in the hub; dropping it leaves the hub and frees the slot.
#[derive(Debug)]
pub struct Subscription {
    hub: Hub,
    id: u64,
    pub account_id: AccountId,
    /// Entries above [`Self::live_from`], in journal order.
    pub entries: mpsc::Receiver<Arc<FeedEntry>>,
    lagged: Arc<AtomicBool>,
    /// The last sequence handed out before this subscription: the catch-up reads up to here
    /// from the read model (which already holds it), the channel brings the rest.
    pub live_from: u64,
    _slot: OwnedSemaphorePermit,
}

impl Subscription {
    /// Whether the hub cut this subscriber off because its channel was full.
    pub fn lagged(&self) -> bool {
        self.lagged.load(Ordering::Acquire)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut routing = self.hub.routing();
        if let Some(list) = routing.subscribers.get_mut(&self.account_id) {
            list.retain(|s| s.id != self.id);
            if list.is_empty() {
                routing.subscribers.remove(&self.account_id);
            }
        }
        metrics::gauge!("tally_feed_subscribers").decrement(1.0);
    }
}

impl Hub {
    /// A hub whose first hand-out starts after `start` (the checkpoint as the instance starts).
    pub fn new(pool: PgPool, limits: FeedLimits, start: u64) -> Self {
        Self(Arc::new(Shared {
            pool,
            limits,
            slots: Arc::new(Semaphore::new(limits.subscribers_max)),
            routing: Mutex::new(Routing {
                dispatched: start,
                next_id: 0,
                subscribers: HashMap::new(),
            }),
            closed: AtomicBool::new(false),
        }))
    }

    pub fn limits(&self) -> FeedLimits {
        self.0.limits
    }

    pub fn pool(&self) -> &PgPool {
        &self.0.pool
    }

    pub fn is_closed(&self) -> bool {
        self.0.closed.load(Ordering::Acquire)
    }

    /// Registers a subscriber of `account_id`, if a slot is free and the hub is open.
    pub fn subscribe(&self, account_id: AccountId) -> Result<Subscription, Refused> {
        let slot = self
            .0
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refused::Full)?;
        let mut routing = self.routing();
        // Checked under the lock that `close` takes: no subscriber registers after it.
        if self.is_closed() {
            return Err(Refused::Closed);
        }
        let (sender, entries) = mpsc::channel(self.0.limits.buffer_len_max.max(1));
        let lagged = Arc::new(AtomicBool::new(false));
        let id = routing.next_id;
        routing.next_id += 1;
        routing
            .subscribers
            .entry(account_id.clone())
            .or_default()
            .push(Subscriber {
                id,
                sender,
                lagged: lagged.clone(),
            });
        let live_from = routing.dispatched;
        drop(routing);
        metrics::gauge!("tally_feed_subscribers").increment(1.0);
        Ok(Subscription {
            hub: self.clone(),
            id,
            account_id,
            entries,
            lagged,
            live_from,
            _slot: slot,
        })
    }

    /// Ends every open feed (their channels close) and refuses new ones: for shutdown, so that
    /// no stream keeps the server waiting.
    pub fn close(&self) {
        let mut routing = self.routing();
        self.0.closed.store(true, Ordering::Release);
        routing.subscribers.clear();
    }

    /// Hands out every entry the checkpoint brings, for as long as the checkpoint is followed.
    pub async fn dispatch(self, mut checkpoint: watch::Receiver<u64>) {
        loop {
            let target = *checkpoint.borrow_and_update();
            self.dispatch_up_to(target).await;
            if checkpoint.changed().await.is_err() || self.is_closed() {
                return;
            }
        }
    }

    async fn dispatch_up_to(&self, target: u64) {
        loop {
            let after = {
                let mut routing = self.routing();
                if routing.dispatched >= target {
                    return;
                }
                // Nobody listens: nothing to read. A subscriber that registers from now on
                // catches up to `target` from the read model.
                if routing.subscribers.is_empty() {
                    routing.dispatched = target;
                    return;
                }
                routing.dispatched
            };
            let page =
                rows::entries_between(&self.0.pool, None, to_i64(after), to_i64(target), PAGE_LEN)
                    .await;
            let page = match page {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the feed's entries failed; retrying");
                    tokio::time::sleep(RETRY_PAUSE).await;
                    continue;
                }
            };
            let full = page.len() as i64 >= PAGE_LEN;
            let mut routing = self.routing();
            let mut last = after;
            for entry in page {
                last = to_u64(entry.entry.seq);
                routing.hand_out(Arc::new(entry));
            }
            // A short page is the whole range; a full one may have more after its last row.
            routing.dispatched = if full { last } else { target };
        }
    }

    fn routing(&self) -> MutexGuard<'_, Routing> {
        // A panic while holding the lock leaves the map consistent (every change is one
        // call), so a poisoned lock is still usable.
        self.0
            .routing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Routing {
    fn hand_out(&mut self, entry: Arc<FeedEntry>) {
        let Some(list) = self.subscribers.get_mut(&entry.account_id) else {
            return;
        };
        list.retain(|s| match s.sender.try_send(entry.clone()) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                s.lagged.store(true, Ordering::Release);
                metrics::counter!("tally_feed_lagged_total").increment(1);
                false
            }
            Err(TrySendError::Closed(_)) => false,
        });
        if list.is_empty() {
            self.subscribers.remove(&entry.account_id);
        }
    }
}

/// Sequences are `bigint` in the read model and below 2^63 in the journal.
fn to_i64(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

fn to_u64(seq: i64) -> u64 {
    u64::try_from(seq).unwrap_or(0)
}
