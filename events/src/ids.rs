//! Identifiers and free-text fields, validated once where they enter the system.
//!
//! Account ids become part of NATS subjects (`ledger.account.<id>`), so they must never contain
//! `.`, `*`, `>` or white space: the pattern `^[A-Za-z0-9_-]{1,64}$` rules all of those out.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why an identifier or text field was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    #[error("account id must match ^[A-Za-z0-9_-]{{1,64}}$")]
    AccountId,
    #[error("owner id must be 1 to 128 visible ASCII characters")]
    OwnerId,
    #[error("Idempotency-Key must be 1 to 255 visible ASCII characters")]
    IdempotencyKey,
    #[error("reference must be 1 to 255 characters without control characters")]
    Reference,
    #[error(
        "metadata must be a JSON object of at most 4096 bytes, with no NUL (U+0000) in its keys or strings"
    )]
    Metadata,
}

/// Longest account id: keeps subjects short and fits the read model's key column.
pub const ACCOUNT_ID_LEN_MAX: usize = 64;

/// An account's id, safe to embed in a NATS subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);

impl AccountId {
    pub fn parse(raw: impl Into<String>) -> Result<Self, IdError> {
        let raw = raw.into();
        let valid = (1..=ACCOUNT_ID_LEN_MAX).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if valid {
            Ok(Self(raw))
        } else {
            Err(IdError::AccountId)
        }
    }

    /// A fresh, time-ordered id for an account opened without one.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

checked_conversions!(AccountId: String, IdError, Self::parse, |id: AccountId| id.0);

impl std::fmt::Display for AccountId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Longest owner id: JWT subjects are often e-mail addresses or UUIDs, both well below this.
pub const OWNER_ID_LEN_MAX: usize = 128;

/// The principal that owns accounts: a JWT `sub`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OwnerId(String);

impl OwnerId {
    /// The one ownership rule of the ledger: users see and act on what they own only; admins
    /// on everything. Both APIs ask it (the command side through its `Actor`, the query side
    /// through its `Caller`).
    pub fn allows(&self, principal: &OwnerId, admin: bool) -> bool {
        admin || self == principal
    }

