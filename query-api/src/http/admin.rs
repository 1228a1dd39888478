//! `GET /v1/admin/projector` (admin): who runs the projection and how far it has come, for
//! operators and the console's Operations page.
//!
//! Admin only: a user is answered `403 forbidden`, as when asking for someone else's list —
//! the endpoint's existence is no secret, only its answer is.

use super::access::{FORBIDDEN, QueryCall};
use super::params::db;
use axum::Json;
use chrono::{DateTime, Utc};
use http_edge::ApiError;
use read_model::schema::{self, Session};
use serde::Serialize;
use utoipa::ToSchema;

/// The PostgreSQL session of the active projector: the one holding the projection's advisory
/// lock.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectorInstance {
    /// The session's `application_name` (the projector's lock connection: `tally-lock`;
    /// empty when the query API's role may not see other roles' sessions).
    application_name: String,
    /// When the session started: how long this instance has been connected.
    backend_start: Option<DateTime<Utc>>,
    /// The projector's address as PostgreSQL sees it (`null` over a Unix socket or when
    /// hidden).
    client_addr: Option<String>,
    /// The server process of the session (what `pg_terminate_backend` takes).
    pid: i32,
}

impl From<Session> for ProjectorInstance {
    fn from(session: Session) -> Self {
        Self {
            application_name: session.application_name,
            backend_start: session.backend_start,
            client_addr: session.client_addr,
            pid: session.pid,
        }
    }
}

/// The projection's state: its checkpoint and who runs it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectorStatus {
    /// `null` when no projector holds the lock (none runs, or one is starting).
    active_instance: Option<ProjectorInstance>,
    /// The last journal sequence applied to the read models (what `Ledger-Seq` says).
    #[schema(minimum = 0)]
    checkpoint: u64,
    /// Projectors waiting to take over.
    #[schema(minimum = 0)]
    standby_count: i64,
}

http_edge::problems!(
    /// Operator pages: admins only.
    pub AdminOnly: [FORBIDDEN]
);

/// The projection's checkpoint, active instance and standbys (admin)
#[utoipa::path(
    get,
    path = "/v1/admin/projector",
    responses(
        (status = 200, description = "the projection's state", body = ProjectorStatus),
        AdminOnly,
    )
)]
pub async fn get_projector(call: QueryCall) -> Result<Json<ProjectorStatus>, ApiError> {
    if !call.caller.admin {
        return Err(ApiError::forbidden("only admins see the projector"));
    }
    let checkpoint = *call.app.checkpoint.borrow();
    let sessions = schema::projector_sessions(&call.app.pool, read_model::PROJECTION)
        .await
        .map_err(db)?;
    Ok(Json(ProjectorStatus {
        active_instance: sessions.active.map(ProjectorInstance::from),
        checkpoint,
        standby_count: sessions.standby_count,
    }))
}
