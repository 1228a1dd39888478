//! The executors' contract with JetStream, on a consumer of the test's own.

use crate::support::{Api, NatsServer, config, decode, journal, open_funded, start_api, token};
use async_nats::jetstream::consumer::pull;
use command_api::Config;
use command_api::executors::{self, Verdict};
use command_api::writer::WriterStats;
use events::Event;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A message decided for longer than its ack wait is not delivered again meanwhile: the
/// executor tells JetStream that work on it goes on. So the ack wait can stay short — it is
/// how long a message a crashed instance held waits for another.
#[tokio::test]
async fn a_message_decided_for_longer_than_its_ack_wait_is_not_delivered_twice() {
    let nats = NatsServer::start();
    let api = start_api(&nats.url_as("command-api")).await;
    let client = ledger_nats::connect(&nats.url_as("command-api"), "executors-test")
        .await
        .expect("connect");
    let js = async_nats::jetstream::new(client);
    let subject = "ledger.idem.executor-progress";
    let ack_wait = Duration::from_millis(300);
    let consumer = js
        .get_stream("LEDGER")
        .await
        .expect("the journal")
        .create_consumer(pull::Config {
            durable_name: Some("executor-progress".to_owned()),
            filter_subject: subject.to_owned(),
            ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
            ack_wait,
            ..Default::default()
        })
        .await
        .expect("a consumer");
    js.publish(subject, "{}".into())
        .await
        .expect("published")
        .await
        .expect("stored");

    // Each delivery is decided for four ack waits.
    let deliveries = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&deliveries);
    let process = move |_writer, _payload, _delivered| {
        let counted = Arc::clone(&counted);
        async move {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(4 * ack_wait).await;
            Verdict::Ack
        }
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let executor = tokio::spawn(executors::consume(
        "progress-test",
        consumer,
        1,
        api.app.writer().clone(),
        None,
        stopped,
        process,
    ));
    tokio::time::sleep(8 * ack_wait).await;
    let _ = stop.send(true);
    executor.await.expect("the executor ends");
    assert_eq!(
        deliveries.load(Ordering::SeqCst),
        1,
        "delivered once, and acknowledged"
    );
    api.app.stop().await.expect("stops");
}

/// A deployment started before with another ack wait gets the definition's at its next start:
/// the consumers are brought in line, not only created.
#[tokio::test]
async fn a_consumers_ack_wait_follows_its_definition_across_restarts() {
    let nats = NatsServer::start();
    let url = nats.url_as("command-api");
    let ack_wait_now = || async {
        let client = ledger_nats::connect(&url, "executors-test")
            .await
            .expect("connect");
        let mut consumer: async_nats::jetstream::consumer::PullConsumer =
            async_nats::jetstream::new(client)
                .get_consumer_from_stream("balance-batches", "LEDGER")
                .await
                .expect("the balance batches' consumer");
        consumer.info().await.expect("its info").config.ack_wait
    };
    let mut earlier = crate::support::config(&url);
    earlier.batch_ack_wait_ms = Some(60_000);
    let api = crate::support::Api::start(earlier).await;
    assert_eq!(ack_wait_now().await, Duration::from_secs(60));
    api.app.stop().await.expect("stops");

    let api = start_api(&url).await;
    assert_eq!(ack_wait_now().await, Duration::from_secs(15));
    api.app.stop().await.expect("stops");
}

/// Orders waiting to be paid are paid in a few commits: the payment executor decides as many
/// payments at once as a group commit carries, not a handful per commit. 400 orders placed
/// while no executor runs; an instance with the executors then pays them all.
#[tokio::test]
async fn a_backlog_of_orders_is_paid_in_a_few_group_commits() {
    let nats = NatsServer::start();
    let mut placing = config(&nats.url);
    placing.payment_executor = false;
    leave_a_backlog(
        placing,
        "/v1/orders",
        202,
        |i| json!({"account_id": "olga", "amount": 1 + i as i64}),
    )
    .await;
    executed_in_a_few_commits(&nats, "ledger.order.", "orders paid", |e| {
        matches!(e, Event::OrderPaid(_))
    })
    .await;
}

/// Holds that come due together are voided in a few commits, as payments are paid. 400 holds
/// of one second placed while no executor runs; once they are due, an instance with the
/// executors voids them all.
#[tokio::test]
async fn holds_due_together_are_voided_in_a_few_group_commits() {
    let nats = NatsServer::start();
    let mut placing = config(&nats.url);
    placing.hold_expiry_executor = false;
    leave_a_backlog(
        placing,
        "/v1/accounts/olga/holds",
        201,
        |_| json!({"amount": 10, "expires_in_s": 1}),
    )
    .await;
    // Every hold is due before the executor sees the first.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    executed_in_a_few_commits(&nats, "ledger.hold.", "holds voided", |e| {
        matches!(e, Event::HoldVoided(_))
    })
    .await;
}

/// Starts a command API configured as `placing` (an executor off), opens olga's funded
/// account, sends [`BACKLOG`] requests at once to `path` as olga (the i-th with `body(i)`),
/// each answered `status`, and stops the API: work left to the executor it lacked.
async fn leave_a_backlog(placing: Config, path: &str, status: u16, body: fn(usize) -> Value) {
    let shop = Api::start(placing).await;
    open_funded(&shop, "olga", "olga", 1_000_000).await;
    let olga = token("olga", false);
    let answers =
        futures::future::join_all((0..BACKLOG).map(|i| shop.post(path, &olga, body(i)))).await;
    for answer in &answers {
        assert_eq!(answer.status.as_u16(), status, "{:?}", answer.body);
    }
    shop.app.stop().await.expect("stops");
}

/// The work a backlog test leaves to the executors.
const BACKLOG: usize = 400;

/// Most commits a backlog may take: eight at a time, as the executors once decided such
/// work, took at least BACKLOG / 8 = 50 (61 for the orders).
const BACKLOG_COMMITS_MAX: u64 = 20;

/// Starts a command API with its executors on `nats`, waits until the journal holds
/// [`BACKLOG`] events that are `done` on subjects that begin with `subjects` (an event of a
/// hold is journaled on its account's subject too), and checks that its writer committed them
/// in at most [`BACKLOG_COMMITS_MAX`] batches.
async fn executed_in_a_few_commits(
    nats: &NatsServer,
    subjects: &str,
    what: &str,
    done: fn(&Event) -> bool,
) {
    let executing = Api::start(config(&nats.url)).await;
    let client = nats.client().await;
    let since = Instant::now();
    loop {
        let count = journal(&client)
            .await
            .iter()
            .filter(|m| m.subject.starts_with(subjects) && done(&decode(m).event))
            .count();
        assert!(count <= BACKLOG, "{count} {what}, of {BACKLOG}");
        if count == BACKLOG {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "{count} of {BACKLOG} {what} within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let commits = WriterStats::get(&executing.app.writer().stats().batches);
    executing.app.stop().await.expect("stops");
    assert!(
        commits <= BACKLOG_COMMITS_MAX,
        "{BACKLOG} {what} took {commits} commits: the executor decides too few at once"
    );
}