    pub fn parse(raw: impl Into<String>) -> Result<Self, IdError> {
        let raw = raw.into();
        if is_visible_ascii(&raw, OWNER_ID_LEN_MAX) {
            Ok(Self(raw))
        } else {
            Err(IdError::OwnerId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

checked_conversions!(OwnerId: String, IdError, Self::parse, |id: OwnerId| id.0);

impl std::fmt::Display for OwnerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Longest `Idempotency-Key`: the IETF draft leaves it open; 255 fits every UUID or ULID scheme.
pub const IDEMPOTENCY_KEY_LEN_MAX: usize = 255;

/// A client's `Idempotency-Key` header value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: impl Into<String>) -> Result<Self, IdError> {
        let raw = raw.into();
        if is_visible_ascii(&raw, IDEMPOTENCY_KEY_LEN_MAX) {
            Ok(Self(raw))
        } else {
            Err(IdError::IdempotencyKey)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Longest free-text reference: enough for an invoice number or a short memo, small enough
/// to keep events compact.
pub const REFERENCE_LEN_MAX: usize = 255;

/// A client's own reference for a movement (invoice number, memo).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Reference(String);

impl Reference {
    pub fn parse(raw: impl Into<String>) -> Result<Self, IdError> {
        let raw = raw.into();
        let valid = !raw.is_empty()
            && raw.chars().count() <= REFERENCE_LEN_MAX
            && !raw.chars().any(char::is_control);
        if valid {
            Ok(Self(raw))
        } else {
            Err(IdError::Reference)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

checked_conversions!(Reference: String, IdError, Self::parse, |r: Reference| r.0);

/// True when a key or string anywhere in `value` contains U+0000.
fn holds_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(holds_nul),
        serde_json::Value::Object(map) => map
            .iter()
            .any(|(key, value)| key.contains('\0') || holds_nul(value)),
        _ => false,
    }
}

/// Largest metadata object, serialized: events are kept forever, so client data stays small.
pub const METADATA_BYTES_MAX: usize = 4096;

/// A client's structured annotations on a movement: a JSON object, kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "serde_json::Value", into = "serde_json::Value")]
pub struct Metadata(serde_json::Map<String, serde_json::Value>);

impl Metadata {
    pub fn parse(raw: serde_json::Value) -> Result<Self, IdError> {
        let serde_json::Value::Object(map) = raw else {
            return Err(IdError::Metadata);
        };
        let len = serde_json::to_vec(&map)
            .map_err(|_| IdError::Metadata)?
            .len();
        // PostgreSQL's jsonb cannot hold U+0000: an event carrying it would stop the
        // projection at that event, so it is refused here, where it enters.
        if len <= METADATA_BYTES_MAX && !holds_nul(&serde_json::Value::Object(map.clone())) {
            Ok(Self(map))
        } else {
            Err(IdError::Metadata)
        }
    }
}

impl TryFrom<serde_json::Value> for Metadata {
    type Error = IdError;
    fn try_from(raw: serde_json::Value) -> Result<Self, IdError> {
        Self::parse(raw)
    }
}

impl From<Metadata> for serde_json::Value {
    fn from(m: Metadata) -> serde_json::Value {
        serde_json::Value::Object(m.0)
    }
}

fn is_visible_ascii(raw: &str, len_max: usize) -> bool {
    (1..=len_max).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_that_would_change_a_subject_are_refused() {
        for bad in ["", "a.b", "a*", "a>", "a b", "a\tb", "ä", &"x".repeat(65)] {
            assert_eq!(AccountId::parse(bad), Err(IdError::AccountId), "{bad:?}");
        }
        for good in ["alice", "A_1-b", &"x".repeat(64)] {
            assert_eq!(AccountId::parse(good).map(|id| id.0), Ok(good.to_string()));
        }
    }

    #[test]
    fn generated_account_ids_are_valid() {
        let id = AccountId::generate();
        assert_eq!(AccountId::parse(id.as_str()), Ok(id));
    }

    #[test]
    fn idempotency_keys_are_visible_ascii_up_to_255() {
        assert!(IdempotencyKey::parse("k-1").is_ok());
        assert!(IdempotencyKey::parse("x".repeat(255)).is_ok());
        for bad in [String::new(), "x".repeat(256), "a b".into(), "é".into()] {
            assert_eq!(IdempotencyKey::parse(bad), Err(IdError::IdempotencyKey));
        }
    }

    #[test]
    fn metadata_must_be_a_small_object() {
        assert!(Metadata::parse(serde_json::json!({"k": "v"})).is_ok());
        assert_eq!(
            Metadata::parse(serde_json::json!([1])),
            Err(IdError::Metadata)
        );
        let big = serde_json::json!({"k": "x".repeat(METADATA_BYTES_MAX)});
        assert_eq!(Metadata::parse(big), Err(IdError::Metadata));
    }

    #[test]
    fn metadata_with_a_nul_anywhere_is_refused() {
        for nul in [
            serde_json::json!({"note": "a\u{0}b"}),
            serde_json::json!({"a\u{0}": 1}),
            serde_json::json!({"deep": [{"x": ["\u{0}"]}]}),
        ] {
            assert_eq!(Metadata::parse(nul), Err(IdError::Metadata));
        }
        assert!(Metadata::parse(serde_json::json!({"note": "a\u{1}b", "n": [1, "x"]})).is_ok());
    }

    #[test]
    fn references_refuse_control_characters_and_excess_length() {
        assert!(Reference::parse("INV-42").is_ok());
        assert_eq!(Reference::parse("a\nb"), Err(IdError::Reference));
        assert_eq!(Reference::parse(""), Err(IdError::Reference));
        assert_eq!(Reference::parse("x".repeat(256)), Err(IdError::Reference));
    }
}
