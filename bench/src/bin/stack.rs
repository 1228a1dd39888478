//! `stack`: the whole system in-process on real servers (a nats-server on a temporary store,
//! a fresh Postgres database on `DATABASE_URL`'s server, the command API, the projector and
//! the query API), for tools that drive it from outside, such as `scripts/fuzz`.
//!
//! Prints one JSON line — `{"command_api", "query_api", "admin_token", "user_token"}` — then
//! serves until its standard input closes or it is sent SIGTERM/Ctrl-C, and cleans up.

use harness::{NatsServer, TestDatabase};
use serde_json::json;
use std::io::Write;
use tokio::io::AsyncReadExt;

const SECRET: &str = "stack-secret-that-is-long-enough-for-hs256";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let nats = NatsServer::start();
    let db = TestDatabase::create().await;
    // Transfer look-ups ask the read models, as deployed.
    let command_config = command_api::Config::local(&nats.url, SECRET).with_read_model(&db.url);
    let command = command_api::start(command_config).await?;
    let projector = projector::start(projector::Config::local(&nats.url, &db.url)).await?;
    let mut query_config = query_api::Config::local(&db.url, SECRET);
    // A fuzzer sends any Ledger-Min-Seq: answer a sequence that never comes quickly.
    query_config.min_seq_wait_ms = 100;
    // A fuzzer reads each answer to its end, and a live feed has none: end every feed
    // stream after a second, so that a generated request for an existing account's feed
    // costs a second, not the whole run.
    query_config.feed_stream_max_s = 1;
    let query = query_api::start(query_config).await?;
    let auth = http_edge::Auth::new(Some(SECRET))?;
    let mint = |sub: &str, admin: bool| {
        auth.mint(sub, admin, 24 * 3_600)
            .map_err(|e| anyhow::anyhow!(e.detail))
    };
    let line = json!({
        "command_api": format!("http://{}", command.addr),
        "query_api": format!("http://{}", query.addr),
        "admin_token": mint("admin", true)?,
        "user_token": mint("alice", false)?,
    });
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{line}")?;
    stdout.flush()?;

    let stdin_closed = async {
        let mut sink = Vec::new();
        let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    };
    tokio::select! {
        () = stdin_closed => {},
        () = telemetry::shutdown_signal() => {},
    }
    query.stop().await?;
    command.stop().await?;
    projector.stop().await?;
    drop(db);
    drop(nats);
    Ok(())
}
