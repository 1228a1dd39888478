//! The writer task's loop: gather a round, load, decide, commit, answer.

use super::cache::{Aggregate, Slot, StateCache};
use super::{
    Answer, Rejection, Rendered, Reply, Submission, WriteFailure, Writer, WriterConfig,
    WriterStats, WriterTask,
};
use crate::domain::{Aggregates, decide};
use async_nats::Client;
use bytes::Bytes;
use chrono::Utc;
use events::{
    AccountId, AccountState, Envelope, Event, IdempotencyRecorded, OrderState, headers, subjects,
};
use ledger_nats::batch::{BATCH_LEN_MAX, BatchAck, Outbound, PublishError, publish_atomic};
use ledger_nats::direct;
use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Fewest cache entries: one round touches at most ~3 subjects per message of a full batch,
/// and all of a round's states must fit at once.
const CACHE_LEN_MIN: usize = 4 * BATCH_LEN_MAX;

/// First back-off after a conflict or an unreachable journal; doubled per retry, with jitter,
/// capped at [`BACKOFF_MAX`]. Small, because a conflict usually clears at the next commit.
const BACKOFF_FIRST: Duration = Duration::from_millis(2);
const BACKOFF_MAX: Duration = Duration::from_millis(500);

/// Rounds of look-ups that confirm a "wrong last sequence" answer before the round is
/// re-decided, 8 ms to 500 ms apart (about 1.5 s in all): a conflicting batch in flight is
/// applied within milliseconds; a deposed leader learns of its successor within a second or
/// so.
const CONFLICT_LOOKUPS: u32 = 7;

/// Starts the writer task on `client` and returns the handlers' handle to it.
pub fn spawn(client: Client, config: WriterConfig) -> (Writer, WriterTask) {
    let (inbox_tx, inbox_rx) = mpsc::channel(config.queue_len_max.max(1));
    let stats = Arc::new(WriterStats::default());
    let cache_len =
        NonZeroUsize::new(config.cache_len_max.max(CACHE_LEN_MIN)).unwrap_or(NonZeroUsize::MIN);
    let writer = Writer {
        inbox: inbox_tx,
        stats: Arc::clone(&stats),
        enqueue_timeout: config.enqueue_timeout,
        answer_timeout: config.answer_timeout,
    };
    let pipeline = Pipeline {
        client,
        cache: StateCache::new(cache_len),
        config,
        stats,
        inbox: inbox_rx,
        carried: None,
    };
    (writer, WriterTask(tokio::spawn(pipeline.run())))
}

/// A submission, the `traceparent` its messages carry, and where its answer goes.
pub(super) type Queued = (Submission, Option<String>, oneshot::Sender<Answer>);

struct Pipeline {
    client: Client,
    config: WriterConfig,
    cache: StateCache,
    stats: Arc<WriterStats>,
    inbox: mpsc::Receiver<Queued>,
    /// A submission that did not fit the previous round.
    carried: Option<Queued>,
}

/// What a round will answer each submission once the batch's fate is known.
enum Tentative {
    /// The requester stopped waiting before the command was decided: it is not executed.
    Abandoned,
    /// Decided and accepted; `writes` says whether it produced messages.
    Accepted {
        rendered: Rendered,
        writes: bool,
        read_seq: u64,
    },
    /// Answered from an idempotency record (`seq` None: the record is in this batch).
    Replayed {
        status: u16,
        body: serde_json::Value,
        seq: Option<u64>,
    },
    Rejected(Rejection),
}

/// A round's decisions: the messages to commit and what to answer.
struct Plan {
    messages: Vec<Outbound>,
    /// Subject → index of its last message in `messages`, and the aggregate after it.
    written: HashMap<String, (usize, Aggregate)>,
    answers: Vec<Tentative>,
    /// Subjects whose cached state a rejection rested on without the batch checking it.
    stale: Vec<String>,
}

/// How a commit ended.
enum Commit {
    Stored(BatchAck),
    /// An expected-sequence check failed; nothing of the batch is stored.
    Conflict,
    /// Refused for another reason; nothing is stored.
    Refused(String),
    /// Still unknown after all retries.
    Unknown(String),
}

