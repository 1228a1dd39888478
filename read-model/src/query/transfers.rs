//! Transfers: one by id, with its reversals, read from the history rows that carry its id
//! (its two legs and each reversal's two legs; `account_entries_by_transfer`).

use chrono::{DateTime, Utc};
use events::{AccountId, Currency, OwnerId};
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

/// A history row of a transfer or of one of its reversals, with its account's owner and
/// currency.
#[derive(Debug, Clone, FromRow)]
pub struct TransferLeg {
    pub account_id: AccountId,
    pub owner_id: OwnerId,
    pub currency: Currency,
    /// `transfer_sent`, `transfer_received`, `reversal_sent` or `reversal_received`.
    pub event_type: String,
    /// Signed, as in the history: + credit, − debit.
    pub amount: i64,
    pub counterparty_account_id: Option<String>,
    /// The reversal's id for a reversal's legs (a reversal is one job).
    pub job_id: Uuid,
    pub reference: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

/// Every history row that carries `transfer_id`, in journal order.
pub async fn legs(pool: &PgPool, transfer_id: Uuid) -> Result<Vec<TransferLeg>, sqlx::Error> {
    sqlx::query_as(
        "SELECT e.account_id, a.owner_id, a.currency, e.event_type, e.amount,
                e.counterparty_account_id, e.job_id, e.reference, e.occurred_at
         FROM account_entries e JOIN accounts a USING (account_id)
         WHERE e.transfer_id = $1 ORDER BY e.seq",
    )
    .bind(transfer_id)
    .fetch_all(pool)
    .await
}

/// Where the read model holds the transfer `transfer_id`, read together with how far it has
/// read the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Located {
    /// The journal sequence of the transfer's `transfer_sent`, if the read model holds it.
    pub sent_seq: Option<u64>,
    /// The read model's checkpoint: every message up to it is applied, so a transfer it does
    /// not hold was journaled after it, if at all.
    pub checkpoint: u64,
}

/// The command API's question before it searches the journal for a transfer never reversed
/// (ADR 0018): one statement, so the answer and the checkpoint come from the same snapshot.
/// A checkpoint not yet written reads as 0 (nothing applied).
pub async fn locate(pool: &PgPool, transfer_id: Uuid) -> Result<Located, sqlx::Error> {
    let (sent_seq, checkpoint): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT (SELECT seq FROM account_entries
                 WHERE transfer_id = $1 AND event_type = 'transfer_sent' LIMIT 1),
                (SELECT last_seq FROM projection_checkpoint WHERE name = $2)",
    )
    .bind(transfer_id)
    .bind(crate::PROJECTION)
    .fetch_one(pool)
    .await?;
    Ok(Located {
        sent_seq: sent_seq.map(crate::to_u64),
        checkpoint: checkpoint.map_or(0, crate::to_u64),
    })
}
