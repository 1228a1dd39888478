//! Money: integer minor units, never floats.
//!
//! An [`Amount`] is what a single movement may carry (1 ..= 10^15 minor units — ten trillion
//! dollars in cents, beyond any single real payment, far enough from `i64::MAX` that sums of
//! many amounts stay representable). Balances are plain `i64` minor units changed only with
//! checked arithmetic in `decide`.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Largest amount a single movement may carry, in minor units.
pub const AMOUNT_MAX: i64 = 1_000_000_000_000_000;

/// Why an amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AmountError {
    #[error("amount must be a JSON integer (minor units)")]
    NotAnInteger,
    #[error("amount must be between 1 and 10^15 minor units")]
    OutOfRange,
}

/// A positive amount of minor units, 1 ..= 10^15.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Amount(i64);

impl Amount {
    pub fn new(minor_units: i64) -> Result<Self, AmountError> {
        if (1..=AMOUNT_MAX).contains(&minor_units) {
            Ok(Self(minor_units))
        } else {
            Err(AmountError::OutOfRange)
        }
    }

    /// Parses an amount from untrusted JSON: only integers are money here; `1.0`, `"1"`
    /// and `1e3` are refused rather than coerced.
    pub fn from_json(raw: &serde_json::Value) -> Result<Self, AmountError> {
        let serde_json::Value::Number(number) = raw else {
            return Err(AmountError::NotAnInteger);
        };
        if let Some(units) = number.as_i64() {
            Self::new(units)
        } else if number.is_u64() {
            Err(AmountError::OutOfRange)
        } else {
            Err(AmountError::NotAnInteger)
        }
    }

    pub fn minor_units(self) -> i64 {
        self.0
    }
}

checked_conversions!(Amount: i64, AmountError, Self::new, |amount: Amount| amount.0);

/// An ISO 4217 alphabetic currency code: three upper-case ASCII letters.
///
/// The code's shape is checked, not its membership in today's ISO list: the list changes and
/// a ledger must keep reading codes that were valid when they were journaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

/// The currency of an account opened without one.
pub const DEFAULT_CURRENCY: Currency = Currency(*b"USD");

/// A currency code that is not three upper-case letters.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("currency must be an ISO 4217 code: three upper-case letters")]
pub struct CurrencyError;

impl Currency {
    pub fn parse(raw: &str) -> Result<Self, CurrencyError> {
        match raw.as_bytes() {
            &[a, b, c] if [a, b, c].iter().all(u8::is_ascii_uppercase) => Ok(Self([a, b, c])),
            _ => Err(CurrencyError),
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ever built from three ASCII upper-case letters.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl Default for Currency {
    fn default() -> Self {
        DEFAULT_CURRENCY
    }
}

checked_conversions!(
    Currency: String,
    CurrencyError,
    |raw: String| Self::parse(&raw),
    |c: Currency| c.as_str().to_owned()
);

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn amounts_are_integers_from_one_to_ten_to_the_fifteen() {
        assert_eq!(Amount::from_json(&json!(1)).map(Amount::minor_units), Ok(1));
        assert_eq!(
            Amount::from_json(&json!(AMOUNT_MAX)).map(Amount::minor_units),
            Ok(AMOUNT_MAX)
        );
        for out_of_range in [json!(0), json!(-5), json!(AMOUNT_MAX + 1), json!(u64::MAX)] {
            assert_eq!(
                Amount::from_json(&out_of_range),
                Err(AmountError::OutOfRange)
            );
        }
        for not_integer in [json!(1.5), json!(1.0), json!("10"), json!(null), json!(1e3)] {
            assert_eq!(
                Amount::from_json(&not_integer),
                Err(AmountError::NotAnInteger)
            );
        }
    }

    #[test]
    fn currencies_are_three_upper_case_letters() {
        assert_eq!(
            Currency::parse("EUR").map(|c| c.to_string()),
            Ok("EUR".into())
        );
        for bad in ["eur", "EU", "EURO", "E1R", ""] {
            assert_eq!(Currency::parse(bad), Err(CurrencyError));
        }
    }
}