impl Pipeline {
    async fn run(mut self) {
        while let Some(round) = self.next_round().await {
            self.process(round).await;
        }
        tracing::info!("writer stopped: queue closed and drained");
    }

    /// Waits for one submission, then takes whatever else is ready, up to a full batch.
    async fn next_round(&mut self) -> Option<Vec<Queued>> {
        let first = match self.carried.take() {
            Some(queued) => queued,
            None => self.inbox.recv().await?,
        };
        let mut budget = messages_max(&first.0);
        let mut round = vec![first];
        while let Ok(next) = self.inbox.try_recv() {
            let need = messages_max(&next.0);
            if budget + need > BATCH_LEN_MAX {
                self.carried = Some(next);
                break;
            }
            budget += need;
            round.push(next);
        }
        Some(round)
    }

    async fn process(&mut self, round: Vec<Queued>) {
        let mut submissions = Vec::with_capacity(round.len());
        let mut traces = Vec::with_capacity(round.len());
        let mut replies = Vec::with_capacity(round.len());
        for (submission, traceparent, reply) in round {
            submissions.push(submission);
            traces.push(traceparent);
            replies.push(reply);
        }
        let kinds: Vec<&'static str> = submissions.iter().map(|s| s.command.kind()).collect();
        let subjects = subjects_of(&submissions);
        // Subjects read from the journal during this round: states a rejection may rest on.
        let mut fresh: HashSet<String> = HashSet::new();
        // Subjects a rejection rested on that were not fresh: read again from the leader.
        let mut confirm: HashSet<String> = HashSet::new();
        let mut working: HashMap<String, Slot> = HashMap::new();
        let attempts = self.config.conflict_retries_max.saturating_add(1);
        for attempt in 0..attempts {
            if attempt > 0 {
                metrics::counter!("tally_writer_retries_total").increment(1);
            }
            if let Err(failure) = self
                .load(&subjects, &mut working, &mut fresh, &confirm)
                .await
            {
                return answer_all(&kinds, replies, Err(failure));
            }
            let plan = plan(&submissions, &traces, &replies, &working, &fresh);
            if !plan.stale.is_empty() {
                for subject in plan.stale {
                    self.cache.forget(&subject);
                    confirm.insert(subject);
                }
                continue;
            }
            if plan.messages.is_empty() {
                return self.answer(&kinds, replies, plan, None);
            }
            let started = std::time::Instant::now();
            let commit = self.commit(&plan.messages).await;
            metrics::histogram!("tally_publish_seconds").record(started.elapsed().as_secs_f64());
            match commit {
                Commit::Stored(ack) => {
                    metrics::histogram!("tally_writer_batch_messages")
                        .record(plan.messages.len() as f64);
                    self.remember(&plan, ack, &mut working);
                    return self.answer(&kinds, replies, plan, Some(ack));
                }
                Commit::Conflict => {
                    metrics::counter!("tally_writer_conflicts_total").increment(1);
                    self.stats.conflicts.fetch_add(1, Ordering::Relaxed);
                    for subject in plan.written.keys() {
                        self.cache.forget(subject);
                    }
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Commit::Refused(reason) | Commit::Unknown(reason) => {
                    for subject in &subjects {
                        self.cache.forget(subject);
                    }
                    tracing::error!(%reason, "batch not committed");
                    return answer_all(&kinds, replies, Err(WriteFailure::Unavailable(reason)));
                }
            }
        }
        tracing::warn!(attempts, "round gave up after repeated conflicts");
        answer_all(&kinds, replies, Err(WriteFailure::Conflict));
    }

    /// Fills `working` with every subject's slot: from the cache, or from the journal for
    /// the subjects it lacks (one multi-subject direct get). Subjects in `confirm` are read
    /// from the stream's leader, one request each.
    ///
    /// A subject read from the journal joins `fresh` (a rejection may rest on it) when the
    /// read cannot be stale: always on a single replica; on a replicated stream only when the
    /// leader answered, since a direct get may come from a trailing follower.
    async fn load(
        &mut self,
        subjects: &[String],
        working: &mut HashMap<String, Slot>,
        fresh: &mut HashSet<String>,
        confirm: &HashSet<String>,
    ) -> Result<(), WriteFailure> {
        working.clear();
        let mut misses = Vec::new();
        let mut from_leader = Vec::new();
        for subject in subjects {
            match self.cache.get(subject) {
                Some(slot) => {
                    working.insert(subject.clone(), slot.clone());
                }
                None if confirm.contains(subject) => from_leader.push(subject.clone()),
                None => misses.push(subject.clone()),
            }
        }
        if misses.is_empty() && from_leader.is_empty() {
            return Ok(());
        }
        let unreachable = |e: ledger_nats::DirectGetError| {
            tracing::error!(error = %e, "loading states failed");
            WriteFailure::Unavailable("the journal is not reachable".into())
        };
        let mut stored = if misses.is_empty() {
            Vec::new()
        } else {
            direct::last_for_subjects(&self.client, &self.config.stream, &misses)
                .await
                .map_err(unreachable)?
        };
        let leader_reads = from_leader.iter().map(|subject| {
            direct::last_for_subject_from_leader(&self.client, &self.config.stream, subject)
        });
        for found in futures::future::try_join_all(leader_reads)
            .await
            .map_err(unreachable)?
        {
            stored.extend(found);
        }
        for message in &stored {
            let slot = Slot::from_stored(message).map_err(|e| {
                tracing::error!(subject = %message.subject, seq = message.seq, error = %e,
                    "journal message cannot be decoded");
                WriteFailure::Unavailable("a journal message cannot be decoded".into())
            })?;
            working.insert(message.subject.clone(), slot);
        }
        let current = !self.config.replicated;
        for (subject, trusted) in misses
            .into_iter()
            .map(|s| (s, current))
            .chain(from_leader.into_iter().map(|s| (s, true)))
        {
            let slot = working
                .entry(subject.clone())
                .or_insert(Slot::ABSENT)
                .clone();
            self.cache.put(subject.clone(), slot);
            if trusted {
                fresh.insert(subject);
            }
        }
        Ok(())
    }

    /// Publishes the batch; an unknown outcome is resolved by looking for the batch's first
    /// message, and by resending the identical batch (same message ids, same expected
    /// sequences) — which the server can store at most once.
    async fn commit(&self, messages: &[Outbound]) -> Commit {
        let timeout = self.config.commit_timeout;
        match publish_atomic(&self.client, messages, timeout).await {
            Ok(ack) => Commit::Stored(ack),
            Err(PublishError::WrongLastSequence(_)) => self.settle_conflict(messages).await,
            Err(e @ (PublishError::Refused(_) | PublishError::BadLength(_))) => {
                Commit::Refused(e.to_string())
            }
            Err(e @ (PublishError::DuplicateMessageId(_) | PublishError::Unknown(_))) => {
                self.stats.unknown_outcomes.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "commit outcome unknown; resolving");
                self.resolve(messages).await
            }
        }
    }

