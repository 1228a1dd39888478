//! Orders paid or rejected by the payment executor, exactly once.

use crate::support::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn place(stack: &Stack, token: &str, body: Value) -> String {
    let placed = stack.commands.post("/v1/orders", token, body).await;
    assert_eq!(placed.status.as_u16(), 202, "{:?}", placed.body);
    assert_eq!(placed.body["status"], "new");
    assert!(placed.body["job_id"].is_string());
    placed.body["order_id"]
        .as_str()
        .expect("order id")
        .to_owned()
}

#[tokio::test]
async fn the_order_scenario() {
    let stack = Stack::start().await;
    let projector = stack.start_projector().await;
    let uma = token("uma", false);

    // 1. An order for an account that does not exist is rejected.
    let first = place(
        &stack,
        &uma,
        json!({"account_id": "uma", "amount": 100, "description": "book"}),
    )
    .await;
    let order = decided(&stack, &uma, &first).await;
    assert_eq!(order["status"], "rejected");
    assert_eq!(order["reason"], "account_not_found");

    // 2. Creating the account twice gives the same account.
    let opened = stack
        .commands
        .post("/v1/accounts", &uma, json!({"account_id": "uma"}))
        .await;
    assert_eq!(opened.status.as_u16(), 201);
    let again = stack
        .commands
        .post("/v1/accounts", &uma, json!({"account_id": "uma"}))
        .await;
    assert_eq!(again.status.as_u16(), 200);
    assert_eq!(again.body["account_id"], opened.body["account_id"]);

    // 3. An order without money is rejected.
    let second = place(&stack, &uma, json!({"account_id": "uma", "amount": 100})).await;
    let order = decided(&stack, &uma, &second).await;
    assert_eq!(order["reason"], "insufficient_funds");

    // 4. A negative top-up is refused and changes nothing.
    let negative = stack
        .commands
        .post("/v1/accounts/uma/deposits", &uma, json!({"amount": -50}))
        .await;
    negative.assert_problem(400, "invalid_amount");

    // 5. Top-up.
    let topped = stack
        .commands
        .post("/v1/accounts/uma/deposits", &uma, json!({"amount": 150}))
        .await;
    assert_eq!(topped.status.as_u16(), 201);

    // 6. A cheap order is paid and debited once.
    let third = place(
        &stack,
        &uma,
        json!({"account_id": "uma", "amount": 100, "description": "lamp"}),
    )
    .await;
    let order = decided(&stack, &uma, &third).await;
    assert_eq!(order["status"], "paid");

    // 7. An expensive order is rejected; nothing is debited.
    let fourth = place(&stack, &uma, json!({"account_id": "uma", "amount": 51})).await;
    let order = decided(&stack, &uma, &fourth).await;
    assert_eq!(order["reason"], "insufficient_funds");

    // 8. The user's orders, newest first.
    let list = stack
        .queries
        .get("/v1/orders?limit=10&offset=0", &uma)
        .await;
    let statuses: Vec<&str> = list.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|o| o["status"].as_str().expect("status"))
        .collect();
    assert_eq!(statuses, ["rejected", "paid", "rejected", "rejected"]);
    stack
        .queries
        .get("/v1/orders?owner_id=someone", &uma)
        .await
        .assert_problem(403, "forbidden");
    stack
        .queries
        .get(&format!("/v1/orders/{third}"), &token("vic", false))
        .await
        .assert_problem(404, "order_not_found");

    // 9. The balance: 150 − 100, with one payment in the history.
    let balance = stack.queries.get("/v1/accounts/uma/balance", &uma).await;
    assert_eq!(balance.body["balance"], 50);
    let payments = stack
        .queries
        .get("/v1/accounts/uma/entries?type=payment", &uma)
        .await;
    let items = payments.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["amount"], -100);
    assert_eq!(items[0]["order_id"], third);

    // The orders' jobs tell the same story.
    let job_of = |order: &Value| order["job_id"].as_str().expect("job").to_owned();
    let paid = decided(&stack, &uma, &third).await;
    let job = stack
        .queries
        .get(&format!("/v1/jobs/{}", job_of(&paid)), &uma)
        .await;
    assert_eq!(job.body["status"], "completed");
    let rejected = decided(&stack, &uma, &fourth).await;
    let job = stack
        .queries
        .get(&format!("/v1/jobs/{}", job_of(&rejected)), &uma)
        .await;
    assert_eq!(
        job.body["status"], "rejected",
        "{:?} for {:?}",
        job.body, rejected
    );
    assert_eq!(job.body["error"]["code"], "insufficient_funds");

    let pool = stack.pool().await;
    let findings = projector::verify::verify(&stack.nats_client().await, STREAM, &pool)
        .await
        .expect("verify");
    assert!(findings.drift.is_empty(), "{:#?}", findings.drift);
    projector.stop().await.expect("stops");
}

