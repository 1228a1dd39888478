//! One trace per command, across the services: a client's `traceparent` → the command API's
//! `request` span → the command's `append` span, whose context the journaled messages carry
//! → the projector's `project` span → its `postgres.write`; and through an executor
//! (`execute` → `append` → `project`) for work the journal hands on. Spans are exported over
//! OTLP/gRPC to a receiver in this test, as they would be to Grafana's collector.
//!
//! Its own test binary: the trace exporter is process-wide.

use harness::{NatsServer, TestDatabase};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "test-secret-that-is-long-enough-for-hs256";
const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

/// An OTLP trace receiver: keeps every span it is sent.
#[derive(Debug, Clone, Default)]
struct Receiver(Arc<Mutex<Vec<Span>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans);
        self.0.lock().expect("lock").extend(spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl Receiver {
    fn spans(&self) -> Vec<Span> {
        self.0.lock().expect("lock").clone()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref())
        .and_then(|v| v.value.as_ref())
        .map(|v| match v {
            opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s) => s.clone(),
            other => format!("{other:?}"),
        })
}

/// The spans named `name` whose parent is `parent`.
fn children<'a>(spans: &'a [Span], parent: &Span, name: &str) -> Vec<&'a Span> {
    spans
        .iter()
        .filter(|s| s.name == name && s.parent_span_id == parent.span_id)
        .filter(|s| s.trace_id == parent.trace_id)
        .collect()
}

async fn post(base: &str, path: &str, token: &str, traceparent: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .header("traceparent", traceparent)
        .json(&body)
        .send()
        .await
        .expect("answer");
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_is_one_trace_from_the_http_request_through_the_journal_to_postgres() {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let telemetry = telemetry::trace::init_tracing("json", "tally", Some(&endpoint));

    let nats = NatsServer::start();
    let db = TestDatabase::create().await;
    let commands = command_api::start(command_api::Config::local(&nats.url, SECRET))
        .await
        .expect("command API");
    let projector = projector::start(projector::Config::local(&nats.url, &db.url))
        .await
        .expect("projector");
    let base = format!("http://{}", commands.addr);
    let token = http_edge::Auth::new(Some(SECRET))
        .expect("secret")
        .mint("tess", false, 600)
        .expect("token");
    let traceparent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");

    post(
        &base,
        "/v1/accounts",
        &token,
        &traceparent,
        json!({"account_id": "tess"}),
    )
    .await;
    let deposit = post(
        &base,
        "/v1/accounts/tess/deposits",
        &token,
        &traceparent,
        json!({"amount": 500}),
    )
    .await;
    let order = post(
        &base,
        "/v1/orders",
        &token,
        &traceparent,
        json!({"account_id": "tess", "amount": 200}),
    )
    .await;
    let order_job = order["job_id"].as_str().expect("job").to_owned();

    // The deposit's message carries the append span's context.
    let client = nats.client().await;
    let stored = ledger_nats::direct::last_for_subjects(
        &client,
        "LEDGER",
        &["ledger.account.tess".to_owned()],
    )
    .await
    .expect("direct get");
    let journaled = stored
        .first()
        .and_then(|m| m.header(events::headers::TRACEPARENT))
        .expect("the last account message has a traceparent")
        .to_owned();
    assert!(
        journaled.starts_with(&format!("00-{CLIENT_TRACE}-")),
        "{journaled}"
    );

    // Everything is applied (the order paid: its charge is the account's last event), and
    // every span has been exported.
    let pool = projector::read_model::pool(&db.url, "ledger", 2)
        .await
        .expect("pool");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut spans;
    loop {
        let balance: Option<i64> =
            sqlx::query_scalar("SELECT balance FROM accounts WHERE account_id = 'tess'")
                .fetch_optional(&pool)
                .await
                .expect("balance");
        telemetry.flush();
        spans = receiver.spans();
        let projected = spans.iter().filter(|s| s.name == "postgres.write").count();
        if balance == Some(300) && projected >= 5 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not all spans arrived: {spans:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ours: Vec<Span> = spans
        .into_iter()
        .filter(|s| hex(&s.trace_id) == CLIENT_TRACE)
        .collect();

    // HTTP request → append → (journal) → project → postgres.write, for the deposit.
    let requests: Vec<&Span> = ours
        .iter()
        .filter(|s| s.name == "request" && hex(&s.parent_span_id) == CLIENT_SPAN)
        .collect();
    assert_eq!(
        requests.len(),
        3,
        "three requests continue the client's trace"
    );
    let deposit_request = requests
        .iter()
        .find(|s| attribute(s, "path").as_deref() == Some("/v1/accounts/tess/deposits"))
        .expect("the deposit's request span");
    let appends = children(&ours, deposit_request, "append");
    assert_eq!(appends.len(), 1, "{ours:#?}");
    let append = appends[0];
    assert_eq!(attribute(append, "command").as_deref(), Some("deposit"));
    assert_eq!(
        attribute(append, "job_id").as_deref(),
        deposit["job_id"].as_str()
    );
    let projects = children(&ours, append, "project");
    assert_eq!(
        projects.len(),
        1,
        "the deposit's one message is projected once"
    );
    assert_eq!(
        attribute(projects[0], "event_type").as_deref(),
        Some("funds_deposited")
    );
    assert_eq!(children(&ours, projects[0], "postgres.write").len(), 1);

    // Through the payment executor: the order's append → its `order_placed` → execute →
    // the executor's own append → `order_paid` + `order_charged` projected.
    let order_request = requests
        .iter()
        .find(|s| attribute(s, "path").as_deref() == Some("/v1/orders"))
        .expect("the order's request span");
    let order_append = children(&ours, order_request, "append");
    assert_eq!(order_append.len(), 1);
    let executions: Vec<&Span> = ours
        .iter()
        .filter(|s| s.name == "execute" && s.parent_span_id == order_append[0].span_id)
        .collect();
    assert_eq!(
        executions.len(),
        1,
        "the payment executor continues the trace"
    );
    let payment = children(&ours, executions[0], "append");
    assert_eq!(payment.len(), 1);
    assert_eq!(
        attribute(payment[0], "command").as_deref(),
        Some("pay_order")
    );
    let mut paid: Vec<String> = children(&ours, payment[0], "project")
        .iter()
        .filter_map(|s| attribute(s, "event_type"))
        .collect();
    paid.sort();
    assert_eq!(paid, ["order_charged", "order_paid"]);
    assert!(!order_job.is_empty());

    // What an operator sees with another client: the README's journal, message by message.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let inspected = std::process::Command::new(root.join(".venv/bin/python"))
        .arg(root.join("nats/tests/inspect_journal.py"))
        .args([nats.url.as_str(), "LEDGER", "tess", "300"])
        .output()
        .expect("python from .venv (scripts/prerequisites.sh installs nats-py)");
    let report = String::from_utf8_lossy(&inspected.stdout);
    assert!(
        inspected.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&inspected.stderr)
    );
    assert!(report.contains("0 problem(s)"), "{report}");
    eprintln!("{report}");

    projector.stop().await.expect("projector stops");
    commands.stop().await.expect("command API stops");
    telemetry.shutdown();
}