    /// Makes sure a "wrong last sequence" answer is a conflict before the round is re-decided.
    /// The answer alone is not proof: right after a frozen leader resumes, it still believes
    /// it leads and answers publishes from its old state while the new leader stores them —
    /// the first answer wins, and re-deciding wrote one chaos-run transfer seven times. So
    /// each subject the batch checks is looked up (from the leader) after its expected
    /// sequence: our own message there proves the batch stored; another message there proves
    /// the conflict (the journal is append-only, and ours expected that place); nothing, or
    /// no answer, proves neither, and after a few tries the outcome is unknown (503).
    async fn settle_conflict(&self, messages: &[Outbound]) -> Commit {
        let checked: Vec<&Outbound> = messages
            .iter()
            .filter(|m| m.expected_last_subject_seq.is_some())
            .collect();
        let count = messages.len() as u64;
        for attempt in 0..CONFLICT_LOOKUPS {
            let lookups = checked.iter().map(|m| {
                direct::next_for_subject(
                    &self.client,
                    &self.config.stream,
                    &m.subject,
                    m.expected_last_subject_seq.unwrap_or(0) + 1,
                )
            });
            let found = futures::future::join_all(lookups).await;
            for (ours, found) in checked.iter().zip(&found) {
                match found {
                    Ok(Some(m)) if m.msg_id.as_deref() == Some(ours.msg_id.as_str()) => {
                        // The batch is stored contiguously; its last message is `count - 1`
                        // after this one's place in it.
                        let index = messages
                            .iter()
                            .position(|x| x.msg_id == ours.msg_id)
                            .unwrap_or(0) as u64;
                        tracing::warn!(seq = m.seq, "refused, yet the batch was stored");
                        return Commit::Stored(found_at(m.seq - index, count));
                    }
                    Ok(Some(_)) => return Commit::Conflict,
                    Ok(None) | Err(_) => {}
                }
            }
            tokio::time::sleep(backoff(attempt + 2)).await;
        }
        tracing::warn!("a refusal could not be confirmed as a conflict");
        Commit::Unknown("a refusal could not be confirmed as a conflict".into())
    }

