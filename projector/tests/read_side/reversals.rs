//! Reversals and refunds on the read side: the transfer with its reversals, the history's
//! `reversal` and `refund` entries, a refunded order, and `verify` folding them all.

use crate::support::*;
use command_api::lookup::{self, FoundTransfer, LookupError, Sources, WindowReads};
use serde_json::{Map, Value, json};
use std::time::Duration;
use uuid::Uuid;

#[tokio::test]
async fn reversals_and_refunds_are_read_back_and_verified() {
    let stack = Stack::start().await;
    let projector = stack.start_projector().await;
    stack.open_funded("rita", "rita", 1_000).await;
    stack.open_funded("store", "store", 0).await;
    let (rita, store, admin) = (
        token("rita", false),
        token("store", false),
        token("root", true),
    );
    let paid_store = stack
        .commands
        .post(
            "/v1/transfers",
            &rita,
            json!({"from_account_id": "rita", "to_account_id": "store", "amount": 300,
                   "reference": "INV-9"}),
        )
        .await;
    let transfer_id = paid_store.body["transfer_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let reversals = format!("/v1/transfers/{transfer_id}/reversals");
    let first = stack
        .commands
        .post(
            &reversals,
            &store,
            json!({"amount": 100, "reference": "one broken"}),
        )
        .await;
    assert_eq!(first.status.as_u16(), 201, "{:?}", first.body);
    let second = stack
        .commands
        .post(&reversals, &store, json!({"amount": 50}))
        .await;
    assert_eq!(second.status.as_u16(), 201, "{:?}", second.body);

    let order = stack
        .commands
        .post(
            "/v1/orders",
            &rita,
            json!({"account_id": "rita", "amount": 200}),
        )
        .await;
    let order_id = order.body["order_id"].as_str().expect("id").to_owned();
    assert_eq!(decided(&stack, &rita, &order_id).await["status"], "paid");
    let refunded = stack
        .commands
        .post(
            &format!("/v1/orders/{order_id}/refunds"),
            &admin,
            json!({"amount": 80}),
        )
        .await;
    assert_eq!(refunded.status.as_u16(), 201, "{:?}", refunded.body);
    let seq = seq_of(&refunded).to_string();
    let at_least = [("ledger-min-seq", seq.as_str())];

    // The transfer, with its reversals, for either side.
    for who in [&rita, &store] {
        let transfer = stack
            .queries
            .get_with(
                &format!("/v1/transfers/{transfer_id}"),
                Some(who),
                &at_least,
            )
            .await;
        assert_eq!(transfer.status.as_u16(), 200, "{:?}", transfer.body);
        let body = &transfer.body;
        assert_eq!(body["from_account_id"], "rita");
        assert_eq!(body["to_account_id"], "store");
        assert_eq!(body["amount"], 300);
        assert_eq!(body["currency"], "USD");
        assert_eq!(body["reference"], "INV-9");
        assert_eq!(body["reversed_total"], 150);
        let amounts: Vec<&Value> = body["reversals"]
            .as_array()
            .expect("reversals")
            .iter()
            .map(|r| &r["amount"])
            .collect();
        assert_eq!(amounts, [&json!(100), &json!(50)]);
        assert_eq!(
            body["reversals"][0]["reversal_id"],
            first.body["reversal_id"]
        );
        assert_eq!(body["reversals"][0]["reference"], "one broken");
    }
    let stranger = stack
        .queries
        .get(
            &format!("/v1/transfers/{transfer_id}"),
            &token("eve", false),
        )
        .await;
    stranger.assert_problem(404, "transfer_not_found");

    // The history: rita's reversals are credits, the store's debits; the refund a credit.
    let reversals_of = |account: &str, who: String| {
        let queries = &stack.queries;
        let path = format!("/v1/accounts/{account}/entries?type=reversal");
        async move { queries.get(&path, &who).await }
    };
    let rita_reversals = reversals_of("rita", rita.clone()).await;
    let amounts: Vec<&Value> = rita_reversals.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| &e["amount"])
        .collect();
    assert_eq!(amounts, [&json!(50), &json!(100)], "newest first, credits");
    assert_eq!(
        rita_reversals.body["items"][0]["transfer_id"],
        transfer_id.as_str()
    );
    assert_eq!(
        rita_reversals.body["items"][0]["counterparty_account_id"],
        "store"
    );
    assert_eq!(
        rita_reversals.body["items"][0]["event_type"],
        "reversal_received"
    );
    let store_reversals = reversals_of("store", store.clone()).await;
    assert_eq!(store_reversals.body["items"][0]["amount"], -50);
    assert_eq!(store_reversals.body["items"][0]["balance_after"], 150);
    let refunds = stack
        .queries
        .get("/v1/accounts/rita/entries?type=refund", &rita)
        .await;
    assert_eq!(refunds.body["items"][0]["amount"], 80);
    assert_eq!(refunds.body["items"][0]["order_id"], order_id.as_str());
    assert_eq!(refunds.body["items"][0]["event_type"], "refund_credited");
    // 1000 − 300 + 100 + 50 − 200 + 80
    assert_eq!(refunds.body["items"][0]["balance_after"], 730);

    let order = stack
        .queries
        .get(&format!("/v1/orders/{order_id}"), &rita)
        .await;
    assert_eq!(order.body["status"], "partially_refunded");
    assert_eq!(order.body["refunded_total"], 80);

    stack.wait_caught_up(Duration::from_secs(30)).await;
    projector.stop().await.expect("stops");
    let findings = stack.verify().await;
    assert!(findings.drift.is_empty(), "{:#?}", findings.drift);
    assert_eq!(findings.accounts, 2);
    let pool = stack.pool().await;

    // A reversal row turned into something else is drift.
    sqlx::query(
        "UPDATE account_entries SET amount = -amount WHERE account_id = 'rita'
             AND event_type = 'reversal_received'",
    )
    .execute(&pool)
    .await
    .expect("tamper");
    let drift = stack.verify().await;
    assert!(
        drift
            .drift
            .iter()
            .any(|line| line.contains("entry rita") && line.contains("amount")),
        "{:#?}",
        drift.drift
    );
}

