//! Follows the projector's checkpoint: `LISTEN` for its announcements, re-read on reconnect
//! and every few seconds in case one was missed. Each new checkpoint first evicts what it
//! changed from the account cache, then reaches the handlers.

use crate::account_cache::AccountCache;
use read_model::notify_channel;
use read_model::schema::live_checkpoint;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::time::Duration;
use tokio::sync::watch;

/// A safety net for lost notifications (e.g. across a reconnect), not the main path.
const REREAD_EVERY: Duration = Duration::from_secs(2);
/// Pause before reconnecting after a failure.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

/// Keeps `latest` at the highest checkpoint seen, for ever, with `cache` current through it.
pub async fn follow(pool: PgPool, schema: String, latest: watch::Sender<u64>, cache: AccountCache) {
    let follower = Follower {
        pool,
        latest,
        cache,
    };
    loop {
        if let Err(e) = follower.follow_once(&schema).await {
            tracing::warn!(error = %e, "following the checkpoint failed; reconnecting");
        }
        tokio::time::sleep(RECONNECT_PAUSE).await;
    }
}

struct Follower {
    pool: PgPool,
    latest: watch::Sender<u64>,
    cache: AccountCache,
}

impl Follower {
    async fn follow_once(&self, schema: &str) -> Result<(), sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(&notify_channel(schema)).await?;
        // Read after LISTEN, so that nothing committed in between goes unseen.
        self.raise(live_checkpoint(&self.pool).await?).await;
        loop {
            tokio::select! {
                notification = listener.try_recv() => match notification? {
                    Some(n) => {
                        if let Ok(seq) = n.payload().parse::<u64>() {
                            self.raise(seq).await;
                        }
                    }
                    // The connection dropped and will be re-established: re-read what we missed.
                    None => self.raise(live_checkpoint(&self.pool).await?).await,
                },
                () = tokio::time::sleep(REREAD_EVERY) => {
                    self.raise(live_checkpoint(&self.pool).await?).await;
                }
            }
        }
    }

    /// Moves the watched value forward only (announcements may arrive out of order), once the
    /// cache has forgotten what the move changed.
    async fn raise(&self, seq: u64) {
        if seq <= *self.latest.borrow() {
            return;
        }
        self.cache.advance(&self.pool, seq).await;
        self.latest.send_if_modified(|current| {
            if seq > *current {
                *current = seq;
                true
            } else {
                false
            }
        });
    }
}
