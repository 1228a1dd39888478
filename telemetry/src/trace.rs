//! Logs and traces, alike for every service.
//!
//! Logs go to stderr (JSON lines by default). Traces are exported over OTLP/gRPC when an
//! endpoint is given (`OTEL_EXPORTER_OTLP_ENDPOINT`), and not at all otherwise. The W3C trace context
//! crosses process boundaries in the `traceparent` header — of HTTP requests, and of every
//! journaled message — so that one trace runs from a client's request through the append
//! and the journal to the projector's Postgres write (and through executors in between).

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// What is exported as spans: Tally's own spans at `info` and above, never the exporter's
/// own transport (tonic, hyper, h2), which would trace itself.
const TRACE_FILTER: &str = "warn,command_api=info,projector=info,query_api=info,http_edge=info,\
    ledger_nats=info,read_model=info";

/// Whether spans leave the process (an OTLP endpoint was given).
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported: work that exists only to be seen in a trace (the projector's
/// per-message spans) is skipped otherwise.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// Keeps the trace exporter alive; [`Telemetry::shutdown`] flushes it.
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports what is buffered now (tests, and before a pause).
    pub fn flush(&self) {
        if let Some(provider) = &self.provider
            && let Err(e) = provider.force_flush()
        {
            tracing::warn!(error = %e, "flushing traces failed");
        }
    }

    /// Flushes and stops the exporter: the last thing a service does before it exits.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            eprintln!("stopping the trace exporter failed: {e}");
        }
    }
}

/// Sets up logging to stderr — JSON lines (`json`, the default; each line carries the
/// current span's fields, among them `request_id` and `trace_id`) or human-readable text
/// (`text`), filtered by `RUST_LOG` (default `info`) — and, given an OTLP/gRPC `endpoint`,
/// trace export as `service` (or `OTEL_SERVICE_NAME`). Each layer has its own filter, so a
/// quiet `RUST_LOG` does not silence traces.
///
/// Without an endpoint spans still get W3C trace context (nothing is exported): a caller's
/// `traceparent` is continued, and every journaled message names the trace of the command
/// that wrote it, so traces join up as soon as some service exports.
pub fn init_tracing(format: &str, service: &'static str, endpoint: Option<&str>) -> Telemetry {
    let log_filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = if format == "text" {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_filter(log_filter)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .with_filter(log_filter)
            .boxed()
    };
    let (provider, exporting, problem) = match endpoint.map(str::trim) {
        Some(endpoint) if !endpoint.is_empty() => match otlp_provider(service, endpoint) {
            Ok(provider) => (provider, true, None),
            Err(e) => (SdkTracerProvider::builder().build(), false, Some(e)),
        },
        _ => (SdkTracerProvider::builder().build(), false, None),
    };
    EXPORTING.store(exporting, Ordering::Relaxed);
    let traces = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(service))
        .with_filter(EnvFilter::new(TRACE_FILTER));
    tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .init();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    if let Some(e) = problem {
        tracing::error!(error = %e, "trace export is off: the OTLP exporter cannot be built");
    }
    Telemetry {
        provider: Some(provider),
    }
}

fn otlp_provider(service: &'static str, endpoint: &str) -> Result<SdkTracerProvider, String> {
    use opentelemetry_otlp::WithExportConfig;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| e.to_string())?;
    let name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| service.to_owned());
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(name)
                .build(),
        )
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    Ok(provider)
}

/// The W3C `traceparent` of `span` (None when traces are off or the span is not sampled).
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span` a child of the remote span named by `traceparent` (an HTTP header or a
/// journaled message's header); an absent or malformed value leaves `span` a root.
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(value) = traceparent else { return };
    let carrier = HashMap::from([("traceparent".to_owned(), value.to_owned())]);
    let parent = TraceContextPropagator::new().extract(&carrier);
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// The trace id (32 hex digits) and span id (16) of `span` (None without a trace context).
pub fn trace_and_span_ids(span: &tracing::Span) -> Option<(String, String)> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| {
        (
            span_context.trace_id().to_string(),
            span_context.span_id().to_string(),
        )
    })
}
