//! The projector's batch writer: a run of rows and the checkpoint move in one transaction.
//!
//! One function per table, each one `UNNEST` statement for all of the batch's rows of that
//! kind. Every write is idempotent: entries by `(account_id, version)`, jobs and batches by id,
//! and the upserts of accounts, orders and holds only move forward in version.

use crate::rows::{
    AccountRow, BatchProgress, BatchRow, Entry, FailedJob, HoldRow, OrderRow, QueuedJob,
    RejectedJob, Rows, microseconds, to_i64, to_u64,
};
use sqlx::{PgConnection, PgPool};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ApplyError {
    /// Another projector advanced the checkpoint: this one must stop and re-read it.
    #[error("checkpoint is at {found}, expected {expected}: another projector is applying")]
    LostOwnership { expected: u64, found: u64 },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Applies `rows` and moves the checkpoint `name` from `expected` to `rows.last_seq`, all in
/// one transaction. The checkpoint moves first, by one statement that also locks it: a
/// second projector applying the same range waits for the lock, then finds the checkpoint
/// moved, updates nothing and gets [`ApplyError::LostOwnership`] instead of writing.
/// `notify_channel` (if any) is told the new checkpoint when the transaction commits.
pub async fn apply(
    pool: &PgPool,
    name: &str,
    expected: u64,
    rows: &Rows,
    notify_channel: Option<&str>,
) -> Result<(), ApplyError> {
    let mut tx = pool.begin().await?;
    // The notification rides on the same statement (it is sent at commit), saving a round
    // trip per transaction; with no channel the `CASE` skips it.
    let moved = sqlx::query(
        "UPDATE projection_checkpoint SET last_seq = $3 WHERE name = $1 AND last_seq = $2
         RETURNING (CASE WHEN $4::text IS NOT NULL THEN pg_notify($4, $3::text) END) IS NULL",
    )
    .bind(name)
    .bind(to_i64(expected))
    .bind(to_i64(rows.last_seq))
    .bind(notify_channel)
    .fetch_optional(&mut *tx)
    .await?;
    if moved.is_none() {
        let found: i64 =
            sqlx::query_scalar("SELECT last_seq FROM projection_checkpoint WHERE name = $1")
                .bind(name)
                .fetch_one(&mut *tx)
                .await?;
        let found = to_u64(found);
        return Err(ApplyError::LostOwnership { expected, found });
    }
    write_rows(&mut tx, rows).await?;
    tx.commit().await?;
    Ok(())
}

/// Writes every kind of row of `rows` on `conn` (inside the caller's transaction). Batches
/// come before their jobs' updates, and jobs' inserts before their rejections, as the journal
/// has them.
pub async fn write_rows(conn: &mut PgConnection, rows: &Rows) -> Result<(), sqlx::Error> {
    insert_entries(conn, &rows.entries).await?;
    insert_batches(conn, &rows.batches).await?;
    insert_queued_jobs(conn, &rows.queued_jobs).await?;
    reject_jobs(conn, &rows.rejected_jobs).await?;
    fail_jobs(conn, &rows.failed_jobs).await?;
    add_batch_progress(conn, &rows.batch_progress).await?;
    upsert_holds(conn, &rows.holds).await?;
    upsert_orders(conn, &rows.orders).await?;
    upsert_accounts(conn, &rows.accounts).await
}

/// One column of an `UNNEST`: a field of every row.
fn column<R, T>(rows: &[R], field: impl Fn(&R) -> T) -> Vec<T> {
    rows.iter().map(field).collect()
}

async fn insert_entries(conn: &mut PgConnection, e: &[Entry]) -> Result<(), sqlx::Error> {
    if e.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO account_entries (account_id, version, seq, event_id, event_type, entry_type,
             amount, balance_after, held_after, counterparty_account_id, transfer_id, job_id,
             reference, metadata, occurred_at, order_id, hold_id)
         SELECT a, v, s, e, et, ty, am, ba, ha, cp, tr, j, r, m::jsonb, o, ord, h
         FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::uuid[], $5::text[], $6::text[],
             $7::int8[], $8::int8[], $9::int8[], $10::text[], $11::uuid[], $12::uuid[],
             $13::text[], $14::text[], $15::timestamptz[], $16::uuid[], $17::uuid[])
             AS t(a, v, s, e, et, ty, am, ba, ha, cp, tr, j, r, m, o, ord, h)
         ON CONFLICT (account_id, version) DO NOTHING",
    )
    .bind(column(e, |x| x.account_id.to_string()))
    .bind(column(e, |x| to_i64(x.version)))
    .bind(column(e, |x| to_i64(x.seq)))
    .bind(column(e, |x| x.event_id))
    .bind(column(e, |x| x.event_type))
    .bind(column(e, |x| x.entry_type))
    .bind(column(e, |x| x.amount))
    .bind(column(e, |x| x.balance_after))
    .bind(column(e, |x| x.held_after))
    .bind(column(e, |x| {
        x.counterparty_account_id.as_ref().map(ToString::to_string)
    }))
    .bind(column(e, |x| x.transfer_id))
    .bind(column(e, |x| x.job_id))
    .bind(column(e, |x| x.reference.clone()))
    .bind(column(e, |x| x.metadata.as_ref().map(ToString::to_string)))
    .bind(column(e, |x| x.occurred_at))
    .bind(column(e, |x| x.order_id))
    .bind(column(e, |x| x.hold_id))
    .execute(conn)
    .await
    .map(drop)
}

