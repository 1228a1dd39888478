//! The query API's account cache (ADR 0016) on the whole stack: it serves hot accounts and is
//! never older than the write a reader names. A test binary of its own: its writers move the
//! projector's process-wide gauges, which the read-side suite asserts exact values of.

#[path = "read_side/support.rs"]
#[allow(dead_code)]
mod support;

use serde_json::json;
use support::*;

#[tokio::test]
async fn cached_accounts_are_never_older_than_the_write_a_reader_names() {
    let stack = Stack::start().await;
    let _projector = stack.start_projector().await;
    for id in ["hot-a", "hot-b"] {
        stack.open_funded(id, "alice", 0).await;
    }
    let alice = token("alice", false);
    // Writers on the same two accounts evict each other's cached rows all the time; each
    // reads right after its own write, naming it, and twice, so the second read may be served
    // from the cache.
    let writers = (0..4).map(|writer| {
        let (commands, queries, alice) =
            (stack.commands.clone(), stack.queries.clone(), alice.clone());
        tokio::spawn(async move {
            let account = if writer % 2 == 0 { "hot-a" } else { "hot-b" };
            for _ in 0..15 {
                let deposited = commands
                    .post(
                        &format!("/v1/accounts/{account}/deposits"),
                        &alice,
                        json!({"amount": 1}),
                    )
                    .await;
                assert_eq!(deposited.status.as_u16(), 201, "{:?}", deposited.body);
                let written = deposited.body["version"].as_i64().expect("version");
                let seq = seq_of(&deposited).to_string();
                for _ in 0..2 {
                    let read = queries
                        .get_with(
                            &format!("/v1/accounts/{account}/balance"),
                            Some(&alice),
                            &[("ledger-min-seq", &seq)],
                        )
                        .await;
                    assert_eq!(read.status.as_u16(), 200, "{:?}", read.body);
                    let seen = read.body["version"].as_i64().expect("version");
                    assert!(
                        seen >= written,
                        "{account}: read version {seen} after writing version {written}"
                    );
                }
            }
        })
    });
    for writer in writers.collect::<Vec<_>>() {
        writer.await.expect("writer");
    }
    let last = stack.last_seq().await.to_string();
    for id in ["hot-a", "hot-b"] {
        for _ in 0..3 {
            let read = stack
                .queries
                .get_with(
                    &format!("/v1/accounts/{id}"),
                    Some(&alice),
                    &[("ledger-min-seq", &last)],
                )
                .await;
            assert_eq!(read.body["balance"], 30, "{id}: {:?}", read.body);
            assert_eq!(read.body["version"], 31, "{id}: {:?}", read.body);
        }
    }
    let metrics = stack.query_metrics().await;
    let hits = metric(&metrics, "tally_account_cache_total", &["outcome=\"hit\""]);
    assert!(
        hits.is_some_and(|n| n >= 4.0),
        "the last reads of unchanged accounts are served from the cache: {metrics}"
    );
}
