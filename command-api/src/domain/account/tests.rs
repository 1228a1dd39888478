//! Given the accounts' states, when a command is decided, then these events (or this
//! rejection) follow.

use super::*;
use crate::domain::fixtures::open_account;
use crate::domain::{Command, decide};
use std::collections::HashMap;

fn id(raw: &str) -> AccountId {
    AccountId::parse(raw).expect("valid id")
}

fn owner(raw: &str) -> OwnerId {
    OwnerId::parse(raw).expect("valid owner")
}

fn user(raw: &str) -> Actor {
    Actor {
        principal: owner(raw),
        admin: false,
    }
}

fn admin() -> Actor {
    Actor {
        principal: owner("root"),
        admin: true,
    }
}

fn amount(units: i64) -> Amount {
    Amount::new(units).expect("valid amount")
}

fn account(owner_id: &str, balance: i64) -> AccountState {
    AccountState {
        version: 3,
        ..open_account(owner_id, balance)
    }
}

struct Given(HashMap<AccountId, AccountState>);

fn given(accounts: &[(&str, AccountState)]) -> Given {
    Given(
        accounts
            .iter()
            .map(|(raw, state)| (id(raw), state.clone()))
            .collect(),
    )
}

impl Aggregates for Given {
    fn transfer(&self, _: &uuid::Uuid) -> Option<&events::TransferState> {
        None
    }

    fn account(&self, id: &AccountId) -> Option<&AccountState> {
        self.0.get(id)
    }
    fn order(&self, _: &Uuid) -> Option<&events::OrderState> {
        None
    }
    fn hold(&self, _: &Uuid) -> Option<&events::HoldState> {
        None
    }
    fn recorded(&self, _: &crate::domain::AggregateKey) -> bool {
        false
    }
}

impl Given {
    fn when(&self, actor: &Actor, command: Command) -> Result<Decision, DomainError> {
        let decision = decide(actor, &command, self)?;
        // Every event's post-state must be what evolve makes of the state before it.
        let mut states = self.0.clone();
        for event in &decision.events {
            let account_id = event.account_id().expect("account event");
            let after = AccountState::evolve(states.get(account_id), event).expect("follows");
            assert_eq!(
                Some(&after),
                event.account_state(),
                "post-state of {event:?}"
            );
            states.insert(account_id.clone(), after);
        }
        Ok(decision)
    }
}

fn open_cmd(account_id: &str, owner_id: &str) -> Command {
    Command::OpenAccount(OpenAccount {
        account_id: id(account_id),
        owner_id: owner(owner_id),
        currency: Currency::default(),
        overdraft_limit: 0,
    })
}

fn deposit(account_id: &str, units: i64) -> Command {
    Command::DepositFunds(MoveFunds {
        account_id: id(account_id),
        amount: amount(units),
        currency: None,
        reference: None,
        metadata: None,
    })
}

fn withdraw(account_id: &str, units: i64) -> Command {
    match deposit(account_id, units) {
        Command::DepositFunds(c) => Command::WithdrawFunds(c),
        _ => unreachable!(),
    }
}

fn transfer(from: &str, to: &str, units: i64) -> Command {
    Command::TransferFunds(TransferFunds {
        transfer_id: Uuid::now_v7(),
        from: id(from),
        to: id(to),
        amount: amount(units),
        currency: None,
        reference: None,
        metadata: None,
    })
}

fn types(decision: &Decision) -> Vec<&'static str> {
    decision.events.iter().map(Event::event_type).collect()
}

#[test]
fn opening_a_new_account_journals_account_opened_at_version_one() {
    let decision = given(&[])
        .when(&user("alice"), open_cmd("alice", "alice"))
        .expect("opens");
    assert_eq!(types(&decision), ["account_opened"]);
    let Outcome::AccountOpened { created, state, .. } = decision.outcome else {
        panic!("wrong outcome");
    };
    assert!(created);
    assert_eq!((state.version, state.balance, state.held), (1, 0, 0));
}

#[test]
fn opening_the_same_account_again_journals_nothing() {
    let decision = given(&[("alice", account("alice", 5))])
        .when(&user("alice"), open_cmd("alice", "alice"))
        .expect("same account");
    assert!(decision.events.is_empty());
    assert!(matches!(
        decision.outcome,
        Outcome::AccountOpened { created: false, .. }
    ));
}

#[test]
fn opening_an_existing_account_differently_is_rejected() {
    let rejected = given(&[("alice", account("alice", 5))])
        .when(&user("mallory"), open_cmd("alice", "mallory"));
    assert_eq!(rejected, Err(DomainError::AccountExists(id("alice"))));
}

#[test]
fn a_deposit_raises_the_balance_and_the_version() {
    let decision = given(&[("alice", account("alice", 5))])
        .when(&user("alice"), deposit("alice", 10))
        .expect("deposits");
    assert_eq!(types(&decision), ["funds_deposited"]);
    let state = decision.events[0].account_state().expect("state");
    assert_eq!((state.version, state.balance), (4, 15));
}

#[test]
fn a_deposit_to_a_missing_account_is_rejected() {
    let rejected = given(&[]).when(&user("alice"), deposit("alice", 10));
    assert_eq!(rejected, Err(DomainError::AccountNotFound(id("alice"))));
}

#[test]
fn another_owners_account_looks_missing() {
    let rejected = given(&[("bob", account("bob", 5))]).when(&user("alice"), deposit("bob", 1));
    assert_eq!(rejected, Err(DomainError::AccountNotFound(id("bob"))));
}

