//! The planner: what a round of submissions will write and answer, as a pure function.
//!
//! [`plan`] decides every submission of a round in order against a working state that starts
//! as the loaded states and takes in each accepted command's post-states, so the commands of
//! one round see each other. It returns the messages of the round's atomic batch (each
//! subject's first message carrying its expected last sequence), the post-states per subject,
//! a tentative answer per submission, and the subjects whose cached state a rejection rested
//! on (to re-check before answering). No I/O, no clock (`now` is given), no channels: the
//! shell in `pipeline.rs` loads, commits and answers.
//!
//! [`RoundBudget`] sizes a round so that its batch never exceeds the server's limit.

use super::cache::{Aggregate, Slot};
use super::{Rejection, Render, Rendered, Submission, subject_of};
use crate::domain::{AggregateKey, Aggregates, Outcome, decide};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use events::{
    AccountId, AccountState, Envelope, Event, HoldState, IdempotencyRecorded, OrderState,
};
use events::{headers, subjects};
use ledger_nats::batch::{BATCH_LEN_MAX, Outbound};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// One submission as the planner sees it.
#[derive(Debug, Clone, Copy)]
pub struct Planned<'a> {
    pub submission: &'a Submission,
    /// W3C trace context its messages carry.
    pub traceparent: Option<&'a str>,
    /// The requester stopped waiting before the round was decided: the command is not
    /// executed.
    pub abandoned: bool,
}

/// What a round will answer a submission once the batch's fate is known.
#[derive(Debug, Clone, PartialEq)]
pub enum Tentative {
    /// The requester stopped waiting before the command was decided: it is not executed.
    Abandoned,
    /// Decided and accepted; `writes` says whether it produced messages. `read_seq` is the
    /// newest sequence the decision read (the answer's sequence when it wrote nothing).
    Accepted {
        outcome: Outcome,
        writes: bool,
        read_seq: u64,
    },
    /// Answered from an idempotency record (`seq` None: the record is in this batch).
    Replayed {
        answer: Rendered,
        seq: Option<u64>,
    },
    Rejected(Rejection),
}

/// A round's batch and answers.
#[derive(Debug, Clone)]
pub struct Plan {
    pub messages: Vec<Outbound>,
    /// Subject → index of its last message in `messages`, and the aggregate after it.
    pub written: HashMap<String, (usize, Aggregate)>,
    /// One per submission, in order.
    pub answers: Vec<Tentative>,
    /// Subjects whose cached state a rejection rested on without the batch checking it.
    pub stale: Vec<String>,
}

/// Decides every submission of the round in order against `loaded` (subject → slot, every
/// subject the round touches). `fresh` holds the subjects read from the journal this round
/// that cannot be stale; a rejection resting on any other is reported in [`Plan::stale`].
/// `render` gives the answer an idempotency record journals.
pub fn plan(
    round: &[Planned<'_>],
    loaded: &HashMap<String, Slot>,
    fresh: &HashSet<String>,
    now: DateTime<Utc>,
    render: Render,
) -> Plan {
    let mut working: HashMap<&str, Aggregate> = loaded
        .iter()
        .map(|(subject, slot)| (subject.as_str(), slot.aggregate.clone()))
        .collect();
    let base_seq = |subject: &str| loaded.get(subject).map_or(0, |slot| slot.seq);
    let mut plan = Plan {
        messages: Vec::new(),
        written: HashMap::new(),
        answers: Vec::with_capacity(round.len()),
        stale: Vec::new(),
    };
    let mut rejected_reads: Vec<String> = Vec::new();
    for planned in round {
        let submission = planned.submission;
        if planned.abandoned {
            plan.answers.push(Tentative::Abandoned);
            continue;
        }
        let record_subject = submission.record_subject();
        if let (Some(claim), Some(subject)) = (&submission.idempotency, &record_subject)
            && let Some(Aggregate::Idempotency(record)) = working.get(subject.as_str())
        {
            plan.answers
                .push(if record.fingerprint == claim.fingerprint {
                    Tentative::Replayed {
                        answer: Rendered {
                            status: record.status,
                            body: record.response.clone(),
                        },
                        seq: match plan.written.contains_key(subject) {
                            true => None,
                            false => Some(base_seq(subject)),
                        },
                    }
                } else {
                    Tentative::Rejected(Rejection::IdempotencyKeyReused)
                });
            continue;
        }
        let command_subjects: Vec<String> = submission
            .command
            .aggregates()
            .iter()
            .map(subject_of)
            .collect();
        let decided = decide(&submission.actor, &submission.command, &Working(&working));
        let decision = match decided {
            Ok(decision) => decision,
            Err(rejection) => {
                rejected_reads.extend(command_subjects);
                // An absent idempotency record read from the cache may be stale too: another
                // instance may have recorded the key, and the answer is then a replay.
                rejected_reads.extend(record_subject);
                plan.answers
                    .push(Tentative::Rejected(Rejection::Domain(rejection)));
                continue;
            }
        };
        let read_seq = command_subjects
            .iter()
            .map(|s| base_seq(s))
            .max()
            .unwrap_or(0);
        let writes = !decision.events.is_empty();
        for event in decision.events {
            let Some(subject) = event.subject() else {
                continue;
            };
            let aggregate = Aggregate::after(&event);
            let base = base_seq(&subject);
            if let Some(slot) = working.get_mut(subject.as_str()) {
                *slot = aggregate.clone();
            }
            let envelope = Envelope::new(submission.job_id, now, event);
            push(
                &mut plan,
                subject,
                envelope,
                aggregate,
                base,
                planned.traceparent,
            );
        }
        if let (Some(claim), Some(subject), true) =
            (&submission.idempotency, record_subject, writes)
        {
            let rendered = render(&submission.actor, &decision.outcome, submission.job_id);
            let record = IdempotencyRecorded {
                principal: submission.actor.principal.clone(),
                fingerprint: claim.fingerprint.clone(),
                status: rendered.status,
                response: rendered.body,
            };
            let aggregate = Aggregate::Idempotency(record.clone());
            if let Some(slot) = working.get_mut(subject.as_str()) {
                *slot = aggregate.clone();
            }
            let envelope =
                Envelope::new(submission.job_id, now, Event::IdempotencyRecorded(record));
            let base = base_seq(&subject);
            push(
                &mut plan,
                subject,
                envelope,
                aggregate,
                base,
                planned.traceparent,
            );
        }
        plan.answers.push(Tentative::Accepted {
            outcome: decision.outcome,
            writes,
            read_seq,
        });
    }
    // A rejection is sound if every state it read was loaded during this round or is checked
    // by this batch's expected sequences; otherwise a stale cache could have caused it.
    plan.stale = rejected_reads
        .into_iter()
        .filter(|s| !fresh.contains(s) && !plan.written.contains_key(s))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    plan
}

/// The round's working states, as the domain reads them.
struct Working<'a>(&'a HashMap<&'a str, Aggregate>);

impl Aggregates for Working<'_> {
    fn account(&self, id: &AccountId) -> Option<&AccountState> {
        match self.0.get(subjects::account(id).as_str()) {
            Some(Aggregate::Account(state)) => Some(state),
            _ => None,
        }
    }

    fn order(&self, id: &Uuid) -> Option<&OrderState> {
        match self.0.get(subjects::order(id).as_str()) {
            Some(Aggregate::Order(state)) => Some(state),
            _ => None,
        }
    }

    fn hold(&self, id: &Uuid) -> Option<&HoldState> {
        match self.0.get(subjects::hold(id).as_str()) {
            Some(Aggregate::Hold(state)) => Some(state),
            _ => None,
        }
    }

    fn recorded(&self, key: &AggregateKey) -> bool {
        !matches!(
            self.0.get(subject_of(key).as_str()),
            None | Some(Aggregate::Absent)
        )
    }
}

