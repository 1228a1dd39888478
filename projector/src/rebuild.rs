//! `projector rebuild`: replays the whole journal into a fresh schema at full speed, catches
//! up with the live tail, and swaps the new schema in atomically while queries keep running.

use crate::apply::Rows;
use crate::read_model::{self, PROJECTION, quote, to_i64};
use anyhow::Context;
use events::Envelope;
use indicatif::{ProgressBar, ProgressStyle};
use ledger_nats::direct;
use sqlx::AssertSqlSafe;
use sqlx::{Connection, PgPool};
use std::time::Instant;

/// Messages applied per transaction while replaying: large, since nothing reads the fresh
/// schema yet and fewer commits mean fewer fsyncs.
const REPLAY_TX_LEN: usize = 20_000;

/// Transactions' worth of messages read ahead of the writes.
const READ_AHEAD: usize = 2;

/// Direct-get pages (of up to 1000 messages) fetched and decoded at once, each in its own
/// task: one page at a time left the replay waiting on round trips, and decoding JSON is
/// the reader's main cost, which parallel tasks spread over the cores.
const PAGES_IN_FLIGHT: usize = 4;

/// What a rebuild did.
#[derive(Debug, Clone, Copy)]
pub struct Report {
    pub events: u64,
    pub seconds: f64,
}

