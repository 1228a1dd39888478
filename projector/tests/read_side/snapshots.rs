//! The read model only ever shows states the journal had: every checkpoint the projector
//! commits ends one of the journal's atomic batches, so no reader sees half a command.

use crate::support::*;
use serde_json::json;
use std::collections::HashSet;
use std::time::{Duration, Instant};

#[tokio::test]
async fn every_checkpoint_ends_an_atomic_batch_even_with_one_message_per_transaction() {
    let stack = Stack::start().await;
    let mut listener = sqlx::postgres::PgListener::connect(&stack.db.url)
        .await
        .expect("listener");
    listener
        .listen(&read_model::notify_channel(SCHEMA))
        .await
        .expect("listen");
    // One message per transaction at most: without the batch rule every transfer's legs
    // would land in two transactions, with half a transfer visible between them.
    let mut config = stack.projector_config();
    config.batch_len_max = 1;
    let _projector = projector::start(config).await.expect("projector starts");
    stack.open_funded("ann", "ann", 1_000).await;
    stack.open_funded("bob", "ann", 0).await;
    let ann = token("ann", false);
    for i in 0..10 {
        let moved = stack
            .commands
            .post_with(
                "/v1/transfers",
                Some(&ann),
                &[("idempotency-key", &format!("move-{i}"))],
                Some(
                    json!({"from_account_id": "ann", "to_account_id": "bob", "amount": 10})
                        .to_string(),
                ),
            )
            .await;
        assert_eq!(moved.status.as_u16(), 201, "{:?}", moved.body);
    }
    let last = stack.last_seq().await;
    let batch_ends: HashSet<u64> = {
        let client = stack.nats_client().await;
        ledger_nats::direct::range(&client, STREAM, 1, 1000)
            .await
            .expect("journal")
            .into_iter()
            .filter(|m| ledger_nats::batch::ends_atomic_batch(Some(&m.headers)))
            .map(|m| m.seq)
            .collect()
    };
    assert!(
        batch_ends.len() < last as usize,
        "the journal has multi-message batches"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = 0;
    while seen < last {
        let left = deadline.saturating_duration_since(Instant::now());
        let note = tokio::time::timeout(left, listener.recv())
            .await
            .expect("checkpoints within 30 s")
            .expect("notification");
        seen = note.payload().parse().expect("a sequence");
        assert!(
            batch_ends.contains(&seen),
            "checkpoint {seen} is inside an atomic batch (batch ends: {batch_ends:?})"
        );
    }
}
