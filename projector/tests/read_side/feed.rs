//! The live feed (`GET /v1/accounts/{id}/events`): resumable exactly once in order, live,
//! read-your-writes, owner-scoped, heartbeats, slow readers cut off, a cap on subscribers,
//! longer-lived than the request timeout, and ended by shutdown.

use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::time::Instant;

/// Longest wait for anything a test expects to arrive on a feed.
const WAIT: Duration = Duration::from_secs(20);

/// What an SSE stream carries: an event, or a comment (a heartbeat).
#[derive(Debug)]
enum Frame {
    Event {
        id: Option<u64>,
        event: String,
        data: Value,
    },
    Comment(String),
}

/// A feed read as a client reads it: the response body, cut into frames at blank lines.
struct Feed {
    response: reqwest::Response,
    buffer: String,
}

impl Feed {
    /// Opens `path` on `base`; panics unless the answer is a `200 text/event-stream`.
    async fn open(base: &str, path: &str, token: &str, headers: &[(&str, &str)]) -> Self {
        let mut request = reqwest::Client::new()
            .get(format!("{base}{path}"))
            .bearer_auth(token);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("feed request sent");
        assert_eq!(response.status().as_u16(), 200, "{path}");
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream"),
        );
        // Compressed, the stream would wait in the encoder's buffer: it is never compressed.
        assert_eq!(response.headers().get("content-encoding"), None, "{path}");
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next frame, or `None` once the stream has ended; panics if nothing comes in time.
    async fn next(&mut self, within: Duration) -> Option<Frame> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                return Some(parse(&block));
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .expect("a frame arrives in time")
                .expect("the stream reads");
            match chunk {
                Some(bytes) => self
                    .buffer
                    .push_str(std::str::from_utf8(&bytes).expect("utf-8")),
                None => return None,
            }
        }
    }

    /// The next event, skipping heartbeats; `None` once the stream has ended.
    async fn next_event(&mut self) -> Option<(Option<u64>, String, Value)> {
        loop {
            match self.next(WAIT).await? {
                Frame::Event { id, event, data } => return Some((id, event, data)),
                Frame::Comment(_) => {}
            }
        }
    }

    /// The next event, which must be an entry (with an id).
    async fn next_entry(&mut self) -> (u64, String, Value) {
        let (id, event, data) = self.next_event().await.expect("the stream goes on");
        (id.expect("an entry's event has an id"), event, data)
    }
}

fn parse(block: &str) -> Frame {
    let mut id = None;
    let mut event = String::from("message");
    let mut data = Vec::new();
    let mut comment = None;
    for line in block.lines().filter(|l| !l.is_empty()) {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "" => comment = Some(value.to_owned()),
            "id" => id = Some(value.parse().expect("numeric id")),
            "event" => event = value.to_owned(),
            "data" => data.push(value.to_owned()),
            other => panic!("unexpected field {other:?} in {block:?}"),
        }
    }
    match comment {
        Some(text) if data.is_empty() => Frame::Comment(text),
        _ => Frame::Event {
            id,
            event,
            data: serde_json::from_str(&data.join("\n")).expect("data is JSON"),
        },
    }
}

async fn deposit(stack: &Stack, account: &str, amount: i64) -> u64 {
    let answer = stack
        .commands
        .post(
            &format!("/v1/accounts/{account}/deposits"),
            &token("root", true),
            json!({"amount": amount}),
        )
        .await;
    assert_eq!(answer.status.as_u16(), 201, "{:?}", answer.body);
    seq_of(&answer)
}

/// A query API of its own on the stack's read model, configured by `adjust`.
async fn query_api_with(
    stack: &Stack,
    adjust: impl FnOnce(&mut query_api::Config),
) -> query_api::App {
    let mut config = query_config(&stack.db.url);
    adjust(&mut config);
    query_api::start(config).await.expect("query API starts")
}