/// Appends one message; the first message on a subject carries its expected last sequence.
fn push(
    plan: &mut Plan,
    subject: String,
    envelope: Envelope,
    aggregate: Aggregate,
    base: u64,
    traceparent: Option<&str>,
) {
    let expected = (!plan.written.contains_key(&subject)).then_some(base);
    let mut message_headers = vec![
        (headers::EVENT_TYPE, envelope.event.event_type().to_owned()),
        (headers::JOB_ID, envelope.job_id.to_string()),
        (headers::CONTENT_TYPE, headers::JSON.to_owned()),
    ];
    if let Some(traceparent) = traceparent {
        message_headers.push((headers::TRACEPARENT, traceparent.to_owned()));
    }
    plan.messages.push(Outbound {
        subject: subject.clone(),
        msg_id: envelope.event_id.to_string(),
        headers: message_headers,
        payload: Bytes::from(envelope.to_json()),
        expected_last_subject_seq: expected,
    });
    plan.written
        .insert(subject, (plan.messages.len() - 1, aggregate));
}

/// Every subject a round reads or writes, without repeats.
pub fn subjects_of<'a>(submissions: impl IntoIterator<Item = &'a Submission>) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut subjects = Vec::new();
    for submission in submissions {
        let keys = submission.command.aggregates();
        let command = keys.iter().map(subject_of);
        for subject in command.chain(submission.record_subject()) {
            if seen.insert(subject.clone()) {
                subjects.push(subject);
            }
        }
    }
    subjects
}

/// The most messages a submission can add to a batch.
pub fn messages_max(submission: &Submission) -> usize {
    submission.command.events_max() + usize::from(submission.idempotency.is_some())
}

/// The messages a round may still take: a round admits submissions while the most messages
/// they can add fit one atomic batch ([`BATCH_LEN_MAX`]).
#[derive(Debug, Clone, Copy)]
pub struct RoundBudget {
    used: usize,
}

impl RoundBudget {
    /// A round starts with its first submission, whatever its size: a command that alone
    /// exceeds the limit is refused by the server rather than waiting forever.
    pub fn starting_with(first: &Submission) -> Self {
        Self {
            used: messages_max(first),
        }
    }

    /// Takes `next` into the round if it fits; otherwise it waits for the next round.
    pub fn admit(&mut self, next: &Submission) -> bool {
        let need = messages_max(next);
        if self.used + need > BATCH_LEN_MAX {
            return false;
        }
        self.used += need;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Actor, Command, MoveFunds, OpenAccount, TransferFunds};
    use crate::writer::IdempotencyClaim;
    use events::{AccountStatus, Amount, Currency, IdempotencyKey, OwnerId};

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
            balance,
            held: 0,
            currency: Currency::default(),
            status: AccountStatus::Open,
            owner_id: OwnerId::parse(owner).expect("valid"),
            overdraft_limit: 0,
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
            self.loaded.insert(subject, Slot { seq, aggregate });
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
}
