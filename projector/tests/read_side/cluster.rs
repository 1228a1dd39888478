//! The read side on a three-node cluster: when the node holding the projector's consumer (an
//! R1 ephemeral on one node) dies, the projector moves to a survivor and the read model keeps
//! up with the journal; a replica that falls behind shows in the projector's metrics.

use crate::support::*;
use harness::{NatsCluster, Network};
use serde_json::json;
use std::time::{Duration, Instant};

/// Generous: writes pause for an election (4–9 s) when the node also led the stream; the read
/// side must follow within seconds of them. Before the projector replaced a silent consumer
/// itself, it waited out the client's pull time-outs and re-creation back-offs (20–45 s).
const VISIBLE_WITHIN: Duration = Duration::from_secs(25);

#[tokio::test]
async fn the_read_model_keeps_up_when_the_node_holding_the_projectors_consumer_dies() {
    let logs = tempfile::tempdir().expect("log dir");
    let mut cluster = NatsCluster::start(Network::Loopback, logs.path()).expect("cluster");
    let db = TestDatabase::create().await;
    let command = r3_command_api(&cluster).await;
    let commands = Http::new(format!("http://{}", command.addr));
    let query = query_api::start(query_config(&db.url))
        .await
        .expect("query API starts");
    let queries = Http::new(format!("http://{}", query.addr));
    let projector = projector::start(projector::Config::local(&cluster.url(), &db.url))
        .await
        .expect("projector starts");
    let admin = token("root", true);
    let opened = commands
        .post("/v1/accounts", &admin, json!({"account_id": "alice"}))
        .await;
    assert!(opened.status.is_success(), "{:?}", opened.body);
    let seq = seq_of(&opened);
    assert_eq!(balance_at(&queries, &admin, seq).await.status.as_u16(), 200);

    // The node hosting the projector's ordered consumer (the one consumer that is not a
    // durable of the executors).
    let client = ledger_nats::connect(&cluster.url(), "cluster-test")
        .await
        .expect("connect");
    let host = consumer_host(&client).await;
    let index = cluster.index_of(&host).expect("a node");
    cluster.kill(index).expect("kill the node");
    let killed_at = Instant::now();

    let seq = loop {
        let answer = commands
            .post("/v1/accounts/alice/deposits", &admin, json!({"amount": 5}))
            .await;
        if answer.status.as_u16() == 201 {
            break seq_of(&answer);
        }
        assert!(
            killed_at.elapsed() < VISIBLE_WITHIN,
            "writes did not resume: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    loop {
        let read = balance_at(&queries, &admin, seq).await;
        if read.status.as_u16() == 200 {
            assert_eq!(read.body["balance"], 5, "{:?}", read.body);
            break;
        }
        assert!(
            killed_at.elapsed() < VISIBLE_WITHIN,
            "seq {seq} not visible within {VISIBLE_WITHIN:?} of {host}'s death: {read:?}"
        );
    }
    projector.stop().await.expect("stops");
    command.stop().await.expect("stops");
    query.stop().await.expect("stops");
}

/// A command API on `cluster` that creates the journal with three replicas.
async fn r3_command_api(cluster: &NatsCluster) -> command_api::App {
    let mut config = command_config(&cluster.url());
    config.replicas = 3;
    command_api::start(config)
        .await
        .expect("command API starts")
}

async fn balance_at(queries: &Http, token: &str, seq: u64) -> Answer {
    queries
        .get_with(
            "/v1/accounts/alice/balance",
            Some(token),
            &[("ledger-min-seq", &seq.to_string())],
        )
        .await
}

/// The node that leads the stream's one non-durable consumer.
async fn consumer_host(client: &async_nats::Client) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = client
            .request(format!("$JS.API.CONSUMER.LIST.{STREAM}"), "{}".into())
            .await
            .expect("consumer list");
        let list: serde_json::Value = serde_json::from_slice(&reply.payload).expect("json");
        let host = list["consumers"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|c| {
                let durable = c["config"]["durable_name"].is_string();
                (!durable)
                    .then(|| c["cluster"]["leader"].as_str().map(str::to_owned))
                    .flatten()
            });
        if let Some(host) = host {
            return host;
        }
        assert!(Instant::now() < deadline, "no ephemeral consumer: {list}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the projector's metrics show `behind` replicas behind the journal's leader.
async fn replicas_behind_become(metrics_url: &str, behind: f64, within: Duration) {
    scrape_until(metrics_url, within, |page| {
        gauge(page, "ledger_stream_replicas_behind") == Some(behind)
    })
    .await;
}

#[tokio::test]
async fn a_replica_that_is_down_shows_in_the_projectors_metrics_until_it_is_back() {
    let logs = tempfile::tempdir().expect("log dir");
    let mut cluster = NatsCluster::start(Network::Loopback, logs.path()).expect("cluster");
    let db = TestDatabase::create().await;
    let command = r3_command_api(&cluster).await;
    let projector = projector::start(projector::Config::local(&cluster.url(), &db.url))
        .await
        .expect("projector starts");
    let metrics_url = format!("http://{}/metrics", projector.addr);
    replicas_behind_become(&metrics_url, 0.0, Duration::from_secs(30)).await;

    let client = ledger_nats::connect(&cluster.url(), "cluster-test")
        .await
        .expect("connect");
    // Every copy current first: the metrics' 0 above also holds while no replica is listed.
    let deadline = Instant::now() + Duration::from_secs(30);
    let placement = loop {
        let placement = NatsCluster::placement(&client, STREAM)
            .await
            .expect("placement");
        if placement.all_current(harness::cluster::NODES) {
            break placement;
        }
        assert!(
            Instant::now() < deadline,
            "replicas not current: {placement:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let follower = cluster
        .index_of(&placement.replicas[0].name)
        .expect("a follower");
    cluster.kill(follower).expect("kill a follower");
    replicas_behind_become(&metrics_url, 1.0, Duration::from_secs(30)).await;
    cluster.start_node(follower).expect("start it again");
    replicas_behind_become(&metrics_url, 0.0, Duration::from_secs(60)).await;

    projector.stop().await.expect("stops");
    command.stop().await.expect("stops");
}
