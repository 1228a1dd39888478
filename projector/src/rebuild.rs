//! `projector rebuild`: replays the whole journal into a fresh schema at full speed, catches
//! up with the live tail, and swaps the new schema in atomically while queries keep running.

use crate::apply;
use anyhow::Context;
use events::Envelope;
use indicatif::{ProgressBar, ProgressStyle};
use ledger_nats::direct;
use read_model::{Rows, rebuild};
use std::time::Instant;

/// The rebuild's name in Postgres's `pg_stat_activity`.
const APPLICATION_NAME: &str = "tally";

/// Connections of the fresh schema's pool: the replay writes from one task, and the swap
/// holds a second while it runs.
const POOL_SIZE: u32 = 2;

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
    let fresh = rebuild::schema_beside(live_schema, "rebuild");
    let pool = read_model::connect(database_url, &fresh, APPLICATION_NAME, POOL_SIZE).await?;
    read_model::migrate(&pool, &fresh)
        .await
        .context("creating the fresh schema")?;
    let indexes = rebuild::drop_secondary_indexes(&pool, &fresh).await?;
    let target = ledger_nats::stream::stream_last_seq(nats, stream).await?;
    let bar = progress_bar(target, show_progress);
    let name = rebuild::REBUILD_CHECKPOINT;
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
    rebuild::create_indexes(&pool, &indexes).await?;
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
    let mut swap = rebuild::Swap::begin(&pool, live_schema).await?;
    // The tail that arrived while the lock was being taken, inside the swap.
    loop {
        let rows = read_rows(nats, stream, checkpoint + 1, REPLAY_TX_LEN).await?;
        if rows.is_empty() {
            break;
        }
        swap.write(&rows).await?;
        checkpoint = rows.last_seq;
    }
    swap.commit(&fresh, checkpoint)
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
            apply::push(&mut rows, *seq, envelope);
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
            apply::push(&mut rows, message.seq, &envelope);
            next += 1;
        }
        if page.len() < direct::RANGE_LEN_MAX {
            break;
        }
        next = last_seq + 1;
    }
    Ok(rows)
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
