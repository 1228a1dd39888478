//! The query side of the read model against rows written by its own writer: each test gets a
//! fresh database (`#[sqlx::test]`) with the migrations applied, writes a few batches through
//! `read_model::apply` as the projector would, and reads them back as the query API does.

use chrono::{DateTime, Duration, TimeZone, Utc};
use events::{
    AccountId, AccountState, AccountStatus, Amount, Currency, HoldState, HoldStatus,
    OrderRejection, OrderState, OrderStatus, OwnerId,
};
use read_model::query::{Owned, accounts, batches, entries, holds, jobs, orders};
use read_model::rows::{
    AccountRow, BatchProgress, BatchRow, Entry, FailedJob, HoldRow, OrderRow, QueuedJob,
    RejectedJob, Rows,
};
use read_model::{ApplyError, PROJECTION};
use sqlx::PgPool;
use uuid::Uuid;

fn account_id(raw: &str) -> AccountId {
    AccountId::parse(raw).expect("an account id")
}

fn owner(raw: &str) -> OwnerId {
    OwnerId::parse(raw).expect("an owner id")
}

fn amount(minor_units: i64) -> Amount {
    Amount::new(minor_units).expect("an amount")
}

/// Minutes after a fixed instant: test data with readable times.
fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid instant")
        + Duration::minutes(minutes)
}

/// Builds rows the way the projector does: each account event one entry and the account's
/// latest row, in journal order.
#[derive(Default)]
struct Journal {
    rows: Rows,
    seq: u64,
    states: std::collections::HashMap<AccountId, AccountState>,
}

impl Journal {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.rows.saw(self.seq);
        self.seq
    }

    /// An account event moving the balance by `amount` at minute `minute`.
    fn account_event(
        &mut self,
        id: &str,
        who: &str,
        entry_type: &'static str,
        amount: i64,
        minute: i64,
    ) {
        let seq = self.next_seq();
        let id = account_id(id);
        let state = self
            .states
            .entry(id.clone())
            .or_insert_with(|| AccountState {
                version: 0,
                balance: 0,
                held: 0,
                currency: Currency::default(),
                status: AccountStatus::Open,
                owner_id: owner(who),
                overdraft_limit: 0,
            });
        state.version += 1;
        state.balance += amount;
        let state = state.clone();
        self.rows.entries.push(Entry {
            account_id: id.clone(),
            version: state.version,
            seq,
            event_id: Uuid::now_v7(),
            event_type: if entry_type == "opening" {
                "account_opened"
            } else {
                "funds_deposited"
            },
            entry_type,
            amount,
            balance_after: state.balance,
            held_after: 0,
            counterparty_account_id: None,
            transfer_id: None,
            order_id: None,
            hold_id: None,
            job_id: Uuid::now_v7(),
            reference: None,
            metadata: None,
            occurred_at: at(minute),
        });
        self.rows.accounts.upsert(AccountRow {
            account_id: id,
            opened_at: (state.version == 1).then_some(at(minute)),
            state,
            last_seq: seq,
            updated_at: at(minute),
        });
    }

    fn open(&mut self, id: &str, who: &str, minute: i64) {
        self.account_event(id, who, "opening", 0, minute);
    }

    fn deposit(&mut self, id: &str, amount: i64, minute: i64) {
        let who = self.states[&account_id(id)].owner_id.to_string();
        self.account_event(id, &who, "deposit", amount, minute);
    }

    /// Writes what was built as one batch and starts the next.
    async fn commit(&mut self, pool: &PgPool) {
        write(pool, &std::mem::take(&mut self.rows)).await;
    }
}

/// Applies `rows` as the projector's next batch (from the checkpoint, created at 0).
async fn write(pool: &PgPool, rows: &Rows) {
    let expected = read_model::checkpoint(pool, PROJECTION)
        .await
        .expect("checkpoint");
    read_model::apply(pool, PROJECTION, expected, rows, None)
        .await
        .expect("the batch applies");
}

