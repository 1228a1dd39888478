//! The command API's OpenAPI document (`GET /openapi.json`, Swagger UI at `GET /docs`).
//!
//! Operations are described where they are handled (`#[utoipa::path]` on each handler, which
//! [`super::routes`] collects), request bodies by the handlers' own request types and answers
//! by the types the handlers send (`answers.rs`, `health.rs`), so the document reads what the
//! code reads. This module says what the whole document says: its title, the problems
//! every command may answer with and the header every command accepts. `scripts/fuzz` checks
//! every answer against this document.

use super::problem::{CONFLICT, IDEMPOTENCY_KEY_REUSED, OVERLOADED};
use http_edge::openapi::{IDEMPOTENCY_KEY_PATTERN, Service, finish, header_parameter};
use utoipa::OpenApi;
use utoipa::openapi::schema::{ObjectBuilder, Type};

#[derive(OpenApi)]
#[openapi(info(
    title = "Tally command API",
    description = "The write side of Tally, an event-sourced money ledger: accounts, \
            deposits, withdrawals, transfers (one or many) and their reversals, holds, \
            balance batches, orders and their refunds. Amounts are \
            integer minor units (1 to 10^15). Errors are RFC 9457 problems \
            (`application/problem+json`) with a stable `code`. Every command answer carries \
            `Ledger-Seq`, to pass as `Ledger-Min-Seq` to the query API for read-your-writes."
))]
pub(super) struct CommandApiDoc;

/// The whole document: the `operations` ([`super::routes`]) plus what every API shares
/// (security, problems, edge answers), what every command may be refused with — `conflict`
/// (its aggregates kept changing under it) and `idempotency_key_reused` — and the
/// `Idempotency-Key` header every command accepts. Commands are the operations with a body.
pub fn document(operations: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let key = header_parameter(
        "Idempotency-Key",
        "Makes the command safe to retry: a repeat with the same key and request answers the \
         original result (header `Idempotent-Replayed: true`); the same key with another \
         request is `422 idempotency_key_reused`. Scoped to the caller, honoured forever.",
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(IDEMPOTENCY_KEY_PATTERN))
            .build(),
    );
    finish(
        operations,
        Service {
            ready_when: "NATS is connected and the journal stream answers",
            service_wide: &[OVERLOADED],
            with_body: &[CONFLICT, IDEMPOTENCY_KEY_REUSED],
            header: key,
            header_with_body_only: true,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{LargeBodies, routes};

    #[test]
    fn every_route_is_documented_and_every_v1_operation_needs_a_token() {
        // The body limits shape the router, not the document.
        let large = LargeBodies {
            balances_bytes_max: 0,
            transfer_batch_bytes_max: 0,
        };
        let doc = document(routes(large).into_openapi());
        let json = serde_json::to_value(&doc).expect("document serializes");
        let paths: Vec<&str> = json["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .map(String::as_str)
            .collect();
        for path in [
            "/v1/accounts",
            "/v1/accounts/{id}/deposits",
            "/v1/accounts/{id}/withdrawals",
            "/v1/transfers",
            "/v1/transfers/batch",
            "/v1/accounts/{id}/holds",
            "/v1/accounts/{id}/holds/{hold_id}/capture",
            "/v1/accounts/{id}/holds/{hold_id}/void",
            "/v1/balances",
            "/v1/orders",
            "/v1/transfers/{transfer_id}/reversals",
            "/v1/orders/{order_id}/refunds",
            "/v1/admin/journal",
            "/healthz",
            "/readyz",
        ] {
            assert!(paths.contains(&path), "{path} is missing from {paths:?}");
        }
        let deposit = &json["paths"]["/v1/accounts/{id}/deposits"]["post"];
        assert_eq!(deposit["security"][0]["bearer"], serde_json::json!([]));
        assert!(deposit["responses"]["429"].is_object());
        // The journal, a GET among commands, gets the same edge answers and its own 403.
        let journal = &json["paths"]["/v1/admin/journal"]["get"];
        assert_eq!(journal["security"][0]["bearer"], serde_json::json!([]));
        for status in ["200", "400", "401", "403", "429", "500", "503"] {
            assert!(journal["responses"][status].is_object(), "journal {status}");
        }
        assert_eq!(journal["operationId"], "list_journal");
        // The reversal and the refund: their handler's name and module, their problems.
        let reversal = &json["paths"]["/v1/transfers/{transfer_id}/reversals"]["post"];
        assert_eq!(reversal["operationId"], "reverse_transfer");
        assert_eq!(reversal["tags"][0], "transfers");
        for status in ["201", "404", "409", "422"] {
            assert!(
                reversal["responses"][status].is_object(),
                "reversal {status}"
            );
        }
        let refund = &json["paths"]["/v1/orders/{order_id}/refunds"]["post"];
        assert_eq!(refund["operationId"], "refund_order");
        assert_eq!(refund["tags"][0], "orders");
        for status in ["201", "403", "404", "409", "422"] {
            assert!(refund["responses"][status].is_object(), "refund {status}");
        }
        // Bulk transfers: two successes (not atomic, atomic), their limit's own problem.
        let batch = &json["paths"]["/v1/transfers/batch"]["post"];
        assert_eq!(batch["operationId"], "transfer_batch");
        assert_eq!(batch["tags"][0], "bulk");
        for status in ["200", "201", "400", "404", "413", "422"] {
            assert!(batch["responses"][status].is_object(), "batch {status}");
        }
        assert!(
            batch["responses"]["400"]
                .to_string()
                .contains("batch_too_large"),
            "{}",
            batch["responses"]["400"]
        );
        assert_eq!(
            json["components"]["schemas"]["BatchedTransfer"]["additionalProperties"],
            false
        );
        assert_eq!(
            json["components"]["schemas"]["MovementRequest"]["additionalProperties"],
            false
        );
        // Answers and requests take ids' and amounts' rules from the newtypes themselves.
        let schemas = &json["components"]["schemas"];
        assert_eq!(
            schemas["AccountId"]["pattern"],
            events::schema::ACCOUNT_ID_PATTERN
        );
        assert_eq!(schemas["Amount"]["maximum"], events::AMOUNT_MAX);
        for (answer, field) in [
            ("TransferAnswer", "amount"),
            ("MovementAnswer", "account_id"),
            ("HoldAnswer", "amount"),
            ("OrderAnswer", "account_id"),
        ] {
            let reference = schemas[answer]["properties"][field]["$ref"]
                .as_str()
                .unwrap_or_default();
            assert!(
                reference.ends_with("/Amount") || reference.ends_with("/AccountId"),
                "{answer}.{field} is {reference:?}"
            );
        }
    }
}
