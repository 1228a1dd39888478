//! Schemas and bookkeeping: the migrations, the checkpoint and how its moves are announced,
//! the projection's advisory lock, and the probes that ask whether the read models are there.

use crate::rows::to_u64;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection, FromRow, PgConnection, PgPool};
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

/// The name in `pg_stat_activity` of a projector's lock connection: the active projector's
/// holds the lock, a standby's keeps asking for it.
pub const LOCK_APPLICATION_NAME: &str = "tally-lock";

/// The projection's advisory-lock key, as SQL over the projection's name (`$1`): spelled once,
/// so that taking the lock and finding who holds it agree.
const LOCK_KEY: &str = "hashtext('tally.projector.' || $1)::bigint";

/// Opens a connection outside the pool, for holding the projection's advisory lock: the lock
/// lives as long as this connection, and Postgres releases it when the connection closes or
/// dies.
pub async fn lock_connection(database_url: &str) -> Result<PgConnection, sqlx::Error> {
    PgConnection::connect_with(
        &PgConnectOptions::from_str(database_url)?.application_name(LOCK_APPLICATION_NAME),
    )
    .await
}

/// Tries to take the projection's lock on `conn` (true: taken; it is held until `conn` closes).
pub async fn try_lock(conn: &mut PgConnection, name: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT pg_try_advisory_lock({LOCK_KEY})"
    )))
    .bind(name)
    .fetch_one(conn)
    .await
}

/// A PostgreSQL session, as `pg_stat_activity` shows it. Beyond its pid, a session of another
/// role shows nothing (an empty name, no address or start) unless the reader may see every session's
/// statistics (a superuser, or a member of `pg_read_all_stats`).
#[derive(Debug, Clone, FromRow)]
pub struct Session {
    pub pid: i32,
    pub application_name: String,
    pub client_addr: Option<String>,
    pub backend_start: Option<DateTime<Utc>>,
}

/// Who runs the projection `name` on this database: the session holding its advisory lock
/// (the active projector), and how many standbys wait for it.
#[derive(Debug, Clone)]
pub struct ProjectorSessions {
    pub active: Option<Session>,
    /// Projector lock connections that do not hold the lock: standbys poll with
    /// `pg_try_advisory_lock`, so they are found by name rather than as waiters in `pg_locks`
    /// (sessions queued in `pg_advisory_lock` for the key count too).
    pub standby_count: i64,
}

/// The sessions of the projection `name`'s lock: its holder from `pg_locks` (an advisory lock
/// on one `bigint` key is listed with the key's high half as `classid`, its low half as
/// `objid` and `objsubid` 1), and the other lock connections on this database.
pub async fn projector_sessions(
    pool: &PgPool,
    name: &str,
) -> Result<ProjectorSessions, sqlx::Error> {
    let on_key = format!(
        "l.locktype = 'advisory' AND l.objsubid = 1 \
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND l.classid = ((({LOCK_KEY}) >> 32) & 4294967295)::oid \
         AND l.objid = (({LOCK_KEY}) & 4294967295)::oid"
    );
    let active: Option<Session> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT a.pid, COALESCE(a.application_name, '') AS application_name, \
                host(a.client_addr) AS client_addr, a.backend_start \
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.granted AND {on_key} LIMIT 1"
    )))
    .bind(name)
    .fetch_optional(pool)
    .await?;
    let standby_count: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT count(*) FROM pg_stat_activity a \
         WHERE a.datname = current_database() AND a.pid IS DISTINCT FROM $2 \
           AND (a.application_name = $3 \
                OR a.pid IN (SELECT l.pid FROM pg_locks l WHERE NOT l.granted AND {on_key}))"
    )))
    .bind(name)
    .bind(active.as_ref().map(|s| s.pid))
    .bind(LOCK_APPLICATION_NAME)
    .fetch_one(pool)
    .await?;
    Ok(ProjectorSessions {
        active,
        standby_count,
    })
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
