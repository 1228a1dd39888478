//! The machine's own ceilings, on the same servers as the scenarios: raw JetStream async
//! publish (no batching) with and without `sync_interval: always`, raw atomic-batch publish at
//! 2, 100 and 1000 messages (durable), and raw Postgres bulk inserts into an entries-shaped
//! table.

use crate::report::Report;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use harness::{NatsServer, TestDatabase};
use ledger_nats::batch::{Outbound, publish_atomic};
use std::time::{Duration, Instant};

/// Longest a single ceiling measurement runs: enough for a steady rate, short enough that
/// slow configurations (an fsync per message) do not dominate the run.
const MEASURE_FOR: Duration = Duration::from_secs(5);

/// How long an async publish may wait for its ack.
const ACK_TIMEOUT: Duration = Duration::from_secs(60);

/// Publishes in flight at once for the async-publish ceiling.
const IN_FLIGHT_MAX: usize = 4_096;

/// A payload the size of a Tally event (~350 bytes).
fn payload() -> Bytes {
    Bytes::from(vec![b'x'; 350])
}

pub async fn run(report: &mut Report, quick: bool) -> anyhow::Result<()> {
    let messages = if quick { 2_000 } else { 200_000 };
    for (durable, label) in [(true, "sync_interval: always"), (false, "default fsync")] {
        let nats = if durable {
            NatsServer::start()
        } else {
            NatsServer::start_without_fsync()
        };
        let client = nats.client().await;
        scratch_stream(&client).await?;
        let rate = async_publish(&client, messages).await?;
        report.add(
            &format!("ceiling: async publish, {label}"),
            "msgs/s",
            rate,
            "msgs/s",
        );
        if durable {
            for size in [2_usize, 100, 1000] {
                let total = if quick {
                    2_000
                } else {
                    20 * 1000.max(size * 20)
                };
                let cpu = crate::cpu::Meter::start("");
                let rate = atomic_batches(&client, size, total).await?;
                let name = format!("ceiling: atomic batch of {size}, durable");
                report.add(&name, "msgs/s", rate, "msgs/s");
                if size == 1000 {
                    // "services" is this process publishing: the ceiling's client.
                    cpu.report(report, &name, total as f64, "message");
                }
            }
        }
    }
    let rows = if quick { 20_000 } else { 500_000 };
    let rate = postgres_bulk_insert(rows).await?;
    report.add(
        "ceiling: Postgres UNNEST insert, entries-shaped",
        "rows/s",
        rate,
        "rows/s",
    );
    Ok(())
}

async fn scratch_stream(client: &async_nats::Client) -> anyhow::Result<()> {
    let config = serde_json::json!({
        "name": "SCRATCH", "subjects": ["scratch.>"], "storage": "file", "retention": "limits",
        "allow_atomic": true, "allow_direct": true, "duplicate_window": 30_000_000_000_u64,
        "num_replicas": 1, "discard": "old", "max_msgs": -1, "max_bytes": -1, "max_age": 0
    });
    ledger_nats::stream::create(client, &config).await?;
    Ok(())
}

async fn async_publish(client: &async_nats::Client, messages: usize) -> anyhow::Result<f64> {
    // 4,096 fsynced publishes in flight on a busy shared machine take longer than the
    // client's default 5 s to be acknowledged; a late ack is still an ack.
    let js = async_nats::jetstream::ContextBuilder::new()
        .timeout(ACK_TIMEOUT)
        .build(client.clone());
    let started = Instant::now();
    let mut acks = FuturesUnordered::new();
    let mut published = 0;
    for i in 0..messages {
        if started.elapsed() > MEASURE_FOR {
            break;
        }
        published += 1;
        let ack = js
            .publish(format!("scratch.{}", i % 1024), payload())
            .await?;
        acks.push(ack.into_future());
        while acks.len() >= IN_FLIGHT_MAX {
            if let Some(ack) = acks.next().await {
                ack?;
            }
        }
    }
    while let Some(ack) = acks.next().await {
        ack?;
    }
    Ok(published as f64 / started.elapsed().as_secs_f64())
}

async fn atomic_batches(
    client: &async_nats::Client,
    size: usize,
    total: usize,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut sent = 0;
    while sent < total && started.elapsed() < MEASURE_FOR {
        let batch: Vec<Outbound> = (0..size)
            .map(|i| Outbound {
                subject: format!("scratch.batch.{i}"),
                msg_id: uuid::Uuid::now_v7().to_string(),
                headers: vec![],
                payload: payload(),
                expected_last_subject_seq: None,
                expected_last_seq: None,
            })
            .collect();
        publish_atomic(client, &batch, Duration::from_secs(10)).await?;
        sent += size;
    }
    Ok(sent as f64 / started.elapsed().as_secs_f64())
}

async fn postgres_bulk_insert(rows: usize) -> anyhow::Result<f64> {
    let db = TestDatabase::create().await;
    let pool = sqlx::PgPool::connect(&db.url).await?;
    sqlx::query(
        "CREATE TABLE entries_shaped (account_id text, version bigint, seq bigint, event_id uuid,
             amount bigint, balance_after bigint, job_id uuid, occurred_at timestamptz,
             PRIMARY KEY (account_id, version))",
    )
    .execute(&pool)
    .await?;
    let chunk = 10_000;
    let started = Instant::now();
    let mut written = 0;
    while written < rows {
        let n = chunk.min(rows - written);
        let ids: Vec<String> = (written..written + n)
            .map(|i| format!("a{}", i % 10_000))
            .collect();
        let versions: Vec<i64> = (written..written + n)
            .map(|i| (i / 10_000) as i64)
            .collect();
        let seqs: Vec<i64> = (written..written + n).map(|i| i as i64).collect();
        let uuids: Vec<uuid::Uuid> = (0..n).map(|_| uuid::Uuid::now_v7()).collect();
        let now = vec![chrono_now(); n];
        sqlx::query(
            "INSERT INTO entries_shaped SELECT a, v, s, e, s, s, e, o
             FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::uuid[], $5::timestamptz[]) AS t(a, v, s, e, o)",
        )
        .bind(&ids)
        .bind(&versions)
        .bind(&seqs)
        .bind(&uuids)
        .bind(&now)
        .execute(&pool)
        .await?;
        written += n;
    }
    let rate = rows as f64 / started.elapsed().as_secs_f64();
    pool.close().await;
    Ok(rate)
}

fn chrono_now() -> sqlx::types::chrono::DateTime<sqlx::types::chrono::Utc> {
    sqlx::types::chrono::Utc::now()
}
