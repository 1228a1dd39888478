//! The query API's router over a seeded database, without NATS or a projector: each test gets
//! a fresh database (`#[sqlx::test]`), writes rows through the read model's own writer, and
//! sends requests straight to the router.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Duration, TimeZone, Utc};
use events::{
    AccountId, AccountState, AccountStatus, Amount, Currency, OrderState, OrderStatus, OwnerId,
};
use http_edge::Auth;
use query_api::AppState;
use read_model::PROJECTION;
use read_model::rows::{AccountRow, Entry, OrderRow, Rows};
use serde_json::{Value, json};
use sqlx::PgPool;
use tower::ServiceExt;
use uuid::Uuid;

const SECRET: &str = "a test secret of at least thirty-two bytes";

/// Minutes after a fixed instant.
fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid instant")
        + Duration::minutes(minutes)
}

/// An account opened at minute 0 with one deposit a minute for each of `deposits`, written as
/// the projector writes it.
fn account(rows: &mut Rows, id: &str, owner: &str, deposits: &[i64]) {
    let account_id = AccountId::parse(id).expect("an account id");
    let mut state = AccountState {
        version: 0,
        balance: 0,
        held: 0,
        currency: Currency::default(),
        status: AccountStatus::Open,
        owner_id: OwnerId::parse(owner).expect("an owner"),
        overdraft_limit: 0,
    };
    for (minute, amount) in std::iter::once(&0).chain(deposits).enumerate() {
        let minute = i64::try_from(minute).expect("a few minutes");
        let seq = rows.last_seq + 1;
        rows.saw(seq);
        state.version += 1;
        state.balance += amount;
        let opening = state.version == 1;
        rows.entries.push(Entry {
            account_id: account_id.clone(),
            version: state.version,
            seq,
            event_id: Uuid::now_v7(),
            event_type: if opening {
                "account_opened"
            } else {
                "funds_deposited"
            },
            entry_type: if opening { "opening" } else { "deposit" },
            amount: *amount,
            balance_after: state.balance,
            held_after: 0,
            counterparty_account_id: None,
            transfer_id: None,
            order_id: None,
            hold_id: None,
            job_id: Uuid::now_v7(),
            reference: (!opening).then(|| format!("deposit {minute}")),
            metadata: None,
            occurred_at: at(minute),
        });
        rows.accounts.upsert(AccountRow {
            account_id: account_id.clone(),
            state: state.clone(),
            last_seq: seq,
            opened_at: opening.then_some(at(minute)),
            updated_at: at(minute),
        });
    }
}

/// A placed order of alice's, not yet paid; returns its job.
fn order(rows: &mut Rows) -> Uuid {
    let job_id = Uuid::now_v7();
    rows.saw(rows.last_seq + 1);
    rows.orders.upsert(OrderRow {
        order_id: Uuid::now_v7(),
        state: OrderState {
            version: 1,
            status: OrderStatus::New,
            owner_id: OwnerId::parse("alice").expect("an owner"),
            account_id: AccountId::parse("alice-1").expect("an account id"),
            amount: Amount::new(700).expect("an amount"),
            currency: None,
            description: None,
            reason: None,
        },
        job_id,
        created_at: Some(at(9)),
        updated_at: at(9),
    });
    job_id
}

/// The query API over `pool` with alice's two accounts, bob's one and alice's order; returns
/// it and the order's job.
struct Api {
    router: axum::Router,
    auth: Auth,
    order_job: Uuid,
}

impl Api {
    async fn seeded(pool: PgPool) -> Self {
        let mut rows = Rows::default();
        account(&mut rows, "alice-1", "alice", &[100, 200, 300]);
        account(&mut rows, "alice-2", "alice", &[]);
        account(&mut rows, "bob-1", "bob", &[50]);
        let order_job = order(&mut rows);
        read_model::checkpoint(&pool, PROJECTION)
            .await
            .expect("checkpoint");
        read_model::apply(&pool, PROJECTION, 0, &rows, None)
            .await
            .expect("seeded");
        let auth = Auth::new(Some(SECRET)).expect("auth");
        let (_, checkpoint) = tokio::sync::watch::channel(rows.last_seq);
        let limits = query_api::feed::FeedLimits {
            buffer_len_max: 16,
            subscribers_max: 16,
            heartbeat: std::time::Duration::from_secs(10),
            stream_max: std::time::Duration::from_secs(60),
        };
        let feed = query_api::feed::Hub::new(pool.clone(), limits, rows.last_seq);
        let state = AppState {
            pool,
            auth: auth.clone(),
            checkpoint,
            min_seq_wait: std::time::Duration::from_millis(100),
            feed,
            accounts: query_api::account_cache::AccountCache::new(1_000, rows.last_seq),
        };
        let router = query_api::router(
            state,
            std::time::Duration::from_secs(10),
            http_edge::RateLimit::OFF,
        );
        Self {
            router,
            auth,
            order_job,
        }
    }