#[sqlx::test(migrations = "../migrations")]
async fn history_pages_by_cursor_hold_every_entry_once_newest_first(pool: PgPool) {
    let mut journal = Journal::default();
    journal.open("alice-1", "alice", 0);
    for minute in 1..=6 {
        journal.deposit("alice-1", 100, minute);
    }
    journal.commit(&pool).await;

    let alice = account_id("alice-1");
    let mut seen = Vec::new();
    let mut below = None;
    loop {
        let page = entries::entries(&pool, &alice, None, entries::From::BelowVersion(below), 3)
            .await
            .expect("a page");
        let Some(last) = page.last() else { break };
        below = Some(last.version);
        seen.extend(page.iter().map(|e| e.version));
    }
    assert_eq!(seen, vec![7, 6, 5, 4, 3, 2, 1]);
}

#[sqlx::test(migrations = "../migrations")]
async fn history_filtered_by_type_holds_only_entries_of_that_type(pool: PgPool) {
    let mut journal = Journal::default();
    journal.open("alice-1", "alice", 0);
    journal.deposit("alice-1", 250, 1);
    journal.deposit("alice-1", 50, 2);
    journal.commit(&pool).await;

    let alice = account_id("alice-1");
    let deposits = entries::entries(&pool, &alice, Some("deposit"), entries::From::Offset(0), 50)
        .await
        .expect("deposits");
    assert_eq!(deposits.len(), 2);
    assert!(deposits.iter().all(|e| e.entry_type == "deposit"));
    assert_eq!(deposits[0].balance_after, 300, "newest first");
    let openings = entries::entries(&pool, &alice, Some("opening"), entries::From::Offset(0), 50)
        .await
        .expect("openings");
    assert_eq!(openings.len(), 1);
    assert_eq!(openings[0].event_type, "account_opened");
}

/// Every entry of `account` of `entry_type`, page by page (cursor), newest first.
async fn versions_of_type(pool: &PgPool, account: &AccountId, entry_type: &str) -> Vec<i64> {
    let mut seen = Vec::new();
    let mut below = None;
    loop {
        let page = entries::entries(
            pool,
            account,
            Some(entry_type),
            entries::From::BelowVersion(below),
            2,
        )
        .await
        .expect("a page");
        let Some(last) = page.last() else { break };
        assert!(page.iter().all(|e| e.entry_type == entry_type));
        below = Some(last.version);
        seen.extend(page.iter().map(|e| e.version));
    }
    seen
}

/// Transfer rows are left out of the type index (ADR 0022): a page of transfers walks the
/// primary key instead. Both ways must give every entry of the type once, newest first.
#[sqlx::test(migrations = "../migrations")]
async fn history_filtered_by_type_pages_transfers_and_other_types_alike(pool: PgPool) {
    let mut journal = Journal::default();
    journal.open("alice-1", "alice", 0);
    for minute in 1..=9 {
        let entry_type = if minute % 3 == 0 {
            "deposit"
        } else {
            "transfer"
        };
        journal.account_event("alice-1", "alice", entry_type, 10, minute);
    }
    journal.commit(&pool).await;

    let alice = account_id("alice-1");
    assert_eq!(
        versions_of_type(&pool, &alice, "transfer").await,
        vec![9, 8, 6, 5, 3, 2]
    );
    assert_eq!(
        versions_of_type(&pool, &alice, "deposit").await,
        vec![10, 7, 4]
    );
    assert_eq!(versions_of_type(&pool, &alice, "opening").await, vec![1]);
}

#[sqlx::test(migrations = "../migrations")]
async fn history_by_offset_skips_the_earlier_pages(pool: PgPool) {
    let mut journal = Journal::default();
    journal.open("alice-1", "alice", 0);
    for minute in 1..=4 {
        journal.deposit("alice-1", 10, minute);
    }
    journal.commit(&pool).await;

    let page = entries::entries(
        &pool,
        &account_id("alice-1"),
        None,
        entries::From::Offset(2),
        2,
    )
    .await
    .expect("the second page");
    let versions: Vec<i64> = page.iter().map(|e| e.version).collect();
    assert_eq!(versions, vec![3, 2]);
}

