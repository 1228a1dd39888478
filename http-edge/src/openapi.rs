//! What both APIs' OpenAPI documents share: the bearer security scheme, the problem schema,
//! the answers every `/v1` operation may give whatever it does (bad input, no token, rate
//! limit, time-outs), and the routes serving the document (`GET /openapi.json`) and Swagger
//! UI (`GET /docs`, served from the binary: no CDN).
//!
//! Each API describes its own operations with `#[utoipa::path]` and routes them by it, in
//! [`section`]s; [`finish`] adds the shared parts — and the probes and the one request header
//! each API asks of all its operations, described by a [`Service`] — so that they are spelled
//! once and no operation forgets them.

use crate::problem::{
    INTERNAL, INVALID_REQUEST, PAYLOAD_TOO_LARGE, Problem, ProblemKind, RATE_LIMITED, UNAUTHORIZED,
    UNAVAILABLE, UNSUPPORTED_MEDIA_TYPE,
};
use axum::Router;
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, OpenApi, Ref, RefOr, Required, Response, ResponseBuilder,
};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

/// The security scheme's name in the documents.
pub const BEARER: &str = "bearer";

/// The media type of every error answer.
pub const PROBLEM_JSON: &str = "application/problem+json";

// The id patterns are spelled in `events`, beside the rules they describe.
pub use events::schema::{
    ACCOUNT_ID_PATTERN, CURRENCY_PATTERN, IDEMPOTENCY_KEY_PATTERN, OWNER_ID_PATTERN,
};

/// `{id}` in a path: the account it names, described once for every endpoint under
/// `/v1/accounts/{id}`.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AccountIdParam {
    /// the account id
    #[param(value_type = events::AccountId)]
    pub id: String,
}

/// One section of an API: its operations (each `utoipa_axum::routes!` of a handler, routed
/// at the method and path of its `#[utoipa::path]`), tagged `tag` — the handlers' module —
/// with what the section is about. A section's name, description and operations are declared
/// together, and the API's sections in one list.
pub fn section<S>(
    tag: &str,
    about: &str,
    routed: impl IntoIterator<Item = UtoipaMethodRouter<S>>,
) -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    let mut section = routed
        .into_iter()
        .fold(OpenApiRouter::default(), OpenApiRouter::routes);
    let doc = section.get_openapi_mut();
    for operation in doc.paths.paths.values_mut().flat_map(operations) {
        operation.tags = Some(vec![tag.to_owned()]);
    }
    let tag = TagBuilder::new().name(tag).description(Some(about)).build();
    doc.tags.get_or_insert_with(Vec::new).push(tag);
    section
}

/// What one API adds to the parts every document shares.
pub struct Service<'a> {
    /// What the API needs to be ready, said on `GET /readyz`.
    pub ready_when: &'a str,
    /// The API's own kinds of problem that any of its operations may answer with (e.g.
    /// `overloaded`).
    pub service_wide: &'a [ProblemKind],
    /// The API's own kinds of problem that any of its operations that read a body may answer
    /// with, besides the operation's own (e.g. the command API's `conflict`).
    pub with_body: &'a [ProblemKind],
    /// The request header the API's operations accept (see [`header_parameter`]).
    pub header: Parameter,
    /// Whether only the operations that read a body accept [`Service::header`].
    pub header_with_body_only: bool,
}

// By hand: utoipa's `Parameter` is not `Debug`; its name says which it is.
impl std::fmt::Debug for Service<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("ready_when", &self.ready_when)
            .field("service_wide", &self.service_wide)
            .field("with_body", &self.with_body)
            .field("header", &self.header.name)
            .field("header_with_body_only", &self.header_with_body_only)
            .finish()
    }
}

/// Adds the shared parts to an API's document: the probes ([`crate::probes::document`]), the
/// bearer scheme (required by every `/v1` operation), the `Problem` schema, on every `/v1`
/// operation the answers the edge may give: 400, 401, 429, 500 and 503 (and 413 and 415
/// where a JSON body is read), with the API's own kinds of its whole beside them, the kinds
/// of [`Service::with_body`] added to those of each operation that reads a body, and the
/// API's header.
pub fn finish(mut doc: OpenApi, service: Service) -> OpenApi {
    crate::probes::document(&mut doc, service.ready_when);
    for operation in doc.paths.paths.values_mut().flat_map(operations) {
        if operation.request_body.is_some() {
            merge_answers(operation, service.with_body);
        }
    }
    let mut doc = add_shared(doc, service.service_wide);
    add_header_parameter(&mut doc, &service.header, service.header_with_body_only);
    doc
}

/// The security scheme, the `Problem` schema and the edge's answers (see [`finish`]).
fn add_shared(mut doc: OpenApi, service_wide: &[ProblemKind]) -> OpenApi {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "HS256 JWT with `sub` (the principal), `exp` and optional `role: \"admin\"`",
                ))
                .build(),
        ),
    );
    components
        .schemas
        .insert(Problem::name().into_owned(), Problem::schema());
    let edge: Vec<ProblemKind> = [INVALID_REQUEST, UNAUTHORIZED, RATE_LIMITED, INTERNAL]
        .into_iter()
        .chain(std::iter::once(UNAVAILABLE))
        .chain(service_wide.iter().copied())
        .collect();
    let with_body: Vec<ProblemKind> = edge
        .iter()
        .copied()
        .chain([PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE])
        .collect();
    for (path, item) in doc.paths.paths.iter_mut() {
        for operation in operations(item) {
            if !path.starts_with("/v1/") {
                add_answers(operation, &[UNAVAILABLE]);
                continue;
            }
            let kinds = if operation.request_body.is_some() {
                &with_body
            } else {
                &edge
            };
            add_answers(operation, kinds);
            operation.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
        }
    }
    doc
}

