//! The command API on a three-node JetStream cluster: the journal replicated three times, an
//! R1 journal scaled up to R3 in place, writes that survive the death of the stream's leader,
//! and a replica count the server must echo.

use crate::support::*;
use harness::{NatsCluster, Network};
use ledger_nats::stream::Placement;
use serde_json::json;
use std::time::{Duration, Instant};

/// How long a replicated stream may take to elect a leader or bring a replica current.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

fn log_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("log dir")
}

async fn connect(url: &str) -> async_nats::Client {
    ledger_nats::connect(url, "cluster-test")
        .await
        .expect("connect to the cluster")
}

/// Waits until the stream has a leader and every replica is current with it.
async fn settled(client: &async_nats::Client, replicas: usize) -> Placement {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        if let Ok(placement) = NatsCluster::placement(client, STREAM).await
            && placement.all_current(replicas)
        {
            return placement;
        }
        assert!(
            Instant::now() < deadline,
            "the stream did not settle with {replicas} current replicas within {SETTLE_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn deposit(api: &Api, token: &str, account: &str, amount: i64) -> Answer {
    api.post(
        &format!("/v1/accounts/{account}/deposits"),
        token,
        json!({ "amount": amount }),
    )
    .await
}

fn created(answer: Answer) -> Answer {
    assert_eq!(answer.status.as_u16(), 201, "{:?}", answer.body);
    answer
}

/// Retries a deposit until it is accepted (writes pause while a new leader is elected).
async fn deposit_until_accepted(api: &Api, token: &str, account: &str, amount: i64) -> Duration {
    let started = Instant::now();
    loop {
        let answer = deposit(api, token, account, amount).await;
        if answer.status.is_success() {
            return started.elapsed();
        }
        assert!(
            answer.status.is_server_error() || answer.status.as_u16() == 409,
            "a deposit during an election is refused only as retryable: {answer:?}"
        );
        assert!(
            started.elapsed() < SETTLE_TIMEOUT,
            "writes did not resume within {SETTLE_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_r1_journal_is_scaled_up_to_r3_in_place_and_survives_its_leaders_death() {
    let logs = log_dir();
    let mut cluster = NatsCluster::start(Network::Loopback, logs.path()).expect("cluster");
    let admin = token("admin", true);

    // A single-replica journal with money in it, as a single-node deployment has.
    let mut r1 = config(&cluster.url());
    r1.replicas = 1;
    let api = Api::start(r1).await;
    open_funded(&api, "alice", "alice", 0).await;
    for _ in 0..10 {
        created(deposit(&api, &admin, "alice", 100).await);
    }
    api.app.stop().await.expect("stops");

    // Started with LEDGER_REPLICAS=3, the command API scales the same stream up.
    let mut r3 = config(&cluster.url());
    r3.replicas = 3;
    let api = Api::start(r3).await;
    let client = connect(&cluster.url()).await;
    let placement = settled(&client, 3).await;
    assert!(placement.last_seq >= 11, "{placement:?}");

    // Every node holds the whole journal. A node's own report may trail the leader's view of
    // it ("current") for a moment, so it is read until it agrees or the time is up.
    let http = reqwest::Client::new();
    let started = Instant::now();
    let states = loop {
        let states = cluster.replica_states(&http, STREAM).await;
        let agree = states
            .iter()
            .all(|(_, state)| state.map(|(_, last)| last) == Some(placement.last_seq));
        if agree || started.elapsed() > SETTLE_TIMEOUT {
            break states;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for (node, state) in &states {
        assert_eq!(
            state.map(|(_, last)| last),
            Some(placement.last_seq),
            "{node} holds the journal up to the leader's last sequence: {states:?}"
        );
    }

    // The leader dies; the two survivors elect a new one and keep the money.
    let leader = placement.leader.clone().expect("a leader");
    let leader_index = cluster.index_of(&leader).expect("leader is a node");
    cluster.kill(leader_index).expect("kill the leader");
    deposit_until_accepted(&api, &admin, "alice", 100).await;
    let after = settled_without(&client, &leader).await;
    assert_ne!(after.leader.as_deref(), Some(leader.as_str()));
    let answer = created(deposit(&api, &admin, "alice", 1).await);
    assert_eq!(answer.body["balance"], 1_101, "{:?}", answer.body);

    // The old leader comes back and catches up.
    cluster.start_node(leader_index).expect("restart");
    let healed = settled(&client, 3).await;
    assert!(healed.last_seq >= placement.last_seq + 2);
    api.app.stop().await.expect("stops");
}

/// Waits until a leader other than `gone` is elected.
async fn settled_without(client: &async_nats::Client, gone: &str) -> Placement {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        if let Ok(placement) = NatsCluster::placement(client, STREAM).await
            && placement.leader.as_deref().is_some_and(|l| l != gone)
        {
            return placement;
        }
        assert!(
            Instant::now() < deadline,
            "no new leader within {SETTLE_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_command_api_refuses_to_lower_the_journals_replicas() {
    let logs = log_dir();
    let cluster = NatsCluster::start(Network::Loopback, logs.path()).expect("cluster");
    let mut r3 = config(&cluster.url());
    r3.replicas = 3;
    let api = Api::start(r3).await;
    api.app.stop().await.expect("stops");

    let mut r1 = config(&cluster.url());
    r1.replicas = 1;
    let error = command_api::start(r1)
        .await
        .expect_err("a lower replica count must be refused");
    let message = format!("{error:#}");
    assert!(message.contains("never lowers"), "{message}");
    let client = connect(&cluster.url()).await;
    let placement = settled(&client, 3).await;
    assert_eq!(placement.replicas.len(), 2, "still three copies");
}

#[tokio::test]
async fn the_command_api_waits_at_start_for_a_cluster_without_its_quorum() {
    let logs = log_dir();
    let mut cluster = NatsCluster::start(Network::Loopback, logs.path()).expect("cluster");
    // One node of three: JetStream has no meta leader and cannot create the stream.
    cluster.kill(1).expect("kill node 1");
    cluster.kill(2).expect("kill node 2");
    let mut r3 = config(&cluster.url());
    r3.replicas = 3;
    let starting = tokio::spawn(command_api::start(r3));
    // Longer than one JetStream request may take (5 s): a start-up that gave up on the first
    // unanswered request would have ended by now.
    tokio::time::sleep(Duration::from_millis(
        ledger_nats::server::REQUEST_TIMEOUT_MS + 1_000,
    ))
    .await;
    assert!(
        !starting.is_finished(),
        "start-up ended without a quorum: {:?}",
        starting.await
    );
    cluster.start_nodes(&[1, 2]).expect("the quorum is back");
    let app = starting
        .await
        .expect("the start-up task")
        .expect("the command API starts once the quorum is back");
    let api = Api {
        http: Http::new(format!("http://{}", app.addr)),
        app,
    };
    // It writes, to a journal kept three times.
    open_funded(&api, "q", "bank", 5).await;
    let client = connect(&cluster.url()).await;
    assert_eq!(settled(&client, 3).await.replicas.len(), 2, "three copies");
    api.app.stop().await.expect("stops");
}

#[tokio::test]
async fn a_single_server_cannot_give_three_replicas_and_says_so() {
    let nats = NatsServer::start();
    let mut r3 = config(&nats.url);
    r3.replicas = 3;
    let error = command_api::start(r3)
        .await
        .expect_err("one server cannot keep three copies");
    let message = format!("{error:#}");
    assert!(message.to_lowercase().contains("replica"), "{message}");
}

#[tokio::test]
async fn two_command_apis_on_the_cluster_write_to_the_same_accounts_without_losing_money() {
    let logs = log_dir();
    let cluster = NatsCluster::start(Network::Loopback, logs.path()).expect("cluster");
    let mut first = config(&cluster.url_as("command-api"));
    first.replicas = 3;
    let a = Api::start(first.clone()).await;
    let b = Api::start(first).await;
    let admin = token("admin", true);
    open_funded(&a, "p", "bank", 1_000).await;
    open_funded(&a, "q", "bank", 0).await;
    // Both instances move money between the same two accounts at once.
    let transfer = |api: &Api, from: &'static str, to: &'static str| {
        let (http, admin) = (api.http.clone(), admin.clone());
        async move {
            let mut accepted = 0;
            for _ in 0..20 {
                let answer = http
                    .post(
                        "/v1/transfers",
                        &admin,
                        json!({ "from_account_id": from, "to_account_id": to, "amount": 7 }),
                    )
                    .await;
                if answer.status.as_u16() == 201 {
                    accepted += 1;
                }
            }
            accepted
        }
    };
    let (ab, ba) = tokio::join!(transfer(&a, "p", "q"), transfer(&b, "q", "p"));
    let client = connect(&cluster.url()).await;
    let last = ledger_nats::direct::last_for_subjects(
        &client,
        STREAM,
        &["ledger.account.p".into(), "ledger.account.q".into()],
    )
    .await
    .expect("states");
    let balance_of = |subject: &str| {
        last.iter()
            .find(|m| m.subject == subject)
            .and_then(|m| decode(m).event.account_state().map(|s| s.balance))
            .expect("a balance")
    };
    let (p, q) = (
        balance_of("ledger.account.p"),
        balance_of("ledger.account.q"),
    );
    let balances = [p, q];
    assert_eq!(balances.iter().sum::<i64>(), 1_000, "{balances:?}");
    assert!(ab + ba > 0, "some transfers were accepted");
    assert_eq!(
        p,
        1_000 - 7 * ab + 7 * ba,
        "p moved by exactly the accepted transfers"
    );
    a.app.stop().await.expect("stops");
    b.app.stop().await.expect("stops");
}
