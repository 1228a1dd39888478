//! What every command handler shares: the caller ([`Actor`]) and `Idempotency-Key`
//! extractors, reading a request body, and one exchange with the writer — submit, then turn
//! its reply (an outcome, or a replayed answer) into a response.

use super::render;
use super::state::AppState;
use crate::domain::{Actor, Command};
use crate::writer::{Answer, Answered, IdempotencyClaim, Rendered, Reply, Submission};
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use events::IdempotencyKey;
use http_edge::headers::{IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED, LEDGER_SEQ};
use http_edge::{ApiError, ApiJson, Caller};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

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

/// A command request as every handler reads it, in the order the edge checks it: the caller
/// (no token: 401 before anything else), the `Idempotency-Key`, the path parameters `P`
/// ([`NoPath`] for a route without any), then the JSON body (kept as a value: the handler
/// reads its DTO out of it with [`CommandCall::body`]). The idempotency claim is taken here,
/// of the request as routed, so no handler spells its own path again.
#[derive(Debug)]
pub struct CommandCall<P> {
    pub app: AppState,
    pub actor: Actor,
    pub path: P,
    body: Value,
    claim: Option<IdempotencyClaim>,
}

/// The path parameters of a route that has none.
#[derive(Debug)]
pub struct NoPath;

impl<S: Send + Sync> FromRequestParts<S> for NoPath {
    type Rejection = ApiError;

    async fn from_request_parts(_: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(NoPath)
    }
}

impl<P> FromRequest<AppState> for CommandCall<P>
where
    P: FromRequestParts<AppState, Rejection = ApiError> + Send,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, app: &AppState) -> Result<Self, ApiError> {
        let (mut parts, body) = request.into_parts();
        let actor = Actor::from_request_parts(&mut parts, app).await?;
        let key = IdempotencyHeader::from_request_parts(&mut parts, app).await?;
        let path = P::from_request_parts(&mut parts, app).await?;
        // Only a claim needs the routed path: most commands carry no key.
        let routed = match key.0 {
            Some(_) => Some((parts.method.clone(), routed_path(&mut parts, app).await?)),
            None => None,
        };
        let ApiJson(body) =
            ApiJson::<Value>::from_request(Request::from_parts(parts, body), app).await?;
        let claim = routed.and_then(|(method, path)| key.claim(method.as_str(), &path, &body));
        Ok(Self {
            app: app.clone(),
            actor,
            path,
            body,
            claim,
        })
    }
}

/// The request's path as the router matched it, its parameters decoded (`/v1/accounts/alice`
/// however `alice` was percent-encoded): what an idempotency fingerprint takes.
async fn routed_path(parts: &mut Parts, app: &AppState) -> Result<String, ApiError> {
    let template = MatchedPath::from_request_parts(parts, app)
        .await
        .map_err(|_| ApiError::not_found())?;
    let params = RawPathParams::from_request_parts(parts, app)
        .await
        .map_err(|e| ApiError::invalid_request(e.body_text()))?;
    Ok(params
        .iter()
        .fold(template.as_str().to_owned(), |path, (name, value)| {
            path.replace(&format!("{{{name}}}"), value)
        }))
}

