//! Given the accounts' states, when a batch of transfers is decided, then these events and
//! items (or this refusal) follow.

use super::*;
use crate::domain::fixtures::open_account;
use crate::domain::{Command, decide};
use events::{Amount, Event, OwnerId};

fn id(raw: &str) -> AccountId {
    AccountId::parse(raw).expect("valid id")
}

fn alice() -> Actor {
    Actor {
        principal: OwnerId::parse("alice").expect("valid owner"),
        admin: false,
    }
}

fn account(owner: &str, balance: i64) -> AccountState {
    open_account(owner, balance)
}

fn transfer(from: &str, to: &str, units: i64) -> TransferFunds {
    TransferFunds {
        transfer_id: Uuid::now_v7(),
        from: id(from),
        to: id(to),
        amount: Amount::new(units).expect("valid amount"),
        currency: None,
        reference: None,
        metadata: None,
    }
}

struct Given(HashMap<AccountId, AccountState>);

impl Aggregates for Given {
    fn account(&self, id: &AccountId) -> Option<&AccountState> {
        self.0.get(id)
    }
    fn order(&self, _: &Uuid) -> Option<&OrderState> {
        None
    }
    fn hold(&self, _: &Uuid) -> Option<&HoldState> {
        None
    }
    fn transfer(&self, _: &Uuid) -> Option<&events::TransferState> {
        None
    }
    fn recorded(&self, _: &AggregateKey) -> bool {
        false
    }
}

/// Alice's a1 holds 100, a2 holds 0; Bob's b1 holds 50.
fn given() -> Given {
    Given(HashMap::from([
        (id("a1"), account("alice", 100)),
        (id("a2"), account("alice", 0)),
        (id("b1"), account("bob", 50)),
    ]))
}

fn batch(first_index: usize, atomic: bool, transfers: Vec<TransferFunds>) -> Command {
    Command::TransferBatch(TransferBatch {
        first_index,
        transfers,
        atomic,
    })
}

fn codes(outcome: &Outcome) -> Vec<(usize, Result<i64, DomainError>)> {
    let Outcome::TransfersBatched { items, .. } = outcome else {
        panic!("a batch outcome: {outcome:?}");
    };
    items
        .iter()
        .map(|item| {
            let result = match &item.result {
                Ok(Outcome::Transferred { from, .. }) => Ok(from.1.balance),
                Ok(other) => panic!("a transfer outcome: {other:?}"),
                Err(e) => Err(e.clone()),
            };
            (item.index, result)
        })
        .collect()
}

#[test]
fn each_transfer_sees_the_balances_the_earlier_ones_left() {
    let command = batch(
        10,
        false,
        vec![
            transfer("a1", "a2", 60),
            transfer("a1", "a2", 60),
            transfer("a2", "a1", 60),
            transfer("a1", "a2", 60),
        ],
    );
    let decision = decide(&alice(), &command, &given()).expect("decided");
    let balances = codes(&decision.outcome);
    assert_eq!(balances[0], (10, Ok(40)));
    assert!(matches!(
        balances[1],
        (
            11,
            Err(DomainError::InsufficientFunds {
                available: 40,
                requested: 60,
                ..
            })
        )
    ));
    // The money a2 received in item 10 is what it sends back in item 12.
    assert_eq!(balances[2], (12, Ok(0)));
    assert_eq!(balances[3], (13, Ok(40)));
    // Two legs per committed transfer; a1's versions follow one another.
    assert_eq!(decision.events.len(), 6);
    let a1_versions: Vec<u64> = decision
        .events
        .iter()
        .filter_map(|e| match e {
            Event::TransferSent(leg) | Event::TransferReceived(leg)
                if leg.account_id == id("a1") =>
            {
                Some(leg.state.version)
            }
            _ => None,
        })
        .collect();
    assert_eq!(a1_versions, vec![2, 3, 4]);
}

#[test]
fn another_owners_source_account_is_that_items_not_found() {
    let command = batch(
        0,
        false,
        vec![transfer("b1", "a1", 10), transfer("a1", "b1", 10)],
    );
    let decision = decide(&alice(), &command, &given()).expect("decided");
    let balances = codes(&decision.outcome);
    assert_eq!(
        balances[0],
        (0, Err(DomainError::AccountNotFound(id("b1"))))
    );
    assert_eq!(balances[1], (1, Ok(90)));
}