async fn insert_batches(conn: &mut PgConnection, b: &[BatchRow]) -> Result<(), sqlx::Error> {
    if b.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO batches (batch_id, owner_id, total, submitted_at, updated_at)
         SELECT id, o, t, s, s FROM UNNEST($1::uuid[], $2::text[], $3::int4[], $4::timestamptz[])
             AS u(id, o, t, s)
         ON CONFLICT (batch_id) DO NOTHING",
    )
    .bind(column(b, |x| x.batch_id))
    .bind(column(b, |x| x.owner_id.to_string()))
    .bind(column(b, |x| x.total))
    .bind(column(b, |x| x.submitted_at))
    .execute(conn)
    .await
    .map(drop)
}

async fn insert_queued_jobs(conn: &mut PgConnection, j: &[QueuedJob]) -> Result<(), sqlx::Error> {
    if j.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO jobs (job_id, kind, status, owner_id, account_id, batch_id, submitted_at)
         SELECT id, 'balance_set', 'queued', o, a, b, s
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::timestamptz[])
             AS u(id, o, a, b, s)
         ON CONFLICT (job_id) DO NOTHING",
    )
    .bind(column(j, |x| x.job_id))
    .bind(column(j, |x| x.owner_id.to_string()))
    .bind(column(j, |x| x.account_id.to_string()))
    .bind(column(j, |x| x.batch_id))
    .bind(column(j, |x| x.submitted_at))
    .execute(conn)
    .await
    .map(drop)
}

async fn reject_jobs(conn: &mut PgConnection, j: &[RejectedJob]) -> Result<(), sqlx::Error> {
    if j.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE jobs SET status = 'rejected', error_code = u.code,
             error_detail = 'the batch item was not applied: ' || u.code, completed_at = u.at
         FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[]) AS u(id, code, at)
         WHERE jobs.job_id = u.id",
    )
    .bind(column(j, |x| x.job_id))
    .bind(column(j, |x| x.code.clone()))
    .bind(column(j, |x| x.at))
    .execute(conn)
    .await
    .map(drop)
}

/// A failed job's row is written whole (a job may fail before any row of it exists); its
/// owner is stored as `''`, which no principal matches.
async fn fail_jobs(conn: &mut PgConnection, f: &[FailedJob]) -> Result<(), sqlx::Error> {
    if f.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO jobs (job_id, kind, status, owner_id, error_code, error_detail, seq,
             submitted_at, completed_at)
         SELECT id, k, 'failed', '', c, d, s, at, at
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::timestamptz[])
             AS u(id, k, c, d, s, at)
         ON CONFLICT (job_id) DO UPDATE SET status = 'failed', error_code = EXCLUDED.error_code,
             error_detail = EXCLUDED.error_detail, completed_at = EXCLUDED.completed_at",
    )
    .bind(column(f, |x| x.job_id))
    .bind(column(f, |x| x.kind.clone()))
    .bind(column(f, |x| x.code.clone()))
    .bind(column(f, |x| x.detail.clone()))
    .bind(column(f, |x| to_i64(x.seq)))
    .bind(column(f, |x| x.at))
    .execute(conn)
    .await
    .map(drop)
}

async fn add_batch_progress(
    conn: &mut PgConnection,
    p: &[BatchProgress],
) -> Result<(), sqlx::Error> {
    if p.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE batches SET completed = completed + u.a, rejected = rejected + u.r,
             updated_at = greatest(updated_at, u.at)
         FROM UNNEST($1::uuid[], $2::int4[], $3::int4[], $4::timestamptz[]) AS u(id, a, r, at)
         WHERE batches.batch_id = u.id",
    )
    .bind(column(p, |x| x.batch_id))
    .bind(column(p, |x| x.applied))
    .bind(column(p, |x| x.rejected))
    .bind(column(p, |x| x.at))
    .execute(conn)
    .await
    .map(drop)
}