/// A counter or gauge from the query API's `/metrics` (0 when not yet recorded).
async fn metric(base: &str, name: &str) -> f64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_resumed_feed_gets_every_later_event_exactly_once_in_order() {
    let stack = Stack::start().await;
    let _projector = stack.start_projector().await;
    stack.open_funded("alice", "alice", 0).await;
    stack.open_funded("bob", "bob", 0).await;
    let alice = token("alice", false);
    let mut seqs = Vec::new();
    for n in 1..=10 {
        seqs.push(deposit(&stack, "alice", n).await);
        // Another account's events interleave in the journal and must not show.
        deposit(&stack, "bob", n).await;
    }
    // From the start: the opening, then the ten deposits, balances adding up.
    let mut feed = Feed::open(
        &stack.queries.base,
        "/v1/accounts/alice/events",
        &alice,
        &[],
    )
    .await;
    let (opening_id, kind, opening) = feed.next_entry().await;
    assert_eq!(kind, "opening");
    assert_eq!(opening["version"], 1);
    assert_eq!(opening["seq"], opening_id);
    let mut balance = 0;
    for (n, seq) in (1..=10).zip(&seqs) {
        let (id, kind, data) = feed.next_entry().await;
        balance += n;
        assert_eq!((id, kind.as_str()), (*seq, "deposit"));
        assert_eq!(data["type"], "deposit");
        assert_eq!(data["event_type"], "funds_deposited");
        assert_eq!(data["account_id"], "alice");
        assert_eq!(data["amount"], n);
        assert_eq!(data["balance"], balance);
        assert_eq!(data["held"], 0);
        assert_eq!(data["available"], balance);
        assert_eq!(data["version"], n + 1);
        assert!(data["job_id"].is_string() && data["occurred_at"].is_string());
    }
    drop(feed);
    // More happens while no feed is open; a feed resumed from the fifth deposit gets the
    // sixth onwards, those, then live ones: each once, in order.
    for n in 11..=15 {
        seqs.push(deposit(&stack, "alice", n).await);
        deposit(&stack, "bob", n).await;
    }
    let middle = seqs[4].to_string();
    let mut by_header = Feed::open(
        &stack.queries.base,
        "/v1/accounts/alice/events?after_seq=1",
        &alice,
        &[("last-event-id", &middle)],
    )
    .await;
    let mut by_query = Feed::open(
        &stack.queries.base,
        &format!("/v1/accounts/alice/events?after_seq={middle}"),
        &alice,
        &[],
    )
    .await;
    let live = deposit(&stack, "alice", 16).await;
    seqs.push(live);
    for feed in [&mut by_header, &mut by_query] {
        for seq in &seqs[5..] {
            let (id, _, data) = feed.next_entry().await;
            assert_eq!(id, *seq);
            assert_eq!(data["seq"], *seq);
        }
    }
    // Nothing more: the next frame is a heartbeat or another deposit's event, never a repeat.
    let after = deposit(&stack, "alice", 17).await;
    assert_eq!(by_header.next_entry().await.0, after);
    assert_eq!(by_query.next_entry().await.0, after);
}

#[tokio::test]
async fn a_feed_from_now_gets_only_new_events_each_readable_at_its_id_without_waiting() {
    let stack = Stack::start().await;
    let _projector = stack.start_projector().await;
    stack.open_funded("alice", "alice", 500).await;
    stack.wait_caught_up(WAIT).await;
    // No waiting allowed: a Ledger-Min-Seq the read model has not reached is answered 503.
    let query = query_api_with(&stack, |c| c.min_seq_wait_ms = 0).await;
    let base = format!("http://{}", query.addr);
    let queries = Http::new(base.clone());
    let alice = token("alice", false);
    // A client that accepts compressed answers still gets every event as it happens.
    let compressed = [("accept-encoding", "gzip, br")];
    let path = "/v1/accounts/alice/events?from=now";
    let mut feed = Feed::open(&base, path, &alice, &compressed).await;
    for n in 1..=5 {
        let seq = deposit(&stack, "alice", n).await;
        let (id, kind, data) = feed.next_entry().await;
        assert_eq!((id, kind.as_str()), (seq, "deposit"), "only new events");
        let balance = queries
            .get_with(
                "/v1/accounts/alice/balance",
                Some(&alice),
                &[("ledger-min-seq", &id.to_string())],
            )
            .await;
        assert_eq!(balance.status.as_u16(), 200, "{:?}", balance.body);
        assert_eq!(balance.body["balance"], data["balance"]);
        assert!(seq_of(&balance) >= id);
    }
    // A transfer shows with its counterparty and transfer id.
    stack.open_funded("bob", "bob", 0).await;
    let sent = stack
        .commands
        .post(
            "/v1/transfers",
            &alice,
            json!({"from_account_id": "alice", "to_account_id": "bob", "amount": 7, "reference": "rent"}),
        )
        .await;
    assert_eq!(sent.status.as_u16(), 201, "{:?}", sent.body);
    let (_, kind, data) = feed.next_entry().await;
    assert_eq!(kind, "transfer");
    assert_eq!(data["amount"], -7);
    assert_eq!(data["counterparty_account_id"], "bob");
    assert_eq!(data["transfer_id"], sent.body["transfer_id"]);
    assert_eq!(data["reference"], "rent");
    // Other answers are compressed for such a client.
    let history = reqwest::Client::new()
        .get(format!("{base}/v1/accounts/alice/entries"))
        .bearer_auth(&alice)
        .header("accept-encoding", "br")
        .send()
        .await
        .expect("history");
    assert_eq!(history.status().as_u16(), 200);
    assert_eq!(
        history
            .headers()
            .get("content-encoding")
            .map(|v| v.as_bytes()),
        Some(&b"br"[..])
    );
    query.stop().await.expect("query API stops");
}

