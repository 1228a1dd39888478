//! NATS users with least privilege (`nats/nats-server.conf`): each service authenticates as
//! its own user and can do its work — and nothing else; anonymous clients are refused.

use crate::support::*;
use serde_json::json;
use std::time::{Duration, Instant};

/// Sends a request the user may not send: the server drops it (a permissions violation), so
/// no answer comes.
async fn forbidden(client: &async_nats::Client, subject: &str, payload: &'static str) -> bool {
    let answer = tokio::time::timeout(
        Duration::from_millis(500),
        client.request(subject.to_owned(), payload.into()),
    )
    .await;
    !matches!(answer, Ok(Ok(_)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_service_works_as_its_own_nats_user_and_can_do_nothing_more() {
    let nats = NatsServer::start();
    let db = TestDatabase::create().await;

    // Nobody gets in without a user.
    assert!(
        ledger_nats::connect(&nats.address, "anonymous")
            .await
            .is_err(),
        "anonymous connections are refused"
    );

    // The command API (stream, executors' consumers, appends) as `command-api`, the projector
    // as `projector`: a deposit and an order (paid by the payment executor) reach the query
    // API.
    let command = command_api::start(command_config(&nats.url_as("command-api")))
        .await
        .expect("the command API starts as its user");
    let query = query_api::start(query_config(&db.url))
        .await
        .expect("query API");
    let projector = projector::start(projector::Config::local(&nats.url_as("projector"), &db.url))
        .await
        .expect("the projector starts as its user");
    let commands = Http::new(format!("http://{}", command.addr));
    let queries = Http::new(format!("http://{}", query.addr));
    let nina = token("nina", false);
    commands
        .post("/v1/accounts", &nina, json!({"account_id": "nina"}))
        .await;
    let deposited = commands
        .post("/v1/accounts/nina/deposits", &nina, json!({"amount": 900}))
        .await;
    assert_eq!(deposited.status.as_u16(), 201, "{:?}", deposited.body);
    let order = commands
        .post(
            "/v1/orders",
            &nina,
            json!({"account_id": "nina", "amount": 400}),
        )
        .await;
    assert_eq!(order.status.as_u16(), 202, "{:?}", order.body);
    let order_id = order.body["order_id"].as_str().expect("id").to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let paid = queries.get(&format!("/v1/orders/{order_id}"), &nina).await;
        let balance = queries.get("/v1/accounts/nina/balance", &nina).await;
        if paid.body["status"] == "paid" && balance.body["balance"] == 500 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{:?} {:?}",
            paid.body,
            balance.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The projector's user reads (verify folds the whole journal through direct gets)...
    let reader = ledger_nats::connect(&nats.url_as("projector"), "reader")
        .await
        .expect("projector user");
    let pool = read_model::connect(&db.url, SCHEMA, "tally", 2)
        .await
        .expect("pool");
    let findings = projector::verify::verify(&reader, STREAM, &pool)
        .await
        .expect("verify as the projector's user");
    assert!(findings.drift.is_empty(), "{:#?}", findings.drift);

    // ...but cannot write to the journal or change the stream.
    let operator = stack_client(&nats).await;
    let before = ledger_nats::stream::stream_last_seq(&operator, STREAM)
        .await
        .expect("last seq");
    assert!(forbidden(&reader, "ledger.account.nina", "{}").await);
    assert!(forbidden(&reader, "$JS.API.STREAM.DELETE.LEDGER", "").await);
    assert!(forbidden(&reader, "$JS.API.STREAM.PURGE.LEDGER", "{}").await);
    // Nor can the command API's user delete the stream or its executors' consumers.
    let writer = ledger_nats::connect(&nats.url_as("command-api"), "writer")
        .await
        .expect("command-api user");
    assert!(forbidden(&writer, "$JS.API.STREAM.DELETE.LEDGER", "").await);
    assert!(forbidden(&writer, "$JS.API.CONSUMER.DELETE.LEDGER.payments", "").await);
    assert!(forbidden(&writer, "$JS.API.STREAM.UPDATE.OTHER", "{}").await);
    let after = ledger_nats::stream::stream_last_seq(&operator, STREAM)
        .await
        .expect("last seq");
    assert_eq!(before, after, "nothing was written");
    let consumers = operator
        .request("$JS.API.CONSUMER.NAMES.LEDGER", "".into())
        .await
        .expect("consumer names");
    let names = String::from_utf8_lossy(&consumers.payload).to_string();
    assert!(names.contains("payments"), "{names}");

    projector.stop().await.expect("stops");
    command.stop().await.expect("stops");
}

async fn stack_client(nats: &NatsServer) -> async_nats::Client {
    nats.client().await
}
