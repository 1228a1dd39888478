//! The query API's authorization matrix: every endpoint × every kind of caller (no token,
//! wrong scheme, not a JWT, bad signature, `alg: none`, expired, another owner, the owner, an
//! admin). Another owner's account, job, order, hold or batch answers exactly as a missing
//! one; lists show only the caller's own; ids with NATS subject syntax get a 4xx problem.

use crate::support::*;
use harness::credentials::Credential;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const OWNER: Credential = Credential::User("gina");
const OTHER: Credential = Credential::User("hank");
const ADMIN: Credential = Credential::Admin("root");

#[derive(Debug)]
enum Expect {
    Unauthorized,
    Problem(u16, &'static str),
    /// Any 4xx problem (ids that the URL itself rewrites may land on another route).
    Refused,
    /// A `404` with this code that reads exactly as the answer for the missing `ghost`, once
    /// the ids are masked.
    Hidden {
        code: &'static str,
        ghost: String,
        ids: [String; 2],
    },
    Success(fn(&Value)),
}

#[derive(Debug)]
struct Row {
    endpoint: &'static str,
    credential: Credential,
    path: String,
    expect: Expect,
}

fn row(
    endpoint: &'static str,
    credential: Credential,
    path: impl Into<String>,
    expect: Expect,
) -> Row {
    Row {
        endpoint,
        credential,
        path: path.into(),
        expect,
    }
}

fn hidden(code: &'static str, ghost: impl Into<String>, ids: [&str; 2]) -> Expect {
    Expect::Hidden {
        code,
        ghost: ghost.into(),
        ids: ids.map(str::to_owned),
    }
}

fn ok(_: &Value) {}

async fn get(stack: &Stack, credential: Credential, path: &str) -> Answer {
    stack
        .queries
        .send(
            Method::GET,
            path,
            credential.header(SECRET).as_deref(),
            None,
        )
        .await
}

async fn check(stack: &Stack, row: &Row) {
    let answer = get(stack, row.credential, &row.path).await;
    let what = format!(
        "{} {} as {:?}: {} {:?}",
        row.endpoint, row.path, row.credential, answer.status, answer.body
    );
    assert!(answer.status.as_u16() < 500, "{what}");
    match &row.expect {
        Expect::Unauthorized => answer.assert_unauthorized(&what),
        Expect::Problem(status, code) => {
            assert_eq!(answer.status.as_u16(), *status, "{what}");
            answer.assert_problem(*status, code);
        }
        Expect::Refused => {
            assert!(answer.status.is_client_error(), "{what}");
            assert_eq!(
                answer.header("content-type"),
                Some("application/problem+json"),
                "{what}"
            );
        }
        Expect::Hidden { code, ghost, ids } => {
            assert_eq!(answer.status.as_u16(), 404, "{what}");
            answer.assert_problem(404, code);
            let missing = get(stack, row.credential, ghost).await;
            missing.assert_problem(404, code);
            assert_eq!(
                answer.masked_body(ids),
                missing.masked_body(ids),
                "{what}: another owner's answer differs from a missing one's"
            );
        }
        Expect::Success(body_check) => {
            assert_eq!(answer.status.as_u16(), 200, "{what}");
            body_check(&answer.body);
        }
    }
}

/// Waits (bounded) until `path` answers the admin with a body that `done` accepts.
async fn settled(stack: &Stack, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = get(stack, ADMIN, path).await;
        if answer.status.as_u16() == 200 && done(&answer.body) {
            return answer.body;
        }
        assert!(
            Instant::now() < deadline,
            "{path} did not settle: {:?}",
            answer.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn id_of(answer: &Answer, field: &str) -> String {
    assert!(answer.status.is_success(), "{:?}", answer.body);
    answer.body[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {:?}", answer.body))
        .to_owned()
}

fn owned_by(owner: &'static str) -> impl Fn(&Value) {
    move |body| {
        let items = body["items"].as_array().expect("items");
        assert!(!items.is_empty(), "{body}");
        assert!(items.iter().all(|i| i["owner_id"] == owner), "{body}");
    }
}

#[tokio::test]
async fn every_query_answers_every_kind_of_caller_as_it_should() {
    let stack = Stack::start().await;
    let _projector = stack.start_projector().await;
    stack.open_funded("gina", "gina", 1_000).await;
    stack.open_funded("hank", "hank", 1_000).await;
    let gina = token("gina", false);
    let hank = token("hank", false);
    let deposit = stack
        .commands
        .post("/v1/accounts/gina/deposits", &gina, json!({"amount": 5}))
        .await;
    let job = id_of(&deposit, "job_id");
    let hold = id_of(
        &stack
            .commands
            .post("/v1/accounts/gina/holds", &gina, json!({"amount": 5}))
            .await,
        "hold_id",
    );
    let order = stack
        .commands
        .post(
            "/v1/orders",
            &gina,
            json!({"account_id": "gina", "amount": 5}),
        )
        .await;
    let (order_id, order_job) = (id_of(&order, "order_id"), id_of(&order, "job_id"));
    // Hank's orders on Gina's account and on a missing one.
    let on_gina = id_of(
        &stack
            .commands
            .post(
                "/v1/orders",
                &hank,
                json!({"account_id": "gina", "amount": 5}),
            )
            .await,
        "order_id",
    );
    let on_nobody = id_of(
        &stack
            .commands
            .post(
                "/v1/orders",
                &hank,
                json!({"account_id": "nobody", "amount": 5}),
            )
            .await,
        "order_id",
    );
    let batch = stack
        .commands
        .send(
            Method::PUT,
            "/v1/balances",
            ADMIN.header(SECRET).as_deref(),
            Some(json!({"gina-batch": 7}).to_string()),
        )
        .await;
    let batch_id = id_of(&batch, "batch_id");
    // Gina paid ivy, who gave some back: either side sees the transfer, hank does not.
    stack.open_funded("ivy", "ivy", 0).await;
    let paid = stack
        .commands
        .post(
            "/v1/transfers",
            &gina,
            json!({"from_account_id": "gina", "to_account_id": "ivy", "amount": 5}),
        )
        .await;
    let transfer = id_of(&paid, "transfer_id");
    let reversed = stack
        .commands
        .post(
            &format!("/v1/transfers/{transfer}/reversals"),
            &token("ivy", false),
            json!({"amount": 2}),
        )
        .await;
    id_of(&reversed, "reversal_id");
    for id in [&order_id, &on_gina, &on_nobody] {
        settled(&stack, &format!("/v1/orders/{id}"), |o| {
            o["status"] != "new"
        })
        .await;
    }
    settled(&stack, &format!("/v1/batches/{batch_id}"), |b| {
        b["status"] == "done"
    })
    .await;
    stack.wait_caught_up(Duration::from_secs(20)).await;
    let journal_before = stack.last_seq().await;

    // Paying an order from another's account fails exactly as from a missing one.
    let (seen_on_gina, seen_on_nobody) = (
        get(&stack, OTHER, &format!("/v1/orders/{on_gina}")).await,
        get(&stack, OTHER, &format!("/v1/orders/{on_nobody}")).await,
    );
    for seen in [&seen_on_gina, &seen_on_nobody] {
        assert_eq!(seen.status.as_u16(), 200, "{:?}", seen.body);
        assert_eq!(
            (&seen.body["status"], &seen.body["reason"]),
            (&json!("rejected"), &json!("account_not_found"))
        );
    }
    assert_eq!(
        settled(&stack, &format!("/v1/orders/{order_id}"), |_| true).await["status"],
        "paid"
    );

    let ghost = uuid::Uuid::now_v7().to_string();
    let owner_paths: Vec<(&str, String)> = vec![
        ("get_account", "/v1/accounts/gina".into()),
        ("get_balance", "/v1/accounts/gina/balance".into()),
        ("list_entries", "/v1/accounts/gina/entries".into()),
        ("list_accounts", "/v1/accounts".into()),
        ("get_job", format!("/v1/jobs/{job}")),
        ("get_job", format!("/v1/jobs/{order_job}")),
        ("get_order", format!("/v1/orders/{order_id}")),
        ("list_orders", "/v1/orders".into()),
        ("get_hold", format!("/v1/holds/{hold}")),
        ("get_batch", format!("/v1/batches/{batch_id}")),
        ("get_transfer", format!("/v1/transfers/{transfer}")),
    ];
    let mut rows = Vec::new();
    for (endpoint, path) in &owner_paths {
        for credential in Credential::unauthenticated("root") {
            rows.push(row(
                endpoint,
                credential,
                path.clone(),
                Expect::Unauthorized,
            ));
        }
    }
    for (endpoint, path) in &owner_paths[..3] {
        let ghost_path = path.replace("gina", "nobody");
        rows.extend([
            row(
                endpoint,
                OTHER,
                path.clone(),
                hidden("account_not_found", ghost_path, ["gina", "nobody"]),
            ),
            row(endpoint, OWNER, path.clone(), Expect::Success(ok)),
            row(endpoint, ADMIN, path.clone(), Expect::Success(ok)),
        ]);
    }
    rows.extend([
        row(
            "get_balance",
            OTHER,
            "/v1/accounts/gina/balance?as_of=2030-01-01T00:00:00Z",
            hidden(
                "account_not_found",
                "/v1/accounts/nobody/balance?as_of=2030-01-01T00:00:00Z",
                ["gina", "nobody"],
            ),
        ),
        row(
            "list_entries",
            OTHER,
            "/v1/accounts/gina/entries?type=deposit&limit=1",
            hidden(
                "account_not_found",
                "/v1/accounts/nobody/entries?type=deposit&limit=1",
                ["gina", "nobody"],
            ),
        ),
        // Lists: one's own; asking for another's is refused, admins see anyone's.
        row(
            "list_accounts",
            OTHER,
            "/v1/accounts?owner_id=gina",
            Expect::Problem(403, "forbidden"),
        ),
        row(
            "list_accounts",
            OTHER,
            "/v1/accounts",
            Expect::Success(|b| owned_by("hank")(b)),
        ),
        row(
            "list_accounts",
            OWNER,
            "/v1/accounts",
            Expect::Success(|b| owned_by("gina")(b)),
        ),
        row(
            "list_accounts",
            ADMIN,
            "/v1/accounts?owner_id=gina",
            Expect::Success(|b| owned_by("gina")(b)),
        ),
        row("list_accounts", ADMIN, "/v1/accounts", Expect::Success(ok)),
        row(
            "list_orders",
            OTHER,
            "/v1/orders?owner_id=gina",
            Expect::Problem(403, "forbidden"),
        ),
        row(
            "list_orders",
            OTHER,
            "/v1/orders",
            Expect::Success(|b| owned_by("hank")(b)),
        ),
        row(
            "list_orders",
            OWNER,
            "/v1/orders",
            Expect::Success(|b| owned_by("gina")(b)),
        ),
        row(
            "list_orders",
            ADMIN,
            "/v1/orders?owner_id=gina",
            Expect::Success(|b| owned_by("gina")(b)),
        ),
        row("list_orders", ADMIN, "/v1/orders", Expect::Success(ok)),
        // Owner ids are data, never syntax: odd ones find nothing.
        row(
            "list_accounts",
            ADMIN,
            "/v1/accounts?owner_id=a.*%3E'OR'1'='1",
            Expect::Success(|b| assert_eq!(b["items"], json!([]))),
        ),
        row(
            "list_accounts",
            ADMIN,
            "/v1/accounts?owner_id=a%20b",
            Expect::Problem(400, "invalid_request"),
        ),
        row(
            "list_orders",
            OTHER,
            "/v1/orders?owner_id=a.*%3E",
            Expect::Problem(403, "forbidden"),
        ),
    ]);
    for (endpoint, path, code, id) in [
        ("get_job", format!("/v1/jobs/{job}"), "job_not_found", &job),
        (
            "get_job",
            format!("/v1/jobs/{order_job}"),
            "job_not_found",
            &order_job,
        ),
        (
            "get_order",
            format!("/v1/orders/{order_id}"),
            "order_not_found",
            &order_id,
        ),
        (
            "get_hold",
            format!("/v1/holds/{hold}"),
            "hold_not_found",
            &hold,
        ),
        (
            "get_transfer",
            format!("/v1/transfers/{transfer}"),
            "transfer_not_found",
            &transfer,
        ),
    ] {
        let ghost_path = path.replace(id.as_str(), &ghost);
        rows.extend([
            row(
                endpoint,
                OTHER,
                path.clone(),
                hidden(code, ghost_path, [id, &ghost]),
            ),
            row(endpoint, OWNER, path.clone(), Expect::Success(ok)),
            row(endpoint, ADMIN, path, Expect::Success(ok)),
        ]);
    }
    // The transfer's receiver sees it too, with its reversal.
    rows.push(row(
        "get_transfer",
        Credential::User("ivy"),
        format!("/v1/transfers/{transfer}"),
        Expect::Success(|body| {
            assert_eq!(
                (
                    &body["amount"],
                    &body["reversed_total"],
                    &body["to_account_id"]
                ),
                (&json!(5), &json!(2), &json!("ivy")),
                "{body}"
            );
            assert_eq!(
                body["reversals"].as_array().map(Vec::len),
                Some(1),
                "{body}"
            );
        }),
    ));
    // Batches are submitted by admins: users see none of them; any admin sees all.
    let batch_path = format!("/v1/batches/{batch_id}");
    let ghost_batch = format!("/v1/batches/{ghost}");
    rows.extend([
        row(
            "get_batch",
            OWNER,
            batch_path.clone(),
            hidden("batch_not_found", ghost_batch.clone(), [&batch_id, &ghost]),
        ),
        row(
            "get_batch",
            OTHER,
            batch_path.clone(),
            hidden("batch_not_found", ghost_batch, [&batch_id, &ghost]),
        ),
        row("get_batch", ADMIN, batch_path.clone(), Expect::Success(ok)),
        row(
            "get_batch",
            Credential::Admin("ops"),
            batch_path,
            Expect::Success(ok),
        ),
    ]);

    // Subject syntax in path ids: a 4xx problem, never a 5xx.
    for id in ["a.b", "a*", "a>", "a b", "a%2Eb", "a%3E", "a%00b"] {
        for suffix in ["", "/balance", "/entries"] {
            rows.push(row(
                "path_id",
                OWNER,
                format!("/v1/accounts/{id}{suffix}"),
                Expect::Problem(400, "invalid_account_id"),
            ));
        }
        for resource in ["jobs", "orders", "holds", "batches", "transfers"] {
            rows.push(row(
                "path_id",
                OWNER,
                format!("/v1/{resource}/{id}"),
                Expect::Problem(400, "invalid_request"),
            ));
        }
    }
    // `%2E` alone is a dot segment the URL resolves away: whatever route it lands on refuses.
    for path in [
        "/v1/accounts/%2E",
        "/v1/accounts/%2E/balance",
        "/v1/accounts/%2E/entries",
        "/v1/jobs/%2E",
        "/v1/orders/%2E",
    ] {
        rows.push(row("path_id", OWNER, path, Expect::Refused));
    }

    for row in &rows {
        check(&stack, row).await;
    }
    assert_eq!(
        stack.last_seq().await,
        journal_before,
        "queries never write"
    );
    let endpoints: std::collections::BTreeSet<_> = rows.iter().map(|r| r.endpoint).collect();
    eprintln!(
        "query API authorization matrix: {} rows over {} endpoints",
        rows.len(),
        endpoints.len() - 1
    );
}
