//! The SQL of `projector rebuild`: a fresh schema to replay into, its indexes (and the
//! primary keys of the tables loaded with `COPY`) taken off during the load and put back after, and the swap that puts it in the live schema's
//! place in one transaction while queries keep running.

use crate::rows::{Rows, to_i64};
use crate::schema::{PROJECTION, quote};
use crate::{load, write};
use sqlx::{AssertSqlSafe, PgPool, Postgres, Transaction};

/// The checkpoint a rebuild keeps in its fresh schema while replaying (the live name,
/// [`PROJECTION`], takes its place at the swap).
pub const REBUILD_CHECKPOINT: &str = "rebuild";

/// A new schema's name beside `live` (`<live>_rebuild_<µs>`, `<live>_retired_<µs>`): unique
/// per run, and recognisable as the live schema's in a listing.
pub fn schema_beside(live: &str, role: &str) -> String {
    format!("{live}_{role}_{}", chrono::Utc::now().timestamp_micros())
}

/// Memory each index build may sort in: PostgreSQL's default (64 MB) spills the sort of a
/// million history entries to disk; a rebuild builds a few indexes at a time, once.
const INDEX_BUILD_MEMORY: &str = "256MB";

/// Drops the schema's secondary indexes, and the primary keys of the tables loaded with
/// `COPY` ([`load::COPIED_TABLES`]), and returns the statements that recreate them: loading
/// unindexed tables and indexing them once is several times faster than indexed inserts.
pub async fn drop_indexes(pool: &PgPool, schema: &str) -> Result<Vec<String>, sqlx::Error> {
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i
         JOIN pg_class c ON c.relname = i.indexname
         JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = i.schemaname
         JOIN pg_index x ON x.indexrelid = c.oid
         WHERE i.schemaname = $1 AND NOT x.indisprimary AND NOT x.indisunique",
    )
    .bind(schema)
    .fetch_all(pool)
    .await?;
    let keys: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT t.relname::text, k.conname::text, pg_get_constraintdef(k.oid)
         FROM pg_constraint k
         JOIN pg_class t ON t.oid = k.conrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace
         WHERE n.nspname = $1 AND k.contype = 'p' AND t.relname = ANY($2)",
    )
    .bind(schema)
    .bind(load::COPIED_TABLES)
    .fetch_all(pool)
    .await?;
    let schema = quote(schema);
    let mut drops = Vec::new();
    let mut creates = Vec::new();
    for (table, key, definition) in keys {
        let table = format!("{schema}.{}", quote(&table));
        let key = quote(&key);
        drops.push(format!("ALTER TABLE {table} DROP CONSTRAINT {key}"));
        creates.push(format!(
            "ALTER TABLE {table} ADD CONSTRAINT {key} {definition}"
        ));
    }
    for (name, definition) in indexes {
        drops.push(format!("DROP INDEX {schema}.{}", quote(&name)));
        creates.push(definition);
    }
    for drop in drops {
        sqlx::query(AssertSqlSafe(drop)).execute(pool).await?;
    }
    Ok(creates)
}

/// Runs one of the statements [`drop_indexes`] returned, on a connection of its own (builds
/// of several indexes may run at once).
pub async fn create_index(pool: &PgPool, definition: &str) -> Result<(), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    sqlx::query(AssertSqlSafe(format!(
        "SET maintenance_work_mem = '{INDEX_BUILD_MEMORY}'"
    )))
    .execute(&mut *conn)
    .await?;
    let built = sqlx::query(AssertSqlSafe(definition.to_owned()))
        .execute(&mut *conn)
        .await
        .map(drop);
    sqlx::query("RESET maintenance_work_mem")
        .execute(&mut *conn)
        .await?;
    built
}

/// The swap in progress: one transaction on a connection that sees the fresh schema, holding
/// the live checkpoint's row lock so that the live projector cannot commit until it ends.
#[derive(Debug)]
pub struct Swap {
    tx: Transaction<'static, Postgres>,
    live_schema: String,
    live_exists: bool,
}

impl Swap {
    /// Begins the swap of `live_schema`: takes the live checkpoint's row lock (if there is a
    /// live schema at all). `pool` must see the fresh schema.
    pub async fn begin(pool: &PgPool, live_schema: &str) -> Result<Self, sqlx::Error> {
        let mut tx = pool.begin().await?;
        let live_exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
                .bind(live_schema)
                .fetch_one(&mut *tx)
                .await?;
        if live_exists {
            sqlx::query(AssertSqlSafe(format!(
                "SELECT last_seq FROM {}.projection_checkpoint WHERE name = $1 FOR UPDATE",
                quote(live_schema)
            )))
            .bind(PROJECTION)
            .fetch_optional(&mut *tx)
            .await?;
        }
        Ok(Self {
            tx,
            live_schema: live_schema.to_owned(),
            live_exists,
        })
    }

    /// Writes the tail that arrived while the lock was being taken, inside the swap.
    pub async fn write(&mut self, rows: &Rows) -> Result<(), sqlx::Error> {
        write::write_rows(&mut self.tx, rows).await
    }

    /// Sets the live checkpoint to `checkpoint`, renames `fresh_schema` to the live name (the
    /// old live schema is renamed aside and dropped) and commits: queries see the old read
    /// model or the new one, never a mix.
    pub async fn commit(mut self, fresh_schema: &str, checkpoint: u64) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM projection_checkpoint WHERE name = $1")
            .bind(REBUILD_CHECKPOINT)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(
            "INSERT INTO projection_checkpoint (name, last_seq) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET last_seq = EXCLUDED.last_seq",
        )
        .bind(PROJECTION)
        .bind(to_i64(checkpoint))
        .execute(&mut *self.tx)
        .await?;
        let live = quote(&self.live_schema);
        let mut statements = Vec::new();
        if self.live_exists {
            let retired = quote(&schema_beside(&self.live_schema, "retired"));
            statements.push(format!("ALTER SCHEMA {live} RENAME TO {retired}"));
            statements.push(format!(
                "ALTER SCHEMA {} RENAME TO {live}",
                quote(fresh_schema)
            ));
            statements.push(format!("DROP SCHEMA {retired} CASCADE"));
        } else {
            statements.push(format!(
                "ALTER SCHEMA {} RENAME TO {live}",
                quote(fresh_schema)
            ));
        }
        for statement in statements {
            sqlx::query(AssertSqlSafe(statement))
                .execute(&mut *self.tx)
                .await?;
        }
        self.tx.commit().await
    }
}