#[tokio::test]
async fn a_payment_executor_killed_between_append_and_ack_charges_once() {
    // An instance without an executor takes the orders...
    let nats = NatsServer::start();
    let db = TestDatabase::create().await;
    let mut quiet = command_config(&nats.url);
    quiet.payment_executor = false;
    let front = command_api::start(quiet).await.expect("starts");
    let commands = Http::new(format!("http://{}", front.addr));
    let wes = token("wes", false);
    let admin = token("root", true);
    commands
        .post(
            "/v1/accounts",
            &admin,
            json!({"account_id": "wes", "owner_id": "wes"}),
        )
        .await;
    commands
        .post(
            "/v1/accounts/wes/deposits",
            &admin,
            json!({"amount": 1_000}),
        )
        .await;
    let mut orders = Vec::new();
    for _ in 0..5 {
        let placed = commands
            .post(
                "/v1/orders",
                &wes,
                json!({"account_id": "wes", "amount": 100}),
            )
            .await;
        assert_eq!(placed.status.as_u16(), 202);
        orders.push(placed.body["order_id"].as_str().expect("id").to_owned());
    }

    // ...a "crashing" executor pulls them, appends the payments, and dies before acking...
    let client = nats.client().await;
    let consumer = ledger_nats::consumers::ensure_pull_consumer(
        &client,
        STREAM,
        ledger_nats::consumers::PAYMENTS_CONSUMER_JSON,
        Some(Duration::from_millis(500)),
    )
    .await
    .expect("consumer");
    let mut batch = consumer
        .fetch()
        .max_messages(5)
        .messages()
        .await
        .expect("fetch");
    let writer_client = command_api::start(command_config_without_executor(&nats.url))
        .await
        .expect("starts");
    let mut paid_without_ack = 0;
    while let Some(message) = futures::StreamExt::next(&mut batch).await {
        let message = message.expect("message");
        let verdict = command_api::executors::payments::process(
            writer_client.writer().clone(),
            message.payload.clone(),
            1,
        )
        .await;
        assert_eq!(verdict, command_api::executors::Verdict::Ack);
        paid_without_ack += 1;
        // No ack: the process "crashed" here.
    }
    assert_eq!(paid_without_ack, 5);

    // ...and a real executor gets every order redelivered.
    let mut config = command_config(&nats.url);
    config.payment_ack_wait_ms = Some(500);
    let executor = command_api::start(config).await.expect("starts");
    let query = query_api::start(query_config(&db.url))
        .await
        .expect("starts");
    let queries = Http::new(format!("http://{}", query.addr));
    let projector = projector::start(projector::Config::local(&nats.url, &db.url))
        .await
        .expect("projector");
    // Wait until the redeliveries have been handled (the consumer has nothing pending).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut consumer = consumer.clone();
        let info = consumer.info().await.expect("consumer info");
        if info.num_ack_pending == 0 && info.num_pending == 0 && info.delivered.stream_sequence > 0
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "redeliveries not handled: {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let last = ledger_nats::stream::stream_last_seq(&client, STREAM)
        .await
        .expect("last");
    let balance = queries
        .get_with(
            "/v1/accounts/wes/balance",
            Some(&wes),
            &[("ledger-min-seq", &last.to_string())],
        )
        .await;
    assert_eq!(
        balance.body["balance"], 500,
        "each order charged exactly once"
    );
    for order in &orders {
        let answer = queries.get(&format!("/v1/orders/{order}"), &wes).await;
        assert_eq!(answer.body["status"], "paid");
    }
    let charges = count_events(&client, "order_charged").await;
    assert_eq!(charges, 5);
    projector.stop().await.expect("stops");
    executor.stop().await.expect("stops");
    drop(front);
}

fn command_config_without_executor(nats_url: &str) -> command_api::Config {
    let mut config = command_config(nats_url);
    config.payment_executor = false;
    config
}

#[tokio::test]
async fn a_message_an_executor_cannot_process_fails_its_job_visibly() {
    // The executor side: a garbage message on an order subject is terminated and recorded as
    // its job's failure (the job id comes from the header, readable even when the body is not).
    let nats = NatsServer::start();
    let app = command_api::start(command_config(&nats.url))
        .await
        .expect("starts");
    let client = nats.client().await;
    let job_id = uuid::Uuid::now_v7();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(events::headers::JOB_ID, job_id.to_string().as_str());
    let js = async_nats::jetstream::new(client.clone());
    js.publish_with_headers(
        format!("ledger.order.{}", uuid::Uuid::now_v7()),
        headers,
        "not json".into(),
    )
    .await
    .expect("publish")
    .await
    .expect("stored");
    let deadline = Instant::now() + Duration::from_secs(20);
    let failure = loop {
        let found = ledger_nats::direct::last_for_subjects(
            &client,
            STREAM,
            &[events::subjects::job(&job_id)],
        )
        .await
        .expect("direct get");
        if let Some(message) = found.first() {
            break events::Envelope::from_json(&message.payload).expect("decodes");
        }
        assert!(Instant::now() < deadline, "no job_failed recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let events::Event::JobFailed(failure) = failure.event else {
        panic!("not a job failure: {failure:?}");
    };
    assert_eq!(failure.code, "undecodable");
    assert_eq!(failure.executor, "payments");
    app.stop().await.expect("stops");

    // The read side: a recorded failure shows on the job.
    let stack = Stack::start().await;
    let projector = stack.start_projector().await;
    let recorder = command_api::start(command_config(&stack.nats.url))
        .await
        .expect("starts");
    let failed_job = uuid::Uuid::now_v7();
    let recorded = recorder
        .writer()
        .submit(command_api::writer::Submission {
            actor: command_api::domain::Actor {
                principal: events::OwnerId::parse("tally-payments").expect("valid"),
                admin: true,
            },
            command: command_api::domain::Command::FailJob(events::JobFailed {
                failed_job_id: failed_job,
                executor: "payments".into(),
                subject: "ledger.order.x".into(),
                seq: 1,
                code: "retries_exhausted".into(),
                detail: "still failing after 10 attempts".into(),
            }),
            job_id: failed_job,
            idempotency: None,
        })
        .await
        .expect("written")
        .expect("accepted");
    let job = stack
        .queries
        .get_with(
            &format!("/v1/jobs/{failed_job}"),
            Some(&token("root", true)),
            &[("ledger-min-seq", &recorded.seq.to_string())],
        )
        .await;
    assert_eq!(job.body["status"], "failed", "{:?}", job.body);
    assert_eq!(job.body["error"]["code"], "retries_exhausted");
    recorder.stop().await.expect("stops");
    projector.stop().await.expect("stops");
}
