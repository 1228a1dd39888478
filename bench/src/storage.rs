//! Storage: what one transfer costs on disk — the journal (the nats-server store: files as the
//! filesystem allocates them, after the stream's compression) and the read model (PostgreSQL's
//! tables with their indexes). Measured as the growth across a run of transfers after the
//! accounts are open, so opening them is not counted; once with the journal created
//! uncompressed and once created with S2, each on a stack of its own, so that the two figures
//! come from the same build and the same run.
//!
//! The journal's figure over the run falls in steps: nats-server compresses a message block
//! when it is full and a new one begins, and the block being written stays uncompressed until
//! then. That block (up to 8 MB, some 5,000 transfers) is a fixed cost of the journal, not a
//! cost per transfer, but over a run of 40,000 transfers it is half the journal's growth. So
//! the steady state is reported beside it: the disk bytes per stored byte of the blocks that
//! are final (every block but the one being written), times the stored bytes per transfer.
//!
//! Where the bytes go is reported beside the totals: the journal's headers and bodies
//! (averaged over the run's last messages, as stored before compression) and each read-model
//! table's growth.

use crate::report::Report;
use crate::stack::{Callers, Compression, Journal, STREAM, Stack, Topology, Tuning, open_accounts};
use crate::transfers::FUNDS;
use http_edge::headers::{LEDGER_MIN_SEQ, LEDGER_SEQ};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Concurrent clients: enough to fill the writer's batches as under load (batch size changes
/// the journal's per-message overhead very little, but this keeps the run short).
const CLIENTS: u64 = 32;

/// Journal messages read back to split their size into headers and body.
const SAMPLE_LEN: u64 = 1_000;

/// The scenario's row for one compression.
fn scenario(compression: Compression) -> String {
    format!("storage, journal compression {}", compression.as_str())
}

pub async fn run(report: &mut Report, accounts: usize, transfers: u64) -> anyhow::Result<()> {
    for compression in [Compression::None, Compression::S2] {
        measure(
            report,
            &scenario(compression),
            compression,
            accounts,
            transfers,
        )
        .await?;
    }
    Ok(())
}

