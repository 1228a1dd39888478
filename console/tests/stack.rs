//! The console against the real stack over HTTP (no browser): what only the real APIs can
//! show — a form submitted twice has one effect, another owner's account is not found on the
//! page nor on the feed, and the relay streams the query API's own feed.

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::{Stack, token};
use tokio::time::Instant;

/// Waits on the feed and on the projector: milliseconds here; ten seconds for a slow machine.
const WAIT: Duration = Duration::from_secs(10);

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Opens an account as an admin; returns the journal sequence of the write (`Ledger-Seq`).
async fn open_account(stack: &Stack, id: &str, owner: &str) -> u64 {
    let answer = client()
        .post(format!("{}/v1/accounts", stack.command_url))
        .bearer_auth(token("root", true))
        .json(&json!({"account_id": id, "owner_id": owner}))
        .send()
        .await
        .expect("command API answers");
    assert_eq!(answer.status(), 201);
    answer.headers()["ledger-seq"]
        .to_str()
        .expect("text")
        .parse()
        .expect("a sequence")
}

/// The cookies of a browser signed in as `sub` that has seen the write at `seq`.
fn cookies(sub: &str, seq: u64) -> String {
    format!("tally_session={}; tally_seq={seq}", token(sub, false))
}

/// The value of the hidden idempotency key inside the form with this id.
fn form_key(html: &str, form_id: &str) -> String {
    let form = &html[html.find(&format!(r#"id="{form_id}""#)).expect("the form")..];
    let marker = r#"name="idempotency_key" value=""#;
    let start = form.find(marker).expect("a key") + marker.len();
    form[start..start + form[start..].find('"').expect("end")].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submitting_one_rendered_form_twice_deposits_once() {
    let stack = Stack::start(None).await;
    let alice = token("alice", false);
    let opened = open_account(&stack, "twice", "alice").await;
    let http = client();
    let cookie = cookies("alice", opened);
    let page = http
        .get(format!("{}/accounts/twice", stack.console_url))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200);
    let key = form_key(&page.text().await.expect("html"), "deposit-form");

    let mut seqs = Vec::new();
    for _ in 0..2 {
        let answer = http
            .post(format!(
                "{}/accounts/twice/forms/deposit",
                stack.console_url
            ))
            .header("cookie", &cookie)
            .header("origin", &stack.console_url)
            .header("hx-request", "true")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("amount=250&idempotency_key={key}"))
            .send()
            .await
            .expect("console answers");
        assert_eq!(answer.status(), 200);
        if let Some(seq) = answer
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok()?.strip_prefix("tally_seq="))
            .find_map(|v| v.split(';').next()?.parse::<u64>().ok())
        {
            seqs.push(seq);
        }
        let html = answer.text().await.expect("html");
        assert!(html.contains("Deposited 250; balance 250."), "{html}");
    }
    let seq = seqs
        .into_iter()
        .max()
        .expect("a Ledger-Seq from the deposit");
    let entries: Value = http
        .get(format!(
            "{}/v1/accounts/twice/entries?type=deposit",
            stack.query_url
        ))
        .bearer_auth(&alice)
        .header("ledger-min-seq", seq.to_string())
        .send()
        .await
        .expect("entries")
        .json()
        .await
        .expect("json");
    let deposits = entries["items"].as_array().expect("items");
    assert_eq!(deposits.len(), 1, "{entries}");
    assert_eq!(deposits[0]["balance_after"], 250);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_owners_account_is_not_found_on_its_page_nor_on_its_feed() {
    let stack = Stack::start(None).await;
    let opened = open_account(&stack, "bobs", "bob").await;
    let http = client();
    for (who, status) in [("bob", 200), ("alice", 404)] {
        for path in ["/accounts/bobs", "/accounts/bobs/events"] {
            let answer = http
                .get(format!("{}{path}", stack.console_url))
                .header("cookie", cookies(who, opened))
                .timeout(WAIT)
                .send()
                .await
                .expect("console answers");
            assert_eq!(answer.status(), status, "{who} {path}");
        }
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_streams_the_owners_feed_as_it_happens() {
    let stack = Stack::start(None).await;
    let opened = open_account(&stack, "live", "bob").await;
    let bob = token("bob", false);
    let mut feed = client()
        .get(format!(
            "{}/accounts/live/events?from=now",
            stack.console_url
        ))
        .header("cookie", cookies("bob", opened))
        .send()
        .await
        .expect("relay answers");
    assert_eq!(feed.status(), 200);
    let deposit = client()
        .post(format!("{}/v1/accounts/live/deposits", stack.command_url))
        .bearer_auth(&bob)
        .header("idempotency-key", "live-1")
        .json(&json!({"amount": 70}))
        .send()
        .await
        .expect("deposit");
    assert_eq!(deposit.status(), 201);
    let deadline = Instant::now() + WAIT;
    let mut text = String::new();
    while !text.contains("\"balance\":70") {
        let chunk = tokio::time::timeout_at(deadline, feed.chunk())
            .await
            .unwrap_or_else(|_| panic!("no deposit on the feed within {WAIT:?}: {text}"))
            .expect("stream")
            .expect("the feed stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("event: deposit"), "{text}");
    drop(feed);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_posted_without_script_returns_to_the_account_page_which_shows_the_deposit() {
    let stack = Stack::start(None).await;
    let opened = open_account(&stack, "plain", "alice").await;
    let http = client();
    let answer = http
        .post(format!(
            "{}/accounts/plain/forms/deposit",
            stack.console_url
        ))
        .header("cookie", cookies("alice", opened))
        .header("origin", &stack.console_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("amount=40&idempotency_key=plain-1")
        .send()
        .await
        .expect("console answers");
    assert_eq!(answer.status(), 303);
    assert_eq!(answer.headers()["location"], "/accounts/plain");
    let seq_cookie = answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("tally_seq="))
        .expect("the write's sequence is remembered")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    let page = http
        .get(format!("{}/accounts/plain", stack.console_url))
        .header(
            "cookie",
            format!("tally_session={}; {seq_cookie}", token("alice", false)),
        )
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(page.contains(r#"<dd id="balance">40</dd>"#), "{page}");
    stack.stop().await;
}
