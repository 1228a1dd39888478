//! Storage: what one transfer costs on disk — the journal (the nats-server store: files as the
//! filesystem allocates them, after the stream's compression) and the read model (PostgreSQL's
//! tables with their indexes). Measured as the growth across a run of transfers after the
//! accounts are open, so opening them is not counted.
//!
//! The journal's figure falls in steps: nats-server compresses a message block when it is
//! full and a new one begins, so the run writes several blocks' worth to be representative.

use crate::report::Report;
use crate::stack::{Journal, Stack, Topology, token};
use crate::transfers::open_accounts;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const SCENARIO: &str = "storage";

/// Concurrent clients: enough to fill the writer's batches as under load (batch size changes
/// the journal's per-message overhead very little, but this keeps the run short).
const CLIENTS: u64 = 32;

pub async fn run(report: &mut Report, accounts: usize, transfers: u64) -> anyhow::Result<()> {
    let stack = Arc::new(Stack::start(Topology::Durable).await?);
    let admin = Arc::new(token("root", true)?);
    open_accounts(&stack, &admin, accounts).await?;
    let before = Sizes::read(&stack).await?;
    let committed = Arc::new(AtomicU64::new(0));
    let last_seq = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        let (stack, admin) = (stack.clone(), admin.clone());
        let (committed, last_seq) = (committed.clone(), last_seq.clone());
        tasks.spawn(async move {
            for n in (client..transfers).step_by(usize::try_from(CLIENTS).unwrap_or(1)) {
                let from = usize::try_from(n).unwrap_or(0) % accounts;
                let to = (from + 1) % accounts;
                let body = serde_json::json!({
                    "from_account_id": format!("acct-{from}"),
                    "to_account_id": format!("acct-{to}"),
                    "amount": 1 + n % 97,
                    "reference": format!("invoice-{n}"),
                });
                let answer = stack.commands.post("/v1/transfers", &admin, body).await;
                if answer.status.as_u16() == 201 {
                    committed.fetch_add(1, Ordering::Relaxed);
                    let seq = answer.header("ledger-seq").and_then(|v| v.parse().ok());
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
    let min_seq = last_seq.load(Ordering::Relaxed).to_string();
    let seen = stack
        .queries
        .get_with(
            "/v1/accounts/acct-0",
            Some(admin.as_str()),
            &[("Ledger-Min-Seq", min_seq.as_str())],
        )
        .await;
    anyhow::ensure!(
        seen.status.as_u16() == 200,
        "the read model did not catch up: {}",
        seen.status
    );
    let after = Sizes::read(&stack).await?;
    let per = |grown: i64| grown as f64 / committed as f64;
    report.add(SCENARIO, "transfers measured", committed as f64, "");
    report.add(
        SCENARIO,
        "journal on disk per transfer",
        per(after.journal_disk - before.journal_disk),
        "B",
    );
    report.add(
        SCENARIO,
        "journal messages per transfer",
        per(after.messages - before.messages),
        "",
    );
    report.add(
        SCENARIO,
        "journal stored (uncompressed) per transfer",
        per(after.journal_stored - before.journal_stored),
        "B",
    );
    report.add(
        SCENARIO,
        "read model per transfer",
        per(after.read_model - before.read_model),
        "B",
    );
    report.add(
        SCENARIO,
        "total on disk per transfer",
        per(after.journal_disk + after.read_model - before.journal_disk - before.read_model),
        "B",
    );
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
    read_model: i64,
}

impl Sizes {
    async fn read(stack: &Stack) -> anyhow::Result<Self> {
        let Journal::Single(server) = &stack.nats else {
            anyhow::bail!("the storage scenario measures a single node's store");
        };
        let client = stack.nats.client().await?;
        let mut stream = async_nats::jetstream::new(client)
            .get_stream(crate::stack::STREAM)
            .await?;
        let state = stream.info().await?.state.clone();
        let pool = sqlx::PgPool::connect(&stack.db.url).await?;
        let read_model = read_model::schema::bytes_on_disk(&pool, "ledger").await?;
        pool.close().await;
        Ok(Self {
            journal_disk: allocated(server.store_dir())?,
            journal_stored: i64::try_from(state.bytes)?,
            messages: i64::try_from(state.messages)?,
            read_model,
        })
    }
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
