//! What both APIs' OpenAPI documents share: the bearer security scheme, the problem schema,
//! the answers every `/v1` operation may give whatever it does (bad input, no token, rate
//! limit, time-outs), and the routes serving the document (`GET /openapi.json`) and Swagger
//! UI (`GET /docs`, served from the binary: no CDN).
//!
//! Each API describes its own operations with `#[utoipa::path]`; [`finish`] adds the shared
//! parts, so that they are spelled once and no operation forgets them.

use crate::problem::Problem;
use axum::Router;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, OpenApi, Ref, RefOr, Required, Response, ResponseBuilder,
};
use utoipa::{PartialSchema, ToSchema};

/// The security scheme's name in the documents.
pub const BEARER: &str = "bearer";

/// The media type of every error answer.
pub const PROBLEM_JSON: &str = "application/problem+json";

// The id patterns are spelled in `events`, beside the rules they describe.
pub use events::schema::{
    ACCOUNT_ID_PATTERN, CURRENCY_PATTERN, IDEMPOTENCY_KEY_PATTERN, OWNER_ID_PATTERN,
};

/// Adds the shared parts to an API's document: the bearer scheme (required by every `/v1`
/// operation), the `Problem` schema, and on every `/v1` operation the answers the edge may
/// give: 400, 401, 429, 500 and 503 (and 413 and 415 where a JSON body is read).
pub fn finish(mut doc: OpenApi) -> OpenApi {
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
    for (path, item) in doc.paths.paths.iter_mut() {
        for operation in operations(item) {
            if path.starts_with("/v1/") {
                add_edge_answers(operation);
                operation.security =
                    Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
            } else {
                add_answer(
                    operation,
                    503,
                    "unavailable",
                    "the request took too long",
                    true,
                );
            }
        }
    }
    doc
}

fn add_edge_answers(operation: &mut Operation) {
    add_answer(
        operation,
        400,
        "invalid_request (and other invalid_… codes)",
        "the request is malformed: path, query, header or body",
        false,
    );
    add_answer(
        operation,
        401,
        "unauthorized",
        "no bearer token, or one that is not valid or has expired",
        false,
    );
    add_answer(
        operation,
        429,
        "rate_limited",
        "the caller (the token's sub, else the client address) sent too many requests",
        true,
    );
    add_answer(
        operation,
        500,
        "internal",
        "a failure of the service; the body carries no detail",
        false,
    );
    add_answer(
        operation,
        503,
        "unavailable | overloaded | projection_lagging",
        "the service cannot answer now",
        true,
    );
    if operation.request_body.is_some() {
        add_answer(
            operation,
            413,
            "payload_too_large",
            "the body is larger than the limit",
            false,
        );
        add_answer(
            operation,
            415,
            "unsupported_media_type",
            "the body is not sent as application/json",
            false,
        );
    }
}

/// Adds a problem answer for `status` unless the operation already documents it.
fn add_answer(operation: &mut Operation, status: u16, codes: &str, why: &str, retry_after: bool) {
    let key = status.to_string();
    if operation.responses.responses.contains_key(&key) {
        return;
    }
    operation.responses.responses.insert(
        key,
        RefOr::T(problem_answer(&format!("`{codes}`: {why}"), retry_after)),
    );
}

/// A problem+json answer, with `Retry-After` when the client should come back later.
pub fn problem_answer(description: &str, retry_after: bool) -> Response {
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
pub fn add_header_parameter(doc: &mut OpenApi, parameter: &Parameter, with_body: bool) {
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
