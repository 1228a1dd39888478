//! The wire contract of Tally, pure and free of I/O.
//!
//! Everything that crosses a process boundary is spelled here once:
//! - [`ids`] and [`money`]: validated newtypes (`AccountId`, `OwnerId`, `Amount`, `Currency`, …)
//!   that the HTTP layers parse into and every other part trusts;
//! - [`subjects`] and [`headers`]: where each aggregate lives in the `LEDGER` stream and which
//!   headers every journaled message carries;
//! - [`event`]: the JSON envelope and the event types, each carrying its aggregate's post-state;
//! - `schema` (feature `openapi`): the newtypes' OpenAPI schemas, beside their rules;
//! - `columns` (feature `sqlx`): the same newtypes decoded from the read model's columns;
//! - [`account`], [`hold`], [`order`] and [`transfer`]: the aggregates' states;
//! - [`evolve`]: how an event changes each of them ([`Evolve`]), the one definition the
//!   command side builds post-states with and `projector verify` checks them against.
//!
//! Data flows one way: the command side decides events, encodes them with [`event::Envelope`]
//! and publishes them under [`subjects`]; the read side decodes the same envelope and folds it
//! with [`Evolve::evolve`].

/// The conversions serde uses for a checked newtype (`#[serde(try_from = …, into = …)]`): in
/// through its checking constructor, so a bad value is refused where it enters; out as the
/// raw value.
macro_rules! checked_conversions {
    ($newtype:ident: $raw:ty, $error:ty, $parse:expr, $unwrap:expr) => {
        impl TryFrom<$raw> for $newtype {
            type Error = $error;
            fn try_from(raw: $raw) -> Result<Self, $error> {
                ($parse)(raw)
            }
        }

        impl From<$newtype> for $raw {
            fn from(value: $newtype) -> $raw {
                ($unwrap)(value)
            }
        }
    };
}

pub mod account;
pub mod batch;
#[cfg(feature = "sqlx")]
mod columns;
pub mod event;
pub mod evolve;
pub mod headers;
pub mod hold;
pub mod ids;
pub mod money;
pub mod order;
#[cfg(feature = "openapi")]
pub mod schema;
pub mod subjects;
pub mod transfer;

pub use account::{AccountState, AccountStatus};
pub use event::{
    AccountMovement, AccountOpened, AggregateRef, BalanceSet, BatchPartApplied, BatchSubmitted,
    EVENT_TYPES, Envelope, Event, HISTORY_TYPES, HoldEvent, HoldSide, IdempotencyRecorded,
    JobFailed, OrderCharge, OrderEvent, OrderRefund, SCHEMA, TransferLeg, TransferReversal,
};
pub use evolve::{
    AccountEvolveError, Evolve, HoldEvolveError, OrderEvolveError, TransferEvolveError,
};
pub use hold::{HoldState, HoldStatus};
pub use ids::{AccountId, IdError, IdempotencyKey, Metadata, OwnerId, Reference};
pub use money::{AMOUNT_MAX, Amount, AmountError, Currency};
pub use order::{OrderRejection, OrderState, OrderStatus};
pub use transfer::TransferState;
