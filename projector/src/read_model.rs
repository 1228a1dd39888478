//! The projector's SQL: schema set-up, the checkpoint, and applying a batch of rows in one
//! transaction that also advances the checkpoint.

use crate::apply::Rows;
use sqlx::AssertSqlSafe;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Postgres, Transaction};
use std::str::FromStr;
use std::time::Duration;
use thiserror::Error;

/// The live projection's name in `projection_checkpoint`.
pub const PROJECTION: &str = "read_model";

/// The migrations that build a read-model schema.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

#[derive(Debug, Error)]
pub enum ApplyError {
    /// Another projector advanced the checkpoint: this one must stop and re-read it.
    #[error("checkpoint is at {found}, expected {expected}: another projector is applying")]
    LostOwnership { expected: u64, found: u64 },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Connection options for `database_url` with `search_path` set to `schema`.
pub fn connect_options(database_url: &str, schema: &str) -> Result<PgConnectOptions, sqlx::Error> {
    Ok(PgConnectOptions::from_str(database_url)?
        .application_name("tally")
        .options([("search_path", schema)]))
}

/// A pool whose connections see `schema`.
pub async fn pool(database_url: &str, schema: &str, size: u32) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(connect_options(database_url, schema)?)
        .await
}

/// Creates `schema` if needed and brings it to the latest migration.
pub async fn migrate(pool: &PgPool, schema: &str) -> Result<(), sqlx::migrate::MigrateError> {
    sqlx::query(AssertSqlSafe(format!(
        "CREATE SCHEMA IF NOT EXISTS {}",
        quote(schema)
    )))
    .execute(pool)
    .await?;
    MIGRATOR.run(pool).await
}

/// Double-quotes an identifier.
pub fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// The projection's checkpoint, creating it at 0.
pub async fn checkpoint(pool: &PgPool, name: &str) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "INSERT INTO projection_checkpoint (name, last_seq) VALUES ($1, 0) ON CONFLICT DO NOTHING",
    )
    .bind(name)
    .execute(pool)
    .await?;
    let last: i64 =
        sqlx::query_scalar("SELECT last_seq FROM projection_checkpoint WHERE name = $1")
            .bind(name)
            .fetch_one(pool)
            .await?;
    Ok(u64::try_from(last).unwrap_or(0))
}

