//! A rebuild's bulk load: history entries sent with binary `COPY` are stored exactly as the
//! batch writer's `INSERT` stores them, every column and every NULL.

use chrono::{TimeZone, Utc};
use events::AccountId;
use read_model::load::{EntryCopy, encode_entries};
use read_model::rows::{Entry, Rows};
use sqlx::PgPool;
use uuid::Uuid;

fn entries() -> Vec<Entry> {
    let at = Utc
        .with_ymd_and_hms(2026, 11, 29, 23, 59, 59)
        .single()
        .expect("a valid instant")
        + chrono::Duration::microseconds(123_456);
    let full = Entry {
        account_id: AccountId::parse("acct-1").expect("an account id"),
        version: 7,
        seq: 4_000_000_000,
        event_id: Uuid::now_v7(),
        event_type: "transfer_sent",
        entry_type: "transfer",
        amount: -1_000_000_000_000_000,
        balance_after: -5,
        held_after: 300,
        counterparty_account_id: Some(AccountId::parse("other").expect("an account id")),
        transfer_id: Some(Uuid::now_v7()),
        order_id: Some(Uuid::now_v7()),
        hold_id: Some(Uuid::now_v7()),
        job_id: Uuid::now_v7(),
        reference: Some("invoice \"42\" \\ tab\there".to_owned()),
        metadata: Some(serde_json::json!({"a": [1, 2.5, null], "é": {"b": true}})),
        occurred_at: at,
    };
    let bare = Entry {
        account_id: AccountId::parse("bare").expect("an account id"),
        version: 1,
        seq: 1,
        event_id: Uuid::now_v7(),
        event_type: "account_opened",
        entry_type: "opening",
        amount: 0,
        balance_after: 0,
        held_after: 0,
        counterparty_account_id: None,
        transfer_id: None,
        order_id: None,
        hold_id: None,
        job_id: Uuid::now_v7(),
        reference: None,
        metadata: None,
        // Before PostgreSQL's epoch (2000): negative in binary `timestamptz`.
        occurred_at: Utc
            .with_ymd_and_hms(1999, 12, 31, 23, 0, 0)
            .single()
            .expect("a valid instant"),
    };
    vec![full, bare]
}

async fn stored(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT t::text FROM account_entries t ORDER BY account_id, version")
        .fetch_all(pool)
        .await
        .expect("entries")
}

#[sqlx::test(migrations = "../migrations")]
async fn entries_copied_are_stored_as_the_batch_writer_stores_them(pool: PgPool) {
    let rows = Rows {
        entries: entries(),
        ..Rows::default()
    };
    read_model::write::write_rows(&mut pool.acquire().await.expect("a connection"), &rows)
        .await
        .expect("inserted");
    let inserted = stored(&pool).await;
    assert_eq!(inserted.len(), 2);
    sqlx::query("DELETE FROM account_entries")
        .execute(&pool)
        .await
        .expect("emptied");

    let mut tuples = Vec::new();
    encode_entries(&rows.entries, &mut tuples);
    let mut copy = EntryCopy::begin(&pool).await.expect("copy begins");
    copy.send(&tuples).await.expect("tuples sent");
    assert_eq!(copy.finish().await.expect("copy ends"), 2);
    assert_eq!(stored(&pool).await, inserted);
}