/// Account messages put into an unknown transfer id's window: more than two pages of the
/// journal, so that reading the window shows against reading past the checkpoint.
const WINDOW_MESSAGES_MIN: u64 = 2_500;

async fn transfer_between(stack: &Stack, from: &str, to: &str, amount: i64) -> Uuid {
    let sent = stack
        .commands
        .post(
            "/v1/transfers",
            &token(from, false),
            json!({"from_account_id": from, "to_account_id": to, "amount": amount}),
        )
        .await;
    assert_eq!(sent.status.as_u16(), 201, "{:?}", sent.body);
    sent.body["transfer_id"]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .expect("a transfer id")
}

/// Looks `transfer_id` up as the reversal handler does, through `read_model` or the journal
/// alone.
async fn look_up(
    stack: &Stack,
    read_model: Option<&sqlx::PgPool>,
    transfer_id: Uuid,
) -> FoundTransfer {
    try_look_up(stack, read_model, &WindowReads::new(1), transfer_id)
        .await
        .expect("the look-up completes")
}

/// [`look_up`] with the instance's cap on window reads.
async fn try_look_up(
    stack: &Stack,
    read_model: Option<&sqlx::PgPool>,
    window_reads: &WindowReads,
    transfer_id: Uuid,
) -> Result<FoundTransfer, LookupError> {
    let nats = stack.nats_client().await;
    let sources = Sources {
        nats: &nats,
        stream: STREAM,
        read_model,
        window_reads,
    };
    lookup::transfer(sources, transfer_id).await
}

/// The reads of single messages asked of the stream's leader (`$JS.API.STREAM.MSG.GET`) while
/// `look` ran, as their request bodies: a listener on the API's subject gets a copy of each.
async fn leader_reads_during<T>(stack: &Stack, look: impl Future<Output = T>) -> (T, Vec<String>) {
    use futures::StreamExt;
    let listener = stack.nats_client().await;
    let mut requests = listener
        .subscribe(format!("$JS.API.STREAM.MSG.GET.{STREAM}"))
        .await
        .expect("subscribe");
    listener
        .flush()
        .await
        .expect("the subscription is in place");
    let output = look.await;
    let mut bodies = Vec::new();
    while let Ok(Some(request)) =
        tokio::time::timeout(Duration::from_millis(200), requests.next()).await
    {
        bodies.push(String::from_utf8_lossy(&request.payload).into_owned());
    }
    (output, bodies)
}

/// Whether `found` is the transfer of `amount` from `from` to `to`, never reversed.
fn is_unreversed(found: &FoundTransfer, from: &str, to: &str, amount: i64) -> bool {
    found.transfer.as_ref().is_some_and(|t| {
        t.from_account_id.as_str() == from
            && t.to_account_id.as_str() == to
            && t.amount.minor_units() == amount
            && t.reversed_total == 0
    })
}