async fn measure(
    report: &mut Report,
    name: &str,
    compression: Compression,
    accounts: usize,
    transfers: u64,
) -> anyhow::Result<()> {
    let tuning = Tuning {
        journal_compression: Some(compression),
        ..Tuning::default()
    };
    let stack = Arc::new(Stack::start_with(Topology::Durable, tuning).await?);
    let callers = Arc::new(Callers::mint()?);
    open_accounts(&stack, &callers, "acct-", accounts, FUNDS).await?;
    let before = Sizes::read(&stack).await?;
    let committed = Arc::new(AtomicU64::new(0));
    let last_seq = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        let (stack, callers) = (stack.clone(), callers.clone());
        let (committed, last_seq) = (committed.clone(), last_seq.clone());
        tasks.spawn(async move {
            for n in (client..transfers).step_by(usize::try_from(CLIENTS).unwrap_or(1)) {
                let from = usize::try_from(n).unwrap_or(0) % accounts;
                let to = (from + 1) % accounts;
                let body = json!({
                    "from_account_id": format!("acct-{from}"),
                    "to_account_id": format!("acct-{to}"),
                    "amount": 1 + n % 97,
                    "reference": format!("invoice-{n}"),
                });
                let answer = stack
                    .commands
                    .post("/v1/transfers", &callers.service, body)
                    .await;
                if answer.status.as_u16() == 201 {
                    committed.fetch_add(1, Ordering::Relaxed);
                    let seq = answer
                        .header(LEDGER_SEQ.as_str())
                        .and_then(|v| v.parse().ok());
                    last_seq.fetch_max(seq.unwrap_or(0), Ordering::Relaxed);
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done?;
    }
    let committed = committed.load(Ordering::Relaxed);
    anyhow::ensure!(committed > 0, "no transfer committed");
    // Everything applied before the read model is measured.
    let last_seq = last_seq.load(Ordering::Relaxed);
    let min_seq = last_seq.to_string();
    let seen = stack
        .queries
        .get_with(
            "/v1/accounts/acct-0",
            Some(callers.service.as_str()),
            &[(LEDGER_MIN_SEQ.as_str(), min_seq.as_str())],
        )
        .await;
    anyhow::ensure!(
        seen.status.as_u16() == 200,
        "the read model did not catch up: {}",
        seen.status
    );
    let after = Sizes::read(&stack).await?;
    let per_transfer = |bytes: i64| bytes as f64 / committed as f64;
    let grown = |size: fn(&Sizes) -> i64| per_transfer(size(&after) - size(&before));
    report.add(name, "transfers measured", committed as f64, "");
    report.add(
        name,
        "journal on disk per transfer",
        grown(|s| s.journal_disk),
        "B",
    );
    report.add(
        name,
        "journal messages per transfer",
        grown(|s| s.messages),
        "",
    );
    let stored = grown(|s| s.journal_stored);
    report.add(
        name,
        "journal stored (uncompressed) per transfer",
        stored,
        "B",
    );
    report.add(
        name,
        "read model per transfer",
        grown(Sizes::read_model),
        "B",
    );
    report.add(name, "total on disk per transfer", grown(Sizes::total), "B");
    if let Some(ratio) = after.blocks.final_ratio() {
        let steady = ratio * stored;
        report.add(
            name,
            "journal on disk per transfer, steady state (final blocks)",
            steady,
            "B",
        );
        report.add(
            name,
            "total on disk per transfer, steady state",
            steady + grown(Sizes::read_model),
            "B",
        );
    }
    for (table, bytes) in &after.tables {
        let was = before.tables.get(table).copied().unwrap_or(0);
        // Tables and indexes the transfers did not grow would only lengthen the table.
        if bytes > &was {
            let metric = format!("read model: {table} per transfer");
            report.add(name, &metric, per_transfer(bytes - was), "B");
        }
    }
    let split = MessageSplit::sample(&stack, last_seq).await?;
    report.add(name, "journal message headers (avg)", split.headers, "B");
    report.add(name, "journal message body (avg)", split.body, "B");
    match Arc::try_unwrap(stack) {
        Ok(stack) => stack.stop().await,
        Err(_) => anyhow::bail!("a client still holds the stack"),
    }
}

/// Bytes at one moment.
struct Sizes {
    /// The store's files as allocated on disk.
    journal_disk: i64,
    /// The stream's own count of message bytes (headers and bodies, uncompressed).
    journal_stored: i64,
    messages: i64,
    /// The stream's message blocks: which are final, and their bytes.
    blocks: Blocks,
    /// Each read-model table with its indexes and TOAST (`name`), and each index on its own
    /// (`index name`, already counted in its table).
    tables: BTreeMap<String, i64>,
}

impl Sizes {
    async fn read(stack: &Stack) -> anyhow::Result<Self> {
        let Journal::Single(server) = &stack.nats else {
            anyhow::bail!("the storage scenario measures a single node's store");
        };
        let client = stack.nats.client().await?;
        let mut stream = async_nats::jetstream::new(client)
            .get_stream(STREAM)
            .await?;
        let state = stream.info().await?.state.clone();
        let pool = sqlx::PgPool::connect(&stack.db.url).await?;
        // As `read_model::schema::bytes_on_disk` counts them, table by table (each with its
        // indexes and TOAST), and each index on its own: which index costs what.
        let tables: Vec<(String, i64)> = sqlx::query_as(
            "SELECT c.relname::text, pg_total_relation_size(c.oid)::bigint \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'ledger' AND c.relkind = 'r' \
             UNION ALL \
             SELECT 'index ' || c.relname::text, pg_relation_size(c.oid)::bigint \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'ledger' AND c.relkind = 'i'",
        )
        .fetch_all(&pool)
        .await?;
        pool.close().await;
        Ok(Self {
            journal_disk: allocated(server.store_dir())?,
            journal_stored: i64::try_from(state.bytes)?,
            blocks: Blocks::read(
                &server
                    .store_dir()
                    .join(format!("jetstream/$G/streams/{STREAM}/msgs")),
                i64::try_from(state.bytes)?,
            )?,
            messages: i64::try_from(state.messages)?,
            tables: tables.into_iter().collect(),
        })
    }

    fn read_model(&self) -> i64 {
        self.tables
            .iter()
            .filter(|(name, _)| !name.starts_with("index "))
            .map(|(_, bytes)| bytes)
            .sum()
    }

    fn total(&self) -> i64 {
        self.journal_disk + self.read_model()
    }
}

/// The stream's message blocks (`<n>.blk`, one file each, written in order of `n`).
struct Blocks {
    /// Bytes on disk (allocated) of every block but the last, the one being written: those
    /// are final (compressed, when the stream compresses).
    final_disk: i64,
    /// The stream's own count of message bytes held by those blocks: all of its bytes but
    /// the last block's, which is stored as written (a record per message, uncompressed).
    final_stored: i64,
}

impl Blocks {
    fn read(dir: &Path, stored: i64) -> anyhow::Result<Self> {
        let mut blocks = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(n) = name.to_str().and_then(|n| n.strip_suffix(".blk")) else {
                continue;
            };
            let meta = entry.metadata()?;
            let disk = i64::try_from(meta.blocks().saturating_mul(512))?;
            blocks.push((n.parse::<u64>()?, disk, i64::try_from(meta.len())?));
        }
        blocks.sort_unstable();
        let last_len = blocks.last().map_or(0, |&(_, _, len)| len);
        let finals = &blocks[..blocks.len().saturating_sub(1)];
        Ok(Self {
            final_disk: finals.iter().map(|&(_, disk, _)| disk).sum(),
            final_stored: stored - last_len,
        })
    }

    /// Disk bytes per stored byte of the final blocks (`None` before a block is final).
    fn final_ratio(&self) -> Option<f64> {
        (self.final_disk > 0 && self.final_stored > 0)
            .then(|| self.final_disk as f64 / self.final_stored as f64)
    }
}

/// A journal message's size, split: headers (as the store keeps them, `NATS/1.0` line
/// included) and body, averaged over a sample.
struct MessageSplit {
    headers: f64,
    body: f64,
}

impl MessageSplit {
    /// Averages the `SAMPLE_LEN` messages up to `last_seq`.
    async fn sample(stack: &Stack, last_seq: u64) -> anyhow::Result<Self> {
        let client = stack.nats.client().await?;
        let (mut headers, mut body, mut n) = (0_usize, 0_usize, 0_u32);
        for seq in last_seq.saturating_sub(SAMPLE_LEN - 1).max(1)..=last_seq {
            let reply = client
                .request(
                    format!("$JS.API.STREAM.MSG.GET.{STREAM}"),
                    serde_json::to_vec(&json!({"seq": seq}))?.into(),
                )
                .await?;
            let answer: Value = serde_json::from_slice(&reply.payload)?;
            let message = &answer["message"];
            anyhow::ensure!(message.is_object(), "message {seq}: {answer}");
            headers += base64_len(&message["hdrs"]);
            body += base64_len(&message["data"]);
            n += 1;
        }
        let n = f64::from(n.max(1));
        Ok(Self {
            headers: headers as f64 / n,
            body: body as f64 / n,
        })
    }
}

/// The length of what a base64 string (standard alphabet, padded) decodes to.
fn base64_len(encoded: &Value) -> usize {
    let text = encoded.as_str().unwrap_or_default();
    let padding = text.bytes().rev().take_while(|&b| b == b'=').count();
    (text.len() / 4 * 3).saturating_sub(padding)
}

/// Bytes the files below `dir` occupy on disk (allocated blocks, not apparent lengths).
fn allocated(dir: &Path) -> anyhow::Result<i64> {
    let mut total = 0i64;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            allocated(&entry.path())?
        } else {
            i64::try_from(meta.blocks().saturating_mul(512))?
        };
    }
    Ok(total)
}
