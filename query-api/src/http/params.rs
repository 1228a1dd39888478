//! How requests name things and pages: UUID path ids, page lengths, opaque cursors, and the
//! one way a database failure becomes an answer.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_edge::ApiError;
use uuid::Uuid;

/// Most items per page: bounded so that one request cannot ask for a whole history.
pub const PAGE_LEN_MAX: i64 = 200;
/// Items per page when the client does not say.
pub const PAGE_LEN_DEFAULT: i64 = 50;

/// Database failures are ours, never the client's: logged in full, answered opaquely.
pub fn db(e: sqlx::Error) -> ApiError {
    if database_unavailable(&e) {
        tracing::warn!(error = %e, "the read models' database did not serve a query");
        return ApiError::unavailable("the read models' database is busy or unreachable; retry");
    }
    ApiError::internal(&e)
}

/// A failure of the database's availability, not of the query: no connection free in time, a
/// connection lost, or the server cancelling or refusing work (SQLSTATE classes 08
/// connection exception, 53 insufficient resources, 57 operator intervention). Worth a retry,
/// so `503` with `Retry-After` rather than `500`.
fn database_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            ["08", "53", "57"]
                .iter()
                .any(|class| code.starts_with(class))
        }),
        _ => false,
    }
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

/// A path id that must be a UUID (`what`: "order", "hold", …).
pub fn uuid_id(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::invalid_request(format!("{what} ids are UUIDs")))
}

/// A cursor: where the next page starts, opaque to the client.
pub fn encode_cursor(position: &str) -> String {
    URL_SAFE_NO_PAD.encode(position)
}

/// The position in a cursor this API gave out.
pub fn decode_cursor(raw: &str) -> Result<String, ApiError> {
    URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| ApiError::invalid_request("cursor is not one this API gave out"))
}

/// A word the read model stores (a status, a history type) as the answer's enum. The
/// projector writes only the words the enums know; any other is a fault of ours.
pub fn stored_word<T: serde::de::DeserializeOwned>(word: &str) -> Result<T, ApiError> {
    use serde::de::IntoDeserializer;
    T::deserialize(word.into_deserializer()).map_err(|e: serde::de::value::Error| {
        ApiError::internal(&std::io::Error::other(format!(
            "the read model holds an unknown word {word:?}: {e}"
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_that_does_not_serve_in_time_is_unavailable_not_an_internal_error() {
        let busy = db(sqlx::Error::PoolTimedOut);
        assert_eq!(busy.status.as_u16(), 503);
        assert_eq!(busy.code, "unavailable");
        assert!(busy.retry_after_s.is_some());
        let broken = db(sqlx::Error::RowNotFound);
        assert_eq!(broken.status.as_u16(), 500);
    }
}
