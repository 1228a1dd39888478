//! Prometheus metrics: one recorder per process, installed on first use, so that any crate
//! records through the `metrics` facade and `GET /metrics` renders all of it.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Latency buckets in seconds: from a cached read (~0.5 ms) to a request's whole time limit.
const SECONDS_BUCKETS: [f64; 14] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 25.0,
];

/// Group-commit sizes: a lone command (2–3 messages) up to the 1000-message batch limit.
const MESSAGES_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 10.0, 25.0, 100.0, 250.0, 500.0, 1000.0];

/// The Prometheus text format's media type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's recorder on first use and returns its handle (`None` if another
/// recorder was installed first: metrics are then that recorder's business).
pub fn recorder() -> Option<PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("tally_writer_batch_messages".into()),
                        &MESSAGES_BUCKETS,
                    )
                });
            match builder.and_then(|b| b.install_recorder()) {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "no Prometheus recorder: /metrics will be empty");
                    None
                }
            }
        })
        .clone()
}

/// Every metric of the process, as Prometheus text.
pub fn render() -> String {
    recorder().map(|handle| handle.render()).unwrap_or_default()
}
