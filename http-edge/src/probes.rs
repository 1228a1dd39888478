//! `GET /healthz` (the process is alive) and the answer of `GET /readyz`, alike for every
//! service: each service checks its own dependencies and answers with [`Ready`].

use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// How long a readiness probe may wait for one dependency (JetStream, PostgreSQL) before it
/// calls the service unready: well inside the probe periods orchestrators use (5–10 s).
pub const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

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

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "probes",
    operation_id = "healthz",
    summary = "The process is alive",
    responses((status = 200, description = "alive", body = Alive))
)]
pub async fn healthz() -> Json<Alive> {
    Json(Alive { status: "ok" })
}
