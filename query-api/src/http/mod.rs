//! The query API's handlers, one file per resource.

pub mod accounts;
pub mod batches;
pub mod entries;
pub mod health;
pub mod holds;
pub mod jobs;
pub mod openapi;
pub mod orders;

use events::OwnerId;
use http_edge::{ApiError, Caller};
use uuid::Uuid;

/// Most items per page: bounded so that one request cannot ask for a whole history.
pub const PAGE_LEN_MAX: i64 = 200;
/// Items per page when the client does not say.
pub const PAGE_LEN_DEFAULT: i64 = 50;

/// Database failures are ours, never the client's: logged in full, answered opaquely.
pub fn db(e: sqlx::Error) -> ApiError {
    ApiError::internal(&e)
}

/// A page length from the query (1 ..= [`PAGE_LEN_MAX`]).
pub fn page_len(raw: Option<i64>) -> Result<i64, ApiError> {
    match raw {
        None => Ok(PAGE_LEN_DEFAULT),
        Some(n) if (1..=PAGE_LEN_MAX).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid_request(format!(
            "page sizes are 1 to {PAGE_LEN_MAX}"
        ))),
    }
}

/// Whose things a list shows: the `owner_id` asked for (admins: anyone's; users: only their
/// own, else 403), or when none is asked, the caller's own (admins: everyone's, `None`).
pub fn listed_owner(caller: &Caller, asked: Option<String>) -> Result<Option<OwnerId>, ApiError> {
    let owner = match asked {
        Some(raw) => Some(OwnerId::parse(raw)?),
        None if caller.admin => None,
        None => Some(caller.principal.clone()),
    };
    match &owner {
        Some(owner) if !caller.may_access(owner) => {
            Err(ApiError::forbidden("users list their own things only"))
        }
        _ => Ok(owner),
    }
}

/// A path id that must be a UUID (`what`: "order", "hold", …).
pub fn uuid_id(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::invalid_request(format!("{what} ids are UUIDs")))
}
