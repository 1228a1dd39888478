//! Hold expiry through faults and over long holds: every hold whose time comes is voided once,
//! a crash or an outage only makes it later (ADR 0005, ADR 0031).

use crate::executors::hand_back_times;
use crate::support::{Api, NatsServer, config, decode, journal, open_funded, token};
use async_nats::jetstream::consumer::{Consumer, pull};
use command_api::executors;
use events::Event;
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Holds placed at once by a fault test.
const HOLDS: usize = 20;

/// Holds waiting in the executor for their time are voided, each once, though the journal's
/// server is killed before they are due and comes back only after: the executor decides them
/// when due, and the writer commits the voids once the server is back.
#[tokio::test]
async fn holds_waiting_for_their_time_are_voided_once_across_a_journal_outage() {
    let mut nats = NatsServer::start();
    let api = Api::start(config(&nats.url)).await;
    let consumer = hold_expiry_consumer(&nats).await;
    let (holds, due) = place_holds(&api, 1).await;
    all_delivered(&consumer).await;

    nats.kill().expect("the journal's server killed");
    // Down until well after the holds are due.
    tokio::time::sleep_until((due + Duration::from_millis(1_500)).into()).await;
    nats.restart();

    voided_once(&nats, &holds).await;
    api.app.stop().await.expect("stops");
}

/// Holds a crashed instance was waiting for are voided by the next instance, each once: they
/// come back to it after the consumer's ack wait (15 s), late but not lost.
#[tokio::test]
async fn holds_a_crashed_instance_was_waiting_for_are_voided_once_by_the_next() {
    let nats = NatsServer::start();
    let crashing = Api::start(config(&nats.url)).await;
    let consumer = hold_expiry_consumer(&nats).await;
    let (holds, _) = place_holds(&crashing, 2).await;
    all_delivered(&consumer).await;
    crashing.app.abort();

    let next = Api::start(config(&nats.url)).await;
    voided_once(&nats, &holds).await;
    next.app.stop().await.expect("stops");
}

