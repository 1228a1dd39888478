//! The write side's decisions: pure, synchronous, no I/O.
//!
//! [`decide`] takes the current state of the accounts a command touches and answers with the
//! events to journal (each carrying its post-state, computed by `events::evolve`) and the
//! [`Outcome`] to report, or a [`DomainError`] — a business rejection. Infrastructure failures
//! never appear here.

pub mod account;

pub use account::{
    Actor, Command, Decision, DomainError, MoveFunds, OpenAccount, Outcome, TransferFunds, decide,
};
