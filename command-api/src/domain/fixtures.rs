//! What the command API's unit tests build their aggregates from, so that each test says
//! only what matters to it.

use events::{AccountState, AccountStatus, Currency, OwnerId};

/// An open USD account of `owner` holding `balance` at version 1: nothing held, no
/// overdraft. Tests that need another version or hold set it with `..open_account(…)`.
pub fn open_account(owner: &str, balance: i64) -> AccountState {
    AccountState {
        version: 1,
        balance,
        held: 0,
        currency: Currency::default(),
        status: AccountStatus::Open,
        owner_id: OwnerId::parse(owner).expect("valid owner"),
        overdraft_limit: 0,
    }
}
