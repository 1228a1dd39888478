//! The query API's handlers, one file per resource. Each handler answers with a typed struct
//! (`Serialize + ToSchema`) declared beside it and names its method and path once, in its
//! `#[utoipa::path]`: [`routes`] routes every handler by that attribute, so the router and the
//! document's paths come from the same list, and [`openapi`] adds what the whole document
//! says. Imports run one way: `routes` → handlers → [`access`], [`params`] → `crate::state`.
//!
//! Answer structs list their fields in alphabetical order: the answers used to be built as
//! JSON maps, which serialize their keys sorted, and keeping the order keeps them byte for
//! byte.

pub mod access;
pub mod accounts;
pub mod admin;
pub mod batches;
pub mod entries;
pub mod feed;
pub mod health;
pub mod holds;
pub mod jobs;
pub mod openapi;
pub mod orders;
pub mod params;
pub mod transfers;

use crate::state::AppState;
use http_edge::openapi::section;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Every `/v1` operation of the query API, section by section (a section is a handlers'
/// module, its tag in the document), each routed at the method and path its handler's
/// `#[utoipa::path]` names, with the operations' part of the document.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::QueryApiDoc::openapi())
        .merge(section(
            "accounts",
            "Accounts and their balances",
            [
                routes!(accounts::list_accounts),
                routes!(accounts::get_account),
                routes!(accounts::get_balance),
            ],
        ))
        .merge(section(
            "entries",
            "Accounts' history",
            [routes!(entries::list_entries)],
        ))
        .merge(section(
            "feed",
            "Accounts' changes, live",
            [routes!(feed::stream_account_events)],
        ))
        .merge(section(
            "jobs",
            "What became of a command",
            [routes!(jobs::get_job)],
        ))
        .merge(section(
            "holds",
            "Reservations of money",
            [routes!(holds::get_hold)],
        ))
        .merge(section(
            "batches",
            "Balance batches",
            [routes!(batches::get_batch)],
        ))
        .merge(section(
            "orders",
            "Orders, their payment and refunds",
            [routes!(orders::list_orders), routes!(orders::get_order)],
        ))
        .merge(section(
            "transfers",
            "Transfers and their reversals",
            [routes!(transfers::get_transfer)],
        ))
        .merge(section(
            "admin",
            "Operating the read side (admin)",
            [routes!(admin::get_projector)],
        ))
}
