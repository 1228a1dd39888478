//! Several command APIs with advertised addresses elect one writer and forward their writes
//! to it (ADR 0028).

use crate::hold_expiry::{all_delivered, hold_expiry_consumer, place_holds, voided_once};
use crate::support::{Answer, Api, NatsServer, config, open_funded, token};
use command_api::Config;
use command_api::election::Role;
use command_api::writer::WriterStats;
use harness::{NatsCluster, Network};
use serde_json::json;
use std::time::{Duration, Instant};

/// An instance taking part in the election, on a port known before it starts.
fn electing(nats_url: &str) -> Config {
    let mut config = config(nats_url);
    config.port = harness::free_port().expect("a free port");
    config.advertise_url = Some(format!("http://127.0.0.1:{}", config.port));
    config.writer_lease_ttl_ms = 1_500;
    config
}

async fn role_becomes(api: &Api, wanted: impl Fn(&Role) -> bool, what: &str) -> Role {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let role = api
            .app
            .role()
            .expect("the instance takes part in the election");
        if wanted(&role) {
            return role;
        }
        assert!(
            Instant::now() < deadline,
            "{what} within 10 s; now {role:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two electing instances: the first started holds the lease, the second forwards to it.
async fn writer_and_forwarder(nats: &NatsServer) -> (Api, Api) {
    writer_and_forwarder_with(nats, |_| {}).await
}

/// The same, each configured further by `adjust`.
async fn writer_and_forwarder_with(nats: &NatsServer, adjust: impl Fn(&mut Config)) -> (Api, Api) {
    let url = nats.url_as("command-api");
    let electing = |url: &str| {
        let mut config = electing(url);
        adjust(&mut config);
        config
    };
    let a = Api::start(electing(&url)).await;
    role_becomes(
        &a,
        |r| *r == Role::Writer,
        "the first instance holds the lease",
    )
    .await;
    let b = Api::start(electing(&url)).await;
    let forwarding_to =
        role_becomes(&b, |r| matches!(r, Role::Forward(_)), "the second forwards").await;
    assert_eq!(
        forwarding_to,
        Role::Forward(format!("http://127.0.0.1:{}", a.app.addr.port()).into())
    );
    (a, b)
}

/// The writer stops, giving the lease up, and the other instance takes it.
async fn hand_over(writer: Api, other: &Api) {
    writer.app.stop().await.expect("the writer stops");
    role_becomes(
        other,
        |r| *r == Role::Writer,
        "the second instance takes the lease",
    )
    .await;
}

/// The writer lease's bucket, as a client of the NATS at `url` sees it.
async fn lease_bucket(url: &str) -> async_nats::jetstream::kv::Store {
    let client = ledger_nats::connect(url, "instances-test")
        .await
        .expect("connect");
    async_nats::jetstream::new(client)
        .get_key_value(command_api::election::BUCKET)
        .await
        .expect("the lease's bucket")
}

async fn transfer(api: &Api, token: &str, from: &str, to: &str, amount: i64) -> Answer {
    let body = json!({"from_account_id": from, "to_account_id": to, "amount": amount});
    api.post("/v1/transfers", token, body).await
}

fn committed(api: &Api) -> u64 {
    WriterStats::get(&api.app.stats.commands)
}

#[tokio::test]
async fn writes_sent_to_any_instance_are_committed_by_the_elected_one_which_another_replaces_when_it_stops()
 {
    let nats = NatsServer::start();
    let (a, b) = writer_and_forwarder(&nats).await;

    open_funded(&b, "f-1", "fay", 1_000).await;
    open_funded(&b, "f-2", "fay", 0).await;
    let fay = token("fay", false);
    let before = (committed(&a), committed(&b));
    for _ in 0..5 {
        let answer = transfer(&b, &fay, "f-1", "f-2", 10).await;
        assert_eq!(answer.status.as_u16(), 201, "{:?}", answer.body);
        assert!(
            answer.headers.contains_key("ledger-seq"),
            "{:?}",
            answer.headers
        );
        assert!(answer.body["from"]["balance"].is_i64(), "{:?}", answer.body);
    }
    assert_eq!(
        committed(&a) - before.0,
        5,
        "the writer committed the transfers"
    );
    assert_eq!(
        committed(&b),
        before.1,
        "the second instance committed nothing itself"
    );
    assert_eq!(
        b.app
            .stats
            .batches
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );

    // A refusal comes back as the writer gave it.
    let refused = transfer(&b, &fay, "f-1", "f-2", 1_000_000).await;
    assert_eq!(refused.status.as_u16(), 422, "{:?}", refused.body);
    assert_eq!(refused.body["code"], "insufficient_funds");

    // An idempotent request repeated through the other instance replays the same answer.
    let body = json!({"from_account_id": "f-1", "to_account_id": "f-2", "amount": 3}).to_string();
    let key = [("idempotency-key", "forwarded-once")];
    let first = b
        .post_with("/v1/transfers", Some(&fay), &key, Some(body.clone()))
        .await;
    let again = a
        .post_with("/v1/transfers", Some(&fay), &key, Some(body))
        .await;
    assert_eq!(first.status.as_u16(), 201, "{:?}", first.body);
    assert_eq!(again.status.as_u16(), 201, "{:?}", again.body);
    assert_eq!(first.body["transfer_id"], again.body["transfer_id"]);
    assert_eq!(
        again
            .headers
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap_or_default()),
        Some("true")
    );

    // The writer stops: it gives the lease up and the other instance writes itself.
    hand_over(a, &b).await;
    let answer = transfer(&b, &fay, "f-1", "f-2", 10).await;
    assert_eq!(answer.status.as_u16(), 201, "{:?}", answer.body);
    assert_eq!(
        committed(&b) - before.1,
        1,
        "now the second instance commits"
    );
    b.app.stop().await.expect("stops");
}

async fn set_balances(api: &Api, token: &str, items: serde_json::Value) -> Answer {
    let authorization = format!("Bearer {token}");
    api.http
        .send(
            reqwest::Method::PUT,
            "/v1/balances",
            Some(&authorization),
            Some(items.to_string()),
        )
        .await
}

/// Waits until `count` (commands committed, by one writer or several) reaches `wanted`, for
/// at most `within` from `since`.
async fn committed_reaches(
    count: impl Fn() -> u64,
    wanted: u64,
    since: Instant,
    within: Duration,
    what: &str,
) {
    while count() < wanted {
        assert!(
            since.elapsed() < within,
            "{what} within {within:?}: {} of {wanted} commands",
            count()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn asynchronous_work_is_executed_by_the_elected_writer_alone() {
    let nats = NatsServer::start();
    let (a, b) = writer_and_forwarder(&nats).await;
    let admin = token("ops", true);

    // Balance batches submitted through the forwarding instance: journaled by the writer,
    // then their items executed by the writer's executor, not by the other instance's (whose
    // consumer shares the work when both pull).
    let before = (committed(&a), committed(&b));
    let batches = 20;
    for i in 0..batches {
        let submitted = set_balances(&b, &admin, json!({ format!("e-{i}"): 5 })).await;
        assert_eq!(submitted.status.as_u16(), 202, "{:?}", submitted.body);
    }
    // Each batch is one command to journal it and at least one to execute its item.
    committed_reaches(
        || committed(&a) + committed(&b),
        before.0 + before.1 + 2 * batches,
        Instant::now(),
        Duration::from_secs(15),
        "every batch executed",
    )
    .await;
    assert_eq!(
        committed(&b),
        before.1,
        "the forwarding instance's executors pulled nothing"
    );

    // The writer stops: the other instance takes the lease and its executors pull again.
    hand_over(a, &b).await;
    let since = committed(&b);
    let items = json!({"e-4": 11});
    let submitted = set_balances(&b, &admin, items).await;
    assert_eq!(submitted.status.as_u16(), 202, "{:?}", submitted.body);
    committed_reaches(
        || committed(&b),
        since + 2,
        Instant::now(),
        Duration::from_secs(15),
        "the new writer executes the batch's item",
    )
    .await;
    b.app.stop().await.expect("stops");
}

#[tokio::test]
async fn a_writer_that_stops_hands_the_work_it_pulled_but_had_not_begun_to_the_next_one_at_once() {
    let nats = NatsServer::start();
    // An ack wait the test outlasts: work left to it would not be done within the deadline.
    let (a, b) = writer_and_forwarder_with(&nats, |c| c.batch_ack_wait_ms = Some(60_000)).await;
    let before = (committed(&a), committed(&b));
    let a_stats = std::sync::Arc::clone(&a.app.stats);

    // Forty balance batches of one chunk each, journaled at once: the writer's executor
    // begins eight, has more pulled and waiting, and is stopped with them.
    let batches = forty_batches(&a).await;
    let stopped = Instant::now();
    hand_over(a, &b).await;

    the_next_writer_finishes(
        &a_stats,
        b,
        before,
        batches,
        stopped,
        Duration::from_secs(20),
    )
    .await;
}

/// Forty balance batches of one chunk each, journaled at once through `api`.
async fn forty_batches(api: &Api) -> u64 {
    let admin = token("ops", true);
    let batches = 40;
    let items = events::batch::CHUNK_LEN_MAX;
    let submissions = (0..batches).map(|i| {
        let body: serde_json::Map<String, serde_json::Value> = (0..items)
            .map(|j| (format!("h-{i}-{j}"), json!(7)))
            .collect();
        set_balances(api, &admin, serde_json::Value::Object(body))
    });
    for submitted in futures::future::join_all(submissions).await {
        assert_eq!(submitted.status.as_u16(), 202, "{:?}", submitted.body);
    }
    batches
}

/// After the first writer (`first`, its counts) went away with `batches` of
/// [`forty_batches`] submitted: every batch is applied within `within` of `since` — each is a
/// command to journal it and one to apply its single part — and the next writer `next`
/// applied some of them, else the test showed nothing. Then `next` stops.
async fn the_next_writer_finishes(
    first: &WriterStats,
    next: Api,
    before: (u64, u64),
    batches: u64,
    since: Instant,
    within: Duration,
) {
    committed_reaches(
        || WriterStats::get(&first.commands) + committed(&next),
        before.0 + before.1 + 2 * batches,
        since,
        within,
        "every batch applied after the first writer went away",
    )
    .await;
    assert!(
        committed(&next) > before.1,
        "the first writer left batches to the next one (else this test shows nothing)"
    );
    next.app.stop().await.expect("stops");
}

/// Holds the writer was waiting for go back to JetStream with the rest of their wait when it
/// hands over, and the next writer voids each once at its time, not after the consumer's ack
/// wait (15 s).
#[tokio::test]
async fn holds_a_writer_was_waiting_for_are_voided_on_time_by_the_next_after_it_hands_over() {
    let nats = NatsServer::start();
    let (a, b) = writer_and_forwarder(&nats).await;
    let consumer = hold_expiry_consumer(&nats).await;
    let (holds, due) = place_holds(&b, 3).await;
    all_delivered(&consumer).await;
    hand_over(a, &b).await;
    assert!(
        Instant::now() < due,
        "handed over before the holds were due (else this test shows nothing)"
    );

    voided_once(&nats, &holds).await;
    assert!(
        Instant::now() < due + Duration::from_secs(5),
        "voided at their time, not after their ack wait"
    );
    b.app.stop().await.expect("stops");
}

#[tokio::test]
async fn work_a_crashed_writer_was_deciding_is_done_by_the_next_one_within_the_consumers_ack_wait()
{
    let nats = NatsServer::start();
    let (a, b) = writer_and_forwarder(&nats).await;
    let before = (committed(&a), committed(&b));
    let a_stats = std::sync::Arc::clone(&a.app.stats);
    let batches = forty_batches(&a).await;
    let crashed = Instant::now();
    a.app.abort();

    // The lease lapses (1.5 s here), and the messages the crashed executor was deciding come
    // back after the balance batches' ack wait (nats/balance-batches-consumer.json, 15 s).
    role_becomes(
        &b,
        |r| *r == Role::Writer,
        "the second instance takes the lapsed lease",
    )
    .await;
    the_next_writer_finishes(
        &a_stats,
        b,
        before,
        batches,
        crashed,
        Duration::from_secs(30),
    )
    .await;
}

#[tokio::test]
async fn an_unreachable_writer_leaves_the_decision_to_the_instance_asked_until_its_lease_lapses() {
    let nats = NatsServer::start();
    let (a, b) = writer_and_forwarder(&nats).await;
    open_funded(&b, "u-1", "uma", 100).await;
    open_funded(&b, "u-2", "uma", 0).await;

    // A crash: nothing is given up, the lease lapses on its own.
    a.app.abort();
    let uma = token("uma", false);
    let before = committed(&b);
    let answer = transfer(&b, &uma, "u-1", "u-2", 10).await;
    assert_eq!(answer.status.as_u16(), 201, "{:?}", answer.body);
    assert_eq!(committed(&b) - before, 1, "decided where it was asked");
    let started = Instant::now();
    role_becomes(
        &b,
        |r| *r == Role::Writer,
        "the second instance takes the lapsed lease",
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "taken {:?} after the crash",
        started.elapsed()
    );
    b.app.stop().await.expect("stops");
}

#[tokio::test]
async fn the_lease_follows_the_journals_replicas_and_the_configured_ttl_across_restarts() {
    let logs = tempfile::tempdir().expect("log dir");
    let cluster = NatsCluster::start(Network::Loopback, logs.path()).expect("cluster");
    let url = cluster.url_as("command-api");
    let the_lease = || async {
        let client = ledger_nats::connect(&cluster.url(), "instances-test")
            .await
            .expect("connect");
        let mut stream = async_nats::jetstream::new(client)
            .get_stream(format!("KV_{}", command_api::election::BUCKET))
            .await
            .expect("the lease's stream");
        stream.info().await.expect("its info").config.clone()
    };
    let replicas_of_the_lease = || async { the_lease().await.num_replicas };

    // A single-node deployment: one replica of the journal, and of the lease.
    let mut single = electing(&url);
    single.replicas = 1;
    let api = Api::start(single).await;
    role_becomes(&api, |r| *r == Role::Writer, "the instance holds the lease").await;
    assert_eq!(replicas_of_the_lease().await, 1);
    api.app.stop().await.expect("stops");

    // Started again with LEDGER_REPLICAS=3, the instance scales the lease's bucket up too.
    let mut replicated = electing(&url);
    replicated.replicas = 3;
    let api = Api::start(replicated).await;
    role_becomes(&api, |r| *r == Role::Writer, "the instance holds the lease").await;
    assert_eq!(replicas_of_the_lease().await, 3);
    api.app.stop().await.expect("stops");

    // Started with a longer WRITER_LEASE_TTL_MS, the instance makes the lease live as long:
    // renewed every third of 6 s, entries that lived 1.5 s would lapse between renewals.
    let mut longer = electing(&url);
    longer.replicas = 3;
    longer.writer_lease_ttl_ms = 6_000;
    let api = Api::start(longer).await;
    role_becomes(&api, |r| *r == Role::Writer, "the instance holds the lease").await;
    let lease = the_lease().await;
    assert_eq!(lease.max_age, Duration::from_secs(6));
    assert_eq!(lease.num_replicas, 3, "never fewer replicas");
    let bucket = lease_bucket(&cluster.url()).await;
    let held_since = Instant::now();
    while held_since.elapsed() < Duration::from_secs(5) {
        let entry = bucket.entry("writer").await.expect("the lease is read");
        assert!(
            entry.is_some_and(|e| e.operation == async_nats::jetstream::kv::Operation::Put),
            "the lease is there between renewals, {:?} after it was taken",
            held_since.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    api.app.stop().await.expect("stops");

    // And shorter again, below the window for duplicates the bucket had.
    let mut shorter = electing(&url);
    shorter.replicas = 3;
    shorter.writer_lease_ttl_ms = 600;
    let api = Api::start(shorter).await;
    role_becomes(&api, |r| *r == Role::Writer, "the instance holds the lease").await;
    assert_eq!(the_lease().await.max_age, Duration::from_millis(600));
    api.app.stop().await.expect("stops");
}

/// What a stand-in writer does with the requests forwarded to it.
#[derive(Clone, Copy)]
enum StandIn {
    /// Reads the request and closes the connection without a word.
    Silent,
    /// Begins a `201` answer and closes the connection halfway through its body.
    CutOff,
}

/// A writer that receives forwarded requests and never answers them whole: whether they were
/// committed is not known to the instance that forwarded them. Returns its address.
async fn stand_in_writer(behaviour: std::sync::Arc<std::sync::Mutex<StandIn>>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let behaviour = *behaviour.lock().expect("not poisoned");
            tokio::spawn(async move {
                // The whole request: headers, then as many bytes as they announce.
                let mut request = Vec::new();
                let mut buffer = [0_u8; 4096];
                loop {
                    let Ok(n) = socket.read(&mut buffer).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buffer[..n]);
                    let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                if let StandIn::CutOff = behaviour {
                    let head = "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\n\
                                content-length: 1000\r\n\r\n{\"transfer_id\":";
                    let _ = socket.write_all(head.as_bytes()).await;
                }
                // Dropped: the connection closes.
            });
        }
    });
    url
}

#[tokio::test]
async fn a_forwarded_request_whose_answer_is_lost_is_a_503_and_its_repeat_with_the_key_has_one_effect()
 {
    let nats = NatsServer::start();
    let b = Api::start(electing(&nats.url_as("command-api"))).await;
    role_becomes(&b, |r| *r == Role::Writer, "the instance holds the lease").await;
    open_funded(&b, "l-1", "lou", 100).await;
    open_funded(&b, "l-2", "lou", 0).await;

    // Another holder takes the lease (as after a lapse) and keeps renewing it.
    let behaviour = std::sync::Arc::new(std::sync::Mutex::new(StandIn::Silent));
    let stand_in = stand_in_writer(std::sync::Arc::clone(&behaviour)).await;
    let bucket = lease_bucket(&nats.url_as("command-api")).await;
    let lease = json!({"instance": "stand-in", "url": stand_in}).to_string();
    let (renewing, mut stop_renewing) = tokio::sync::watch::channel(true);
    let renewals = tokio::spawn(async move {
        while *stop_renewing.borrow() {
            bucket
                .put("writer", lease.clone().into())
                .await
                .expect("the stand-in's lease is written");
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(300)) => {}
                _ = stop_renewing.changed() => {}
            }
        }
    });
    let forwarding = role_becomes(
        &b,
        |r| matches!(r, Role::Forward(_)),
        "the instance forwards",
    )
    .await;
    assert_eq!(forwarding, Role::Forward(stand_in.clone().into()));

    let lou = token("lou", false);
    let body = json!({"from_account_id": "l-1", "to_account_id": "l-2", "amount": 30}).to_string();
    let key = [("idempotency-key", "lost-answer")];
    let before = committed(&b);
    for (behaviour_now, what) in [
        (StandIn::Silent, "no answer"),
        (StandIn::CutOff, "an answer cut off"),
    ] {
        *behaviour.lock().expect("not poisoned") = behaviour_now;
        let lost = b
            .post_with("/v1/transfers", Some(&lou), &key, Some(body.clone()))
            .await;
        assert_eq!(lost.status.as_u16(), 503, "{what}: {:?}", lost.body);
        assert_eq!(lost.body["code"], "unavailable", "{what}: {:?}", lost.body);
        assert_eq!(
            lost.headers
                .get("retry-after")
                .map(|v| v.to_str().unwrap_or_default()),
            Some("1"),
            "{what}"
        );
        assert_eq!(committed(&b), before, "{what}: nothing decided here");
    }

    // The stand-in stops renewing; its lease lapses and the instance takes it. The repeat with
    // the same key settles the request: it was never committed, so it is now, once.
    let _ = renewing.send(false);
    renewals.await.expect("renewals end");
    role_becomes(
        &b,
        |r| *r == Role::Writer,
        "the instance takes the lapsed lease",
    )
    .await;
    let settled = b
        .post_with("/v1/transfers", Some(&lou), &key, Some(body.clone()))
        .await;
    assert_eq!(settled.status.as_u16(), 201, "{:?}", settled.body);
    assert_eq!(settled.body["from"]["balance"], 70, "{:?}", settled.body);
    let again = b
        .post_with("/v1/transfers", Some(&lou), &key, Some(body))
        .await;
    assert_eq!(again.status.as_u16(), 201, "{:?}", again.body);
    assert_eq!(again.body["transfer_id"], settled.body["transfer_id"]);
    assert_eq!(
        again.body["from"]["balance"], 70,
        "one effect: {:?}",
        again.body
    );
    b.app.stop().await.expect("stops");
}
