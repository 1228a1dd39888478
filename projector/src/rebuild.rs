//! `projector rebuild`: replays the whole journal into a fresh schema at full speed, catches
//! up with the live tail, and swaps the new schema in atomically while queries keep running.

use crate::apply;
use anyhow::Context;
use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use events::Envelope;
use indicatif::{ProgressBar, ProgressStyle};
use ledger_nats::direct;
use read_model::{Rows, load, rebuild};
use std::time::Instant;

/// The rebuild's name in Postgres's `pg_stat_activity`.
const APPLICATION_NAME: &str = "tally";

/// Connections that `COPY` history entries during the load, each its own Postgres backend:
/// two keep both cores busy when the reader is waiting on NATS, more only queue for CPU.
const ENTRY_WRITERS: usize = 2;

/// Connections of the fresh schema's pool: the entry writers, one for the other tables'
/// rows and the checkpoint, and one more so that the index builds after the load run
/// [`INDEX_BUILDS_IN_FLIGHT`] at a time (the swap later holds one).
const POOL_SIZE: u32 = 4;

/// Index builds at once after the load: on two cores a third would only wait for CPU.
const INDEX_BUILDS_IN_FLIGHT: usize = 3;

/// Messages applied per transaction while catching up with the live tail after the load.
const CATCH_UP_TX_LEN: usize = 20_000;

/// Encoded pages queued for each entry writer: enough to ride out a slow `COPY` send
/// without holding much more than a few megabytes per writer.
const WRITER_QUEUE_LEN: usize = 4;

/// Rows other than history entries (accounts, orders, holds, jobs, batches) kept across
/// pages before they are written: each account, order and hold is then written once per
/// this many rows instead of once per page. Bounded so that a journal with millions of
/// accounts replays in bounded memory (a few hundred bytes a row).
const KEPT_ROWS_MAX: usize = 200_000;

/// Messages per page: the unit decoded (and encoded for `COPY`) by one task.
const PAGE_LEN: usize = 1_000;