#[test]
fn an_admin_acts_on_any_account() {
    let decision = given(&[("bob", account("bob", 5))])
        .when(&admin(), withdraw("bob", 5))
        .expect("admin may");
    assert_eq!(
        decision.events[0].account_state().map(|s| s.balance),
        Some(0)
    );
}

#[test]
fn a_deposit_in_another_currency_is_rejected() {
    let Command::DepositFunds(mut c) = deposit("alice", 10) else {
        unreachable!()
    };
    c.currency = Some(Currency::parse("EUR").expect("valid"));
    let rejected =
        given(&[("alice", account("alice", 5))]).when(&user("alice"), Command::DepositFunds(c));
    assert!(matches!(
        rejected,
        Err(DomainError::CurrencyMismatch { .. })
    ));
}

#[test]
fn a_deposit_that_would_overflow_the_balance_is_rejected() {
    let rejected = given(&[("alice", account("alice", i64::MAX - 5))])
        .when(&user("alice"), deposit("alice", 10));
    assert_eq!(rejected, Err(DomainError::BalanceOverflow(id("alice"))));
}

#[test]
fn a_withdrawal_lowers_the_balance() {
    let decision = given(&[("alice", account("alice", 50))])
        .when(&user("alice"), withdraw("alice", 50))
        .expect("withdraws");
    assert_eq!(types(&decision), ["funds_withdrawn"]);
    assert_eq!(
        decision.events[0].account_state().map(|s| s.balance),
        Some(0)
    );
}

#[test]
fn a_withdrawal_beyond_the_balance_is_rejected() {
    let rejected =
        given(&[("alice", account("alice", 50))]).when(&user("alice"), withdraw("alice", 51));
    assert_eq!(
        rejected,
        Err(DomainError::InsufficientFunds {
            account_id: id("alice"),
            available: 50,
            requested: 51
        })
    );
}

#[test]
fn a_withdrawal_may_use_the_overdraft_limit_but_not_more() {
    let state = AccountState {
        overdraft_limit: 100,
        ..account("alice", 0)
    };
    let accounts = given(&[("alice", state)]);
    assert!(
        accounts
            .when(&user("alice"), withdraw("alice", 100))
            .is_ok()
    );
    assert!(matches!(
        accounts.when(&user("alice"), withdraw("alice", 101)),
        Err(DomainError::InsufficientFunds { .. })
    ));
}

#[test]
fn held_funds_are_not_available() {
    let state = AccountState {
        held: 30,
        ..account("alice", 50)
    };
    let rejected = given(&[("alice", state)]).when(&user("alice"), withdraw("alice", 21));
    assert!(matches!(
        rejected,
        Err(DomainError::InsufficientFunds { available: 20, .. })
    ));
}

#[test]
fn a_transfer_debits_one_account_and_credits_the_other() {
    let decision = given(&[("alice", account("alice", 50)), ("bob", account("bob", 1))])
        .when(&user("alice"), transfer("alice", "bob", 20))
        .expect("transfers");
    assert_eq!(types(&decision), ["transfer_sent", "transfer_received"]);
    let Outcome::Transferred { from, to, .. } = decision.outcome else {
        panic!("wrong outcome");
    };
    assert_eq!((from.1.balance, to.1.balance), (30, 21));
    assert_eq!((from.1.version, to.1.version), (4, 4));
}

#[test]
fn a_transfer_to_the_same_account_is_rejected() {
    let rejected = given(&[("alice", account("alice", 50))])
        .when(&user("alice"), transfer("alice", "alice", 1));
    assert_eq!(rejected, Err(DomainError::SameAccount));
}

#[test]
fn a_transfer_from_someone_elses_account_is_rejected_as_not_found() {
    let rejected = given(&[("alice", account("alice", 50)), ("bob", account("bob", 1))])
        .when(&user("bob"), transfer("alice", "bob", 1));
    assert_eq!(rejected, Err(DomainError::AccountNotFound(id("alice"))));
}

#[test]
fn a_transfer_to_a_missing_account_is_rejected() {
    let rejected = given(&[("alice", account("alice", 50))])
        .when(&user("alice"), transfer("alice", "ghost", 1));
    assert_eq!(rejected, Err(DomainError::AccountNotFound(id("ghost"))));
}

#[test]
fn a_transfer_between_currencies_is_rejected() {
    let euros = AccountState {
        currency: Currency::parse("EUR").expect("valid"),
        ..account("bob", 0)
    };
    let rejected = given(&[("alice", account("alice", 50)), ("bob", euros)])
        .when(&user("alice"), transfer("alice", "bob", 1));
    assert!(matches!(
        rejected,
        Err(DomainError::CurrencyMismatch { .. })
    ));
}

#[test]
fn a_transfer_beyond_the_balance_is_rejected() {
    let rejected = given(&[("alice", account("alice", 50)), ("bob", account("bob", 0))])
        .when(&user("alice"), transfer("alice", "bob", 51));
    assert!(matches!(
        rejected,
        Err(DomainError::InsufficientFunds { .. })
    ));
}

#[test]
fn a_transfer_that_would_overflow_the_receiver_is_rejected() {
    let rejected = given(&[
        ("alice", account("alice", 50)),
        ("bob", account("bob", i64::MAX)),
    ])
    .when(&user("alice"), transfer("alice", "bob", 1));
    assert_eq!(rejected, Err(DomainError::BalanceOverflow(id("bob"))));
}
