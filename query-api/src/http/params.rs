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
