//! The bulk load of `projector rebuild`: history entries streamed into the fresh schema's
//! `account_entries` with binary `COPY`, its keys and indexes built once the load is over.
//!
//! Nothing reads the fresh schema while it loads, and a rebuild that fails leaves it behind
//! unused, so the load needs neither conflict handling nor a transaction per batch: each
//! writer connection runs one `COPY` for the whole load, and the rebuild's checkpoint moves
//! once, after every `COPY` has committed, with the rows of the other tables
//! ([`crate::write::apply`]).

use crate::rows::{Entry, to_i64};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgCopyIn, PgPoolCopyExt};
use sqlx::{PgPool, Postgres};
use uuid::Uuid;

/// The tables loaded with `COPY`: their primary keys are dropped with the secondary indexes
/// for the load (see [`crate::rebuild::drop_indexes`]) and built after it.
pub const COPIED_TABLES: &[&str] = &["account_entries"];

/// The columns of `account_entries` in the order [`encode_entries`] writes them.
const ENTRIES_COPY: &str = "COPY account_entries (account_id, version, seq, event_id, event_type,
    entry_type, amount, balance_after, held_after, counterparty_account_id, transfer_id,
    job_id, order_id, hold_id, reference, metadata, occurred_at) FROM STDIN (FORMAT binary)";

/// Columns per tuple of [`ENTRIES_COPY`].
const ENTRY_FIELDS: i16 = 17;

/// The binary `COPY` signature, flags (none) and header extension length (none).
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// The binary `COPY` end marker: a tuple of −1 fields.
const TRAILER: &[u8] = &[0xff, 0xff];

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 00:00 UTC), where binary
/// `timestamptz` values count from.
const POSTGRES_EPOCH_US: i64 = 946_684_800_000_000;

/// Version byte of binary `jsonb` (the JSON text follows).
const JSONB_VERSION: u8 = 1;

/// Appends `entries` to `out` as binary `COPY` tuples of [`ENTRIES_COPY`] (no header: a
/// writer sends that once, see [`EntryCopy`]). Pure, so that pages encode in parallel.
pub fn encode_entries(entries: &[Entry], out: &mut Vec<u8>) {
    for e in entries {
        out.extend_from_slice(&ENTRY_FIELDS.to_be_bytes());
        text(out, Some(e.account_id.as_str()));
        int8(out, to_i64(e.version));
        int8(out, to_i64(e.seq));
        uuid(out, Some(e.event_id));
        text(out, Some(e.event_type));
        text(out, Some(e.entry_type));
        int8(out, e.amount);
        int8(out, e.balance_after);
        int8(out, e.held_after);
        text(out, e.counterparty_account_id.as_ref().map(|a| a.as_str()));
        uuid(out, e.transfer_id);
        uuid(out, Some(e.job_id));
        uuid(out, e.order_id);
        uuid(out, e.hold_id);
        text(out, e.reference.as_deref());
        jsonb(out, e.metadata.as_ref());
        int8(out, e.occurred_at.timestamp_micros() - POSTGRES_EPOCH_US);
    }
}

/// A field's length prefix; −1 is NULL.
fn length(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&i32::try_from(len).unwrap_or(i32::MAX).to_be_bytes());
}

fn null(out: &mut Vec<u8>) {
    out.extend_from_slice(&(-1_i32).to_be_bytes());
}

fn int8(out: &mut Vec<u8>, value: i64) {
    length(out, 8);
    out.extend_from_slice(&value.to_be_bytes());
}

fn text(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(s) => {
            length(out, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        None => null(out),
    }
}

fn uuid(out: &mut Vec<u8>, value: Option<Uuid>) {
    match value {
        Some(u) => {
            length(out, 16);
            out.extend_from_slice(u.as_bytes());
        }
        None => null(out),
    }
}

fn jsonb(out: &mut Vec<u8>, value: Option<&serde_json::Value>) {
    let Some(value) = value else {
        return null(out);
    };
    let at = out.len();
    length(out, 0);
    out.push(JSONB_VERSION);
    // Writing a `Value` into a `Vec` cannot fail (its keys are strings).
    let _ = serde_json::to_writer(&mut *out, value);
    let len = out.len() - at - 4;
    out[at..at + 4].copy_from_slice(&i32::try_from(len).unwrap_or(i32::MAX).to_be_bytes());
}

/// One writer's `COPY` into `account_entries`: begun with the binary header, fed tuples from
/// [`encode_entries`], committed by [`EntryCopy::finish`].
pub struct EntryCopy {
    copy: PgCopyIn<PoolConnection<Postgres>>,
}

impl std::fmt::Debug for EntryCopy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntryCopy").finish_non_exhaustive()
    }
}

impl EntryCopy {
    /// Starts a `COPY` on a connection of `pool` (held until [`EntryCopy::finish`]).
    pub async fn begin(pool: &PgPool) -> Result<Self, sqlx::Error> {
        let mut copy = pool.copy_in_raw(ENTRIES_COPY).await?;
        copy.send(HEADER).await?;
        Ok(Self { copy })
    }

    /// Sends tuples encoded by [`encode_entries`].
    pub async fn send(&mut self, tuples: &[u8]) -> Result<(), sqlx::Error> {
        self.copy.send(tuples).await.map(drop)
    }

    /// Ends the `COPY` (committing its rows) and returns how many it stored.
    pub async fn finish(mut self) -> Result<u64, sqlx::Error> {
        self.copy.send(TRAILER).await?;
        self.copy.finish().await
    }
}