#[sqlx::test(migrations = "../migrations")]
async fn balance_as_of_an_instant_is_the_balance_after_the_last_entry_by_then(pool: PgPool) {
    let mut journal = Journal::default();
    journal.open("alice-1", "alice", 0);
    journal.deposit("alice-1", 100, 10);
    journal.deposit("alice-1", 900, 20);
    journal.commit(&pool).await;

    let alice = account_id("alice-1");
    let then = accounts::balance_at(&pool, &alice, at(15))
        .await
        .expect("query")
        .expect("the account existed");
    assert_eq!((then.balance_after, then.version), (100, 2));
    let now = accounts::balance_at(&pool, &alice, at(20))
        .await
        .expect("query")
        .expect("the account exists");
    assert_eq!((now.balance_after, now.version), (1_000, 3));
    let before = accounts::balance_at(&pool, &alice, at(-1))
        .await
        .expect("query");
    assert!(before.is_none(), "the account did not exist yet");
}

#[sqlx::test(migrations = "../migrations")]
async fn account_lists_show_one_owners_accounts_or_everyones(pool: PgPool) {
    let mut journal = Journal::default();
    journal.open("a-1", "alice", 0);
    journal.open("a-2", "alice", 0);
    journal.open("b-1", "bob", 0);
    journal.commit(&pool).await;

    let alice = owner("alice");
    let alices = accounts::accounts(&pool, Some(&alice), None, 50)
        .await
        .expect("alice's accounts");
    let ids: Vec<&str> = alices.iter().map(|a| a.account_id.as_str()).collect();
    assert_eq!(ids, vec!["a-1", "a-2"]);
    assert!(alices.iter().all(|a| a.owner_id() == Some(&alice)));
    let everyone = accounts::accounts(&pool, None, None, 50)
        .await
        .expect("all");
    assert_eq!(everyone.len(), 3);
    let after = accounts::accounts(&pool, None, Some("a-2"), 50)
        .await
        .expect("a page");
    let ids: Vec<&str> = after.iter().map(|a| a.account_id.as_str()).collect();
    assert_eq!(ids, vec!["b-1"], "the next page starts after the cursor");
}

#[sqlx::test(migrations = "../migrations")]
async fn an_account_reads_back_with_its_typed_fields(pool: PgPool) {
    let mut journal = Journal::default();
    journal.open("alice-1", "alice", 0);
    journal.deposit("alice-1", 75, 5);
    journal.commit(&pool).await;

    let account = accounts::account(&pool, &account_id("alice-1"))
        .await
        .expect("query")
        .expect("the account");
    assert_eq!(account.owner_id, owner("alice"));
    assert_eq!(account.currency, Currency::default());
    assert_eq!((account.balance, account.version), (75, 2));
    assert_eq!(account.status, "open");
    assert_eq!((account.opened_at, account.updated_at), (at(0), at(5)));
    let missing = accounts::account(&pool, &account_id("nobody"))
        .await
        .expect("query");
    assert!(missing.is_none());
}