    /// GETs `path` as `who` (an admin if `admin`): the status, the `Ledger-Seq` and the body.
    async fn get(
        &self,
        who: &str,
        admin: bool,
        path: &str,
    ) -> (StatusCode, Option<String>, String) {
        let token = self.auth.mint(who, admin, 60).expect("a token");
        let request = Request::get(path)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .expect("a request");
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("an answer");
        let status = response.status();
        let seq = response
            .headers()
            .get("ledger-seq")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("a body");
        (status, seq, String::from_utf8_lossy(&bytes).into_owned())
    }

    async fn json(&self, who: &str, admin: bool, path: &str) -> (StatusCode, Value) {
        let (status, _, body) = self.get(who, admin, path).await;
        (status, serde_json::from_str(&body).expect("JSON"))
    }
}

/// Every object's keys in sorted order, as the answers have always been written.
fn keys_sorted(value: &Value) -> bool {
    match value {
        Value::Object(map) => {
            let keys: Vec<&String> = map.keys().collect();
            keys.windows(2).all(|w| w[0] < w[1]) && map.values().all(keys_sorted)
        }
        Value::Array(items) => items.iter().all(keys_sorted),
        _ => true,
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn an_account_answer_has_every_field_of_the_contract_in_order(pool: PgPool) {
    let api = Api::seeded(pool).await;
    let (status, seq, body) = api.get("alice", false, "/v1/accounts/alice-1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        seq.as_deref(),
        Some("8"),
        "the checkpoint the answer was read at"
    );
    assert_eq!(
        body,
        json!({
            "account_id": "alice-1", "available": 600, "balance": 600, "currency": "USD",
            "held": 0, "opened_at": "2026-01-01T00:00:00Z", "overdraft_limit": 0,
            "owner_id": "alice", "status": "open", "updated_at": "2026-01-01T00:03:00Z",
            "version": 4,
        })
        .to_string()
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn another_owners_account_is_not_found_but_an_admin_sees_it(pool: PgPool) {
    let api = Api::seeded(pool).await;
    let (status, body) = api.json("bob", false, "/v1/accounts/alice-1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "account_not_found");
    let (status, body) = api.json("root", true, "/v1/accounts/alice-1/balance").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"account_id": "alice-1", "available": 600, "balance": 600, "currency": "USD", "version": 4})
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_balance_as_of_a_past_instant_says_when(pool: PgPool) {
    let api = Api::seeded(pool).await;
    let (status, body) = api
        .json(
            "alice",
            false,
            "/v1/accounts/alice-1/balance?as_of=2026-01-01T00:01:30Z",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({
            "account_id": "alice-1", "as_of": "2026-01-01T00:01:30Z", "available": 100,
            "balance": 100, "currency": "USD", "version": 2,
        })
    );
    let (status, body) = api
        .json(
            "alice",
            false,
            "/v1/accounts/alice-1/balance?as_of=2025-12-31T00:00:00Z",
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "account_not_found");
}

#[sqlx::test(migrations = "../migrations")]
async fn history_pages_follow_the_cursor_and_omit_absent_fields(pool: PgPool) {
    let api = Api::seeded(pool).await;
    let (status, first) = api
        .json("alice", false, "/v1/accounts/alice-1/entries?limit=3")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(keys_sorted(&first));
    let versions = |page: &Value| -> Vec<i64> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|e| e["version"].as_i64())
            .collect()
    };
    assert_eq!(versions(&first), vec![4, 3, 2]);
    let newest = &first["items"][0];
    assert_eq!(newest["type"], "deposit");
    assert_eq!(newest["reference"], "deposit 3");
    assert!(newest.get("transfer_id").is_none(), "absent, not null");
    assert!(
        first.get("page").is_none(),
        "page fields only with page paging"
    );
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let (_, second) = api
        .json(
            "alice",
            false,
            &format!("/v1/accounts/alice-1/entries?limit=3&cursor={cursor}"),
        )
        .await;
    assert_eq!(versions(&second), vec![1]);
    assert_eq!(second["next_cursor"], Value::Null);
    assert!(second["items"][0].get("reference").is_none());

    let (_, deposits) = api
        .json(
            "alice",
            false,
            "/v1/accounts/alice-1/entries?type=deposit&page=2&page_size=2",
        )
        .await;
    assert_eq!(versions(&deposits), vec![2]);
    assert_eq!(
        (
            &deposits["page"],
            &deposits["page_size"],
            &deposits["has_more"]
        ),
        (&json!(2), &json!(2), &json!(false))
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_users_account_list_holds_only_their_own(pool: PgPool) {
    let api = Api::seeded(pool).await;
    let (status, page) = api.json("alice", false, "/v1/accounts?limit=1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"][0]["account_id"], "alice-1");
    let cursor = page["next_cursor"].as_str().expect("a next page");
    let (_, rest) = api
        .json(
            "alice",
            false,
            &format!("/v1/accounts?limit=1&cursor={cursor}"),
        )
        .await;
    assert_eq!(rest["items"][0]["account_id"], "alice-2");
    assert_eq!(rest["next_cursor"], Value::Null);
    let (status, body) = api.json("alice", false, "/v1/accounts?owner_id=bob").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "forbidden");
    let (_, everyone) = api.json("root", true, "/v1/accounts").await;
    assert_eq!(everyone["items"].as_array().map(Vec::len), Some(3));
}

#[sqlx::test(migrations = "../migrations")]
async fn an_unpaid_orders_job_is_queued_without_a_completion(pool: PgPool) {
    let api = Api::seeded(pool).await;
    let path = format!("/v1/jobs/{}", api.order_job);
    let (status, job) = api.json("alice", false, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(keys_sorted(&job));
    assert_eq!(
        (&job["kind"], &job["status"]),
        (&json!("order"), &json!("queued"))
    );
    assert_eq!(job["account_id"], "alice-1");
    for absent in ["completed_at", "error", "batch_id", "seq"] {
        assert!(job.get(absent).is_none(), "{absent} is absent");
    }
    let (status, _) = api.json("bob", false, &path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, orders) = api.json("alice", false, "/v1/orders").await;
    let first = &orders["items"][0];
    assert_eq!(
        (&first["status"], &first["amount"]),
        (&json!("new"), &json!(700))
    );
    assert!(first.get("currency").is_none() && first["description"].is_null());
    assert_eq!(
        (&orders["limit"], &orders["offset"]),
        (&json!(50), &json!(0))
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn readiness_reports_the_checkpoint(pool: PgPool) {
    let api = Api::seeded(pool).await;
    let (status, body) = api.json("anyone", false, "/readyz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ready", "checkpoint": 8}));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_ledger_min_seq_beyond_int64_is_refused_as_bad_input_and_one_reached_is_served(
    pool: PgPool,
) {
    let api = Api::seeded(pool).await;
    let token = api.auth.mint("alice", false, 60).expect("a token");
    let ask = |min_seq: &str| {
        Request::get("/v1/accounts/alice-1")
            .header("authorization", format!("Bearer {token}"))
            .header("ledger-min-seq", min_seq)
            .body(Body::empty())
            .expect("a request")
    };
    // 2^63: a u64, but past the int64 the document promises and bigint holds.
    for (min_seq, expected) in [
        ("9223372036854775808", StatusCode::BAD_REQUEST),
        ("-1", StatusCode::BAD_REQUEST),
        ("8", StatusCode::OK),
    ] {
        let response = api
            .router
            .clone()
            .oneshot(ask(min_seq))
            .await
            .expect("an answer");
        assert_eq!(response.status(), expected, "Ledger-Min-Seq: {min_seq}");
    }
}