/// Applies `rows` and moves the checkpoint from `expected` to `rows.last_seq`, all in one
/// transaction. The checkpoint row is locked first: a second projector applying the same
/// range finds the checkpoint moved and gets [`ApplyError::LostOwnership`] instead of writing.
/// `notify_channel` (if any) is told the new checkpoint when the transaction commits.
pub async fn apply(
    pool: &PgPool,
    name: &str,
    expected: u64,
    rows: &Rows,
    notify_channel: Option<&str>,
) -> Result<(), ApplyError> {
    let mut tx = pool.begin().await?;
    let found: i64 =
        sqlx::query_scalar("SELECT last_seq FROM projection_checkpoint WHERE name = $1 FOR UPDATE")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
    let found = u64::try_from(found).unwrap_or(0);
    if found != expected {
        return Err(ApplyError::LostOwnership { expected, found });
    }
    write_rows(&mut tx, rows).await?;
    sqlx::query("UPDATE projection_checkpoint SET last_seq = $2 WHERE name = $1")
        .bind(name)
        .bind(to_i64(rows.last_seq))
        .execute(&mut *tx)
        .await?;
    if let Some(channel) = notify_channel {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(rows.last_seq.to_string())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Inserts the entries and upserts the accounts with one `UNNEST` statement each. Both are
/// idempotent: entries by `(account_id, version)`, accounts only moving forward in version.
pub async fn write_rows(
    tx: &mut Transaction<'_, Postgres>,
    rows: &Rows,
) -> Result<(), sqlx::Error> {
    if !rows.entries.is_empty() {
        let e = &rows.entries;
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
        .bind(e.iter().map(|x| x.account_id.to_string()).collect::<Vec<_>>())
        .bind(e.iter().map(|x| to_i64(x.version)).collect::<Vec<_>>())
        .bind(e.iter().map(|x| to_i64(x.seq)).collect::<Vec<_>>())
        .bind(e.iter().map(|x| x.event_id).collect::<Vec<_>>())
        .bind(e.iter().map(|x| x.event_type).collect::<Vec<_>>())
        .bind(e.iter().map(|x| x.entry_type).collect::<Vec<_>>())
        .bind(e.iter().map(|x| x.amount).collect::<Vec<_>>())
        .bind(e.iter().map(|x| x.balance_after).collect::<Vec<_>>())
        .bind(e.iter().map(|x| x.held_after).collect::<Vec<_>>())
        .bind(
            e.iter()
                .map(|x| x.counterparty_account_id.as_ref().map(ToString::to_string))
                .collect::<Vec<_>>(),
        )
        .bind(e.iter().map(|x| x.transfer_id).collect::<Vec<_>>())
        .bind(e.iter().map(|x| x.job_id).collect::<Vec<_>>())
        .bind(e.iter().map(|x| x.reference.clone()).collect::<Vec<_>>())
        .bind(
            e.iter()
                .map(|x| x.metadata.as_ref().map(ToString::to_string))
                .collect::<Vec<_>>(),
        )
        .bind(e.iter().map(|x| x.occurred_at).collect::<Vec<_>>())
        .bind(e.iter().map(|x| x.order_id).collect::<Vec<_>>())
        .bind(e.iter().map(|x| x.hold_id).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    if !rows.batches.is_empty() {
        let b = &rows.batches;
        sqlx::query(
            "INSERT INTO batches (batch_id, owner_id, total, submitted_at, updated_at)
             SELECT id, o, t, s, s FROM UNNEST($1::uuid[], $2::text[], $3::int4[], $4::timestamptz[])
                 AS u(id, o, t, s)
             ON CONFLICT (batch_id) DO NOTHING",
        )
        .bind(b.iter().map(|x| x.batch_id).collect::<Vec<_>>())
        .bind(b.iter().map(|x| x.owner_id.clone()).collect::<Vec<_>>())
        .bind(b.iter().map(|x| x.total).collect::<Vec<_>>())
        .bind(b.iter().map(|x| x.submitted_at).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    if !rows.queued_jobs.is_empty() {
        let j = &rows.queued_jobs;
        sqlx::query(
            "INSERT INTO jobs (job_id, kind, status, owner_id, account_id, batch_id, submitted_at)
             SELECT id, 'balance_set', 'queued', o, a, b, s
             FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::timestamptz[])
                 AS u(id, o, a, b, s)
             ON CONFLICT (job_id) DO NOTHING",
        )
        .bind(j.iter().map(|x| x.job_id).collect::<Vec<_>>())
        .bind(j.iter().map(|x| x.owner_id.clone()).collect::<Vec<_>>())
        .bind(j.iter().map(|x| x.account_id.clone()).collect::<Vec<_>>())
        .bind(j.iter().map(|x| x.batch_id).collect::<Vec<_>>())
        .bind(j.iter().map(|x| x.submitted_at).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    if !rows.rejected_jobs.is_empty() {
        let j = &rows.rejected_jobs;
        sqlx::query(
            "UPDATE jobs SET status = 'rejected', error_code = u.code,
                 error_detail = 'the batch item was not applied: ' || u.code, completed_at = u.at
             FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[]) AS u(id, code, at)
             WHERE jobs.job_id = u.id",
        )
        .bind(j.iter().map(|x| x.job_id).collect::<Vec<_>>())
        .bind(j.iter().map(|x| x.code.clone()).collect::<Vec<_>>())
        .bind(j.iter().map(|x| x.at).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    if !rows.failed_jobs.is_empty() {
        let f = &rows.failed_jobs;
        sqlx::query(
            "INSERT INTO jobs (job_id, kind, status, owner_id, error_code, error_detail, seq,
                 submitted_at, completed_at)
             SELECT id, k, 'failed', '', c, d, s, at, at
             FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::timestamptz[])
                 AS u(id, k, c, d, s, at)
             ON CONFLICT (job_id) DO UPDATE SET status = 'failed', error_code = EXCLUDED.error_code,
                 error_detail = EXCLUDED.error_detail, completed_at = EXCLUDED.completed_at",
        )
        .bind(f.iter().map(|(x, _)| x.failed_job_id).collect::<Vec<_>>())
        .bind(f.iter().map(|(x, _)| x.executor.clone()).collect::<Vec<_>>())
        .bind(f.iter().map(|(x, _)| x.code.clone()).collect::<Vec<_>>())
        .bind(f.iter().map(|(x, _)| x.detail.clone()).collect::<Vec<_>>())
        .bind(f.iter().map(|(x, _)| to_i64(x.seq)).collect::<Vec<_>>())
        .bind(f.iter().map(|(_, at)| *at).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    if !rows.batch_progress.is_empty() {
        let p = &rows.batch_progress;
        sqlx::query(
            "UPDATE batches SET completed = completed + u.a, rejected = rejected + u.r,
                 updated_at = greatest(updated_at, u.at)
             FROM UNNEST($1::uuid[], $2::int4[], $3::int4[], $4::timestamptz[]) AS u(id, a, r, at)
             WHERE batches.batch_id = u.id",
        )
        .bind(p.iter().map(|x| x.0).collect::<Vec<_>>())
        .bind(p.iter().map(|x| x.1).collect::<Vec<_>>())
        .bind(p.iter().map(|x| x.2).collect::<Vec<_>>())
        .bind(p.iter().map(|x| x.3).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    if !rows.holds.is_empty() {
        let h = &rows.holds;
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
        .bind(h.iter().map(|x| x.hold_id).collect::<Vec<_>>())
        .bind(
            h.iter()
                .map(|x| x.state.account_id.to_string())
                .collect::<Vec<_>>(),
        )
        .bind(
            h.iter()
                .map(|x| x.state.amount.minor_units())
                .collect::<Vec<_>>(),
        )
        .bind(h.iter().map(|x| x.state.captured).collect::<Vec<_>>())
        .bind(h.iter().map(|x| hold_status(&x.state)).collect::<Vec<_>>())
        .bind(
            h.iter()
                .map(|x| x.state.expires_at.map(crate::apply::microseconds))
                .collect::<Vec<_>>(),
        )
        .bind(
            h.iter()
                .map(|x| to_i64(x.state.version))
                .collect::<Vec<_>>(),
        )
        .bind(
            h.iter()
                .map(|x| x.created_at.unwrap_or(x.updated_at))
                .collect::<Vec<_>>(),
        )
        .bind(h.iter().map(|x| x.updated_at).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    if !rows.orders.is_empty() {
        let o = &rows.orders;
        sqlx::query(
            "INSERT INTO orders (order_id, owner_id, account_id, amount, currency, description,
                 status, reason, job_id, version, created_at, updated_at)
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::int8[], $5::text[],
                 $6::text[], $7::text[], $8::text[], $9::uuid[], $10::int8[],
                 $11::timestamptz[], $12::timestamptz[])
             ON CONFLICT (order_id) DO UPDATE SET
                 status = EXCLUDED.status, reason = EXCLUDED.reason,
                 version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
             WHERE orders.version < EXCLUDED.version",
        )
        .bind(o.iter().map(|x| x.order_id).collect::<Vec<_>>())
        .bind(
            o.iter()
                .map(|x| x.state.owner_id.to_string())
                .collect::<Vec<_>>(),
        )
        .bind(
            o.iter()
                .map(|x| x.state.account_id.to_string())
                .collect::<Vec<_>>(),
        )
        .bind(
            o.iter()
                .map(|x| x.state.amount.minor_units())
                .collect::<Vec<_>>(),
        )
        .bind(
            o.iter()
                .map(|x| x.state.currency.map(|c| c.to_string()).unwrap_or_default())
                .collect::<Vec<_>>(),
        )
        .bind(
            o.iter()
                .map(|x| x.state.description.clone())
                .collect::<Vec<_>>(),
        )
        .bind(o.iter().map(|x| word(&x.state.status)).collect::<Vec<_>>())
        .bind(
            o.iter()
                .map(|x| x.state.reason.map(|r| r.code().to_owned()))
                .collect::<Vec<_>>(),
        )
        .bind(o.iter().map(|x| x.job_id).collect::<Vec<_>>())
        .bind(
            o.iter()
                .map(|x| to_i64(x.state.version))
                .collect::<Vec<_>>(),
        )
        .bind(
            o.iter()
                .map(|x| x.created_at.unwrap_or(x.updated_at))
                .collect::<Vec<_>>(),
        )
        .bind(o.iter().map(|x| x.updated_at).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    if !rows.accounts.is_empty() {
        let a = &rows.accounts;
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
        .bind(
            a.iter()
                .map(|x| x.account_id.to_string())
                .collect::<Vec<_>>(),
        )
        .bind(
            a.iter()
                .map(|x| x.state.owner_id.to_string())
                .collect::<Vec<_>>(),
        )
        .bind(
            a.iter()
                .map(|x| x.state.currency.to_string())
                .collect::<Vec<_>>(),
        )
        .bind(a.iter().map(|x| x.state.balance).collect::<Vec<_>>())
        .bind(a.iter().map(|x| x.state.held).collect::<Vec<_>>())
        .bind(
            a.iter()
                .map(|x| x.state.overdraft_limit)
                .collect::<Vec<_>>(),
        )
        .bind(
            a.iter()
                .map(|x| to_i64(x.state.version))
                .collect::<Vec<_>>(),
        )
        .bind(a.iter().map(|x| status_word(&x.state)).collect::<Vec<_>>())
        .bind(a.iter().map(|x| to_i64(x.last_seq)).collect::<Vec<_>>())
        .bind(
            a.iter()
                .map(|x| x.opened_at.unwrap_or(x.updated_at))
                .collect::<Vec<_>>(),
        )
        .bind(a.iter().map(|x| x.updated_at).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// `expired` for holds the system voided at expiry, else the status word.
fn hold_status(state: &events::HoldState) -> String {
    if state.expired {
        "expired".to_owned()
    } else {
        word(&state.status)
    }
}

fn status_word(state: &events::AccountState) -> String {
    word(&state.status)
}

/// A unit enum's snake_case name, as serde writes it in the journal.
fn word(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Stream sequences and versions fit `bigint` for the lifetime of any ledger (2^63).
pub fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Opens a connection outside the pool, for holding the projection's advisory lock: the lock
/// lives as long as this connection, and Postgres releases it when the connection closes or
/// dies.
pub async fn lock_connection(database_url: &str) -> Result<PgConnection, sqlx::Error> {
    PgConnection::connect_with(
        &PgConnectOptions::from_str(database_url)?.application_name("tally-lock"),
    )
    .await
}

/// Tries to take the projection's lock on `conn` (true: taken; it is held until `conn` closes).
pub async fn try_lock(conn: &mut PgConnection, name: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext('tally.projector.' || $1))")
        .bind(name)
        .fetch_one(conn)
        .await
}
