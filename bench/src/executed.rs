//! What the executors' scenarios (`orders`, `holds`) share: clients that place the work over
//! HTTP, a wait until the read model shows all of it done, and how long each piece waited.

use crate::report::Report;
use crate::stack::Stack;
use hdrhistogram::Histogram;
use sqlx::PgPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// `clients` callers send `count` requests between them, the `i`th made by `request(i)` (path
/// and body), each posted with `token` and expected to be answered `status`. Returns the
/// answers' latencies (µs).
pub async fn place(
    stack: &Stack,
    token: &str,
    clients: usize,
    count: usize,
    status: u16,
    request: impl Fn(usize) -> (String, serde_json::Value) + Clone + Send + 'static,
) -> anyhow::Result<Histogram<u64>> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut placing = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (commands, token, next, request) = (
            stack.commands.clone(),
            token.to_owned(),
            next.clone(),
            request.clone(),
        );
        placing.spawn(async move {
            let mut latency = crate::load::histogram();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, anyhow::Error>(latency);
                }
                let (path, body) = request(i);
                let sent = Instant::now();
                let answer = commands.post(&path, &token, body).await;
                anyhow::ensure!(
                    answer.status.as_u16() == status,
                    "{path} (request {i}): {} {:?}",
                    answer.status,
                    answer.body
                );
                latency.saturating_record(sent.elapsed().as_micros() as u64);
            }
        });
    }
    let mut latency = crate::load::histogram();
    while let Some(placed) = placing.join_next().await {
        latency.add(placed??)?;
    }
    Ok(latency)
}

/// Reports the placing answers' latency (p50, p99).
pub fn report_placing(report: &mut Report, name: &str, latency: &Histogram<u64>) {
    let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1e3;
    report.add(name, "placing latency p50", ms(0.50), "ms");
    report.add(name, "placing latency p99", ms(0.99), "ms");
}

/// Waits until `ledger.<table>` shows `count` rows with `status` (of at most `rows_max`
/// rows in all) and returns the time since `started`; fails at `deadline`.
pub async fn shown(
    db: &PgPool,
    (table, status): (&str, &str),
    count: usize,
    rows_max: usize,
    (started, deadline): (Instant, Instant),
) -> anyhow::Result<Duration> {
    let sql =
        format!("SELECT count(*) FILTER (WHERE status = '{status}'), count(*) FROM ledger.{table}");
    loop {
        let (done, rows): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .fetch_one(db)
            .await?;
        anyhow::ensure!(
            rows <= rows_max as i64,
            "{rows} rows in ledger.{table}, at most {rows_max} placed"
        );
        if done == count as i64 {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{done} of {count} rows of ledger.{table} shown {status}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// How long the rows of `ledger.<table>` with `status` waited from `since` (a column) to
/// their `updated_at`, in ms: p50, p99, max. The read model keeps each event's `occurred_at`,
/// so both ends are decisions' instants.
pub async fn waited(
    db: &PgPool,
    (table, status): (&str, &str),
    since: &str,
) -> anyhow::Result<(f64, f64, f64)> {
    let sql = format!(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY waited), \
                percentile_cont(0.99) WITHIN GROUP (ORDER BY waited), max(waited) \
         FROM (SELECT extract(epoch FROM updated_at - {since})::float8 * 1e3 AS waited \
               FROM ledger.{table} WHERE status = '{status}') AS done"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_one(db)
        .await?)
}

/// Reports [`waited`]'s figures as `<what> p50`, `p99` and `max`.
pub fn report_waited(
    report: &mut Report,
    name: &str,
    what: &str,
    (p50, p99, max): (f64, f64, f64),
) {
    report.add(name, &format!("{what} p50"), p50, "ms");
    report.add(name, &format!("{what} p99"), p99, "ms");
    report.add(name, &format!("{what} max"), max, "ms");
}