#[test]
fn an_atomic_batch_is_refused_whole_at_its_first_rejected_item() {
    let command = batch(
        0,
        true,
        vec![
            transfer("a1", "a2", 60),
            transfer("a1", "a2", 60),
            transfer("b1", "a1", 1),
        ],
    );
    let refused = decide(&alice(), &command, &given()).expect_err("refused");
    let DomainError::BulkItemRejected { index, error } = refused else {
        panic!("a bulk refusal: {refused:?}");
    };
    assert_eq!(index, 1);
    assert!(matches!(*error, DomainError::InsufficientFunds { .. }));
}

#[test]
fn an_atomic_batch_that_fits_commits_every_transfer() {
    let command = batch(
        0,
        true,
        vec![transfer("a1", "a2", 60), transfer("a2", "a1", 10)],
    );
    let decision = decide(&alice(), &command, &given()).expect("decided");
    assert_eq!(decision.events.len(), 4);
    assert_eq!(codes(&decision.outcome), vec![(0, Ok(40)), (1, Ok(50))]);
}

#[test]
fn the_rejected_items_accounts_are_the_reads_to_check_again() {
    let transfers = vec![transfer("a1", "a2", 10), transfer("a2", "b1", 500)];
    let command = batch(5, false, transfers);
    let decision = decide(&alice(), &command, &given()).expect("decided");
    let reads = crate::domain::rejected_reads(&command, &decision.outcome);
    assert_eq!(
        reads,
        vec![
            AggregateKey::Account(id("a2")),
            AggregateKey::Account(id("b1"))
        ]
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    const ACCOUNTS: [&str; 4] = ["a1", "a2", "a3", "b1"];

    fn transfers() -> impl Strategy<Value = Vec<(usize, usize, i64)>> {
        prop::collection::vec((0..4_usize, 0..4_usize, 1..150_i64), 1..40)
    }

    fn start(balances: &[i64]) -> Given {
        Given(
            ACCOUNTS
                .iter()
                .zip(balances)
                .map(|(raw, balance)| {
                    let owner = if raw.starts_with('a') { "alice" } else { "bob" };
                    (id(raw), account(owner, *balance))
                })
                .collect(),
        )
    }

    proptest! {
        /// A batch decides as its transfers would one after another, and moves money only
        /// between its accounts; atomic, it is all of that or, at the first refusal, nothing.
        #[test]
        fn a_batch_is_its_transfers_one_after_another(
            balances in prop::collection::vec(0..300_i64, 4),
            picked in transfers(),
            atomic in any::<bool>(),
        ) {
            let items: Vec<TransferFunds> = picked
                .iter()
                .map(|(from, to, units)| transfer(ACCOUNTS[*from], ACCOUNTS[*to], *units))
                .collect();
            // One after another, each against the states the accepted ones left.
            let mut states = start(&balances);
            let mut expected = Vec::new();
            for item in &items {
                let single = Command::TransferFunds(item.clone());
                match decide(&alice(), &single, &states) {
                    Ok(decision) => {
                        let Outcome::Transferred { from, to, .. } = &decision.outcome else {
                            panic!("a transfer outcome");
                        };
                        states.0.insert(from.0.clone(), from.1.clone());
                        states.0.insert(to.0.clone(), to.1.clone());
                        expected.push(Ok(decision.outcome));
                    }
                    Err(e) => expected.push(Err(e)),
                }
            }
            let command = batch(0, atomic, items);
            let decided = decide(&alice(), &command, &start(&balances));
            match (atomic, expected.iter().position(Result::is_err), decided) {
                (true, Some(first), Err(DomainError::BulkItemRejected { index, error })) => {
                    prop_assert_eq!(index, first);
                    prop_assert_eq!(Err(*error), expected[first].clone());
                }
                (_, refused, Ok(decision)) => {
                    prop_assert!(!atomic || refused.is_none());
                    let Outcome::TransfersBatched { items, .. } = &decision.outcome else {
                        panic!("a batch outcome");
                    };
                    let results: Vec<_> = items.iter().map(|i| i.result.clone()).collect();
                    prop_assert_eq!(&results, &expected);
                    // Money moves between the accounts, never in or out.
                    let mut after = start(&balances).0;
                    for event in &decision.events {
                        if let (Some(id), Some(state)) = (event.account_id(), event.account_state()) {
                            after.insert(id.clone(), state.clone());
                        }
                    }
                    let total = |m: &HashMap<AccountId, AccountState>| m.values().map(|s| s.balance).sum::<i64>();
                    prop_assert_eq!(total(&after), balances.iter().sum::<i64>());
                    prop_assert!(after.values().all(|s| s.balance >= 0));
                }
                (atomic, refused, other) => {
                    prop_assert!(false, "atomic {atomic}, refused at {refused:?}: {other:?}");
                }
            }
        }
    }
}