/// The first reversal of a transfer finds it through the read model: an id that names no
/// transfer costs the journal messages the projector has not applied yet, not the id's
/// two-minute window; a transfer the projector has not applied yet is still found; and a read
/// model that does not answer leaves the journal's window to find it.
#[tokio::test]
async fn an_unknown_transfer_costs_the_read_models_lag_not_its_window() {
    let stack = Stack::start().await;
    let projector = stack.start_projector().await;
    stack.open_funded("payer", "payer", 1_000).await;
    stack.open_funded("payee", "payee", 0).await;
    // An id minted now: its window covers everything journaled below.
    let unknown = Uuid::now_v7();
    let applied = transfer_between(&stack, "payer", "payee", 10).await;

    let admin = token("root", true);
    let items: Map<String, Value> = (0..WINDOW_MESSAGES_MIN)
        .map(|i| (format!("filler-{i:05}"), json!(1)))
        .collect();
    let submitted = reqwest::Client::new()
        .put(format!("{}/v1/balances", stack.commands.base))
        .bearer_auth(&admin)
        .json(&Value::Object(items))
        .send()
        .await
        .expect("put");
    assert_eq!(submitted.status().as_u16(), 202);
    let batch: Value = submitted.json().await.expect("json");
    let batch_id = batch["batch_id"].as_str().expect("id");
    wait_done(&stack.queries, &admin, batch_id, Duration::from_secs(60)).await;
    stack.wait_caught_up(Duration::from_secs(30)).await;
    let pool = stack.pool().await;

    let journal_only = look_up(&stack, None, unknown).await;
    assert!(journal_only.transfer.is_none());
    assert!(
        journal_only.messages_read >= WINDOW_MESSAGES_MIN,
        "the journal alone reads the window: {} messages",
        journal_only.messages_read
    );
    let (indexed, leader_reads) =
        leader_reads_during(&stack, look_up(&stack, Some(&pool), unknown)).await;
    assert!(indexed.transfer.is_none());
    assert_eq!(
        indexed.messages_read, 0,
        "the read model has applied the whole journal"
    );
    // Nothing left to read: the leader is asked only whether the transfer was reversed
    // meanwhile, never for the last of the account messages.
    assert_eq!(leader_reads.len(), 1, "{leader_reads:?}");
    assert!(
        leader_reads[0].contains(&events::subjects::transfer(&unknown)),
        "{leader_reads:?}"
    );
    let found = look_up(&stack, Some(&pool), applied).await;
    assert!(is_unreversed(&found, "payer", "payee", 10), "{found:?}");
    assert_eq!(
        found.messages_read, 1,
        "the one message the read model names"
    );

    // Reads of a whole window wait for one of the instance's turns; with none free they are
    // refused. A look-up the read model answers or bounds takes no turn.
    let none_free = WindowReads::new(0);
    let refused = try_look_up(&stack, None, &none_free, unknown).await;
    assert!(matches!(refused, Err(LookupError::Busy)), "{refused:?}");
    let indexed = try_look_up(&stack, Some(&pool), &none_free, unknown)
        .await
        .expect("no window read");
    assert!(indexed.transfer.is_none());

    // Journaled after the read model stopped: two account messages it has not applied.
    projector.stop().await.expect("stops");
    let unapplied = transfer_between(&stack, "payer", "payee", 7).await;
    let found = look_up(&stack, Some(&pool), unapplied).await;
    assert!(is_unreversed(&found, "payer", "payee", 7), "{found:?}");
    assert!(found.messages_read <= 2, "{found:?}");
    let unknown_now = try_look_up(&stack, Some(&pool), &none_free, unknown)
        .await
        .expect("a read past the checkpoint takes no turn");
    assert!(unknown_now.transfer.is_none());
    assert_eq!(
        unknown_now.messages_read, 2,
        "only what the read model has not applied"
    );

    // A read model that does not answer: the journal's window still finds the transfer.
    let unreachable =
        read_model::pool::connect_lazy("postgres://postgres@127.0.0.1:1/none", SCHEMA, "tally", 1)
            .expect("an address");
    let found = look_up(&stack, Some(&unreachable), applied).await;
    assert!(is_unreversed(&found, "payer", "payee", 10), "{found:?}");
    assert!(found.messages_read >= 1);

    // A read model that answers nothing while a lock holds its history (a migration, say):
    // the look-up stops waiting and reads the journal, rather than waiting for the lock.
    let mut holder = pool.begin().await.expect("a transaction");
    sqlx::query("LOCK TABLE account_entries IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *holder)
        .await
        .expect("the lock");
    let found = tokio::time::timeout(
        Duration::from_secs(10),
        look_up(&stack, Some(&pool), applied),
    )
    .await
    .expect("the look-up does not wait for the locked read model");
    assert!(is_unreversed(&found, "payer", "payee", 10), "{found:?}");
    assert!(found.messages_read >= 1);
    holder.rollback().await.expect("the lock released");

    // A read model past the journal's end was made from another journal: it is not trusted to
    // say a transfer is missing.
    sqlx::query("UPDATE projection_checkpoint SET last_seq = last_seq + 1000000")
        .execute(&pool)
        .await
        .expect("a checkpoint from elsewhere");
    let found = look_up(&stack, Some(&pool), unapplied).await;
    assert!(is_unreversed(&found, "payer", "payee", 7), "{found:?}");
}
