//! The command API's authorization matrix: every endpoint × every kind of caller (no token,
//! wrong scheme, not a JWT, bad signature, `alg: none`, expired, another owner, the owner, an
//! admin), and ids that would inject NATS subject syntax on every path id. Refused requests
//! leave the journal untouched; another owner's things answer exactly as missing ones do.

use crate::support::*;
use harness::credentials::Credential;
use reqwest::Method;
use serde_json::{Value, json};

const OWNER: Credential = Credential::User("gina");
const OTHER: Credential = Credential::User("hank");
const ADMIN: Credential = Credential::Admin("root");

/// What a row must be answered.
#[derive(Debug)]
enum Expect {
    /// `401 unauthorized` with `WWW-Authenticate: Bearer`.
    Unauthorized,
    /// A problem with this status and code.
    Problem(u16, &'static str),
    /// A `404` with this code that reads exactly as the answer to `ghost` (the same request
    /// for something that does not exist), once the two ids in `detail` are masked.
    Hidden {
        code: &'static str,
        ghost: (String, Option<Value>),
        ids: [&'static str; 2],
    },
    /// Success with this status, journaled.
    Success(u16, fn(&Value)),
}

#[derive(Debug)]
struct Row {
    endpoint: &'static str,
    credential: Credential,
    method: Method,
    path: String,
    body: Option<Value>,
    expect: Expect,
}

fn row(
    endpoint: &'static str,
    credential: Credential,
    method: Method,
    path: impl Into<String>,
    body: Option<Value>,
    expect: Expect,
) -> Row {
    Row {
        endpoint,
        credential,
        method,
        path: path.into(),
        body,
        expect,
    }
}

fn hidden(
    code: &'static str,
    ghost: impl Into<String>,
    body: Option<Value>,
    ids: [&'static str; 2],
) -> Expect {
    Expect::Hidden {
        code,
        ghost: (ghost.into(), body),
        ids,
    }
}

fn ok(_: &Value) {}

/// The body with the ids masked, for comparing a hidden answer with a missing one.
async fn send(
    api: &Api,
    credential: Credential,
    method: &Method,
    path: &str,
    body: &Option<Value>,
) -> Answer {
    api.http
        .send(
            method.clone(),
            path,
            credential.header(SECRET).as_deref(),
            body.as_ref().map(Value::to_string),
        )
        .await
}

async fn check(api: &Api, client: &async_nats::Client, row: &Row) {
    let before = last_seq(client).await;
    let answer = send(api, row.credential, &row.method, &row.path, &row.body).await;
    let what = format!(
        "{} {} {} as {:?}: {:?}",
        row.endpoint, row.method, row.path, row.credential, answer.body
    );
    assert!(answer.status.as_u16() < 500, "{what}");
    match &row.expect {
        Expect::Unauthorized => answer.assert_unauthorized(&what),
        Expect::Problem(status, code) => {
            assert_eq!(answer.status.as_u16(), *status, "{what}");
            answer.assert_problem(*status, code);
        }
        Expect::Hidden { code, ghost, ids } => {
            assert_eq!(answer.status.as_u16(), 404, "{what}");
            answer.assert_problem(404, code);
            let missing = send(api, row.credential, &row.method, &ghost.0, &ghost.1).await;
            missing.assert_problem(404, code);
            assert_eq!(
                answer.masked_body(ids),
                missing.masked_body(ids),
                "{what}: another owner's answer differs from a missing one's"
            );
        }
        Expect::Success(status, body_check) => {
            assert_eq!(answer.status.as_u16(), *status, "{what}");
            assert!(answer.header("ledger-seq").is_some(), "{what}");
            body_check(&answer.body);
            assert!(last_seq(client).await > before, "{what}: not journaled");
            return;
        }
    }
    assert_eq!(
        last_seq(client).await,
        before,
        "{what}: a refused request was journaled"
    );
}

/// Places a hold of 10 on `account` as its owner; returns its id.
async fn hold(api: &Api, account: &str, owner: &str) -> String {
    let placed = api
        .post(
            &format!("/v1/accounts/{account}/holds"),
            &token(owner, false),
            json!({"amount": 10}),
        )
        .await;
    assert_eq!(placed.status.as_u16(), 201, "{:?}", placed.body);
    placed.body["hold_id"].as_str().expect("hold id").to_owned()
}

/// A batch of one transfer of 5 from `from` to hank.
fn batch(from: &str, atomic: bool) -> Option<Value> {
    Some(json!({
        "transfers": [{"from_account_id": from, "to_account_id": "hank", "amount": 5}],
        "atomic": atomic,
    }))
}

/// Ids carrying subject syntax (`.`, `*`, `>`, white space), raw and percent-encoded.
const INJECTED_IDS: [&str; 8] = ["a.b", "a*", "a>", "a b", "a%2Eb", "%2E", "a%3E", "a%00b"];

#[tokio::test]
async fn every_endpoint_answers_every_kind_of_caller_as_it_should() {
    let nats = NatsServer::start();
    // No executors: every journal write in this test is a request's own.
    let mut config = config(&nats.url);
    config.payment_executor = false;
    config.batch_executor = false;
    config.hold_expiry_executor = false;
    let api = Api::start(config).await;
    open_funded(&api, "gina", "gina", 1_000).await;
    open_funded(&api, "hank", "hank", 1_000).await;
    let client = nats.client().await;
    let mut holds = Vec::new();
    for _ in 0..4 {
        holds.push(hold(&api, "gina", "gina").await);
    }
    let ghost_hold = uuid::Uuid::now_v7().to_string();
    // Leaked into a 'static table of ids to mask; four short strings for one test.
    let h: Vec<&'static str> = holds
        .iter()
        .chain([&ghost_hold])
        .map(|id| &*Box::leak(id.clone().into_boxed_str()))
        .collect();
    let (h1, h2, h3, h4, ghost) = (h[0], h[1], h[2], h[3], h[4]);
    let post = Method::POST;
    let amount = Some(json!({"amount": 5}));

    // (endpoint, the owner's request): every unauthenticated kind gets it refused with 401.
    let owner_requests: Vec<(&str, Method, String, Option<Value>)> = vec![
        (
            "open_account",
            post.clone(),
            "/v1/accounts".into(),
            Some(json!({"account_id": "gina-savings"})),
        ),
        (
            "deposit",
            post.clone(),
            "/v1/accounts/gina/deposits".into(),
            amount.clone(),
        ),
        (
            "withdraw",
            post.clone(),
            "/v1/accounts/gina/withdrawals".into(),
            amount.clone(),
        ),
        (
            "transfer",
            post.clone(),
            "/v1/transfers".into(),
            Some(json!({"from_account_id": "gina", "to_account_id": "hank", "amount": 5})),
        ),
        (
            "transfer_batch",
            post.clone(),
            "/v1/transfers/batch".into(),
            batch("gina", true),
        ),
        (
            "place_hold",
            post.clone(),
            "/v1/accounts/gina/holds".into(),
            amount.clone(),
        ),
        (
            "capture_hold",
            post.clone(),
            format!("/v1/accounts/gina/holds/{h1}/capture"),
            Some(json!({})),
        ),
        (
            "void_hold",
            post.clone(),
            format!("/v1/accounts/gina/holds/{h3}/void"),
            Some(json!({})),
        ),
        (
            "set_balances",
            Method::PUT,
            "/v1/balances".into(),
            Some(json!({"gina-batch": 5})),
        ),
        (
            "place_order",
            post.clone(),
            "/v1/orders".into(),
            Some(json!({"account_id": "gina", "amount": 5})),
        ),
    ];
    let mut rows = Vec::new();
    for (endpoint, method, path, body) in &owner_requests {
        for credential in Credential::unauthenticated("root") {
            rows.push(row(
                endpoint,
                credential,
                method.clone(),
                path.clone(),
                body.clone(),
                Expect::Unauthorized,
            ));
        }
    }

    let transfer =
        |from: &str| Some(json!({"from_account_id": from, "to_account_id": "hank", "amount": 5}));
    rows.extend([
        // Opening: for someone else or with an overdraft is an admin's act. An id in use is
        // said to be taken (ids are the client's to choose), without anything about it.
        row(
            "open_account",
            OTHER,
            post.clone(),
            "/v1/accounts",
            Some(json!({"account_id": "for-gina", "owner_id": "gina"})),
            Expect::Problem(403, "forbidden"),
        ),
        row(
            "open_account",
            OTHER,
            post.clone(),
            "/v1/accounts",
            Some(json!({"account_id": "gina"})),
            Expect::Problem(409, "account_exists"),
        ),
        row(
            "open_account",
            OWNER,
            post.clone(),
            "/v1/accounts",
            Some(json!({"account_id": "gina-credit", "overdraft_limit": 100})),
            Expect::Problem(403, "forbidden"),
        ),
        row(
            "open_account",
            OWNER,
            post.clone(),
            "/v1/accounts",
            Some(json!({"account_id": "gina-savings"})),
            Expect::Success(201, ok),
        ),
        row(
            "open_account",
            ADMIN,
            post.clone(),
            "/v1/accounts",
            Some(json!({"account_id": "gina-credit", "owner_id": "gina", "overdraft_limit": 100})),
            Expect::Success(201, ok),
        ),
        // Money movements on another's account: not found, as a missing one.
        row(
            "deposit",
            OTHER,
            post.clone(),
            "/v1/accounts/gina/deposits",
            amount.clone(),
            hidden(
                "account_not_found",
                "/v1/accounts/nobody/deposits",
                amount.clone(),
                ["gina", "nobody"],
            ),
        ),
        row(
            "deposit",
            OWNER,
            post.clone(),
            "/v1/accounts/gina/deposits",
            amount.clone(),
            Expect::Success(201, ok),
        ),
        row(
            "deposit",
            ADMIN,
            post.clone(),
            "/v1/accounts/gina/deposits",
            amount.clone(),
            Expect::Success(201, ok),
        ),
        row(
            "withdraw",
            OTHER,
            post.clone(),
            "/v1/accounts/gina/withdrawals",
            amount.clone(),
            hidden(
                "account_not_found",
                "/v1/accounts/nobody/withdrawals",
                amount.clone(),
                ["gina", "nobody"],
            ),
        ),
        row(
            "withdraw",
            OWNER,
            post.clone(),
            "/v1/accounts/gina/withdrawals",
            amount.clone(),
            Expect::Success(201, ok),
        ),
        row(
            "withdraw",
            ADMIN,
            post.clone(),
            "/v1/accounts/gina/withdrawals",
            amount.clone(),
            Expect::Success(201, ok),
        ),
        row(
            "transfer",
            OTHER,
            post.clone(),
            "/v1/transfers",
            transfer("gina"),
            hidden(
                "account_not_found",
                "/v1/transfers",
                transfer("nobody"),
                ["gina", "nobody"],
            ),
        ),
        // Paying into another's account is allowed, but shows nothing of its balance.
        row(
            "transfer",
            OWNER,
            post.clone(),
            "/v1/transfers",
            transfer("gina"),
            Expect::Success(201, |body| {
                assert!(
                    body["to"].get("balance").is_none() && body["to"].get("available").is_none(),
                    "{body}"
                );
            }),
        ),
        row(
            "transfer",
            ADMIN,
            post.clone(),
            "/v1/transfers",
            transfer("gina"),
            Expect::Success(201, |body| {
                assert!(body["to"]["balance"].is_i64(), "{body}");
            }),
        ),
        row(
            "place_hold",
            OTHER,
            post.clone(),
            "/v1/accounts/gina/holds",
            amount.clone(),
            hidden(
                "account_not_found",
                "/v1/accounts/nobody/holds",
                amount.clone(),
                ["gina", "nobody"],
            ),
        ),
        row(
            "place_hold",
            OWNER,
            post.clone(),
            "/v1/accounts/gina/holds",
            amount.clone(),
            Expect::Success(201, ok),
        ),
        row(
            "place_hold",
            ADMIN,
            post.clone(),
            "/v1/accounts/gina/holds",
            amount.clone(),
            Expect::Success(201, ok),
        ),
        // Another's hold: through their account, or through one's own.
        row(
            "capture_hold",
            OTHER,
            post.clone(),
            format!("/v1/accounts/gina/holds/{h1}/capture"),
            Some(json!({})),
            hidden(
                "account_not_found",
                format!("/v1/accounts/nobody/holds/{h1}/capture"),
                Some(json!({})),
                ["gina", "nobody"],
            ),
        ),
        row(
            "capture_hold",
            OTHER,
            post.clone(),
            format!("/v1/accounts/hank/holds/{h1}/capture"),
            Some(json!({})),
            hidden(
                "hold_not_found",
                format!("/v1/accounts/hank/holds/{ghost}/capture"),
                Some(json!({})),
                [h1, ghost],
            ),
        ),
        row(
            "capture_hold",
            OWNER,
            post.clone(),
            format!("/v1/accounts/gina/holds/{h1}/capture"),
            Some(json!({})),
            Expect::Success(201, ok),
        ),
        row(
            "capture_hold",
            ADMIN,
            post.clone(),
            format!("/v1/accounts/gina/holds/{h2}/capture"),
            Some(json!({})),
            Expect::Success(201, ok),
        ),
        row(
            "void_hold",
            OTHER,
            post.clone(),
            format!("/v1/accounts/gina/holds/{h3}/void"),
            Some(json!({})),
            hidden(
                "account_not_found",
                format!("/v1/accounts/nobody/holds/{h3}/void"),
                Some(json!({})),
                ["gina", "nobody"],
            ),
        ),
        row(
            "void_hold",
            OTHER,
            post.clone(),
            format!("/v1/accounts/hank/holds/{h3}/void"),
            Some(json!({})),
            hidden(
                "hold_not_found",
                format!("/v1/accounts/hank/holds/{ghost}/void"),
                Some(json!({})),
                [h3, ghost],
            ),
        ),
        row(
            "void_hold",
            OWNER,
            post.clone(),
            format!("/v1/accounts/gina/holds/{h3}/void"),
            Some(json!({})),
            Expect::Success(201, ok),
        ),
        row(
            "void_hold",
            ADMIN,
            post.clone(),
            format!("/v1/accounts/gina/holds/{h4}/void"),
            Some(json!({})),
            Expect::Success(201, ok),
        ),
        // A batch is authorized transfer by transfer: atomic, another owner's source account
        // refuses the whole request as a missing one would; not atomic, that transfer only.
        row(
            "transfer_batch",
            OTHER,
            post.clone(),
            "/v1/transfers/batch",
            batch("gina", true),
            hidden(
                "account_not_found",
                "/v1/transfers/batch",
                batch("nobody", true),
                ["gina", "nobody"],
            ),
        ),
        row(
            "transfer_batch",
            OTHER,
            post.clone(),
            "/v1/transfers/batch",
            Some(json!({"transfers": [
                {"from_account_id": "gina", "to_account_id": "hank", "amount": 5},
                {"from_account_id": "hank", "to_account_id": "gina", "amount": 5},
            ]})),
            Expect::Success(200, |body| {
                assert_eq!(body["results"][0]["status"], 404, "{body}");
                assert_eq!(body["results"][0]["code"], "account_not_found", "{body}");
                assert_eq!(body["results"][1]["status"], 201, "{body}");
                assert_eq!(
                    (&body["committed"], &body["rejected"]),
                    (&json!(1), &json!(1))
                );
            }),
        ),
        row(
            "transfer_batch",
            OWNER,
            post.clone(),
            "/v1/transfers/batch",
            batch("gina", true),
            Expect::Success(201, |body| {
                assert!(body["results"][0]["to"].get("balance").is_none(), "{body}");
            }),
        ),
        row(
            "transfer_batch",
            ADMIN,
            post.clone(),
            "/v1/transfers/batch",
            batch("gina", false),
            Expect::Success(200, |body| {
                assert!(body["results"][0]["to"]["balance"].is_i64(), "{body}");
            }),
        ),
        // Admins only: a user is told so, whoever's accounts the batch names.
        row(
            "set_balances",
            OTHER,
            Method::PUT,
            "/v1/balances",
            Some(json!({"hank": 5})),
            Expect::Problem(403, "forbidden"),
        ),
        row(
            "set_balances",
            OWNER,
            Method::PUT,
            "/v1/balances",
            Some(json!({"gina": 5})),
            Expect::Problem(403, "forbidden"),
        ),
        row(
            "set_balances",
            ADMIN,
            Method::PUT,
            "/v1/balances",
            Some(json!({"gina-batch": 5})),
            Expect::Success(202, ok),
        ),
        // An order is the caller's own whatever account it names; paying it from another's
        // account is refused by the payment executor as `account_not_found` (read_side's
        // authorization test follows it there).
        row(
            "place_order",
            OTHER,
            post.clone(),
            "/v1/orders",
            Some(json!({"account_id": "gina", "amount": 5})),
            Expect::Success(202, ok),
        ),
        row(
            "place_order",
            OWNER,
            post.clone(),
            "/v1/orders",
            Some(json!({"account_id": "gina", "amount": 5})),
            Expect::Success(202, ok),
        ),
        row(
            "place_order",
            ADMIN,
            post.clone(),
            "/v1/orders",
            Some(json!({"account_id": "gina", "amount": 5})),
            Expect::Success(202, ok),
        ),
    ]);

    // Subject syntax in every path id and body id: a 4xx problem, never a journal write.
    for id in INJECTED_IDS {
        // `%2E` alone is a dot segment: the URL resolves it away and no route matches.
        let (status, account_code, hold_code) = if id == "%2E" {
            (404, "not_found", "not_found")
        } else {
            (400, "invalid_account_id", "invalid_request")
        };
        for path in ["deposits", "withdrawals", "holds"] {
            rows.push(row(
                "path_id",
                OWNER,
                post.clone(),
                format!("/v1/accounts/{id}/{path}"),
                amount.clone(),
                Expect::Problem(status, account_code),
            ));
        }
        for action in ["capture", "void"] {
            rows.push(row(
                "path_id",
                OWNER,
                post.clone(),
                format!("/v1/accounts/{id}/holds/{h2}/{action}"),
                Some(json!({})),
                Expect::Problem(status, account_code),
            ));
            rows.push(row(
                "path_id",
                OWNER,
                post.clone(),
                format!("/v1/accounts/gina/holds/{id}/{action}"),
                Some(json!({})),
                Expect::Problem(status, hold_code),
            ));
        }
    }
    for id in ["a.b", "a*", "a>", "a b", "a\u{0}b"] {
        let bad = || Expect::Problem(400, "invalid_account_id");
        rows.extend([
            row(
                "body_id",
                OWNER,
                post.clone(),
                "/v1/accounts",
                Some(json!({"account_id": id})),
                bad(),
            ),
            row(
                "body_id",
                OWNER,
                post.clone(),
                "/v1/transfers",
                Some(json!({"from_account_id": "gina", "to_account_id": id, "amount": 1})),
                bad(),
            ),
            row(
                "body_id",
                OWNER,
                post.clone(),
                "/v1/transfers",
                Some(json!({"from_account_id": id, "to_account_id": "hank", "amount": 1})),
                bad(),
            ),
            row(
                "body_id",
                OWNER,
                post.clone(),
                "/v1/orders",
                Some(json!({"account_id": id, "amount": 1})),
                bad(),
            ),
            row(
                "body_id",
                ADMIN,
                Method::PUT,
                "/v1/balances",
                Some(json!({id: 1})),
                bad(),
            ),
        ]);
    }

    for row in &rows {
        check(&api, &client, row).await;
    }
    let endpoints: std::collections::BTreeSet<_> = rows.iter().map(|r| r.endpoint).collect();
    eprintln!(
        "command API authorization matrix: {} rows over {} endpoints",
        rows.len(),
        endpoints.len() - 2
    );
}
