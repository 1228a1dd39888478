//! `GET /healthz` (the process is alive) and the answer of `GET /readyz`, alike for every
//! service: each service checks its own dependencies and answers with [`Ready`].

use crate::problem::ApiError;
use axum::Json;
use serde::Serialize;
use std::fmt::Display;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, Response, ResponseBuilder};
use utoipa::{PartialSchema, ToSchema};

/// How long a readiness probe may wait for one dependency (JetStream, PostgreSQL) before it
/// calls the service unready: well inside the probe periods orchestrators use (5–10 s).
pub const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// What a readiness probe learns of one dependency (`what`, e.g. "PostgreSQL"): its answer,
/// or `503 unavailable` when it fails or takes longer than [`READY_TIMEOUT`] (the failure is
/// logged, not shown).
pub async fn probe<T, E: Display>(
    what: &str,
    check: impl Future<Output = Result<T, E>>,
) -> Result<T, ApiError> {
    match tokio::time::timeout(READY_TIMEOUT, check).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: {what} failed");
            Err(ApiError::unavailable(format!("{what} is not available")))
        }
        Err(_) => Err(ApiError::unavailable(format!(
            "{what} did not answer in time"
        ))),
    }
}

/// `GET /healthz`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Alive {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// `GET /readyz`: the service can do its work.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Ready {
    /// Always `ready`.
    #[schema(example = "ready")]
    pub status: &'static str,
    /// The journal's last sequence (services that read the journal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
    /// The read model's checkpoint (services that read the read model).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<u64>,
}

impl Ready {
    pub fn new() -> Self {
        Self {
            status: "ready",
            last_seq: None,
            checkpoint: None,
        }
    }
}

impl Default for Ready {
    fn default() -> Self {
        Self::new()
    }
}

pub async fn healthz() -> Json<Alive> {
    Json(Alive { status: "ok" })
}

/// The tag of the probes' operations.
const TAG: &str = "probes";

/// Adds the probes every service answers to its OpenAPI document: `GET /healthz` and
/// `GET /readyz`, whose `checks` say what this service needs to be ready, under their own
/// tag (after the service's).
pub fn document(doc: &mut OpenApi, checks: &str) {
    doc.tags.get_or_insert_with(Vec::new).push(
        TagBuilder::new()
            .name(TAG)
            .description(Some("Liveness and readiness"))
            .build(),
    );
    let components = doc.components.get_or_insert_with(Default::default);
    for (name, schema) in [("Alive", Alive::schema()), ("Ready", Ready::schema())] {
        components.schemas.insert(name.to_owned(), schema);
    }
    let answer = |description: &str, schema: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(schema)))
                    .build(),
            )
            .build()
    };
    let probe = |id: &str, summary: &str, response: Response| {
        let operation = OperationBuilder::new()
            .operation_id(Some(id))
            .summary(Some(summary))
            .tag(TAG)
            .response("200", response)
            .build();
        PathItem::new(HttpMethod::Get, operation)
    };
    let paths = &mut doc.paths.paths;
    paths.insert(
        "/healthz".to_owned(),
        probe("healthz", "The process is alive", answer("alive", "Alive")),
    );
    paths.insert(
        "/readyz".to_owned(),
        probe("readyz", checks, answer("ready", "Ready")),
    );
}