#[tokio::test]
async fn another_owners_account_is_not_found_on_the_feed_and_an_admin_sees_it() {
    let stack = Stack::start().await;
    let _projector = stack.start_projector().await;
    stack.open_funded("alice", "alice", 10).await;
    stack.wait_caught_up(WAIT).await;
    let bob = token("bob", false);
    let path = "/v1/accounts/alice/events";
    stack
        .queries
        .get_with(path, Some(&bob), &[])
        .await
        .assert_problem(404, "account_not_found");
    stack
        .queries
        .get_with(
            "/v1/accounts/nobody/events",
            Some(&token("root", true)),
            &[],
        )
        .await
        .assert_problem(404, "account_not_found");
    stack
        .queries
        .get_with(path, None, &[])
        .await
        .assert_unauthorized("feed without a token");
    let alice = token("alice", false);
    for (query, headers) in [
        ("?after_seq=abc", vec![]),
        ("?after_seq=-1", vec![]),
        ("?after_seq=9223372036854775808", vec![]),
        ("?from=later", vec![]),
        ("?from=now&after_seq=3", vec![]),
        ("?since=3", vec![]),
        ("", vec![("last-event-id", "x")]),
        // Refused even though Last-Event-ID would take precedence.
        (
            "?after_seq=9223372036854775808",
            vec![("last-event-id", "3")],
        ),
    ] {
        stack
            .queries
            .get_with(&format!("{path}{query}"), Some(&alice), &headers)
            .await
            .assert_problem(400, "invalid_request");
    }
    let mut feed = Feed::open(&stack.queries.base, path, &token("root", true), &[]).await;
    assert_eq!(feed.next_entry().await.1, "opening");
    assert_eq!(feed.next_entry().await.2["balance"], 10);
}

#[tokio::test]
async fn a_slow_reader_gets_lagged_and_its_stream_ends() {
    let stack = Stack::start().await;
    let _projector = stack.start_projector().await;
    stack.open_funded("alice", "alice", 0).await;
    stack.wait_caught_up(WAIT).await;
    let query = query_api_with(&stack, |c| c.feed_buffer_len_max = 4).await;
    let base = format!("http://{}", query.addr);
    let alice = token("alice", false);
    let mut feed = Feed::open(&base, "/v1/accounts/alice/events?from=now", &alice, &[]).await;
    // The client reads nothing while deposits with large metadata fill the socket buffers,
    // then the feed's own buffer of four.
    let admin = token("root", true);
    let metadata: serde_json::Map<String, Value> = (0..30)
        .map(|i| (format!("k{i}"), json!("x".repeat(120))))
        .collect();
    let body = json!({"amount": 1, "metadata": metadata});
    let lagged_before = metric(&base, "tally_feed_lagged_total").await;
    let mut deposits = 0;
    while metric(&base, "tally_feed_lagged_total").await <= lagged_before {
        assert!(deposits < 5_000, "no lag after {deposits} deposits");
        let round = (0..20).map(|_| {
            stack
                .commands
                .post("/v1/accounts/alice/deposits", &admin, body.clone())
        });
        for answer in futures::future::join_all(round).await {
            assert_eq!(answer.status.as_u16(), 201, "{:?}", answer.body);
        }
        deposits += 20;
        stack.wait_caught_up(WAIT).await;
    }
    // Now it reads: what was buffered, in order, then `lagged` naming the last one, then the end.
    let mut last = 0;
    let lagged = loop {
        let (id, kind, data) = feed
            .next_event()
            .await
            .expect("lagged comes before the end");
        if kind == "lagged" {
            break data;
        }
        let id = id.expect("an entry has an id");
        assert!(id > last, "in order");
        last = id;
    };
    assert!(last > 0, "some events came before the cut");
    assert_eq!(lagged["last_seq"], last);
    assert!(
        feed.next(WAIT).await.is_none(),
        "the stream ends after lagged"
    );
    // Resuming from there gets the rest.
    let resumed_from = last.to_string();
    let mut resumed = Feed::open(
        &base,
        "/v1/accounts/alice/events",
        &alice,
        &[("last-event-id", &resumed_from)],
    )
    .await;
    assert_eq!(
        resumed.next_entry().await.2["version"]
            .as_u64()
            .map(|v| v > 1),
        Some(true)
    );
    query.stop().await.expect("query API stops");
}

