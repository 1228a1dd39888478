//! OpenAPI schemas of the wire newtypes (feature `openapi`), beside the rules they describe, so
//! that an API's document says what [`crate::ids`] and [`crate::money`] enforce and an answer
//! or request struct that holds an [`AccountId`] or an [`Amount`] gets the pattern or range
//! from the type rather than from a copy.
//!
//! The patterns are the validation rules written as regular expressions; a unit test holds
//! each against its `parse`.

use crate::ids::{
    ACCOUNT_ID_LEN_MAX, AccountId, IDEMPOTENCY_KEY_LEN_MAX, IdempotencyKey, METADATA_BYTES_MAX,
    Metadata, OWNER_ID_LEN_MAX, OwnerId, REFERENCE_LEN_MAX, Reference,
};
use crate::money::{AMOUNT_MAX, Amount, Currency};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{KnownFormat, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// Pattern of account ids (they become part of NATS subjects).
pub const ACCOUNT_ID_PATTERN: &str = "^[A-Za-z0-9_-]{1,64}$";
/// Pattern of owner ids (JWT subjects): 1 to 128 visible ASCII characters.
pub const OWNER_ID_PATTERN: &str = "^[!-~]{1,128}$";
/// Pattern of currencies: an ISO 4217 alphabetic code.
pub const CURRENCY_PATTERN: &str = "^[A-Z]{3}$";
/// Pattern of `Idempotency-Key`: 1 to 255 visible ASCII characters.
pub const IDEMPOTENCY_KEY_PATTERN: &str = "^[!-~]{1,255}$";
/// Pattern of free text (references, descriptions): no control characters (Unicode's `Cc`,
/// what `char::is_control` refuses).
pub const TEXT_PATTERN: &str = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$";

/// A string schema with `pattern` and a description.
fn pattern(pattern: &str, len_max: usize, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .max_length(Some(len_max))
        .description(Some(description))
        .into()
}

/// An `int64` schema within `min ..= max` (amounts, limits, balances).
pub fn integer_between(min: i64, max: i64) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(min))
        .maximum(Some(max))
}

impl PartialSchema for AccountId {
    fn schema() -> RefOr<Schema> {
        pattern(
            ACCOUNT_ID_PATTERN,
            ACCOUNT_ID_LEN_MAX,
            "An account id: letters, digits, `_` and `-`",
        )
    }
}
impl ToSchema for AccountId {}

impl PartialSchema for OwnerId {
    fn schema() -> RefOr<Schema> {
        pattern(
            OWNER_ID_PATTERN,
            OWNER_ID_LEN_MAX,
            "A principal (the token's `sub`)",
        )
    }
}
impl ToSchema for OwnerId {}

impl PartialSchema for IdempotencyKey {
    fn schema() -> RefOr<Schema> {
        pattern(
            IDEMPOTENCY_KEY_PATTERN,
            IDEMPOTENCY_KEY_LEN_MAX,
            "A client's idempotency key",
        )
    }
}
impl ToSchema for IdempotencyKey {}

impl PartialSchema for Currency {
    fn schema() -> RefOr<Schema> {
        pattern(CURRENCY_PATTERN, 3, "An ISO 4217 alphabetic currency code")
    }
}
impl ToSchema for Currency {}

impl PartialSchema for Reference {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(REFERENCE_LEN_MAX))
            .pattern(Some(TEXT_PATTERN))
            .description(Some(
                "A client's reference (invoice number, memo): no control characters",
            ))
            .into()
    }
}
impl ToSchema for Reference {}

impl PartialSchema for Metadata {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(format!(
                "A client's annotations: a JSON object of at most {METADATA_BYTES_MAX} bytes, no U+0000"
            )))
            .into()
    }
}
impl ToSchema for Metadata {}

impl PartialSchema for Amount {
    fn schema() -> RefOr<Schema> {
        integer_between(1, AMOUNT_MAX)
            .description(Some("An amount in minor units (cents): 1 to 10^15"))
            .into()
    }
}
impl ToSchema for Amount {}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny matcher for the patterns above: `^[class]{min,max}$` or `^[class]{n}$` — enough to hold each pattern
    /// against its type's `parse` without a regex engine.
    fn matches(pattern: &str, raw: &str) -> bool {
        let inner = pattern
            .strip_prefix("^[")
            .and_then(|p| p.strip_suffix('$'))
            .expect("a ^[class]{min,max}$ pattern");
        let (class, counts) = inner.split_once("]{").expect("a count");
        let counts = counts.trim_end_matches('}');
        let (min, max) = counts.split_once(',').unwrap_or((counts, counts));
        let (min, max): (usize, usize) = (min.parse().expect("min"), max.parse().expect("max"));
        let class: Vec<char> = class.chars().collect();
        let in_class = |c: char| {
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == '-' {
                    if (class[i]..=class[i + 2]).contains(&c) {
                        return true;
                    }
                    i += 3;
                } else {
                    if class[i] == c {
                        return true;
                    }
                    i += 1;
                }
            }
            false
        };
        (min..=max).contains(&raw.chars().count()) && raw.chars().all(in_class)
    }

    const SAMPLES: [&str; 12] = [
        "alice",
        "a_b-c",
        "",
        "a.b",
        "a b",
        "x>y",
        "ünï",
        "USD",
        "usd",
        "!~",
        "0123456789012345678901234567890123456789012345678901234567890123",
        "01234567890123456789012345678901234567890123456789012345678901234",
    ];

    #[test]
    fn the_account_id_pattern_says_what_parse_accepts() {
        for raw in SAMPLES {
            assert_eq!(
                matches(ACCOUNT_ID_PATTERN, raw),
                AccountId::parse(raw).is_ok(),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn the_owner_and_key_patterns_say_what_parse_accepts() {
        for raw in SAMPLES {
            assert_eq!(
                matches(OWNER_ID_PATTERN, raw),
                OwnerId::parse(raw).is_ok(),
                "{raw:?}"
            );
            assert_eq!(
                matches(IDEMPOTENCY_KEY_PATTERN, raw),
                IdempotencyKey::parse(raw).is_ok(),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn the_currency_pattern_says_what_parse_accepts() {
        for raw in SAMPLES {
            assert_eq!(
                matches(CURRENCY_PATTERN, raw),
                Currency::parse(raw).is_ok(),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn an_amount_schema_has_the_amount_range() {
        let json = serde_json::to_value(Amount::schema()).expect("json");
        assert_eq!(json["minimum"], 1);
        assert_eq!(json["maximum"], AMOUNT_MAX);
        assert!(Amount::new(AMOUNT_MAX).is_ok() && Amount::new(AMOUNT_MAX + 1).is_err());
    }
}
