//! Graceful shutdown of every service, as processes: under load, `SIGTERM` must make each
//! service stop accepting, finish what it has in flight (requests, the writer's batches, the
//! projector's transaction), and exit 0 — with every answered command in the journal.
//!
//! `scripts/test` runs it after `scripts/chaos --quick` (which builds the binaries).

use chaos::processes::Cluster;
use clap::Parser;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a service may take from SIGTERM to exit: its longest wait is the writer's
/// in-flight commit, bounded by the commit time-out (5 s by default).
const EXIT_WITHIN: Duration = Duration::from_secs(20);

/// Clients depositing while the command API is told to stop.
const CLIENTS: usize = 32;

const JWT_SECRET: &str = "graceful-shutdown-secret-long-enough-for-hs256";

#[derive(Debug, Parser)]
struct Args {
    /// PostgreSQL server binaries (initdb, pg_ctl) for the private cluster.
    #[arg(long, env = "PG_BIN_DIR")]
    pg_bin_dir: PathBuf,
    /// Where the services' logs go.
    #[arg(long, default_value = "target/graceful-shutdown")]
    log_dir: PathBuf,
}

#[derive(Debug, Default)]
struct Tally {
    created: Vec<String>,
    server_errors: Vec<u16>,
    refused: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin_dir = std::env::current_exe()?
        .parent()
        .map(PathBuf::from)
        .ok_or_else(|| anyhow::anyhow!("no directory for this binary"))?;
    let _ = std::fs::remove_dir_all(&args.log_dir);
    std::fs::create_dir_all(&args.log_dir)?;
    let log_dir = std::fs::canonicalize(&args.log_dir)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut cluster = Cluster::start(
        &bin_dir,
        &args.pg_bin_dir,
        &log_dir,
        JWT_SECRET,
        &http,
        false,
        chaos::processes::StoreOptions {
            lazy: None,
            fsync: true,
        },
    )
    .await?;
    let admin = http_edge::Auth::new(Some(JWT_SECRET))?
        .mint("shutdown-admin", true, 600)
        .map_err(|e| anyhow::anyhow!("{}", e.detail))?;
    let base = cluster.command_apis[0].base_url();
    let opened = http
        .post(format!("{base}/v1/accounts"))
        .bearer_auth(&admin)
        .json(&json!({"account_id": "till"}))
        .send()
        .await?;
    anyhow::ensure!(opened.status().is_success(), "opening: {}", opened.status());

    // Deposits from many clients, each until the API stops answering.
    let stopping = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (http, base, admin, stopping) = (
                http.clone(),
                base.clone(),
                admin.clone(),
                Arc::clone(&stopping),
            );
            tokio::spawn(async move {
                let mut tally = Tally::default();
                for n in 0.. {
                    let sent = http
                        .post(format!("{base}/v1/accounts/till/deposits"))
                        .bearer_auth(&admin)
                        .header("idempotency-key", format!("c{client}-{n}"))
                        .json(&json!({"amount": 1}))
                        .send()
                        .await;
                    match sent {
                        Ok(answer) if answer.status().as_u16() == 201 => {
                            let body: serde_json::Value = answer.json().await.unwrap_or_default();
                            tally
                                .created
                                .push(body["job_id"].as_str().unwrap_or_default().to_owned());
                        }
                        Ok(answer) if answer.status().is_server_error() => {
                            tally.server_errors.push(answer.status().as_u16());
                        }
                        Ok(_) => {}
                        // Not accepted (connection refused or closed before an answer).
                        Err(_) if stopping.load(Ordering::Relaxed) => {
                            tally.refused += 1;
                            break;
                        }
                        Err(_) => tally.refused += 1,
                    }
                }
                tally
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stopping.store(true, Ordering::Relaxed);
    let signalled = Instant::now();
    let command_exit = cluster.command_apis[0].terminate(EXIT_WITHIN).await?;
    let command_took = signalled.elapsed();
    let mut tally = Tally::default();
    for client in clients {
        let t = client.await?;
        tally.created.extend(t.created);
        tally.server_errors.extend(t.server_errors);
        tally.refused += t.refused;
    }

    // Every deposit answered 201 is journaled: the projector, still running, shows them all.
    let query = cluster.query_api.base_url();
    let deadline = Instant::now() + Duration::from_secs(30);
    let journaled = loop {
        let account: serde_json::Value = http
            .get(format!("{query}/v1/accounts/till"))
            .bearer_auth(&admin)
            .send()
            .await?
            .json()
            .await?;
        let balance = account["balance"].as_i64().unwrap_or(-1);
        if balance >= tally.created.len() as i64 || Instant::now() > deadline {
            break balance;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let projector_exit = cluster.projectors[0].terminate(EXIT_WITHIN).await?;
    let query_exit = cluster.query_api.terminate(EXIT_WITHIN).await?;

    println!(
        "graceful shutdown: command-api exit {:?} {} ms after SIGTERM with {} deposits answered \
         201 ({} journaled), {} not accepted, {} 5xx; projector exit {:?}; query-api exit {:?}",
        command_exit.code(),
        command_took.as_millis(),
        tally.created.len(),
        journaled,
        tally.refused,
        tally.server_errors.len(),
        projector_exit.code(),
        query_exit.code(),
    );
    let mut failures = Vec::new();
    for (name, status) in [
        ("command-api", command_exit),
        ("projector", projector_exit),
        ("query-api", query_exit),
    ] {
        if status.code() != Some(0) {
            failures.push(format!("{name} exited {status}"));
        }
    }
    if !tally.server_errors.is_empty() {
        failures.push(format!("5xx answers: {:?}", tally.server_errors));
    }
    // Exactly the answered deposits, no more: a deposit whose answer was lost to the
    // shutdown would show as journaled without an answer; none may be missing.
    if journaled != tally.created.len() as i64 {
        failures.push(format!(
            "{} deposits answered 201 but the balance is {journaled}",
            tally.created.len()
        ));
    }
    if tally.created.is_empty() {
        failures.push("no deposit was answered: the load never ran".into());
    }
    for failure in &failures {
        println!("FAILED: {failure}");
    }
    anyhow::ensure!(failures.is_empty(), "graceful shutdown failed");
    Ok(())
}