impl<P> CommandCall<P> {
    /// The request's DTO, read out of its JSON body (unknown fields, wrong types → 400).
    pub fn body<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        parse_body(&self.body)
    }

    /// The request's JSON body itself, moved out, for a handler that reads a large body as
    /// it is rather than as a DTO (no copy of it). The idempotency claim was taken already.
    pub fn take_body(&mut self) -> Value {
        std::mem::take(&mut self.body)
    }

    /// Submits the command to the writer and turns its answer into a response.
    pub async fn execute(self, command: Command) -> Result<Response, ApiError> {
        execute(&self.app, self.actor, command, self.claim).await
    }

    /// Submits the command to the writer and renders its answer, for a handler that shapes
    /// the response itself.
    pub async fn submit(self, command: Command) -> Result<Exchanged, ApiError> {
        submit(&self.app, self.actor, command, self.claim).await
    }

    /// Submits a request made of several commands (parts), each with its own idempotency
    /// record under the request's key, and renders each part's answer in order. The first
    /// part is committed (or replayed) before the others are queued: its record then exists
    /// whenever a later part's does, so the same key with another request is refused
    /// before any part of it happens, and a failure of the first part is the request's
    /// (ADR 0017). The other parts are queued one after the other, so the writer decides
    /// them in order, and each answers for itself.
    pub async fn submit_parts(
        self,
        commands: Vec<Command>,
    ) -> Result<Vec<Result<Exchanged, ApiError>>, ApiError> {
        let claim = |part: usize| {
            self.claim.clone().map(|claim| IdempotencyClaim {
                part: u32::try_from(part).unwrap_or(u32::MAX),
                ..claim
            })
        };
        let mut commands = commands.into_iter();
        let Some(first) = commands.next() else {
            return Ok(Vec::new());
        };
        let mut answers = vec![Ok(
            submit(&self.app, self.actor.clone(), first, claim(0)).await?
        )];
        let mut pending = Vec::new();
        for (part, command) in commands.enumerate() {
            let submission = submission(&self.actor, command, claim(part + 1));
            let job_id = submission.job_id;
            pending.push((job_id, self.app.writer.queue(submission).await));
        }
        for (job_id, queued) in pending {
            let answer = match queued {
                Ok(pending) => pending.answer().await,
                Err(failure) => Err(failure),
            };
            answers.push(exchanged(&self.actor, job_id, answer));
        }
        Ok(answers)
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
        let Some(value) = parts.headers.get(IDEMPOTENCY_KEY) else {
            return Ok(Self(None));
        };
        let raw = value.to_str().map_err(|_| {
            ApiError::invalid_request("Idempotency-Key must be 1 to 255 visible ASCII characters")
        })?;
        Ok(Self(Some(IdempotencyKey::parse(raw)?)))
    }
}

impl IdempotencyHeader {
    /// The claim for this request: the key (scoped to the caller by the writer) and the
    /// fingerprint of method, path and canonical body.
    fn claim(&self, method: &str, path: &str, body: &Value) -> Option<IdempotencyClaim> {
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
            key: key.clone(),
            fingerprint: hex::encode(hash.finalize()),
            part: 0,
        })
    }
}

/// A command's answer as the edge sends it: status and body (rendered now, or as first
/// given), the `Ledger-Seq`, and whether it is a replay.
#[derive(Debug)]
pub struct Exchanged {
    pub answer: Rendered,
    pub seq: u64,
    pub replayed: bool,
}

/// Submits a command to the writer and turns its answer into a response.
async fn execute(
    app: &AppState,
    actor: Actor,
    command: Command,
    idempotency: Option<IdempotencyClaim>,
) -> Result<Response, ApiError> {
    Ok(respond(submit(app, actor, command, idempotency).await?))
}

/// Submits a command to the writer and renders its answer (a rejection as a problem).
async fn submit(
    app: &AppState,
    actor: Actor,
    command: Command,
    idempotency: Option<IdempotencyClaim>,
) -> Result<Exchanged, ApiError> {
    let submission = submission(&actor, command, idempotency);
    let job_id = submission.job_id;
    exchanged(&actor, job_id, app.writer.submit(submission).await)
}

/// A command of `actor`'s with a new job id.
fn submission(
    actor: &Actor,
    command: Command,
    idempotency: Option<IdempotencyClaim>,
) -> Submission {
    Submission {
        actor: actor.clone(),
        command,
        job_id: Uuid::now_v7(),
        idempotency,
    }
}

/// The writer's answer to a command of `actor`'s as the edge sends it.
fn exchanged(actor: &Actor, job_id: Uuid, answer: Answer) -> Result<Exchanged, ApiError> {
    let Reply { answer, seq } = answer??;
    Ok(match answer {
        Answered::Decided(outcome) => Exchanged {
            answer: render::render(actor, &outcome, job_id),
            seq,
            replayed: false,
        },
        Answered::Replayed(answer) => Exchanged {
            answer,
            seq,
            replayed: true,
        },
    })
}

/// The response for an answer: its status and body, `Ledger-Seq`, and `Idempotent-Replayed`
/// on a replay. Takes the answer whole, so that its body is sent, not copied.
pub fn respond(mut exchanged: Exchanged) -> Response {
    let body = exchanged.answer.body.take();
    respond_as(&exchanged, body)
}

/// The response for an answer with a body the handler shaped itself, serialized straight
/// into the response.
pub fn respond_as(exchanged: &Exchanged, body: impl Serialize) -> Response {
    let status = StatusCode::from_u16(exchanged.answer.status).unwrap_or(StatusCode::OK);
    let mut headers = HeaderMap::new();
    headers.insert(LEDGER_SEQ, HeaderValue::from(exchanged.seq));
    if exchanged.replayed {
        headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    (status, headers, axum::Json(body)).into_response()
}
