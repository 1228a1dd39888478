//! Follows the projector's checkpoint: `LISTEN` for its announcements, re-read on reconnect
//! and every few seconds in case one was missed.

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

/// Keeps `latest` at the highest checkpoint seen, for ever.
pub async fn follow(pool: PgPool, schema: String, latest: watch::Sender<u64>) {
    loop {
        if let Err(e) = follow_once(&pool, &schema, &latest).await {
            tracing::warn!(error = %e, "following the checkpoint failed; reconnecting");
        }
        tokio::time::sleep(RECONNECT_PAUSE).await;
    }
}

async fn follow_once(
    pool: &PgPool,
    schema: &str,
    latest: &watch::Sender<u64>,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(&notify_channel(schema)).await?;
    // Read after LISTEN, so that nothing committed in between goes unseen.
    raise(latest, live_checkpoint(pool).await?);
    loop {
        tokio::select! {
            notification = listener.try_recv() => match notification? {
                Some(n) => {
                    if let Ok(seq) = n.payload().parse::<u64>() {
                        raise(latest, seq);
                    }
                }
                // The connection dropped and will be re-established: re-read what we missed.
                None => raise(latest, live_checkpoint(pool).await?),
            },
            () = tokio::time::sleep(REREAD_EVERY) => {
                raise(latest, live_checkpoint(pool).await?);
            }
        }
    }
}

/// Moves the watched value forward only: announcements may arrive out of order.
fn raise(latest: &watch::Sender<u64>, seq: u64) {
    latest.send_if_modified(|current| {
        if seq > *current {
            *current = seq;
            true
        } else {
            false
        }
    });
}