/// Pages decoded at once, each in its own task: decoding JSON is the load's main cost in
/// this process, and parallel tasks spread it over the cores. Raw pages wait in a queue of
/// the same length behind them.
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
    let indexes = rebuild::drop_indexes(&pool, &fresh).await?;
    let target = ledger_nats::stream::stream_last_seq(nats, stream).await?;
    let bar = progress_bar(target, show_progress);
    let name = rebuild::REBUILD_CHECKPOINT;
    let mut checkpoint = read_model::checkpoint(&pool, name).await?;
    if target > checkpoint {
        checkpoint = load(nats, stream, &pool, checkpoint, target, &bar).await?;
    }
    bar.finish_and_clear();
    create_indexes(&pool, &indexes).await?;
    // Catch up with what arrived meanwhile, then swap under the live checkpoint's row lock
    // so that the live projector cannot commit in between.
    loop {
        let rows = read_rows(nats, stream, checkpoint + 1, CATCH_UP_TX_LEN).await?;
        if rows.is_empty() {
            break;
        }
        read_model::apply(&pool, name, checkpoint, &rows, None).await?;
        checkpoint = rows.last_seq;
    }
    let mut swap = rebuild::Swap::begin(&pool, live_schema).await?;
    // The tail that arrived while the lock was being taken, inside the swap.
    loop {
        let rows = read_rows(nats, stream, checkpoint + 1, CATCH_UP_TX_LEN).await?;
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

/// A page of the journal, decoded: its history entries already encoded for `COPY`, and its
/// other rows.
#[derive(Debug)]
struct Page {
    entries: Vec<u8>,
    rows: Rows,
}

/// The bulk load: replays `checkpoint + 1 ..= target` into the fresh schema and moves the
/// checkpoint `name` there; returns `target`.
///
/// A pipeline: one task reads the journal ([`read_journal`]), [`PAGES_IN_FLIGHT`] tasks
/// decode pages and encode their entries; this task takes
/// them in journal order, hands each page's entries to one of [`ENTRY_WRITERS`] `COPY`
/// connections in turn, and keeps the latest account, order and hold rows (and the jobs'
/// and batches') across pages, writing them when [`KEPT_ROWS_MAX`] is reached and at the
/// end. Entries need no order among themselves (nothing reads the fresh schema yet, and its
/// keys are built after the load); the checkpoint moves only once every `COPY` has
/// committed, with the last of the other rows.
async fn load(
    nats: &async_nats::Client,
    stream: &str,
    pool: &sqlx::PgPool,
    checkpoint: u64,
    target: u64,
    bar: &ProgressBar,
) -> anyhow::Result<u64> {
    use futures::StreamExt;
    let mut writers = tokio::task::JoinSet::new();
    let mut queues = Vec::with_capacity(ENTRY_WRITERS);
    for _ in 0..ENTRY_WRITERS {
        let (queue, pages) = tokio::sync::mpsc::channel::<Vec<u8>>(WRITER_QUEUE_LEN);
        writers.spawn(copy_entries(load::EntryCopy::begin(pool).await?, pages));
        queues.push(queue);
    }
    let (raw_tx, raw) = tokio::sync::mpsc::channel(PAGES_IN_FLIGHT);
    let reader = tokio::spawn(read_journal(
        nats.clone(),
        stream.to_owned(),
        checkpoint + 1,
        target,
        raw_tx,
    ));
    let raw = futures::stream::unfold(raw, |mut raw| async move {
        raw.recv().await.map(|page| (page, raw))
    });
    let mut pages = std::pin::pin!(
        raw.map(|page: anyhow::Result<Vec<(u64, async_nats::Message)>>| {
            tokio::spawn(async move { decode_page(&page?) })
        })
        .buffered(PAGES_IN_FLIGHT)
    );
    let mut kept = Rows::default();
    let mut writer_gone = false;
    for queue in queues.iter().cycle() {
        let Some(page) = pages.next().await else {
            break;
        };
        let page = page??;
        bar.set_position(page.rows.last_seq);
        if queue.send(page.entries).await.is_err() {
            writer_gone = true;
            break;
        }
        kept.absorb(page.rows);
        if kept.len() >= KEPT_ROWS_MAX {
            let last_seq = kept.last_seq;
            read_model::write::write_rows(&mut *pool.acquire().await?, &kept).await?;
            kept = Rows::default();
            kept.saw(last_seq);
        }
    }
    drop(queues);
    reader.abort();
    while let Some(copied) = writers.join_next().await {
        copied??;
    }
    anyhow::ensure!(
        !writer_gone,
        "an entry writer stopped before the load's end"
    );
    anyhow::ensure!(
        kept.last_seq == target,
        "the load ended at sequence {}, expected {target}",
        kept.last_seq
    );
    read_model::apply(pool, rebuild::REBUILD_CHECKPOINT, checkpoint, &kept, None).await?;
    Ok(target)
}

/// One entry writer: sends each page it is given into its `COPY`, and commits it when the
/// pages end.
async fn copy_entries(
    mut copy: load::EntryCopy,
    mut pages: tokio::sync::mpsc::Receiver<Vec<u8>>,
) -> Result<u64, sqlx::Error> {
    while let Some(page) = pages.recv().await {
        copy.send(&page).await?;
    }
    copy.finish().await
}

/// Runs the index builds [`INDEX_BUILDS_IN_FLIGHT`] at a time.
async fn create_indexes(pool: &sqlx::PgPool, definitions: &[String]) -> anyhow::Result<()> {
    use futures::{StreamExt, TryStreamExt};
    futures::stream::iter(definitions)
        .map(|definition| rebuild::create_index(pool, definition))
        .buffer_unordered(INDEX_BUILDS_IN_FLIGHT)
        .try_collect::<()>()
        .await
        .context("building the fresh schema's indexes")
}

/// Reads `from_seq ..= to_seq` with an ordered consumer and sends it on in pages of
/// [`PAGE_LEN`] messages (or the error that stopped it). A consumer rather than direct gets:
/// a direct get's answer carries six headers of its own per message (stream, subject,
/// sequence, time, pending, last sequence) that nats-server builds and this process parses
/// into a map, which the profile of the load showed as the largest cost on both sides; a
/// consumer's message carries the event's own headers, its sequence in the reply subject.
async fn read_journal(
    nats: async_nats::Client,
    stream: String,
    from_seq: u64,
    to_seq: u64,
    pages: tokio::sync::mpsc::Sender<anyhow::Result<Vec<(u64, async_nats::Message)>>>,
) {
    use futures::StreamExt;
    let read = async {
        let consumer = async_nats::jetstream::new(nats)
            .get_stream(&stream)
            .await?
            .create_consumer(OrderedConfig {
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: from_seq,
                },
                ..Default::default()
            })
            .await?;
        let mut messages = consumer.messages().await?;
        let mut page = Vec::with_capacity(PAGE_LEN);
        for expected in from_seq..=to_seq {
            let message = messages
                .next()
                .await
                .context("the consumer ended before the load's end")??;
            // The journal has no gaps (deletes and purges are denied).
            let seq = message
                .info()
                .map_err(|e| anyhow::anyhow!("message metadata: {e}"))?
                .stream_sequence;
            anyhow::ensure!(seq == expected, "expected sequence {expected}, got {seq}");
            page.push((seq, message.message));
            if page.len() == PAGE_LEN || seq == to_seq {
                let full = std::mem::replace(&mut page, Vec::with_capacity(PAGE_LEN));
                if pages.send(Ok(full)).await.is_err() {
                    return Ok(());
                }
            }
        }
        Ok(())
    };
    if let Err(e) = read.await {
        let _ = pages.send(Err(e)).await;
    }
}

/// Decodes a page of messages and turns it into a [`Page`].
fn decode_page(messages: &[(u64, async_nats::Message)]) -> anyhow::Result<Page> {
    let mut rows = Rows::default();
    for (seq, message) in messages {
        let envelope = Envelope::from_json(&message.payload)
            .with_context(|| format!("message {seq} cannot be decoded"))?;
        apply::push(&mut rows, *seq, &envelope);
    }
    let mut entries = Vec::new();
    load::encode_entries(&rows.entries, &mut entries);
    rows.entries = Vec::new();
    Ok(Page { entries, rows })
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
