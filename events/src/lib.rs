//! The wire contract of Tally, pure and free of I/O.
//!
//! Everything that crosses a process boundary is spelled here once:
//! - [`ids`] and [`money`]: validated newtypes (`AccountId`, `OwnerId`, `Amount`, `Currency`, …)
//!   that the HTTP layers parse into and every other part trusts;
//! - [`subjects`] and [`headers`]: where each aggregate lives in the `LEDGER` stream and which
//!   headers every journaled message carries;
//! - [`event`]: the JSON envelope and the event types, each carrying its aggregate's post-state;
//! - [`account`] and [`order`]: the aggregates' states and `evolve` / `evolve_order`, the one
//!   definition of how an event changes them.
//!
//! Data flows one way: the command side decides events, encodes them with [`event::Envelope`]
//! and publishes them under [`subjects`]; the read side decodes the same envelope and folds it
//! with [`account::evolve`].

pub mod account;
pub mod batch;
pub mod event;
pub mod headers;
pub mod hold;
pub mod ids;
pub mod money;
pub mod order;
pub mod subjects;

pub use account::{AccountState, AccountStatus, EvolveError, evolve};
pub use event::{
    AccountMovement, AccountOpened, BalanceSet, BatchPartApplied, BatchSubmitted, Envelope, Event,
    HISTORY_TYPES, HoldEvent, HoldSide, IdempotencyRecorded, JobFailed, OrderCharge, OrderEvent,
    SCHEMA, TransferLeg,
};
pub use hold::{HoldState, HoldStatus, evolve_hold};
pub use ids::{AccountId, IdError, IdempotencyKey, Metadata, OwnerId, Reference};
pub use money::{AMOUNT_MAX, Amount, AmountError, Currency};
pub use order::{OrderRejection, OrderState, OrderStatus, evolve_order};
