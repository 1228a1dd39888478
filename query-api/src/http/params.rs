//! How requests name things and pages: UUID path ids, page lengths, opaque cursors, and the
//! one way a database failure becomes an answer.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_edge::{ApiError, PageLen};
use uuid::Uuid;

/// Items per page: at most 200, so that one request cannot ask for a whole history; 50 when
/// the client does not say.
pub const PAGE_LEN: PageLen = PageLen {
    default: 50,
    max: 200,
};

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

/// A page length from the query (see [`PAGE_LEN`]).
pub fn page_len(raw: Option<i64>) -> Result<i64, ApiError> {
    PAGE_LEN.of(raw)
}

/// A path id that must be a UUID (`what`: "order", "hold", …).
pub fn uuid_id(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::invalid_request(format!("{what} ids are UUIDs")))
}

/// A cursor: where the next page starts, opaque to the client.
pub fn encode_cursor(position: &str) -> String {
    URL_SAFE_NO_PAD.encode(position)
}

/// A page read with one row more than `limit` asked for (that row only tells whether another
/// page follows): the page, and the cursor of the next one, at the `position` of the page's
/// last row (`None` on the last page).
pub fn cursor_page<T>(
    mut rows: Vec<T>,
    limit: i64,
    position: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let next = more
        .then(|| rows.last().map(|row| encode_cursor(&position(row))))
        .flatten();
    (rows, next)
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
