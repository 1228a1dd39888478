//! Schemas and bookkeeping: the migrations, the checkpoint and how its moves are announced,
//! the projection's advisory lock, and the probes that ask whether the read models are there.

use crate::rows::to_u64;
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};
use std::str::FromStr;

/// The live projection's name in `projection_checkpoint` (and its advisory-lock key).
pub const PROJECTION: &str = "read_model";

/// The migrations that build a read-model schema (unqualified names: the connection's
/// `search_path` picks the schema).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Postgres's "undefined_table": the read models of a schema do not exist yet.
const UNDEFINED_TABLE: &str = "42P01";

/// The channel on which the projector announces each new checkpoint of `schema`, and on which
/// the query API listens for it.
pub fn notify_channel(schema: &str) -> String {
    format!("{schema}_checkpoint")
}

/// Double-quotes an identifier.
pub fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Creates `schema` if needed and brings it to the latest migration (`pool` must see it).
pub async fn migrate(pool: &PgPool, schema: &str) -> Result<(), sqlx::migrate::MigrateError> {
    sqlx::query(AssertSqlSafe(format!(
        "CREATE SCHEMA IF NOT EXISTS {}",
        quote(schema)
    )))
    .execute(pool)
    .await?;
    MIGRATOR.run(pool).await
}

/// The checkpoint `name`, creating it at 0 (the projector's view: it owns the row).
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
    Ok(to_u64(last))
}

/// The live projection's checkpoint as a reader sees it: 0 before the projector's first batch
/// or before it has created the schema (a reader never writes).
pub async fn live_checkpoint(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let last: Option<i64> =
        sqlx::query_scalar("SELECT last_seq FROM projection_checkpoint WHERE name = $1")
            .bind(PROJECTION)
            .fetch_optional(pool)
            .await
            .or_else(|e| match &e {
                sqlx::Error::Database(db) if db.code().as_deref() == Some(UNDEFINED_TABLE) => {
                    Ok(None)
                }
                _ => Err(e),
            })?;
    Ok(last.map(to_u64).unwrap_or(0))
}

/// Whether the pool's schema holds the read models (the query API's readiness).
pub async fn read_models_exist(pool: &PgPool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE tablename = 'projection_checkpoint'
                        AND schemaname = current_schema())",
    )
    .fetch_one(pool)
    .await
}

/// One round trip: Postgres answers (the projector's readiness).
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(pool).await.map(drop)
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

/// Bytes the read models of `schema` occupy in PostgreSQL: every table with its indexes and
/// TOAST, as `pg_total_relation_size` counts them (whole pages, so a figure, not an exact
/// row size).
pub async fn bytes_on_disk(pool: &PgPool, schema: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::bigint \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relkind = 'r'",
    )
    .bind(schema)
    .fetch_one(pool)
    .await
}