/// Adds the answers for `kinds` whose status the operation does not document yet (its own
/// description of a status wins).
fn add_answers(operation: &mut Operation, kinds: &[ProblemKind]) {
    for (status, answer) in problem_answers(kinds) {
        operation
            .responses
            .responses
            .entry(status)
            .or_insert(answer);
    }
}

/// Adds the answers for `kinds` to the operation's own: a status it documents already names
/// the codes of `kinds` after its own (and says `Retry-After` if one of them does).
fn merge_answers(operation: &mut Operation, kinds: &[ProblemKind]) {
    for (status, answer) in problem_answers(kinds) {
        match operation.responses.responses.entry(status) {
            Entry::Vacant(vacant) => {
                vacant.insert(answer);
            }
            Entry::Occupied(mut own) => {
                if let (RefOr::T(own), RefOr::T(more)) = (own.get_mut(), answer) {
                    own.description = format!("{}; {}", own.description, more.description);
                    for (name, header) in more.headers {
                        own.headers.entry(name).or_insert(header);
                    }
                }
            }
        }
    }
}

/// The answers of an operation that may refuse with `kinds`: one problem+json answer per
/// status, naming every code it may carry and what each means, with `Retry-After` where one of
/// them says to retry. Operations list theirs with [`crate::problems!`].
pub fn problem_answers(kinds: &[ProblemKind]) -> BTreeMap<String, RefOr<Response>> {
    let mut by_status: BTreeMap<u16, Vec<&ProblemKind>> = BTreeMap::new();
    for kind in kinds {
        by_status
            .entry(kind.status.as_u16())
            .or_default()
            .push(kind);
    }
    by_status
        .into_iter()
        .map(|(status, kinds)| {
            let description = kinds
                .iter()
                .map(|kind| format!("`{}`: {}", kind.code, kind.meaning))
                .collect::<Vec<_>>()
                .join("; ");
            let retry = kinds.iter().any(|kind| kind.retry);
            (
                status.to_string(),
                RefOr::T(problem_answer(&description, retry)),
            )
        })
        .collect()
}

/// Declares the problems an operation may answer with, as a type its `#[utoipa::path]` lists
/// in `responses(…)`: `problems!(DepositProblems: [ACCOUNT_NOT_FOUND, CONFLICT]);`. The
/// statuses and descriptions come from the [`ProblemKind`]s themselves.
#[macro_export]
macro_rules! problems {
    ($(#[$attr:meta])* $vis:vis $name:ident: [$($kind:expr),+ $(,)?]) => {
        $(#[$attr])*
        $vis struct $name;

        impl ::utoipa::IntoResponses for $name {
            fn responses() -> ::std::collections::BTreeMap<
                ::std::string::String,
                ::utoipa::openapi::RefOr<::utoipa::openapi::Response>,
            > {
                $crate::openapi::problem_answers(&[$($kind),+])
            }
        }
    };
}

/// A problem+json answer, with `Retry-After` when the client should come back later.
fn problem_answer(description: &str, retry_after: bool) -> Response {
    let mut answer = ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    );
    if retry_after {
        answer = answer.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(integer_schema()))
                .description(Some("seconds to wait before retrying"))
                .build(),
        );
    }
    answer.build()
}

fn integer_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .build()
}

/// An optional request header parameter with a schema.
pub fn header_parameter(name: &str, description: &str, schema: Object) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

/// Adds a header parameter to every `/v1` operation with a request body (`with_body`) or to
/// every `/v1` operation (`!with_body`).
fn add_header_parameter(doc: &mut OpenApi, parameter: &Parameter, with_body: bool) {
    for (path, item) in doc.paths.paths.iter_mut() {
        if !path.starts_with("/v1/") {
            continue;
        }
        for operation in operations(item) {
            if with_body && operation.request_body.is_none() {
                continue;
            }
            operation
                .parameters
                .get_or_insert_with(Vec::new)
                .push(RefOr::T(parameter.clone()));
        }
    }
}

/// `GET /openapi.json` (the document) and `GET /docs` (Swagger UI, vendored in the binary).
/// Neither needs a token: the contract is public, the data is not.
pub fn routes<S>(doc: OpenApi) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    utoipa_swagger_ui::SwaggerUi::new("/docs")
        .url("/openapi.json", doc)
        .into()
}

/// A schema for an `i64` within `min ..= max` (amounts, limits), for handwritten schemas.
pub fn integer_between(min: i64, max: i64) -> Object {
    events::schema::integer_between(min, max).build()
}

/// The operations of a path that Tally's APIs use.
fn operations(item: &mut utoipa::openapi::path::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .flatten()
}
