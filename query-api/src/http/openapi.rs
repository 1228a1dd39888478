//! The query API's OpenAPI document (`GET /openapi.json`, Swagger UI at `GET /docs`).
//!
//! Operations are described where they are handled (`#[utoipa::path]` on each handler, which
//! [`super::routes`] collects), query parameters by the handlers' query types, and answers by
//! the very structs the handlers send, whose schemas the paths bring in. This module says
//! what the whole document says: its title and the header every query accepts.
//! `scripts/fuzz` checks every answer against this document.

use super::feed;
use http_edge::openapi::{Service, finish, header_parameter, integer_between};
use utoipa::OpenApi;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Type};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tally query API",
        description = "The read side of Tally, an event-sourced money ledger: accounts, \
            balances (also as of a past instant), history, jobs, holds, batches and orders, \
            from read models projected from the journal. Amounts are integer minor units. \
            Errors are RFC 9457 problems (`application/problem+json`) with a stable `code`. \
            Every answer carries `Ledger-Seq` (how far the read model was); send a command's \
            `Ledger-Seq` as `Ledger-Min-Seq` to read your own writes."
    ),
    // The feed's answer is a stream, not one body: its events' `data` and its `from` word
    // are listed here so that clients find their shapes.
    components(schemas(feed::FeedEvent, feed::FromWhere))
)]
pub(super) struct QueryApiDoc;

/// The whole document: the `operations` ([`super::routes`]) plus what every API shares
/// (security, problems, edge answers) and the `Ledger-Min-Seq` header every query accepts.
pub fn document(operations: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let min_seq = header_parameter(
        "Ledger-Min-Seq",
        "Read-your-writes: wait (bounded) until the read model has applied the journal up to \
         this stream sequence (a command's `Ledger-Seq`), else `503 projection_lagging`.",
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Int64,
            )))
            .minimum(Some(0))
            .maximum(Some(i64::MAX))
            .build(),
    );
    let mut doc = finish(
        operations,
        Service {
            ready_when: "PostgreSQL answers and the read models exist",
            service_wide: &[crate::consistency::PROJECTION_LAGGING],
            with_body: &[],
            header: min_seq,
            header_with_body_only: false,
        },
    );
    describe_feed(&mut doc);
    doc
}

/// What the feed adds to the shared parameters: the header a reconnecting `EventSource`
/// sends.
fn describe_feed(doc: &mut utoipa::openapi::OpenApi) {
    let Some(operation) = doc
        .paths
        .paths
        .get_mut(feed::PATH)
        .and_then(|item| item.get.as_mut())
    else {
        return;
    };
    let last_event_id = header_parameter(
        feed::LAST_EVENT_ID,
        "Resume after this event's `id` (what a reconnecting `EventSource` sends); takes \
         precedence over `after_seq` and `from`.",
        integer_between(0, i64::MAX),
    );
    operation
        .parameters
        .get_or_insert_with(Vec::new)
        .push(RefOr::T(last_event_id));
}

#[cfg(test)]
mod tests {
    /// The whole document, as the query API serves it.
    fn document() -> utoipa::openapi::OpenApi {
        super::document(crate::http::routes().into_openapi())
    }

    #[test]
    fn every_route_is_documented_with_its_parameters() {
        let json = serde_json::to_value(document()).expect("document serializes");
        for path in [
            "/v1/accounts",
            "/v1/accounts/{id}",
            "/v1/accounts/{id}/balance",
            "/v1/accounts/{id}/entries",
            "/v1/accounts/{id}/events",
            "/v1/jobs/{id}",
            "/v1/holds/{id}",
            "/v1/batches/{id}",
            "/v1/orders",
            "/v1/orders/{id}",
            "/v1/transfers/{id}",
            "/v1/admin/projector",
            "/healthz",
            "/readyz",
        ] {
            assert!(json["paths"][path]["get"].is_object(), "{path} is missing");
        }
        let entries = &json["paths"]["/v1/accounts/{id}/entries"]["get"];
        let names: Vec<&str> = entries["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        for name in [
            "id",
            "type",
            "limit",
            "cursor",
            "page",
            "page_size",
            "Ledger-Min-Seq",
        ] {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        assert_eq!(entries["security"][0]["bearer"], serde_json::json!([]));
        let events = &json["paths"]["/v1/accounts/{id}/events"]["get"];
        let names: Vec<&str> = events["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        for name in ["id", "after_seq", "from", "Last-Event-ID", "Ledger-Min-Seq"] {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        assert!(events["responses"]["200"]["content"]["text/event-stream"].is_object());
        assert!(events["responses"]["503"]["headers"]["Retry-After"].is_object());
        let projector = &json["paths"]["/v1/admin/projector"]["get"];
        assert_eq!(projector["security"][0]["bearer"], serde_json::json!([]));
        for status in ["200", "401", "403", "429", "503"] {
            assert!(
                projector["responses"][status].is_object(),
                "projector {status}"
            );
        }
        assert_eq!(projector["operationId"], "get_projector");
        assert_eq!(projector["tags"][0], "admin");
        let transfer = &json["paths"]["/v1/transfers/{id}"]["get"];
        assert_eq!(transfer["operationId"], "get_transfer");
        assert_eq!(transfer["tags"][0], "transfers");
        assert!(transfer["responses"]["404"].is_object());
        let types = &json["components"]["schemas"]["EntryType"]["enum"];
        for word in events::HISTORY_TYPES {
            assert!(
                types
                    .as_array()
                    .is_some_and(|t| t.contains(&serde_json::json!(word))),
                "{word} missing from {types}"
            );
        }
    }

    #[test]
    fn every_schema_the_document_refers_to_is_in_it() {
        let json = serde_json::to_value(document()).expect("document serializes");
        let text = json.to_string();
        let schemas = &json["components"]["schemas"];
        for reference in text.split("\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap_or_default();
            assert!(
                schemas[name].is_object(),
                "{name} is referred to but missing"
            );
        }
        for answer in [
            "Account",
            "AccountPage",
            "Balance",
            "EntryPage",
            "FeedEvent",
            "StreamEvent",
            "Job",
            "Hold",
            "Batch",
            "OrderPage",
            "Transfer",
            "Ready",
            "ProjectorStatus",
        ] {
            assert!(schemas[answer].is_object(), "{answer} is missing");
        }
    }
}
