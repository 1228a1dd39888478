//! Given/when/then tests of the planner.

use super::*;
use crate::domain::fixtures::open_account;
use crate::domain::{Actor, Command, DomainError, MoveFunds, OpenAccount, TransferFunds};
use crate::writer::IdempotencyClaim;
use events::{Amount, Currency, IdempotencyKey, OwnerId};

fn alice() -> Actor {
    Actor {
        principal: OwnerId::parse("alice").expect("valid"),
        admin: false,
    }
}

fn id(raw: &str) -> AccountId {
    AccountId::parse(raw.to_owned()).expect("valid")
}

fn account(owner: &str, balance: i64, version: u64) -> AccountState {
    AccountState {
        version,
        ..open_account(owner, balance)
    }
}

fn submission(command: Command, idempotency: Option<IdempotencyClaim>) -> Submission {
    Submission {
        actor: alice(),
        command,
        job_id: Uuid::now_v7(),
        idempotency,
    }
}

fn transfer(from: &str, to: &str, amount: i64) -> Command {
    Command::TransferFunds(TransferFunds {
        transfer_id: Uuid::now_v7(),
        from: id(from),
        to: id(to),
        amount: Amount::new(amount).expect("valid"),
        currency: None,
        reference: None,
        metadata: None,
    })
}

fn deposit(account: &str, amount: i64) -> Command {
    Command::DepositFunds(MoveFunds {
        account_id: id(account),
        amount: Amount::new(amount).expect("valid"),
        currency: None,
        reference: None,
        metadata: None,
    })
}

fn claim(key: &str, fingerprint: &str) -> IdempotencyClaim {
    IdempotencyClaim {
        key: IdempotencyKey::parse(key).expect("valid"),
        fingerprint: fingerprint.to_owned(),
        part: 0,
    }
}

fn render(_: &Actor, _: &Outcome, job_id: Uuid) -> Rendered {
    Rendered {
        status: 201,
        body: serde_json::json!({ "job_id": job_id }),
    }
}

/// The given states: subject → (sequence, aggregate).
struct Given {
    loaded: HashMap<String, Slot>,
    fresh: HashSet<String>,
}

impl Given {
    fn new() -> Self {
        Self {
            loaded: HashMap::new(),
            fresh: HashSet::new(),
        }
    }

    fn account(mut self, raw: &str, seq: u64, state: AccountState, fresh: bool) -> Self {
        let subject = subjects::account(&id(raw));
        if fresh {
            self.fresh.insert(subject.clone());
        }
        self.loaded.insert(
            subject,
            Slot {
                seq,
                aggregate: Aggregate::Account(state),
                current_at: None,
            },
        );
        self
    }

    /// Alice's key `key`, recorded at `seq` for a request with `fingerprint`; its answer
    /// was `201 {"first": true}`.
    fn record(mut self, key: &str, seq: u64, fingerprint: &str) -> Self {
        let record = IdempotencyRecorded {
            principal: alice().principal,
            fingerprint: fingerprint.into(),
            status: 201,
            response: serde_json::json!({"first": true}),
        };
        let subject = subjects::idempotency(
            &alice().principal,
            &IdempotencyKey::parse(key).expect("valid"),
        );
        self.fresh.insert(subject.clone());
        let aggregate = Aggregate::Idempotency(record);
        let current_at = None;
        self.loaded.insert(
            subject,
            Slot {
                seq,
                aggregate,
                current_at,
            },
        );
        self
    }

    /// Every subject of the round not given yet is fresh and empty.
    fn when(mut self, submissions: &[Submission], abandoned: &[bool]) -> Plan {
        for subject in subjects_of(submissions) {
            if !self.loaded.contains_key(&subject) {
                self.fresh.insert(subject.clone());
                self.loaded.insert(subject, Slot::ABSENT);
            }
        }
        let round: Vec<Planned<'_>> = submissions
            .iter()
            .zip(abandoned.iter().chain(std::iter::repeat(&false)))
            .map(|(submission, abandoned)| Planned {
                submission,
                traceparent: None,
                abandoned: *abandoned,
            })
            .collect();
        plan(&round, &self.loaded, &self.fresh, Utc::now(), render)
    }
}

/// A deposit of Alice's under key `k1` and `fingerprint`, given `k1` recorded at 4 for a
/// request with fingerprint `f1`.
fn deposit_under_recorded_key(fingerprint: &str) -> Plan {
    let given = Given::new()
        .account("a1", 3, account("alice", 100, 1), true)
        .record("k1", 4, "f1");
    let key = Some(claim("k1", fingerprint));
    given.when(&[submission(deposit("a1", 5), key)], &[])
}

