//! The shape of JetStream API answers, read by every request this adapter makes.

/// Reads a JetStream API answer: `{"error": {...}}` or the expected body.
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
pub(crate) enum ApiResponse<T> {
    Err { error: ApiError },
    Ok(T),
}

/// A JetStream API error: `code` is HTTP-like, `err_code` the precise JetStream error.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, thiserror::Error)]
#[error("JetStream error {err_code} ({code}): {description}")]
pub struct ApiError {
    pub code: u16,
    #[serde(default)]
    pub err_code: u16,
    #[serde(default)]
    pub description: String,
}
