//! Which form field an API refusal concerns, so the page shows it beside that field.
//!
//! The APIs answer with a stable problem `code`; this is the one place that reads those codes
//! as fields. A code that concerns no field of the form (a conflict, a rate limit, a lost
//! connection) is shown above the form's button instead.

/// The form fields the console renders (each form uses some of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Amount,
    /// The other account of a transfer, or the account an order charges.
    Account,
    /// The id of a new account.
    AccountId,
    Currency,
    HoldId,
    Token,
    Batch,
}

impl Field {
    /// The field's name in the form (and in element ids: `<form>-<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Amount => "amount",
            Self::Account => "account_id",
            Self::AccountId => "new_account_id",
            Self::Currency => "currency",
            Self::HoldId => "hold_id",
            Self::Token => "token",
            Self::Batch => "batch",
        }
    }
}

/// The field a problem `code` concerns on a form that has `fields`, if it has that field.
pub fn field_for(code: &str, fields: &[Field]) -> Option<Field> {
    let wanted = match code {
        "invalid_amount" | "insufficient_funds" | "balance_overflow" | "capture_exceeds_hold" => {
            Field::Amount
        }
        "account_not_found" | "same_account" | "currency_mismatch" => {
            if fields.contains(&Field::Account) {
                Field::Account
            } else {
                // A currency mismatch on a form without a second account is about the sum.
                Field::Amount
            }
        }
        "invalid_account_id" | "account_exists" => Field::AccountId,
        "invalid_currency" => Field::Currency,
        "hold_not_found" | "hold_not_active" | "hold_expired" => Field::HoldId,
        "unauthorized" => Field::Token,
        _ => return None,
    };
    fields.contains(&wanted).then_some(wanted)
}

/// What the person reads: the API's detail, led by what the code means in plain words where
/// the detail alone may not say it.
pub fn explain(code: &str, detail: &str) -> String {
    let lead = match code {
        "insufficient_funds" => "Insufficient funds",
        "account_not_found" => "No such account",
        "same_account" => "Pick another account",
        "currency_mismatch" => "The currencies differ",
        "idempotency_key_reused" => "This form was already sent with other values; reload the page",
        "rate_limited" => "Too many requests; wait a moment",
        _ => return detail.to_owned(),
    };
    format!("{lead}: {detail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRANSFER: &[Field] = &[Field::Account, Field::Amount];
    const WITHDRAW: &[Field] = &[Field::Amount];

    #[test]
    fn money_refusals_go_beside_the_amount() {
        assert_eq!(
            field_for("insufficient_funds", WITHDRAW),
            Some(Field::Amount)
        );
        assert_eq!(field_for("invalid_amount", TRANSFER), Some(Field::Amount));
        assert_eq!(
            field_for("capture_exceeds_hold", &[Field::HoldId, Field::Amount]),
            Some(Field::Amount)
        );
    }

    #[test]
    fn an_unknown_counterparty_goes_beside_the_account_field() {
        assert_eq!(
            field_for("account_not_found", TRANSFER),
            Some(Field::Account)
        );
        assert_eq!(field_for("same_account", TRANSFER), Some(Field::Account));
    }

    #[test]
    fn an_overdraft_says_so_in_plain_words() {
        assert_eq!(
            explain(
                "insufficient_funds",
                "account a has 5 available, 9 requested"
            ),
            "Insufficient funds: account a has 5 available, 9 requested"
        );
        assert_eq!(
            explain("invalid_amount", "amount must be ≥ 1"),
            "amount must be ≥ 1"
        );
    }

    #[test]
    fn hold_refusals_go_beside_the_hold_id() {
        let capture = &[Field::HoldId, Field::Amount];
        assert_eq!(field_for("hold_not_found", capture), Some(Field::HoldId));
        assert_eq!(field_for("hold_not_active", capture), Some(Field::HoldId));
    }

    #[test]
    fn a_code_for_a_field_the_form_lacks_or_no_field_at_all_goes_above_the_button() {
        assert_eq!(field_for("hold_not_found", WITHDRAW), None);
        assert_eq!(field_for("conflict", TRANSFER), None);
        assert_eq!(field_for("rate_limited", WITHDRAW), None);
    }
}
