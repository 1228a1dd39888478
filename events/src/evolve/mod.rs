//! How an event changes an aggregate's state: one [`Evolve`] impl per aggregate
//! (`AccountState::evolve`, `HoldState::evolve`, `OrderState::evolve`,
//! `TransferState::evolve`), used by the command
//! side's `decide` to build post-states and by `projector verify` to check them.
//!
//! States (`account`, `hold`, `order`) know nothing of events; events carry states; this module
//! reads both — so the imports run one way.

mod account;
mod hold;
mod order;
mod transfer;

use crate::event::Event;

pub use account::AccountEvolveError;
pub use hold::HoldEvolveError;
pub use order::OrderEvolveError;
pub use transfer::TransferEvolveError;

/// How an event changes an aggregate's state.
pub trait Evolve: Sized {
    /// An event that does not follow from the state before it.
    type Error: std::error::Error;

    /// The state after `event`, from `prev` (`None`: the aggregate does not exist yet).
    fn evolve(prev: Option<&Self>, event: &Event) -> Result<Self, Self::Error>;
}
