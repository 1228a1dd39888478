//! The console in headless Chromium against the real stack: a nats-server, a fresh Postgres
//! database, the command API, the projector, the query API and the console, all in-process on
//! free ports; then `node console/tests/browser/flow.mjs` drives Debian's chromium through
//! the console the way a person would (see that file for the steps).
//!
//! Ignored by a plain `cargo test`: it needs chromium and the npm packages, which
//! `scripts/test` installs (`ensure_console_browser`) before running it on its own step:
//! `cargo test -p web-console --test browser -- --ignored --nocapture`.

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use support::{Stack, token};

/// The whole flow takes ~15 s here; two minutes covers a slow machine, and a hung browser
/// fails the run rather than the suite's own time limit.
const FLOW_TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs chromium and npm packages: scripts/test runs it in its own step"]
async fn a_person_uses_the_console_in_headless_chromium() {
    let browser_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").is_dir(),
        "npm packages missing: run `npm ci` in {} (scripts/prerequisites.sh: ensure_console_browser)",
        browser_dir.display()
    );
    // Spans get W3C trace context (nothing is exported), so that journaled messages carry a
    // `traceparent` for the Journal page to link.
    let _telemetry = telemetry::trace::init_tracing("text", "tally", None);
    let alice = token("alice", false);
    let admin = token("admin", true);
    let stack = Stack::start(Some(format!("alice={alice},admin={admin}"))).await;

    // Into target/ by default, so a test run leaves the tree clean; the README's picture is
    // retaken with CONSOLE_SCREENSHOT=docs/console-account.png.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let screenshot = match std::env::var("CONSOLE_SCREENSHOT") {
        Ok(path) => root.join(path),
        Err(_) => root.join("target/console-account.png"),
    }
    .to_string_lossy()
    .into_owned();
    let mut node = tokio::process::Command::new(std::env::var("NODE").unwrap_or("node".into()))
        .arg("flow.mjs")
        .current_dir(&browser_dir)
        .env("CONSOLE_URL", &stack.console_url)
        .env("COMMAND_API_URL", &stack.command_url)
        .env("ALICE_TOKEN", &alice)
        .env("GRAFANA_URL", support::GRAFANA_URL)
        .env("SCREENSHOT_PATH", &screenshot)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts (node v20 is a prerequisite)");
    let status = tokio::time::timeout(FLOW_TIMEOUT, node.wait())
        .await
        .expect("the browser flow finished within its time limit")
        .expect("node ran");
    stack.stop().await;
    assert!(status.success(), "the browser flow failed: {status}");
}