#[test]
fn a_conflict_free_round_of_two_transfers_on_the_same_account_carries_one_expected_sequence_per_subject()
 {
    let given = Given::new()
        .account("a1", 7, account("alice", 100, 1), true)
        .account("b1", 9, account("bob", 0, 1), true);
    let plan = given.when(
        &[
            submission(transfer("a1", "b1", 30), None),
            submission(transfer("a1", "b1", 20), None),
        ],
        &[],
    );
    assert_eq!(plan.messages.len(), 4);
    let checks: Vec<(&str, Option<u64>)> = plan
        .messages
        .iter()
        .map(|m| (m.subject.as_str(), m.expected_last_subject_seq))
        .collect();
    let a1 = subjects::account(&id("a1"));
    let b1 = subjects::account(&id("b1"));
    assert_eq!(
        checks,
        vec![
            (a1.as_str(), Some(7)),
            (b1.as_str(), Some(9)),
            (a1.as_str(), None),
            (b1.as_str(), None),
        ]
    );
    let Some((_, Aggregate::Account(sender))) = plan.written.get(&a1) else {
        panic!("the sender's post-state is planned");
    };
    assert_eq!((sender.balance, sender.version), (50, 3));
    assert!(
        plan.answers
            .iter()
            .all(|a| matches!(a, Tentative::Accepted { writes: true, .. }))
    );
    assert!(plan.stale.is_empty());
}

#[test]
fn a_replayed_idempotency_key_is_answered_from_the_record() {
    let plan = deposit_under_recorded_key("f1");
    assert!(plan.messages.is_empty());
    assert_eq!(
        plan.answers,
        vec![Tentative::Replayed {
            answer: Rendered {
                status: 201,
                body: serde_json::json!({"first": true}),
            },
            seq: Some(4),
        }]
    );
}

#[test]
fn a_key_replayed_within_its_own_round_is_answered_from_the_batch() {
    let given = Given::new().account("a1", 3, account("alice", 100, 1), true);
    let first = submission(deposit("a1", 5), Some(claim("k1", "f1")));
    let again = submission(deposit("a1", 5), Some(claim("k1", "f1")));
    let plan = given.when(&[first, again], &[]);
    // The deposit and its record; the second is answered from the record in this batch.
    assert_eq!(plan.messages.len(), 2);
    assert!(matches!(
        &plan.answers[1],
        Tentative::Replayed { answer, seq: None } if answer.status == 201
    ));
}

#[test]
fn the_same_key_with_another_fingerprint_is_rejected() {
    let plan = deposit_under_recorded_key("f2");
    assert!(plan.messages.is_empty());
    assert_eq!(
        plan.answers,
        vec![Tentative::Rejected(Rejection::IdempotencyKeyReused)]
    );
}

#[test]
fn a_rejection_resting_on_a_cached_state_is_reported_stale_for_re_check() {
    let given = Given::new()
        .account("a1", 3, account("alice", 10, 1), false)
        .account("b1", 5, account("bob", 0, 1), true);
    let plan = given.when(&[submission(transfer("a1", "b1", 30), None)], &[]);
    assert!(matches!(plan.answers[0], Tentative::Rejected(_)));
    assert_eq!(plan.stale, vec![subjects::account(&id("a1"))]);
}

#[test]
fn a_rejection_resting_on_fresh_states_is_final() {
    let given = Given::new()
        .account("a1", 3, account("alice", 10, 1), true)
        .account("b1", 5, account("bob", 0, 1), true);
    let plan = given.when(&[submission(transfer("a1", "b1", 30), None)], &[]);
    assert!(matches!(plan.answers[0], Tentative::Rejected(_)));
    assert!(plan.stale.is_empty());
}

#[test]
fn an_abandoned_submission_writes_nothing() {
    let given = Given::new().account("a1", 3, account("alice", 100, 1), true);
    let plan = given.when(
        &[submission(deposit("a1", 5), Some(claim("k1", "f1")))],
        &[true],
    );
    assert!(plan.messages.is_empty());
    assert!(plan.written.is_empty());
    assert_eq!(plan.answers, vec![Tentative::Abandoned]);
}

#[test]
fn an_idempotent_re_open_writes_nothing_and_answers_at_the_read_sequence() {
    let given = Given::new().account("a1", 3, account("alice", 0, 1), true);
    let open = Command::OpenAccount(OpenAccount {
        account_id: id("a1"),
        owner_id: alice().principal,
        currency: Currency::default(),
        overdraft_limit: 0,
    });
    let plan = given.when(&[submission(open, Some(claim("k1", "f1")))], &[]);
    assert!(plan.messages.is_empty());
    assert!(matches!(
        plan.answers[0],
        Tentative::Accepted {
            writes: false,
            read_seq: 3,
            ..
        }
    ));
}

