//! Reversals of transfers and refunds of orders over HTTP, and what the journal holds after.

use crate::support::*;
use events::{Event, headers, subjects};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// alice (owner alice) paid 100 to the shop (owner merchant); the answer's transfer id.
async fn paid_the_shop(api: &Api, amount: i64) -> String {
    open_funded(api, "alice", "alice", 500).await;
    open_funded(api, "shop", "merchant", 0).await;
    let paid = api
        .post(
            "/v1/transfers",
            &token("alice", false),
            json!({"from_account_id": "alice", "to_account_id": "shop", "amount": amount}),
        )
        .await;
    assert_eq!(paid.status, StatusCode::CREATED, "{:?}", paid.body);
    paid.body["transfer_id"].as_str().expect("an id").to_owned()
}

fn reversals(transfer_id: &str) -> String {
    format!("/v1/transfers/{transfer_id}/reversals")
}

/// The event types journaled on `subject`, oldest first.
async fn types_on(client: &async_nats::Client, subject: &str) -> Vec<String> {
    journal(client)
        .await
        .iter()
        .filter(|m| m.subject == subject)
        .map(|m| decode(m).event.event_type().to_owned())
        .collect()
}

#[tokio::test]
async fn the_receiver_moves_a_transfer_back_in_parts_never_past_its_amount() {
    let nats = NatsServer::start();
    let api = start_api(&nats.url).await;
    let transfer_id = paid_the_shop(&api, 100).await;
    let merchant = token("merchant", false);

    let first = api
        .post(
            &reversals(&transfer_id),
            &merchant,
            json!({"amount": 30, "reference": "damaged"}),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    assert_eq!(first.body["transfer_id"], transfer_id.as_str());
    assert_eq!(first.body["amount"], 30);
    assert_eq!(first.body["reversed_total"], 30);
    assert_eq!(first.body["currency"], "USD");
    assert_eq!(first.body["from"]["account_id"], "shop");
    assert_eq!(first.body["from"]["balance"], 70);
    assert_eq!(first.body["to"]["account_id"], "alice");
    assert!(
        first.body["to"].get("balance").is_none(),
        "the merchant does not see alice's balance: {:?}",
        first.body
    );
    assert!(first.body["reversal_id"].is_string());

    let too_much = api
        .post(&reversals(&transfer_id), &merchant, json!({"amount": 71}))
        .await;
    too_much.assert_problem(422, "reversal_exceeds_transfer");

    let rest = api
        .post(&reversals(&transfer_id), &merchant, json!({}))
        .await;
    assert_eq!(rest.status, StatusCode::CREATED, "{:?}", rest.body);
    assert_eq!(rest.body["amount"], 70);
    assert_eq!(rest.body["reversed_total"], 100);
    assert_eq!(rest.body["from"]["balance"], 0);

    let nothing_left = api
        .post(&reversals(&transfer_id), &token("root", true), json!({}))
        .await;
    nothing_left.assert_problem(422, "reversal_exceeds_transfer");

    let client = nats.client().await;
    let id: uuid::Uuid = transfer_id.parse().expect("a UUID");
    assert_eq!(
        types_on(&client, &subjects::transfer(&id)).await,
        ["transfer_reversed", "transfer_reversed"],
        "the transfer's subject holds its reversals only"
    );
    assert_eq!(
        types_on(&client, "ledger.account.alice").await,
        [
            "account_opened",
            "funds_deposited",
            "transfer_sent",
            "reversal_received",
            "reversal_received"
        ]
    );
    let last_alice = journal(&client)
        .await
        .into_iter()
        .rfind(|m| m.subject == "ledger.account.alice")
        .expect("alice's messages");
    let Event::ReversalReceived(leg) = decode(&last_alice).event else {
        panic!("not a reversal leg");
    };
    assert_eq!(
        (leg.state.balance, leg.counterparty_account_id.as_str()),
        (500, "shop"),
        "alice has all of her money back"
    );
}

#[tokio::test]
async fn only_an_admin_or_the_receiver_may_reverse_and_the_receiver_needs_the_funds() {
    let nats = NatsServer::start();
    let api = start_api(&nats.url).await;
    let transfer_id = paid_the_shop(&api, 100).await;
    // The sender and a stranger are told the transfer does not exist.
    for who in ["alice", "mallory"] {
        let refused = api
            .post(&reversals(&transfer_id), &token(who, false), json!({}))
            .await;
        refused.assert_problem(404, "transfer_not_found");
    }
    // Unknown ids, and ids that are not UUIDv7 (no transfer has one): not found either.
    for unknown in [
        uuid::Uuid::now_v7().to_string(),
        "6f9619ff-8b86-4d01-b42d-00cf4fc964ff".to_owned(),
    ] {
        let missing = api
            .post(&reversals(&unknown), &token("root", true), json!({}))
            .await;
        missing.assert_problem(404, "transfer_not_found");
    }
    let malformed = api
        .post(&reversals("not-a-uuid"), &token("root", true), json!({}))
        .await;
    malformed.assert_problem(400, "invalid_request");
    // The shop spent the money: it cannot give back what it does not have.
    let spent = api
        .post(
            "/v1/accounts/shop/withdrawals",
            &token("merchant", false),
            json!({"amount": 80}),
        )
        .await;
    assert_eq!(spent.status, StatusCode::CREATED);
    let short = api
        .post(
            &reversals(&transfer_id),
            &token("merchant", false),
            json!({}),
        )
        .await;
    short.assert_problem(422, "insufficient_funds");
    let admin = api
        .post(
            &reversals(&transfer_id),
            &token("root", true),
            json!({"amount": 20}),
        )
        .await;
    assert_eq!(admin.status, StatusCode::CREATED, "{:?}", admin.body);
    assert_eq!(admin.body["to"]["balance"], 420, "an admin sees both sides");
    // Bad input is refused before anything happens.
    for body in [
        json!({"amount": 0}),
        json!({"amount": "5"}),
        json!({"other": 1}),
    ] {
        let bad = api
            .post(&reversals(&transfer_id), &token("root", true), body.clone())
            .await;
        assert_eq!(bad.status.as_u16(), 400, "{body}: {:?}", bad.body);
    }
}

#[tokio::test]
async fn a_reversal_is_idempotent_and_concurrent_ones_never_exceed_the_transfer() {
    let nats = NatsServer::start();
    let api = start_api(&nats.url).await;
    let transfer_id = paid_the_shop(&api, 100).await;
    let merchant = token("merchant", false);
    let key = [("idempotency-key", "refund-ticket-7")];
    let body = Some(json!({"amount": 10}).to_string());
    let first = api
        .post_with(
            &reversals(&transfer_id),
            Some(&merchant),
            &key,
            body.clone(),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    let again = api
        .post_with(&reversals(&transfer_id), Some(&merchant), &key, body)
        .await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);

    // Twenty reversals of 10 at once on the 90 left: nine succeed, whatever the order.
    let path = reversals(&transfer_id);
    let attempts = (0..20).map(|_| api.post(&path, &merchant, json!({"amount": 10})));
    let answers = futures::future::join_all(attempts).await;
    let created = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    assert_eq!(
        created,
        9,
        "{:?}",
        answers.iter().map(|a| &a.body).collect::<Vec<_>>()
    );
    for refused in answers.iter().filter(|a| a.status != StatusCode::CREATED) {
        refused.assert_problem(422, "reversal_exceeds_transfer");
    }
    let client = nats.client().await;
    let reversed: i64 = journal(&client)
        .await
        .iter()
        .filter(|m| m.header(headers::EVENT_TYPE) == Some("reversal_sent"))
        .map(|m| match decode(m).event {
            Event::ReversalSent(leg) => leg.amount.minor_units(),
            _ => 0,
        })
        .sum();
    assert_eq!(reversed, 100);
}

#[tokio::test]
async fn a_transfer_is_found_past_a_thousand_other_messages_of_its_window() {
    let nats = NatsServer::start();
    let api = start_api(&nats.url).await;
    open_funded(&api, "busy", "busy", 0).await;
    let admin = token("root", true);
    let deposits =
        (0..1_100).map(|_| api.post("/v1/accounts/busy/deposits", &admin, json!({"amount": 1})));
    for answer in futures::future::join_all(deposits).await {
        assert_eq!(answer.status, StatusCode::CREATED);
    }
    let transfer_id = paid_the_shop(&api, 100).await;
    // The reading starts at the id's instant less the clock skew: more than a page of account
    // messages lies between there and the transfer.
    let id: uuid::Uuid = transfer_id.parse().expect("a UUID");
    let (since, _) = command_api::lookup::window_of(id).expect("a UUIDv7");
    let all = journal(&nats.client().await).await;
    let sent_at = all
        .iter()
        .find(|m| m.header(headers::EVENT_TYPE) == Some("transfer_sent"))
        .map(|m| m.seq)
        .expect("the transfer");
    let before_it = all
        .iter()
        .filter(|m| m.subject.starts_with(subjects::ACCOUNT_PREFIX) && m.seq < sent_at)
        .filter(|m| m.stored_at().is_some_and(|at| at >= since))
        .count();
    assert!(
        before_it > ledger_nats::direct::RANGE_LEN_MAX,
        "only {before_it} account messages precede the transfer in its window"
    );
    // A restarted API has nothing cached: the transfer is read from the journal.
    api.app.stop().await.expect("stops");
    let api = start_api(&nats.url).await;
    let started = Instant::now();
    let reversed = api
        .post(
            &reversals(&transfer_id),
            &token("merchant", false),
            json!({"amount": 1}),
        )
        .await;
    eprintln!(
        "first reversal past {before_it} account messages of its window: {:?}",
        started.elapsed()
    );
    assert_eq!(reversed.status, StatusCode::CREATED, "{:?}", reversed.body);
    assert_eq!(reversed.body["reversed_total"], 1);
    // An id of the same instant that no transfer has: the whole window is read, and no more.
    let started = Instant::now();
    let ghost = uuid::Uuid::now_v7().to_string();
    let missing = api
        .post(&reversals(&ghost), &token("root", true), json!({}))
        .await;
    missing.assert_problem(404, "transfer_not_found");
    eprintln!("an unknown transfer id answered in {:?}", started.elapsed());
}

/// Places an order for `amount` on alice's account and waits until the payment executor has
/// decided it; the order's id and its last event type.
async fn decided_order(api: &Api, client: &async_nats::Client, amount: i64) -> (String, String) {
    let placed = api
        .post(
            "/v1/orders",
            &token("alice", false),
            json!({"account_id": "alice", "amount": amount}),
        )
        .await;
    assert_eq!(placed.status, StatusCode::ACCEPTED, "{:?}", placed.body);
    let order_id = placed.body["order_id"].as_str().expect("an id").to_owned();
    let subject = format!("{}{order_id}", subjects::ORDER_PREFIX);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let types = types_on(client, &subject).await;
        if types.len() > 1 {
            return (order_id, types[1].clone());
        }
        assert!(Instant::now() < deadline, "order {order_id} not decided");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn refunds(order_id: &str) -> String {
    format!("/v1/orders/{order_id}/refunds")
}

#[tokio::test]
async fn an_admin_refunds_a_paid_order_in_parts_never_past_its_charge() {
    let nats = NatsServer::start();
    let api = start_api(&nats.url).await;
    let client = nats.client().await;
    open_funded(&api, "alice", "alice", 500).await;
    let (order_id, decided) = decided_order(&api, &client, 200).await;
    assert_eq!(decided, "order_paid");
    let admin = token("root", true);

    let forbidden = api
        .post(&refunds(&order_id), &token("alice", false), json!({}))
        .await;
    forbidden.assert_problem(403, "forbidden");
    let part = api
        .post(&refunds(&order_id), &admin, json!({"amount": 50}))
        .await;
    assert_eq!(part.status, StatusCode::CREATED, "{:?}", part.body);
    assert_eq!(part.body["status"], "partially_refunded");
    assert_eq!(part.body["refunded_total"], 50);
    assert_eq!(part.body["account"]["balance"], 350);
    let too_much = api
        .post(&refunds(&order_id), &admin, json!({"amount": 151}))
        .await;
    too_much.assert_problem(422, "refund_exceeds_charge");
    let rest = api.post(&refunds(&order_id), &admin, json!({})).await;
    assert_eq!(rest.status, StatusCode::CREATED, "{:?}", rest.body);
    assert_eq!(rest.body["status"], "refunded");
    assert_eq!(rest.body["amount"], 150);
    assert_eq!(rest.body["account"]["balance"], 500);
    let again = api.post(&refunds(&order_id), &admin, json!({})).await;
    again.assert_problem(422, "refund_exceeds_charge");

    let unknown = api
        .post(
            &refunds(&uuid::Uuid::now_v7().to_string()),
            &admin,
            json!({}),
        )
        .await;
    unknown.assert_problem(404, "order_not_found");
    let (rejected, decided) = decided_order(&api, &client, 10_000).await;
    assert_eq!(decided, "order_rejected");
    let unpaid = api.post(&refunds(&rejected), &admin, json!({})).await;
    unpaid.assert_problem(409, "order_not_paid");

    let subject = format!("{}{order_id}", subjects::ORDER_PREFIX);
    assert_eq!(
        types_on(&client, &subject).await,
        [
            "order_placed",
            "order_paid",
            "order_refunded",
            "order_refunded"
        ]
    );
    let credits: Vec<Value> = journal(&client)
        .await
        .iter()
        .filter(|m| m.header(headers::EVENT_TYPE) == Some("refund_credited"))
        .map(|m| serde_json::from_slice(&m.payload).expect("json"))
        .collect();
    assert_eq!(credits.len(), 2);
    assert_eq!(credits[1]["state"]["balance"], 500);
    assert_eq!(credits[1]["order_id"], order_id.as_str());
}

/// A first reversal that must read its transfer's whole window (here, with no read models)
/// waits for one of the instance's window reads; with none free it is refused with `503` and
/// `Retry-After`, and nothing is journaled. A transfer reversed once has its own subject and
/// needs no window read.
#[tokio::test]
async fn a_window_read_past_the_instances_cap_is_refused_with_retry_after() {
    let nats = NatsServer::start();
    // An instance with no turn for a window read, ever.
    let start_capped = || {
        let mut capped = config(&nats.url);
        capped.transfer_lookup_window_reads_max = 0;
        Api::start(capped)
    };
    let api = start_capped().await;
    let transfer_id = paid_the_shop(&api, 100).await;
    let client = nats.client().await;
    let journaled = journal(&client).await.len();
    let merchant = token("merchant", false);

    let started = Instant::now();
    let refused = api
        .post(&reversals(&transfer_id), &merchant, json!({"amount": 5}))
        .await;
    refused.assert_problem(503, "unavailable");
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert!(
        started.elapsed() >= command_api::lookup::WINDOW_READ_WAIT,
        "refused after {:?}, before its wait for a turn",
        started.elapsed()
    );
    assert_eq!(journal(&client).await.len(), journaled, "nothing journaled");

    // An instance without the cap reverses it once; then a capped one reverses it again: the
    // transfer has its own subject now, and no window is read.
    api.app.stop().await.expect("stops");
    let api = start_api(&nats.url).await;
    let first = api
        .post(&reversals(&transfer_id), &merchant, json!({"amount": 5}))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    api.app.stop().await.expect("stops");
    let api = start_capped().await;
    let second = api
        .post(&reversals(&transfer_id), &merchant, json!({"amount": 5}))
        .await;
    assert_eq!(second.status, StatusCode::CREATED, "{:?}", second.body);
    assert_eq!(second.body["reversed_total"], 10);
}
