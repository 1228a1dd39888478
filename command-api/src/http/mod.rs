//! The command API's HTTP edge: routes' handlers, their answers, and the document.
//!
//! Imports run one way: [`routes`] → handlers (one file per resource: [`accounts`],
//! [`transfers`], [`bulk`], [`holds`], [`balances`], [`orders`], [`journal`], [`health`]) →
//! [`exchange`] (extractors, submitting to the writer, turning its reply into a response),
//! [`answers`] (the typed answers), [`render`] (the one renderer of an outcome) and [`state`].
//! Each handler names its method and path once, in its `#[utoipa::path]`: [`routes`] routes
//! every handler by that attribute, so the router and the document's paths come from the same
//! list, and [`openapi`] adds what the whole document says. No handler imports another, the
//! router or the document. [`forward`] sits in front of the handlers: on an instance that does
//! not hold the writer lease (`crate::election`), it sends write requests to the one that does.

pub mod accounts;
pub mod answers;
pub mod balances;
pub mod bulk;
pub mod exchange;
pub mod forward;
pub mod health;
pub mod holds;
pub mod journal;
pub mod openapi;
pub mod orders;
pub mod problem;
pub mod render;
pub mod state;
pub mod transfers;

use axum::extract::DefaultBodyLimit;
use axum::routing::MethodRouter;
use http_edge::openapi::section;
use http_edge::server::accepting_gzip;
use state::AppState;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

/// The body limits of the two routes that take many items at once, above the API's own.
#[derive(Debug, Clone, Copy)]
pub struct LargeBodies {
    /// `PUT /v1/balances`.
    pub balances_bytes_max: usize,
    /// `POST /v1/transfers/batch`.
    pub transfer_batch_bytes_max: usize,
}

/// Every `/v1` operation of the command API, section by section (a section is a handlers'
/// module, its tag in the document), each routed at the method and path its handler's
/// `#[utoipa::path]` names, with the operations' part of the document.
pub fn routes(large: LargeBodies) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::CommandApiDoc::openapi())
        .merge(section(
            "accounts",
            "Opening accounts and moving money in and out",
            [
                routes!(accounts::open_account),
                routes!(accounts::deposit),
                routes!(accounts::withdraw),
            ],
        ))
        .merge(section(
            "transfers",
            "Moving money between accounts, atomically, and back",
            [
                routes!(transfers::transfer),
                routes!(transfers::reverse_transfer),
            ],
        ))
        .merge(section(
            "bulk",
            "Many transfers in one request: each on its own, or all or nothing",
            [routes!(bulk::transfer_batch).map(large_body(large.transfer_batch_bytes_max))],
        ))
        .merge(section(
            "holds",
            "Reserving money, then capturing or releasing it",
            [
                routes!(holds::place_hold),
                routes!(holds::capture_hold),
                routes!(holds::void_hold),
            ],
        ))
        .merge(section(
            "balances",
            "Setting many balances at once (admin)",
            [routes!(balances::set_balances).map(large_body(large.balances_bytes_max))],
        ))
        .merge(section(
            "orders",
            "Orders paid asynchronously by the payment executor, refunded by admins",
            [routes!(orders::place_order), routes!(orders::refund_order)],
        ))
        .merge(section(
            "journal",
            "Reading the journal's recent messages (admin)",
            [routes!(journal::list_journal)],
        ))
}

/// A route that reads a body of up to `bytes_max` (inflated: it may come gzip-compressed).
fn large_body(bytes_max: usize) -> impl FnOnce(MethodRouter<AppState>) -> MethodRouter<AppState> {
    move |route| accepting_gzip(route.layer(DefaultBodyLimit::max(bytes_max)))
}
