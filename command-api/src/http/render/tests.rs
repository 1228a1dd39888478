//! Tests of the command answers: their fields, statuses and who sees what.

use super::*;
use crate::domain::fixtures::open_account;
use events::{AccountId, AccountState, Amount, OwnerId};
use serde_json::json;

fn actor(principal: &str, admin: bool) -> Actor {
    Actor {
        principal: OwnerId::parse(principal).expect("valid"),
        admin,
    }
}

fn account(owner: &str, balance: i64, held: i64) -> AccountState {
    AccountState {
        version: 4,
        held,
        ..open_account(owner, balance)
    }
}

fn transfer() -> Outcome {
    Outcome::Transferred {
        transfer_id: Uuid::nil(),
        amount: Amount::new(30).expect("valid"),
        from: (
            AccountId::parse("a1").expect("valid"),
            account("alice", 70, 0),
        ),
        to: (
            AccountId::parse("b1").expect("valid"),
            account("bob", 130, 10),
        ),
    }
}

#[test]
fn a_transfer_answer_shows_the_receivers_balance_only_to_those_who_may_see_it() {
    let job_id = Uuid::nil();
    let seen_by_alice = render(&actor("alice", false), &transfer(), job_id);
    assert_eq!(seen_by_alice.status, 201);
    assert_eq!(
        seen_by_alice.body,
        json!({
            "transfer_id": Uuid::nil(), "job_id": job_id, "amount": 30, "currency": "USD",
            "from": {"account_id": "a1", "balance": 70, "available": 70, "version": 4},
            "to": {"account_id": "b1", "version": 4},
        })
    );
    let seen_by_admin = render(&actor("root", true), &transfer(), job_id);
    assert_eq!(
        seen_by_admin.body["to"],
        json!({"account_id": "b1", "version": 4, "balance": 130, "available": 120})
    );
}

#[test]
fn an_account_answer_is_201_when_opened_and_200_when_it_existed() {
    let outcome = |created| Outcome::AccountOpened {
        created,
        account_id: AccountId::parse("a1").expect("valid"),
        state: account("alice", 0, 0),
    };
    let opened = render(&actor("alice", false), &outcome(true), Uuid::nil());
    assert_eq!(opened.status, 201);
    assert_eq!(
        opened.body,
        json!({
            "account_id": "a1", "owner_id": "alice", "currency": "USD", "balance": 0,
            "held": 0, "available": 0, "overdraft_limit": 0, "version": 4, "status": "open",
            "job_id": Uuid::nil(),
        })
    );
    let again = render(&actor("alice", false), &outcome(false), Uuid::nil());
    assert_eq!((again.status, again.body), (200, opened.body));
}

#[test]
fn an_executors_outcome_has_no_http_answer() {
    let outcome = Outcome::JobFailed {
        job_id: Uuid::nil(),
        already: false,
    };
    let answer = render(&actor("alice", false), &outcome, Uuid::nil());
    assert_eq!(answer.status, 500);
    assert_eq!(answer.body["code"], "internal");
}