/// A hold of a month stays placed, and its timer pending, however often the executor saw it
/// not due: every hour or so for a month is hundreds of deliveries, none of them a failure.
/// Here its timer is delivered nine times by hand, then the executor sees it a tenth.
#[tokio::test]
async fn a_months_hold_is_still_timed_after_many_deliveries() {
    let nats = NatsServer::start();
    let shop = placing_only(&nats).await;
    a_months_hold(&shop).await;
    shop.app.stop().await.expect("stops");

    let client = nats.client().await;
    let mut consumer = hold_expiry_consumer(&nats).await;
    hand_back_times(&consumer, executors::DELIVERIES_MAX - 1).await;

    let executing = Api::start(config(&nats.url)).await;
    let since = Instant::now();
    while consumer
        .info()
        .await
        .expect("its info")
        .delivered
        .consumer_sequence
        < executors::DELIVERIES_MAX as u64
    {
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "delivered a tenth time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Time for what the executor does with it: a failure would be journaled before the
    // message is let go.
    tokio::time::sleep(Duration::from_millis(500)).await;
    executing.app.stop().await.expect("stops");

    let failures = journal(&client)
        .await
        .iter()
        .filter(|m| matches!(decode(m).event, Event::JobFailed(_)))
        .count();
    assert_eq!(failures, 0, "the hold's timer was not given up on");
    let info = consumer.info().await.expect("its info");
    assert_eq!(info.num_ack_pending, 1, "the timer is still pending");
}

/// The timer of a hold captured before its expiry is dropped the next time it comes back,
/// not kept pending until the expiry: the holds awaiting expiry, which the consumer's
/// `max_ack_pending` bounds, are those still placed. Here a month's hold is captured, and its
/// timer comes back once.
#[tokio::test]
async fn a_captured_holds_timer_is_dropped_when_it_comes_back() {
    let nats = NatsServer::start();
    let shop = placing_only(&nats).await;
    let hold_id = a_months_hold(&shop).await;
    let captured = shop
        .post(
            &format!("/v1/accounts/olga/holds/{hold_id}/capture"),
            &token("olga", false),
            json!({}),
        )
        .await;
    assert_eq!(captured.status.as_u16(), 201, "{:?}", captured.body);
    shop.app.stop().await.expect("stops");

    let mut consumer = hold_expiry_consumer(&nats).await;
    // The timer seen once already, as an hour ago.
    hand_back_times(&consumer, 1).await;

    let executing = Api::start(config(&nats.url)).await;
    let since = Instant::now();
    loop {
        let info = consumer.info().await.expect("its info").clone();
        if info.num_pending == 0 && info.num_ack_pending == 0 && info.num_redelivered == 0 {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "the captured hold's timer is still pending: {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    executing.app.stop().await.expect("stops");
}

/// A command API without the hold-expiry executor: holds placed through it wait for another.
async fn placing_only(nats: &NatsServer) -> Api {
    let mut placing = config(&nats.url);
    placing.hold_expiry_executor = false;
    Api::start(placing).await
}

/// Opens olga's funded account and places a hold of 30 days on it: its id.
async fn a_months_hold(api: &Api) -> String {
    open_funded(api, "olga", "olga", 1_000).await;
    let placed = api
        .post(
            "/v1/accounts/olga/holds",
            &token("olga", false),
            json!({"amount": 10, "expires_in_s": 30 * 24 * 3600}),
        )
        .await;
    assert_eq!(placed.status.as_u16(), 201, "{:?}", placed.body);
    placed.body["hold_id"]
        .as_str()
        .expect("a hold id")
        .to_owned()
}

/// The hold-expiry executor's consumer, as an instance with the executor defines it.
pub async fn hold_expiry_consumer(nats: &NatsServer) -> Consumer<pull::Config> {
    ledger_nats::consumers::ensure_pull_consumer(
        &nats.client().await,
        "LEDGER",
        ledger_nats::consumers::HOLD_EXPIRY_CONSUMER_JSON,
        None,
    )
    .await
    .expect("the hold-expiry consumer")
}

/// Opens olga's funded account and places [`HOLDS`] holds on it that expire in
/// `expires_in_s`: their ids, and an instant by which every one is due.
pub async fn place_holds(api: &Api, expires_in_s: u64) -> (Vec<String>, Instant) {
    open_funded(api, "olga", "olga", 1_000_000).await;
    let olga = token("olga", false);
    let mut holds = Vec::new();
    for _ in 0..HOLDS {
        let placed = api
            .post(
                "/v1/accounts/olga/holds",
                &olga,
                json!({"amount": 10, "expires_in_s": expires_in_s}),
            )
            .await;
        assert_eq!(placed.status.as_u16(), 201, "{:?}", placed.body);
        holds.push(
            placed.body["hold_id"]
                .as_str()
                .expect("a hold id")
                .to_owned(),
        );
    }
    (holds, Instant::now() + Duration::from_secs(expires_in_s))
}

/// Waits until the executor has received every hold's timer and holds them all, none
/// acknowledged: they wait in it for their time.
pub async fn all_delivered(consumer: &Consumer<pull::Config>) {
    let since = Instant::now();
    loop {
        let info = consumer.clone().info().await.expect("its info").clone();
        if info.num_pending == 0 && info.num_ack_pending == HOLDS {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(5),
            "every timer with the executor: {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (at most 30 s) until the journal holds a `hold_voided` for each of `holds`, then
/// checks that each was voided once.
pub async fn voided_once(nats: &NatsServer, holds: &[String]) {
    let client = nats.client().await;
    let since = Instant::now();
    let voided = loop {
        let mut voided: HashMap<String, usize> = HashMap::new();
        for message in journal(&client).await {
            if message.subject.starts_with("ledger.hold.")
                && let Event::HoldVoided(void) = decode(&message).event
            {
                *voided.entry(void.hold_id.to_string()).or_default() += 1;
            }
        }
        if voided.len() >= holds.len() {
            break voided;
        }
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "{} of {} holds voided within 30 s",
            voided.len(),
            holds.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for hold in holds {
        assert_eq!(voided.get(hold), Some(&1), "hold {hold} voided once");
    }
    assert_eq!(voided.len(), holds.len(), "no other hold voided");
}
