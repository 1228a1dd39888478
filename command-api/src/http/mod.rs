//! The command API's HTTP edge: routes, extractors, and turning writer answers into responses.
//!
//! Handlers (one file per resource) validate the request into a domain [`Command`], hand it to
//! the writer with a render function, and return what the writer answers.

pub mod accounts;
pub mod balances;
pub mod health;
pub mod holds;
pub mod openapi;
pub mod orders;
pub mod problem;
pub mod transfers;

use crate::AppState;
use crate::domain::{Actor, Command};
use crate::writer::{IdempotencyClaim, Render, Reply, Submission};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use events::{IdempotencyKey, subjects};
pub use http_edge::{ApiError, ApiJson, ApiPath, Caller};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Response header: the stream sequence to pass as `Ledger-Min-Seq` to the query API.
pub const LEDGER_SEQ: &str = "ledger-seq";
/// Response header on answers replayed from an idempotency record.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// The caller of a command, from its bearer token.
impl FromRequestParts<AppState> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, app).await?;
        Ok(Actor {
            principal: caller.principal,
            admin: caller.admin,
        })
    }
}

/// Reads a request DTO out of a JSON value (unknown fields, wrong types → 400).
pub fn parse_body<T: DeserializeOwned>(body: &Value) -> Result<T, ApiError> {
    T::deserialize(body).map_err(|e| ApiError::invalid_request(e.to_string()))
}

/// The optional `Idempotency-Key` header.
#[derive(Debug)]
pub struct IdempotencyHeader(pub Option<IdempotencyKey>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(Self(None));
        };
        let raw = value.to_str().map_err(|_| {
            ApiError::invalid_request("Idempotency-Key must be 1 to 255 visible ASCII characters")
        })?;
        Ok(Self(Some(IdempotencyKey::parse(raw)?)))
    }
}

impl IdempotencyHeader {
    /// The claim for this request: the record's subject (scoped to the caller) and the
    /// fingerprint of method, path and canonical body.
    pub fn claim(
        &self,
        actor: &Actor,
        method: &str,
        path: &str,
        body: &Value,
    ) -> Option<IdempotencyClaim> {
        let key = self.0.as_ref()?;
        let mut hash = Sha256::new();
        hash.update(method.as_bytes());
        hash.update(b"\n");
        hash.update(path.as_bytes());
        hash.update(b"\n");
        // serde_json's map is ordered by key: the same JSON in any key order or spacing
        // gives the same bytes.
        hash.update(body.to_string().as_bytes());
        Some(IdempotencyClaim {
            subject: subjects::idempotency(&actor.principal, key),
            fingerprint: hex::encode(hash.finalize()),
        })
    }
}

/// Submits a command to the writer and turns its answer into a response.
pub async fn execute(
    app: &AppState,
    actor: Actor,
    command: Command,
    idempotency: Option<IdempotencyClaim>,
    render: Render,
) -> Result<Response, ApiError> {
    let reply = submit(app, actor, command, idempotency, render).await?;
    let body = reply.body.clone();
    Ok(respond(&reply, body))
}

/// Submits a command to the writer and returns its answer (a rejection as a problem).
pub async fn submit(
    app: &AppState,
    actor: Actor,
    command: Command,
    idempotency: Option<IdempotencyClaim>,
    render: Render,
) -> Result<Reply, ApiError> {
    let submission = Submission {
        actor,
        command,
        job_id: Uuid::now_v7(),
        idempotency,
        render,
    };
    Ok(app.writer.submit(submission).await??)
}

/// The response for a writer's answer, with `body` (usually the answer's own).
pub fn respond(reply: &Reply, body: Value) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let mut headers = HeaderMap::new();
    headers.insert(LEDGER_SEQ, HeaderValue::from(reply.seq));
    if reply.replayed {
        headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    (status, headers, axum::Json(body)).into_response()
}