#[tokio::test]
async fn heartbeats_arrive_within_the_configured_interval() {
    let stack = Stack::start().await;
    let _projector = stack.start_projector().await;
    stack.open_funded("alice", "alice", 0).await;
    stack.wait_caught_up(WAIT).await;
    let interval = Duration::from_millis(200);
    let query = query_api_with(&stack, |c| c.feed_heartbeat_ms = 200).await;
    let base = format!("http://{}", query.addr);
    let mut feed = Feed::open(
        &base,
        "/v1/accounts/alice/events?from=now",
        &token("alice", false),
        &[],
    )
    .await;
    for _ in 0..3 {
        // Generous against a busy machine, yet far below the 10 s default: the setting counts.
        match feed.next(interval * 10).await {
            Some(Frame::Comment(text)) => assert_eq!(text, "heartbeat"),
            other => panic!("expected a heartbeat, got {other:?}"),
        }
    }
    query.stop().await.expect("query API stops");
}

#[tokio::test]
async fn a_feed_stays_open_longer_than_the_request_timeout() {
    let stack = Stack::start().await;
    let _projector = stack.start_projector().await;
    stack.open_funded("alice", "alice", 0).await;
    stack.wait_caught_up(WAIT).await;
    let timeout = Duration::from_millis(300);
    let query = query_api_with(&stack, |c| {
        c.request_timeout_ms = 300;
        c.feed_heartbeat_ms = 100;
    })
    .await;
    let base = format!("http://{}", query.addr);
    let mut feed = Feed::open(
        &base,
        "/v1/accounts/alice/events?from=now",
        &token("alice", false),
        &[],
    )
    .await;
    let opened = Instant::now();
    while opened.elapsed() < timeout * 4 {
        assert!(
            matches!(feed.next(WAIT).await, Some(Frame::Comment(_))),
            "only heartbeats while quiet"
        );
    }
    let seq = deposit(&stack, "alice", 3).await;
    assert_eq!(feed.next_entry().await.0, seq);
    query.stop().await.expect("query API stops");
}

#[tokio::test]
async fn feeds_beyond_the_cap_are_refused_with_503_and_retry_after() {
    let stack = Stack::start().await;
    let _projector = stack.start_projector().await;
    stack.open_funded("alice", "alice", 0).await;
    stack.wait_caught_up(WAIT).await;
    let query = query_api_with(&stack, |c| {
        c.feed_subscribers_max = 2;
        c.feed_heartbeat_ms = 100;
    })
    .await;
    let base = format!("http://{}", query.addr);
    let alice = token("alice", false);
    let path = "/v1/accounts/alice/events?from=now";
    let first = Feed::open(&base, path, &alice, &[]).await;
    let _second = Feed::open(&base, path, &alice, &[]).await;
    let refused = Http::new(base.clone())
        .get_with(path, Some(&alice), &[])
        .await;
    refused.assert_problem(503, "feed_full");
    assert!(refused.header("retry-after").is_some());
    // A client that leaves frees its slot (noticed at the latest on the next heartbeat).
    drop(first);
    let deadline = Instant::now() + WAIT;
    loop {
        let response = reqwest::Client::new()
            .get(format!("{base}{path}"))
            .bearer_auth(&alice)
            .send()
            .await
            .expect("sent");
        if response.status().as_u16() == 200 {
            break;
        }
        assert_eq!(response.status().as_u16(), 503);
        assert!(Instant::now() < deadline, "the slot was never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    query.stop().await.expect("query API stops");
}

#[tokio::test]
async fn shutting_down_ends_open_feeds() {
    let stack = Stack::start().await;
    let _projector = stack.start_projector().await;
    stack.open_funded("alice", "alice", 0).await;
    stack.wait_caught_up(WAIT).await;
    let query = query_api_with(&stack, |_| {}).await;
    let base = format!("http://{}", query.addr);
    let mut feed = Feed::open(
        &base,
        "/v1/accounts/alice/events",
        &token("alice", false),
        &[],
    )
    .await;
    assert_eq!(feed.next_entry().await.1, "opening");
    tokio::time::timeout(WAIT, query.stop())
        .await
        .expect("shutdown does not wait on open feeds")
        .expect("query API stops");
    assert!(feed.next(WAIT).await.is_none(), "the stream ended");
}
