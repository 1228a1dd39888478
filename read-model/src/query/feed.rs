//! What the live feed reads: the entries a checkpoint move brought (every account, journal
//! order) and one account's entries after a sequence (a subscriber's catch-up). Both are
//! bounded pages; callers loop.

use super::entries::{HistoryEntry, history_columns};
use events::AccountId;
use sqlx::{FromRow, PgPool};

/// One history entry with what the feed adds to it: whose it is and what was held after it.
#[derive(Debug, Clone, FromRow)]
pub struct FeedEntry {
    pub account_id: AccountId,
    /// Minor units reserved by holds once the entry applied.
    pub held_after: i64,
    #[sqlx(flatten)]
    pub entry: HistoryEntry,
}

/// A query of [`FeedEntry`] rows: their columns, then `$rest` (the filter, order and limit).
macro_rules! select_feed_entries {
    ($rest:literal) => {
        concat!(
            "SELECT account_id, held_after, ",
            history_columns!(),
            " FROM account_entries ",
            $rest
        )
    };
}

/// Up to `limit` entries with `after < seq <= up_to`: of every account in journal order, or
/// of `account` only, oldest first (an account's versions and sequences grow together, so its
/// primary key gives the order).
pub async fn entries_between(
    pool: &PgPool,
    account: Option<&AccountId>,
    after: i64,
    up_to: i64,
    limit: i64,
) -> Result<Vec<FeedEntry>, sqlx::Error> {
    let sql = match account {
        None => select_feed_entries!("WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3"),
        Some(_) => select_feed_entries!(
            "WHERE account_id = $4 AND seq > $1 AND seq <= $2 ORDER BY version LIMIT $3"
        ),
    };
    let query = sqlx::query_as(sql).bind(after).bind(up_to).bind(limit);
    match account {
        None => query,
        Some(account_id) => query.bind(account_id.as_str()),
    }
    .fetch_all(pool)
    .await
}
