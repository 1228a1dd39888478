//! The query API's handlers, one file per resource.

pub mod accounts;
pub mod batches;
pub mod entries;
pub mod health;
pub mod holds;
pub mod jobs;
pub mod orders;

use http_edge::ApiError;

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