impl Report {
    // A rate for people to read, not money: floating point is fine here.
    #[expect(clippy::float_arithmetic)]
    pub fn events_per_s(&self) -> f64 {
        if self.seconds > 0.0 {
            self.events as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// Rebuilds `live_schema` from the journal and swaps it in. `show_progress` draws a progress
/// bar (events/s, ETA) on stderr.
pub async fn rebuild(
    nats: &async_nats::Client,
    stream: &str,
    database_url: &str,
    live_schema: &str,
    show_progress: bool,
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let fresh = format!(
        "{live_schema}_rebuild_{}",
        chrono::Utc::now().timestamp_micros()
    );
    let pool = read_model::pool(database_url, &fresh, 2).await?;
    read_model::migrate(&pool, &fresh)
        .await
        .context("creating the fresh schema")?;
    let indexes = drop_secondary_indexes(&pool, &fresh).await?;
    let target = ledger_nats::stream::stream_last_seq(nats, stream).await?;
    let bar = progress_bar(target, show_progress);
    let name = "rebuild";
    let mut checkpoint = read_model::checkpoint(&pool, name).await?;
    // Replay to the tail as it was at the start. Reading and decoding run in their own
    // tasks, a couple of transactions ahead of the writes, so that NATS, JSON and Postgres
    // overlap.
    let (pages_tx, mut pages) = tokio::sync::mpsc::channel::<anyhow::Result<Rows>>(READ_AHEAD);
    let reader = tokio::spawn(read_ahead(
        nats.clone(),
        stream.to_owned(),
        checkpoint + 1,
        target,
        pages_tx,
    ));
    while let Some(rows) = pages.recv().await {
        let rows = rows?;
        if rows.is_empty() {
            break;
        }
        read_model::apply(&pool, name, checkpoint, &rows, None).await?;
        bar.set_position(rows.last_seq);
        checkpoint = rows.last_seq;
    }
    reader.await?;
    bar.finish_and_clear();
    for definition in &indexes {
        sqlx::query(AssertSqlSafe(definition.clone()))
            .execute(&pool)
            .await?;
    }
    // Catch up with what arrived meanwhile, then swap under the live checkpoint's row lock
    // so that the live projector cannot commit in between.
    loop {
        let rows = read_rows(nats, stream, checkpoint + 1, REPLAY_TX_LEN).await?;
        if rows.is_empty() {
            break;
        }
        read_model::apply(&pool, name, checkpoint, &rows, None).await?;
        checkpoint = rows.last_seq;
    }
    let mut conn =
        sqlx::PgConnection::connect_with(&read_model::connect_options(database_url, &fresh)?)
            .await?;
    let mut tx = conn.begin().await?;
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
    // The tail that arrived while the lock was being taken, inside the swap.
    loop {
        let rows = read_rows(nats, stream, checkpoint + 1, REPLAY_TX_LEN).await?;
        if rows.is_empty() {
            break;
        }
        read_model::write_rows(&mut tx, &rows).await?;
        checkpoint = rows.last_seq;
    }
    sqlx::query("DELETE FROM projection_checkpoint WHERE name = $1")
        .bind(name)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO projection_checkpoint (name, last_seq) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET last_seq = EXCLUDED.last_seq",
    )
    .bind(PROJECTION)
    .bind(to_i64(checkpoint))
    .execute(&mut *tx)
    .await?;
    if live_exists {
        let retired = format!(
            "{live_schema}_retired_{}",
            chrono::Utc::now().timestamp_micros()
        );
        sqlx::query(AssertSqlSafe(format!(
            "ALTER SCHEMA {} RENAME TO {}",
            quote(live_schema),
            quote(&retired)
        )))
        .execute(&mut *tx)
        .await?;
        sqlx::query(AssertSqlSafe(format!(
            "ALTER SCHEMA {} RENAME TO {}",
            quote(&fresh),
            quote(live_schema)
        )))
        .execute(&mut *tx)
        .await?;
        sqlx::query(AssertSqlSafe(format!(
            "DROP SCHEMA {} CASCADE",
            quote(&retired)
        )))
        .execute(&mut *tx)
        .await?;
    } else {
        sqlx::query(AssertSqlSafe(format!(
            "ALTER SCHEMA {} RENAME TO {}",
            quote(&fresh),
            quote(live_schema)
        )))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit()
        .await
        .context("swapping the rebuilt schema in")?;
    pool.close().await;
    Ok(Report {
        events: checkpoint,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Reads `from_seq ..= to_seq` as pages fetched and decoded [`PAGES_IN_FLIGHT`] at a time,
/// and sends them on as rows of about [`REPLAY_TX_LEN`] messages, in order.
async fn read_ahead(
    nats: async_nats::Client,
    stream: String,
    from_seq: u64,
    to_seq: u64,
    rows_tx: tokio::sync::mpsc::Sender<anyhow::Result<Rows>>,
) {
    use futures::StreamExt;
    let page_len = direct::RANGE_LEN_MAX as u64;
    let starts = (from_seq..=to_seq).step_by(direct::RANGE_LEN_MAX);
    let mut pages = futures::stream::iter(starts)
        .map(|start| {
            let (nats, stream) = (nats.clone(), stream.clone());
            let len = usize::try_from(page_len.min(to_seq + 1 - start)).unwrap_or(1);
            tokio::spawn(async move { read_page(&nats, &stream, start, len).await })
        })
        .buffered(PAGES_IN_FLIGHT);
    let mut rows = Rows::default();
    let mut messages = 0;
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(Ok(page)) => page,
            Ok(Err(e)) => {
                let _ = rows_tx.send(Err(e)).await;
                return;
            }
            Err(e) => {
                let _ = rows_tx.send(Err(e.into())).await;
                return;
            }
        };
        for (seq, envelope) in &page {
            rows.push(*seq, envelope);
        }
        messages += page.len();
        if messages >= REPLAY_TX_LEN {
            messages = 0;
            if rows_tx.send(Ok(std::mem::take(&mut rows))).await.is_err() {
                return;
            }
        }
    }
    if !rows.is_empty() {
        let _ = rows_tx.send(Ok(rows)).await;
    }
}

/// Reads exactly the `len` messages from `from_seq` on (the journal has no gaps: deletes
/// and purges are denied) and decodes them.
async fn read_page(
    nats: &async_nats::Client,
    stream: &str,
    from_seq: u64,
    len: usize,
) -> anyhow::Result<Vec<(u64, Envelope)>> {
    let page = direct::range(nats, stream, from_seq, len).await?;
    anyhow::ensure!(
        page.len() >= len,
        "expected {len} messages from sequence {from_seq}, got {}",
        page.len()
    );
    page.iter()
        .take(len)
        .zip(from_seq..)
        .map(|(message, expected)| {
            anyhow::ensure!(
                message.seq == expected,
                "expected sequence {expected}, got {}",
                message.seq
            );
            let envelope = Envelope::from_json(&message.payload)
                .with_context(|| format!("message {} cannot be decoded", message.seq))?;
            Ok((message.seq, envelope))
        })
        .collect()
}

/// Reads up to `len_max` messages from `from_seq` on and turns them into rows.
pub async fn read_rows(
    nats: &async_nats::Client,
    stream: &str,
    from_seq: u64,
    len_max: usize,
) -> anyhow::Result<Rows> {
    let mut rows = Rows::default();
    let mut next = from_seq;
    while (rows.last_seq.saturating_sub(from_seq) as usize) < len_max {
        let page = direct::range(nats, stream, next, direct::RANGE_LEN_MAX).await?;
        let Some(last) = page.last() else { break };
        let last_seq = last.seq;
        for message in &page {
            anyhow::ensure!(
                message.seq == next,
                "expected sequence {next}, got {}",
                message.seq
            );
            let envelope = Envelope::from_json(&message.payload)
                .with_context(|| format!("message {} cannot be decoded", message.seq))?;
            rows.push(message.seq, &envelope);
            next += 1;
        }
        if page.len() < direct::RANGE_LEN_MAX {
            break;
        }
        next = last_seq + 1;
    }
    Ok(rows)
}

/// Drops the schema's secondary indexes and returns the statements that recreate them:
/// loading unindexed tables and indexing them once is over twice as fast as indexed inserts.
async fn drop_secondary_indexes(pool: &PgPool, schema: &str) -> anyhow::Result<Vec<String>> {
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
    for (name, _) in &indexes {
        sqlx::query(AssertSqlSafe(format!(
            "DROP INDEX {}.{}",
            quote(schema),
            quote(name)
        )))
        .execute(pool)
        .await?;
    }
    Ok(indexes
        .into_iter()
        .map(|(_, definition)| definition)
        .collect())
}

fn progress_bar(total: u64, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} replaying [{bar:40}] {pos}/{len} events  {per_sec}  ETA {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
