//! Connecting to the read models: one function for every service, so the limits live here.

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

/// Longest wait for a free connection. A pool that stays busy this long is saturated: a query
/// is better answered with an error the client retries (the API's request limit is 10 s), and
/// the projector retries its batch from the checkpoint; waiting longer only piles work up.
pub const ACQUIRE_TIMEOUT_MS: u64 = 3_000;

/// Fewest connections a pool gets whatever it is asked for: a pool of 0 could never serve
/// anything.
pub const CONNECTIONS_MIN: u32 = 1;

/// Connection options for `database_url` with `search_path` set to `schema`, so that the same
/// unqualified SQL reads the live schema or a rebuild's fresh one. `application_name` shows
/// in `pg_stat_activity` which service holds a connection.
pub fn connect_options(
    database_url: &str,
    schema: &str,
    application_name: &str,
) -> Result<PgConnectOptions, sqlx::Error> {
    Ok(PgConnectOptions::from_str(database_url)?
        .application_name(application_name)
        .options([("search_path", schema)]))
}

/// A pool of at most `connections_max` connections that see `schema`. Each service sizes its
/// own pool (the projector's `PROJECTOR_POOL_SIZE`, the query API's `QUERY_POOL_SIZE`); the
/// wait for a connection is [`ACQUIRE_TIMEOUT_MS`] for all.
pub async fn connect(
    database_url: &str,
    schema: &str,
    application_name: &str,
    connections_max: u32,
) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(connections_max.max(CONNECTIONS_MIN))
        .acquire_timeout(Duration::from_millis(ACQUIRE_TIMEOUT_MS))
        .connect_with(connect_options(database_url, schema, application_name)?)
        .await
}

/// Where the read models are: the database and the schema. Flattened into the configuration
/// of every binary that writes or reads them, so that the flags, variables and defaults are
/// spelled once.
#[derive(Debug, Clone, clap::Args)]
pub struct ReadModelArgs {
    /// PostgreSQL holding the read models.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/tally"
    )]
    pub database_url: String,

    /// Schema of the read models (the projector writes it, the query API reads it).
    #[arg(long, env = "READ_MODEL_SCHEMA", default_value = "ledger")]
    pub schema: String,
}

/// Like [`connect`], but connecting on first use: for a service whose start-up must not wait
/// for Postgres (the command API, which asks the read models only to find a transfer).
pub fn connect_lazy(
    database_url: &str,
    schema: &str,
    application_name: &str,
    connections_max: u32,
) -> Result<PgPool, sqlx::Error> {
    Ok(PgPoolOptions::new()
        .max_connections(connections_max.max(CONNECTIONS_MIN))
        .acquire_timeout(Duration::from_millis(ACQUIRE_TIMEOUT_MS))
        .connect_lazy_with(connect_options(database_url, schema, application_name)?))
}