async fn upsert_holds(conn: &mut PgConnection, h: &[HoldRow]) -> Result<(), sqlx::Error> {
    if h.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO holds (hold_id, account_id, amount, captured, status, expires_at, version,
             created_at, updated_at)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::int8[], $4::int8[], $5::text[],
             $6::timestamptz[], $7::int8[], $8::timestamptz[], $9::timestamptz[])
         ON CONFLICT (hold_id) DO UPDATE SET
             captured = EXCLUDED.captured, status = EXCLUDED.status,
             version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
         WHERE holds.version < EXCLUDED.version",
    )
    .bind(column(h, |x| x.hold_id))
    .bind(column(h, |x| x.state.account_id.to_string()))
    .bind(column(h, |x| x.state.amount.minor_units()))
    .bind(column(h, |x| x.state.captured))
    .bind(column(h, |x| hold_status(&x.state)))
    .bind(column(h, |x| x.state.expires_at.map(microseconds)))
    .bind(column(h, |x| to_i64(x.state.version)))
    .bind(column(h, |x| x.created_at.unwrap_or(x.updated_at)))
    .bind(column(h, |x| x.updated_at))
    .execute(conn)
    .await
    .map(drop)
}

async fn upsert_orders(conn: &mut PgConnection, o: &[OrderRow]) -> Result<(), sqlx::Error> {
    if o.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO orders (order_id, owner_id, account_id, amount, currency, description,
             status, reason, job_id, version, created_at, updated_at, refunded_total)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::int8[], $5::text[],
             $6::text[], $7::text[], $8::text[], $9::uuid[], $10::int8[],
             $11::timestamptz[], $12::timestamptz[], $13::int8[])
         ON CONFLICT (order_id) DO UPDATE SET
             status = EXCLUDED.status, reason = EXCLUDED.reason,
             version = EXCLUDED.version, updated_at = EXCLUDED.updated_at,
             refunded_total = EXCLUDED.refunded_total
         WHERE orders.version < EXCLUDED.version",
    )
    .bind(column(o, |x| x.order_id))
    .bind(column(o, |x| x.state.owner_id.to_string()))
    .bind(column(o, |x| x.state.account_id.to_string()))
    .bind(column(o, |x| x.state.amount.minor_units()))
    // An order without a currency of its own is stored with '' (the column is NOT NULL).
    .bind(column(o, |x| {
        x.state.currency.map(|c| c.to_string()).unwrap_or_default()
    }))
    .bind(column(o, |x| x.state.description.clone()))
    .bind(column(o, |x| word(&x.state.status)))
    .bind(column(o, |x| x.state.reason.map(|r| r.code().to_owned())))
    .bind(column(o, |x| x.job_id))
    .bind(column(o, |x| to_i64(x.state.version)))
    .bind(column(o, |x| x.created_at.unwrap_or(x.updated_at)))
    .bind(column(o, |x| x.updated_at))
    .bind(column(o, |x| x.state.refunded_total))
    .execute(conn)
    .await
    .map(drop)
}

async fn upsert_accounts(conn: &mut PgConnection, a: &[AccountRow]) -> Result<(), sqlx::Error> {
    if a.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO accounts (account_id, owner_id, currency, balance, held, overdraft_limit,
             version, status, last_seq, opened_at, updated_at)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[],
             $6::int8[], $7::int8[], $8::text[], $9::int8[], $10::timestamptz[],
             $11::timestamptz[])
         ON CONFLICT (account_id) DO UPDATE SET
             owner_id = EXCLUDED.owner_id, currency = EXCLUDED.currency,
             balance = EXCLUDED.balance, held = EXCLUDED.held,
             overdraft_limit = EXCLUDED.overdraft_limit, version = EXCLUDED.version,
             status = EXCLUDED.status, last_seq = EXCLUDED.last_seq,
             updated_at = EXCLUDED.updated_at
         WHERE accounts.version < EXCLUDED.version",
    )
    .bind(column(a, |x| x.account_id.to_string()))
    .bind(column(a, |x| x.state.owner_id.to_string()))
    .bind(column(a, |x| x.state.currency.to_string()))
    .bind(column(a, |x| x.state.balance))
    .bind(column(a, |x| x.state.held))
    .bind(column(a, |x| x.state.overdraft_limit))
    .bind(column(a, |x| to_i64(x.state.version)))
    .bind(column(a, |x| word(&x.state.status)))
    .bind(column(a, |x| to_i64(x.last_seq)))
    .bind(column(a, |x| x.opened_at.unwrap_or(x.updated_at)))
    .bind(column(a, |x| x.updated_at))
    .execute(conn)
    .await
    .map(drop)
}

/// `expired` for holds the system voided at expiry, else the status word.
fn hold_status(state: &events::HoldState) -> String {
    if state.expired {
        "expired".to_owned()
    } else {
        word(&state.status)
    }
}

/// A unit enum's snake_case name, as serde writes it in the journal.
fn word(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
