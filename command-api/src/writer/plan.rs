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
use crate::domain::{AggregateKey, Aggregates, Outcome, decide, rejected_reads as partly_rejected};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use events::{
    AccountId, AccountState, Envelope, Event, HoldState, IdempotencyRecorded, OrderState,
    TransferState,
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
        written: HashMap::with_capacity(loaded.len()),
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
        // A bulk command's rejected items rest on states like a rejected command's.
        let rejected = partly_rejected(&submission.command, &decision.outcome);
        if !rejected.is_empty() {
            rejected_reads.extend(rejected.iter().map(subject_of));
        }
        let recorded = !decision.events.is_empty() || decision.outcome.recorded_without_events();
        // The idempotency record goes last, with the answer the command's events give.
        let record = match (&submission.idempotency, record_subject, recorded) {
            (Some(claim), Some(subject), true) => {
                let rendered = render(&submission.actor, &decision.outcome, submission.job_id);
                let record = IdempotencyRecorded {
                    principal: submission.actor.principal.clone(),
                    fingerprint: claim.fingerprint.clone(),
                    status: rendered.status,
                    response: rendered.body,
                };
                Some((subject, Event::IdempotencyRecorded(record)))
            }
            _ => None,
        };
        let writes = !decision.events.is_empty() || record.is_some();
        let events = decision.events.into_iter();
        let messages = events.filter_map(|event| Some((event.subject()?, event)));
        for (subject, event) in messages.chain(record) {
            let base = base_seq(&subject);
            let envelope = Envelope::new(submission.job_id, now, event);
            stage(
                &mut plan,
                &mut working,
                subject,
                base,
                envelope,
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

    fn transfer(&self, id: &Uuid) -> Option<&TransferState> {
        match self.0.get(subjects::transfer(id).as_str()) {
            Some(Aggregate::Transfer(state)) => Some(state),
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

/// Appends one message and makes its post-state the round's working state of its subject; the
/// first message on a subject carries its expected last sequence.
fn stage(
    plan: &mut Plan,
    working: &mut HashMap<&str, Aggregate>,
    subject: String,
    base: u64,
    envelope: Envelope,
    traceparent: Option<&str>,
) {
    let aggregate = Aggregate::after(&envelope.event);
    if let Some(slot) = working.get_mut(subject.as_str()) {
        *slot = aggregate.clone();
    }
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
        expected_last_seq: None,
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
        // Room made once per submission: a bulk part brings a thousand subjects at once.
        seen.reserve(keys.len() + 1);
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
mod tests;