#[sqlx::test(migrations = "../migrations")]
async fn a_balance_batch_runs_until_every_item_is_applied_or_rejected(pool: PgPool) {
    let batch_id = Uuid::now_v7();
    let (applied_job, refused_job) = (Uuid::now_v7(), Uuid::now_v7());
    let mut rows = Rows::default();
    rows.saw(1);
    rows.batches.push(BatchRow {
        batch_id,
        owner_id: owner("admin"),
        total: 2,
        submitted_at: at(0),
    });
    for (job_id, account) in [(applied_job, "x-1"), (refused_job, "x-2")] {
        rows.queued_jobs.push(QueuedJob {
            job_id,
            account_id: account_id(account),
            batch_id,
            owner_id: owner("admin"),
            submitted_at: at(0),
        });
    }
    write(&pool, &rows).await;

    let running = batches::batch(&pool, batch_id)
        .await
        .expect("query")
        .expect("the batch");
    assert!(!running.is_done());
    let queued = jobs::async_job(&pool, refused_job)
        .await
        .expect("query")
        .expect("the job");
    assert_eq!(
        (queued.kind.as_str(), queued.status.as_str()),
        ("balance_set", "queued")
    );
    assert_eq!(queued.account_id, Some(account_id("x-2")));
    assert_eq!(queued.batch_id, Some(batch_id));

    let mut rows = Rows::default();
    rows.saw(2);
    rows.add_progress(BatchProgress {
        batch_id,
        applied: 1,
        rejected: 0,
        at: at(1),
    });
    rows.add_progress(BatchProgress {
        batch_id,
        applied: 0,
        rejected: 1,
        at: at(2),
    });
    rows.rejected_jobs.push(RejectedJob {
        job_id: refused_job,
        code: "invalid_amount".to_owned(),
        at: at(2),
    });
    write(&pool, &rows).await;

    let done = batches::batch(&pool, batch_id)
        .await
        .expect("query")
        .expect("the batch");
    assert_eq!((done.completed, done.rejected, done.failed), (1, 1, 0));
    assert!(done.is_done());
    assert_eq!(done.updated_at, at(2));
    let rejected = jobs::async_job(&pool, refused_job)
        .await
        .expect("query")
        .expect("the job");
    assert_eq!(rejected.status, "rejected");
    assert_eq!(rejected.error_code.as_deref(), Some("invalid_amount"));
    assert_eq!(rejected.completed_at, Some(at(2)));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_failed_job_has_no_owner_so_only_admins_may_see_it(pool: PgPool) {
    let job_id = Uuid::now_v7();
    let mut rows = Rows::default();
    rows.saw(1);
    rows.failed_jobs.push(FailedJob {
        job_id,
        kind: "batch".to_owned(),
        code: "poison".to_owned(),
        detail: "message 1 cannot be decoded".to_owned(),
        seq: 1,
        at: at(3),
    });
    write(&pool, &rows).await;

    let job = jobs::async_job(&pool, job_id)
        .await
        .expect("query")
        .expect("the job");
    assert_eq!(job.status, "failed");
    assert_eq!(job.owner_id(), None);
    assert_eq!(
        job.error_detail.as_deref(),
        Some("message 1 cannot be decoded")
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_command_job_is_found_by_its_first_entry_with_the_accounts_owner(pool: PgPool) {
    let mut journal = Journal::default();
    journal.open("alice-1", "alice", 0);
    journal.deposit("alice-1", 5, 1);
    let job_id = journal.rows.entries[1].job_id;
    journal.commit(&pool).await;

    let job = jobs::applied_job(&pool, job_id)
        .await
        .expect("query")
        .expect("the job");
    assert_eq!(job.account_id, account_id("alice-1"));
    assert_eq!(job.owner_id, owner("alice"));
    assert_eq!((job.event_type.as_str(), job.seq), ("funds_deposited", 2));
    assert!(
        jobs::applied_job(&pool, Uuid::now_v7())
            .await
            .expect("query")
            .is_none()
    );
}

fn order_state(status: OrderStatus, version: u64, currency: Option<Currency>) -> OrderState {
    OrderState {
        version,
        status,
        owner_id: owner("alice"),
        account_id: account_id("alice-1"),
        amount: amount(1_500),
        currency,
        description: Some("a book".to_owned()),
        reason: (status == OrderStatus::Rejected).then_some(OrderRejection::InsufficientFunds),
        refunded_total: 0,
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn an_order_moves_forward_only_and_is_found_by_its_job(pool: PgPool) {
    let (order_id, job_id) = (Uuid::now_v7(), Uuid::now_v7());
    let mut placed = Rows::default();
    placed.saw(1);
    placed.orders.upsert(OrderRow {
        order_id,
        state: order_state(OrderStatus::New, 1, None),
        job_id,
        created_at: Some(at(0)),
        updated_at: at(0),
    });
    let mut rejected = Rows::default();
    rejected.saw(2);
    rejected.orders.upsert(OrderRow {
        order_id,
        state: order_state(OrderStatus::Rejected, 2, None),
        job_id,
        created_at: None,
        updated_at: at(1),
    });
    write(&pool, &placed).await;
    write(&pool, &rejected).await;
    // A replay of the placing (an older version) changes nothing.
    let mut replay = Rows::default();
    replay.saw(3);
    replay.orders.upsert(placed.orders[0].clone());
    write(&pool, &replay).await;

    let order = orders::order_by_job(&pool, job_id)
        .await
        .expect("query")
        .expect("the order");
    assert_eq!(order.order_id, order_id);
    assert_eq!(order.status, "rejected");
    assert_eq!(order.reason.as_deref(), Some("insufficient_funds"));
    assert_eq!(order.currency, None, "no currency of its own");
    assert_eq!(order.amount, amount(1_500));
    assert_eq!((order.created_at, order.updated_at), (at(0), at(1)));
    let alices = orders::orders(&pool, Some(&owner("alice")), 0, 10)
        .await
        .expect("list");
    assert_eq!(alices.len(), 1);
    let bobs = orders::orders(&pool, Some(&owner("bob")), 0, 10)
        .await
        .expect("list");
    assert!(bobs.is_empty());
}

#[sqlx::test(migrations = "../migrations")]
async fn a_hold_reads_back_with_its_accounts_owner_and_expired_status(pool: PgPool) {
    let mut journal = Journal::default();
    journal.open("alice-1", "alice", 0);
    let hold_id = Uuid::now_v7();
    journal.rows.holds.upsert(HoldRow {
        hold_id,
        state: HoldState {
            version: 2,
            status: HoldStatus::Voided,
            account_id: account_id("alice-1"),
            owner_id: owner("alice"),
            amount: amount(300),
            captured: 0,
            expires_at: Some(at(30)),
            expired: true,
        },
        created_at: Some(at(0)),
        updated_at: at(30),
    });
    journal.commit(&pool).await;

    let hold = holds::hold(&pool, hold_id)
        .await
        .expect("query")
        .expect("the hold");
    assert_eq!(hold.owner_id, owner("alice"));
    assert_eq!(hold.status, "expired");
    assert_eq!(hold.amount, amount(300));
    assert_eq!(hold.expires_at, Some(at(30)));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_batch_applied_twice_writes_its_entries_once(pool: PgPool) {
    let mut journal = Journal::default();
    journal.open("alice-1", "alice", 0);
    journal.deposit("alice-1", 40, 1);
    let rows = std::mem::take(&mut journal.rows);
    write(&pool, &rows).await;
    sqlx::query("UPDATE projection_checkpoint SET last_seq = 0")
        .execute(&pool)
        .await
        .expect("checkpoint rewound");
    read_model::apply(&pool, PROJECTION, 0, &rows, None)
        .await
        .expect("applied again");

    let history = entries::entries(
        &pool,
        &account_id("alice-1"),
        None,
        entries::From::Offset(0),
        50,
    )
    .await
    .expect("history");
    assert_eq!(history.len(), 2);
}

#[sqlx::test(migrations = "../migrations")]
async fn applying_is_refused_once_another_projector_moved_the_checkpoint(pool: PgPool) {
    let mut journal = Journal::default();
    journal.open("alice-1", "alice", 0);
    journal.commit(&pool).await;
    journal.deposit("alice-1", 1, 1);
    let stale = read_model::apply(&pool, PROJECTION, 0, &journal.rows, None).await;
    assert!(
        matches!(
            stale,
            Err(ApplyError::LostOwnership {
                expected: 0,
                found: 1
            })
        ),
        "{stale:?}"
    );
    assert_eq!(
        read_model::schema::live_checkpoint(&pool)
            .await
            .expect("checkpoint"),
        1
    );
}

#[sqlx::test(migrations = false)]
async fn a_schema_without_read_models_is_not_ready_and_at_checkpoint_zero(pool: PgPool) {
    assert!(
        !read_model::schema::read_models_exist(&pool)
            .await
            .expect("probe")
    );
    assert_eq!(
        read_model::schema::live_checkpoint(&pool)
            .await
            .expect("checkpoint"),
        0
    );
}

#[sqlx::test(migrations = false)]
async fn columns_decode_through_the_newtypes_own_checks(pool: PgPool) {
    let (id, owner_id, currency, amount_, none): (
        AccountId,
        OwnerId,
        Currency,
        Amount,
        Option<AccountId>,
    ) = sqlx::query_as("SELECT 'alice'::text, 'bob'::text, 'EUR'::text, 125::bigint, NULL::text")
        .fetch_one(&pool)
        .await
        .expect("valid columns decode");
    assert_eq!(
        (id, owner_id, currency, amount_, none),
        (
            account_id("alice"),
            owner("bob"),
            Currency::parse("EUR").expect("a currency"),
            amount(125),
            None
        )
    );

    // Each column a newtype refuses is a decoding error, not a value.
    for select in [
        "SELECT 'not.an.id'::text, 'bob'::text, 'EUR'::text, 125::bigint",
        "SELECT 'alice'::text, 'bob smith'::text, 'EUR'::text, 125::bigint",
        "SELECT 'alice'::text, 'bob'::text, 'euro'::text, 125::bigint",
        "SELECT 'alice'::text, 'bob'::text, 'EUR'::text, 0::bigint",
    ] {
        let refused = sqlx::query_as::<_, (AccountId, OwnerId, Currency, Amount)>(select)
            .fetch_one(&pool)
            .await;
        assert!(
            matches!(refused, Err(sqlx::Error::ColumnDecode { .. })),
            "{select}: {refused:?}"
        );
    }
}

/// Ids of every character class an account id may hold, in byte order: '-' < digits <
/// upper case < '_' < lower case.
const IDS_IN_BYTE_ORDER: [&str; 5] = ["k-", "k0", "kB", "k_", "ka"];

/// On a database created with a linguistic locale (ICU's en-US, which orders these ids
/// otherwise), account lists and their cursors still follow byte order: the read model's
/// text columns compare byte by byte, whatever the database's default (ADR 0029).
#[tokio::test]
async fn account_lists_follow_byte_order_on_a_database_with_a_linguistic_locale() {
    let database = harness::TestDatabase::create_with(
        "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'",
    )
    .await;
    let icu = PgPool::connect(&database.url)
        .await
        .expect("connect to a database with ICU's en-US locale");

    let linguistic: Vec<String> =
        sqlx::query_scalar("SELECT x FROM unnest($1::text[]) AS x ORDER BY x")
            .bind(IDS_IN_BYTE_ORDER)
            .fetch_all(&icu)
            .await
            .expect("the database's own order");
    assert_ne!(
        linguistic, IDS_IN_BYTE_ORDER,
        "the database's default collation orders these ids otherwise"
    );

    read_model::migrate(&icu, "public").await.expect("migrate");
    let mut journal = Journal::default();
    for id in IDS_IN_BYTE_ORDER.iter().rev() {
        journal.open(id, "alice", 0);
    }
    journal.commit(&icu).await;
    let listed = accounts::accounts(&icu, None, None, 50)
        .await
        .expect("all accounts");
    let ids: Vec<&str> = listed.iter().map(|a| a.account_id.as_str()).collect();
    assert_eq!(ids, IDS_IN_BYTE_ORDER);
    let after = accounts::accounts(&icu, None, Some("kB"), 50)
        .await
        .expect("a page");
    let ids: Vec<&str> = after.iter().map(|a| a.account_id.as_str()).collect();
    assert_eq!(ids, ["k_", "ka"], "the next page starts after the cursor");

    icu.close().await;
}
