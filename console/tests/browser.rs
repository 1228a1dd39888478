//! The console in headless Chromium against the real stack: a nats-server, a fresh Postgres
//! database, the command API, the projector, the query API and the console, all in-process on
//! free ports; then `node console/tests/browser/flow.mjs` drives Debian's chromium through
//! the console the way a person would (see that file for the steps).
//!
//! Ignored by a plain `cargo test`: it needs chromium and the npm packages, which
//! `scripts/test` installs (`ensure_console_browser`) before running it on its own step:
//! `cargo test -p web-console --test browser -- --ignored --nocapture`.

use harness::{NatsServer, TestDatabase};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

const SECRET: &str = "test-secret-that-is-long-enough-for-hs256";

/// The whole flow takes ~20 s here; two minutes covers a slow machine, and a hung browser
/// fails the run rather than the suite's own time limit.
const FLOW_TIMEOUT: Duration = Duration::from_secs(120);

fn token(sub: &str, admin: bool) -> String {
    http_edge::Auth::new(Some(SECRET))
        .expect("secret")
        .mint(sub, admin, 3_600)
        .expect("token")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs chromium and npm packages: scripts/test runs it in its own step"]
async fn a_person_uses_the_console_in_headless_chromium() {
    let browser_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").is_dir(),
        "npm packages missing: run `npm ci` in {} (scripts/prerequisites.sh: ensure_console_browser)",
        browser_dir.display()
    );
    let nats = NatsServer::start();
    let db = TestDatabase::create().await;
    let commands = command_api::start(command_api::Config::local(&nats.url, SECRET))
        .await
        .expect("command API starts");
    let projector = projector::start(projector::Config::local(&nats.url, &db.url))
        .await
        .expect("projector starts");
    let queries = query_api::start(query_api::Config::local(&db.url, SECRET))
        .await
        .expect("query API starts");
    let command_url = format!("http://{}", commands.addr);
    let query_url = format!("http://{}", queries.addr);
    let alice = token("alice", false);
    let admin = token("admin", true);
    let mut config = web_console::Config::local(&command_url, &query_url);
    config.dev_tokens = Some(format!("alice={alice},admin={admin}"));
    let console = web_console::start(config).await.expect("console starts");

    let screenshot = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/console-account.png")
        .to_string_lossy()
        .into_owned();
    let mut node = tokio::process::Command::new(std::env::var("NODE").unwrap_or("node".into()))
        .arg("flow.mjs")
        .current_dir(&browser_dir)
        .env("CONSOLE_URL", format!("http://{}", console.addr))
        .env("COMMAND_API_URL", &command_url)
        .env("ALICE_TOKEN", &alice)
        .env("SCREENSHOT_PATH", &screenshot)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts (node v20 is a prerequisite)");
    let status = tokio::time::timeout(FLOW_TIMEOUT, node.wait())
        .await
        .expect("the browser flow finished within its time limit")
        .expect("node ran");
    console.stop().await.expect("console stops");
    queries.stop().await.expect("query API stops");
    projector.stop().await.expect("projector stops");
    commands.stop().await.expect("command API stops");
    assert!(status.success(), "the browser flow failed: {status}");
}