#[test]
fn the_round_gatherer_never_exceeds_the_batch_limit() {
    // Transfers with a key (3 messages each), deposits (1): gathered as the writer does.
    let queue: Vec<Submission> = (0..2000)
        .map(|i| match i % 3 {
            0 => submission(transfer("a1", "b1", 1), Some(claim(&format!("k{i}"), "f"))),
            _ => submission(deposit("a1", 1), None),
        })
        .collect();
    let mut rounds = Vec::new();
    let mut rest = queue.iter().peekable();
    while let Some(first) = rest.next() {
        let mut budget = RoundBudget::starting_with(first);
        let mut round = vec![first];
        while let Some(next) = rest.peek() {
            if !budget.admit(next) {
                break;
            }
            round.push(*next);
            rest.next();
        }
        rounds.push(round);
    }
    assert_eq!(rounds.iter().map(Vec::len).sum::<usize>(), queue.len());
    for round in &rounds {
        let most: usize = round.iter().map(|s| messages_max(s)).sum();
        assert!(most <= BATCH_LEN_MAX, "a round of {most} messages");
    }
    // Full rounds: the next submission did not fit.
    let first: usize = rounds[0].iter().map(|s| messages_max(s)).sum();
    assert!(first > BATCH_LEN_MAX - 3);
}

fn bulk(first_index: usize, atomic: bool, transfers: &[(&str, &str, i64)]) -> Command {
    Command::TransferBatch(crate::domain::TransferBatch {
        first_index,
        transfers: transfers
            .iter()
            .map(|(from, to, amount)| match transfer(from, to, *amount) {
                Command::TransferFunds(t) => t,
                _ => unreachable!("a transfer"),
            })
            .collect(),
        atomic,
    })
}

fn part_claim(key: &str, part: u32) -> IdempotencyClaim {
    IdempotencyClaim {
        part,
        ..claim(key, "f")
    }
}

#[test]
fn a_bulk_part_commits_its_transfers_and_its_record_in_one_batch_on_the_parts_own_subject() {
    let given = Given::new()
        .account("a1", 7, account("alice", 100, 1), true)
        .account("b1", 9, account("bob", 0, 1), true);
    let part = bulk(
        499,
        false,
        &[("a1", "b1", 30), ("a1", "b1", 80), ("a1", "b1", 70)],
    );
    let plan = given.when(&[submission(part, Some(part_claim("k1", 1)))], &[]);
    // Two transfers of three (the second finds 70 left), then the record.
    assert_eq!(plan.messages.len(), 5);
    let record = plan.messages.last().expect("record");
    let key = IdempotencyKey::parse("k1").expect("valid");
    assert_eq!(
        record.subject,
        subjects::idempotency_part(&alice().principal, &key, 1)
    );
    assert_eq!(record.expected_last_subject_seq, Some(0));
    let Tentative::Accepted {
        outcome: Outcome::TransfersBatched { items, .. },
        writes: true,
        ..
    } = &plan.answers[0]
    else {
        panic!("an accepted part: {:?}", plan.answers[0]);
    };
    let indexes: Vec<(usize, bool)> = items.iter().map(|i| (i.index, i.result.is_ok())).collect();
    assert_eq!(indexes, vec![(499, true), (500, false), (501, true)]);
}

#[test]
fn a_keyed_bulk_part_whose_every_transfer_is_refused_still_records_its_answer() {
    let given = Given::new()
        .account("a1", 7, account("alice", 10, 1), true)
        .account("b1", 9, account("bob", 0, 1), true);
    let part = bulk(0, false, &[("a1", "b1", 30)]);
    let plan = given.when(&[submission(part, Some(part_claim("k1", 0)))], &[]);
    assert_eq!(plan.messages.len(), 1, "the record only");
    assert!(matches!(
        plan.answers[0],
        Tentative::Accepted { writes: true, .. }
    ));
}

#[test]
fn a_refused_atomic_bulk_writes_nothing_not_even_its_record() {
    let given = Given::new()
        .account("a1", 7, account("alice", 100, 1), true)
        .account("b1", 9, account("bob", 0, 1), true);
    let part = bulk(0, true, &[("a1", "b1", 30), ("a1", "b1", 80)]);
    let plan = given.when(&[submission(part, Some(part_claim("k1", 0)))], &[]);
    assert!(plan.messages.is_empty());
    assert!(matches!(
        &plan.answers[0],
        Tentative::Rejected(Rejection::Domain(DomainError::BulkItemRejected {
            index: 1,
            ..
        }))
    ));
}

#[test]
fn a_bulk_items_rejection_resting_on_a_cached_state_is_reported_stale() {
    // b1 is cached and refuses nothing itself; c1 (cached) lacks the funds for item 1.
    let given = Given::new()
        .account("a1", 3, account("alice", 100, 1), true)
        .account("b1", 5, account("bob", 0, 1), false)
        .account("c1", 6, account("alice", 0, 1), false);
    let part = bulk(0, false, &[("a1", "b1", 10), ("c1", "b1", 10)]);
    let plan = given.when(&[submission(part, None)], &[]);
    // b1 is written (and checked) by item 0; c1 is not.
    assert_eq!(plan.stale, vec![subjects::account(&id("c1"))]);
}