    /// Settles a commit of unknown outcome. Only positive evidence ends it: our batch's first
    /// message found where it would be (stored), or another message found in its place (ours
    /// can never be stored: the journal is append-only and ours expected that place). A
    /// resend refused with "wrong last sequence" proves nothing by itself — the subject may
    /// have moved because *our* first attempt was applied meanwhile — so the look-up is
    /// repeated; and a look-up that finds nothing after such a refusal cannot be trusted
    /// either (a leader that was frozen and does not know yet that it was deposed answers
    /// from its old state). Without evidence the outcome stays unknown (503): re-deciding the
    /// commands would write a second copy of any that was stored.
    async fn resolve(&self, messages: &[Outbound]) -> Commit {
        let Some(first) = messages.first() else {
            return Commit::Refused("empty batch".into());
        };
        // The first message is its subject's first in the batch, so it carries the check.
        let expected = first.expected_last_subject_seq.unwrap_or(0);
        let count = messages.len() as u64;
        let mut resend_conflicted = false;
        for attempt in 0..self.config.unknown_outcome_retries_max {
            let found = direct::next_for_subject(
                &self.client,
                &self.config.stream,
                &first.subject,
                expected + 1,
            )
            .await;
            match found {
                // Stored: a batch is stored contiguously, so its last message follows.
                Ok(Some(m)) if m.msg_id.as_deref() == Some(first.msg_id.as_str()) => {
                    return Commit::Stored(found_at(m.seq, count));
                }
                // Someone else's message follows the expected sequence: ours can never be
                // stored.
                Ok(Some(_)) => return Commit::Conflict,
                // Not found, though a resend saw the subject move: the answer is stale or
                // our batch is about to be applied; ask again.
                Ok(None) if resend_conflicted => {
                    tokio::time::sleep(backoff(attempt + 4)).await;
                }
                Ok(None) => {
                    match publish_atomic(&self.client, messages, self.config.commit_timeout).await {
                        Ok(ack) => return Commit::Stored(ack),
                        Err(PublishError::WrongLastSequence(_)) => resend_conflicted = true,
                        Err(PublishError::DuplicateMessageId(_)) => {}
                        Err(e @ (PublishError::Refused(_) | PublishError::BadLength(_))) => {
                            return Commit::Refused(e.to_string());
                        }
                        Err(PublishError::Unknown(_)) => {
                            tokio::time::sleep(backoff(attempt + 4)).await;
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "looking up an unknown commit failed");
                    tokio::time::sleep(backoff(attempt + 4)).await;
                }
            }
        }
        Commit::Unknown("the commit's outcome could not be determined".into())
    }

    /// Records a committed batch's post-states and sequences in the cache.
    fn remember(&mut self, plan: &Plan, ack: BatchAck, working: &mut HashMap<String, Slot>) {
        for (subject, (index, aggregate)) in &plan.written {
            let slot = Slot {
                seq: ack.first_seq() + *index as u64,
                aggregate: aggregate.clone(),
            };
            working.insert(subject.clone(), slot.clone());
            self.cache.put(subject.clone(), slot);
        }
        let commands = plan
            .answers
            .iter()
            .filter(|a| matches!(a, Tentative::Accepted { writes: true, .. }))
            .count() as u64;
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        self.stats.commands.fetch_add(commands, Ordering::Relaxed);
        self.stats
            .messages
            .fetch_add(plan.messages.len() as u64, Ordering::Relaxed);
        self.stats
            .batch_commands_max
            .fetch_max(commands, Ordering::Relaxed);
        tracing::debug!(
            seq = ack.seq,
            messages = ack.count,
            commands,
            "batch committed"
        );
    }

    fn answer(
        &self,
        kinds: &[&'static str],
        replies: Vec<oneshot::Sender<Answer>>,
        plan: Plan,
        ack: Option<BatchAck>,
    ) {
        let batch_seq = ack.map(|a| a.seq).unwrap_or(0);
        for ((reply, tentative), kind) in replies.into_iter().zip(plan.answers).zip(kinds) {
            count_command(kind, outcome_name(&tentative));
            let answer = match tentative {
                Tentative::Abandoned => continue,
                Tentative::Accepted {
                    rendered,
                    writes,
                    read_seq,
                } => Ok(Ok(Reply {
                    status: rendered.status,
                    body: rendered.body,
                    seq: if writes { batch_seq } else { read_seq },
                    replayed: false,
                })),
                Tentative::Replayed { status, body, seq } => {
                    self.stats.replays.fetch_add(1, Ordering::Relaxed);
                    Ok(Ok(Reply {
                        status,
                        body,
                        seq: seq.unwrap_or(batch_seq),
                        replayed: true,
                    }))
                }
                Tentative::Rejected(rejection) => {
                    self.stats.rejections.fetch_add(1, Ordering::Relaxed);
                    Ok(Err(rejection))
                }
            };
            // The requester may have stopped waiting; its answer is then simply dropped.
            let _ = reply.send(answer);
        }
    }
}

/// Decides every submission of the round in order against `working`, which starts as the
/// loaded states and takes in each accepted command's post-states.
fn plan(
    submissions: &[Submission],
    traces: &[Option<String>],
    replies: &[oneshot::Sender<Answer>],
    loaded: &HashMap<String, Slot>,
    fresh: &HashSet<String>,
) -> Plan {
    let mut working: HashMap<&str, Aggregate> = loaded
        .iter()
        .map(|(subject, slot)| (subject.as_str(), slot.aggregate.clone()))
        .collect();
    let base_seq = |subject: &str| loaded.get(subject).map_or(0, |slot| slot.seq);
    let now = Utc::now();
    let mut plan = Plan {
        messages: Vec::new(),
        written: HashMap::new(),
        answers: Vec::with_capacity(submissions.len()),
        stale: Vec::new(),
    };
    let mut rejected_reads: Vec<String> = Vec::new();
    for ((submission, reply), traceparent) in submissions.iter().zip(replies).zip(traces) {
        if reply.is_closed() {
            plan.answers.push(Tentative::Abandoned);
            continue;
        }
        if let Some(claim) = &submission.idempotency
            && let Some(Aggregate::Idempotency(record)) = working.get(claim.subject.as_str())
        {
            plan.answers
                .push(if record.fingerprint == claim.fingerprint {
                    Tentative::Replayed {
                        status: record.status,
                        body: record.response.clone(),
                        seq: match plan.written.contains_key(&claim.subject) {
                            true => None,
                            false => Some(base_seq(&claim.subject)),
                        },
                    }
                } else {
                    Tentative::Rejected(Rejection::IdempotencyKeyReused)
                });
            continue;
        }
        let command_subjects = submission.command.subjects();
        let decided = decide(&submission.actor, &submission.command, &Working(&working));
        let decision = match decided {
            Ok(decision) => decision,
            Err(rejection) => {
                rejected_reads.extend(command_subjects);
                // An absent idempotency record read from the cache may be stale too: another
                // instance may have recorded the key, and the answer is then a replay.
                rejected_reads.extend(submission.idempotency.iter().map(|c| c.subject.clone()));
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
        let rendered = (submission.render)(&submission.actor, &decision.outcome, submission.job_id);
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
            push(&mut plan, subject, envelope, aggregate, base, traceparent);
        }
        if let (Some(claim), true) = (&submission.idempotency, writes) {
            let record = IdempotencyRecorded {
                principal: submission.actor.principal.clone(),
                fingerprint: claim.fingerprint.clone(),
                status: rendered.status,
                response: rendered.body.clone(),
            };
            let aggregate = Aggregate::Idempotency(record.clone());
            if let Some(slot) = working.get_mut(claim.subject.as_str()) {
                *slot = aggregate.clone();
            }
            let envelope =
                Envelope::new(submission.job_id, now, Event::IdempotencyRecorded(record));
            push(
                &mut plan,
                claim.subject.clone(),
                envelope,
                aggregate,
                base_seq(&claim.subject),
                traceparent,
            );
        }
        plan.answers.push(Tentative::Accepted {
            rendered,
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

    fn order(&self, id: &uuid::Uuid) -> Option<&OrderState> {
        match self.0.get(subjects::order(id).as_str()) {
            Some(Aggregate::Order(state)) => Some(state),
            _ => None,
        }
    }

    fn recorded(&self, subject: &str) -> bool {
        !matches!(self.0.get(subject), None | Some(Aggregate::Absent))
    }

    fn hold(&self, id: &uuid::Uuid) -> Option<&events::HoldState> {
        match self.0.get(subjects::hold(id).as_str()) {
            Some(Aggregate::Hold(state)) => Some(state),
            _ => None,
        }
    }
}

/// Appends one message; the first message on a subject carries its expected last sequence.
fn push(
    plan: &mut Plan,
    subject: String,
    envelope: Envelope,
    aggregate: Aggregate,
    base: u64,
    traceparent: &Option<String>,
) {
    let expected = (!plan.written.contains_key(&subject)).then_some(base);
    let mut message_headers = vec![
        (headers::EVENT_TYPE, envelope.event.event_type().to_owned()),
        (headers::JOB_ID, envelope.job_id.to_string()),
        (headers::CONTENT_TYPE, headers::JSON.to_owned()),
    ];
    if let Some(traceparent) = traceparent {
        message_headers.push((headers::TRACEPARENT, traceparent.clone()));
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
fn subjects_of(submissions: &[Submission]) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut subjects = Vec::new();
    for submission in submissions {
        let claim = submission.idempotency.iter().map(|c| c.subject.clone());
        for subject in submission.command.subjects().into_iter().chain(claim) {
            if seen.insert(subject.clone()) {
                subjects.push(subject);
            }
        }
    }
    subjects
}

/// The most messages a submission can add to a batch.
fn messages_max(submission: &Submission) -> usize {
    submission.command.events_max() + usize::from(submission.idempotency.is_some())
}

fn answer_all(kinds: &[&'static str], replies: Vec<oneshot::Sender<Answer>>, answer: Answer) {
    let outcome = match &answer {
        Err(WriteFailure::Conflict) => "conflict",
        Err(WriteFailure::Overloaded) => "overloaded",
        Err(WriteFailure::Unavailable(_)) => "unavailable",
        Ok(Ok(_)) => "accepted",
        Ok(Err(_)) => "rejected",
    };
    for (reply, kind) in replies.into_iter().zip(kinds) {
        count_command(kind, outcome);
        let _ = reply.send(answer.clone());
    }
}

/// `tally_commands_total{type, outcome}`.
fn count_command(kind: &'static str, outcome: &'static str) {
    metrics::counter!("tally_commands_total", "type" => kind, "outcome" => outcome).increment(1);
}

fn outcome_name(tentative: &Tentative) -> &'static str {
    match tentative {
        Tentative::Abandoned => "abandoned",
        Tentative::Accepted { .. } => "accepted",
        Tentative::Replayed { .. } => "replayed",
        Tentative::Rejected(_) => "rejected",
    }
}

/// Exponential back-off with full jitter.
/// The ack of a batch of `count` messages found stored from stream sequence `first_seq` on: a
/// batch is stored contiguously, so its last message is `count - 1` further.
fn found_at(first_seq: u64, count: u64) -> BatchAck {
    BatchAck {
        seq: first_seq + count - 1,
        count,
    }
}

fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_FIRST
        .saturating_mul(1u32 << attempt.min(16))
        .min(BACKOFF_MAX);
    let millis = u64::try_from(ceiling.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    Duration::from_millis(rand::random_range(0..=millis))
}
