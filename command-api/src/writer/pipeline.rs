//! The writer's I/O shell: the task's loop gathers a round from the channel, loads the states
//! it lacks (cache, then journal), asks the planner (`plan.rs`) what to write and answer,
//! trades subject checks for the stream's where its own run of commits allows (`checks.rs`),
//! commits through `ledger_nats::commit_atomic`, caches the post-states, answers and counts.
//! Conflicts and stale rejections send the round back to loading; nothing here decides.

use super::cache::{Slot, StateCache};
use super::checks::OwnRun;
use super::plan::{Plan, Planned, RoundBudget, Tentative, plan, subjects_of};
use super::{
    Answer, Answered, Render, Reply, Submission, WriteFailure, Writer, WriterConfig, WriterStats,
    WriterTask,
};
use async_nats::Client;
use chrono::Utc;
use ledger_nats::batch::{BATCH_LEN_MAX, BatchAck};
use ledger_nats::commit::backoff;
use ledger_nats::{Commit, CommitOptions, commit_atomic, direct};
use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::{mpsc, oneshot};

/// Fewest cache entries: one round touches at most ~3 subjects per message of a full batch,
/// and all of a round's states must fit at once.
const CACHE_LEN_MIN: usize = 4 * BATCH_LEN_MAX;

/// Rounds of look-ups that confirm a "wrong last sequence" answer before the round is
/// re-decided, 8 ms to 500 ms apart (about 1.5 s in all): a conflicting batch in flight is
/// applied within milliseconds; a deposed leader learns of its successor within a second or
/// so.
const CONFLICT_LOOKUPS: u32 = 7;

/// Starts the writer task on `client` and returns the handlers' handle to it.
///
/// `render` gives the answer an idempotency record journals (see [`Render`]).
pub fn spawn(client: Client, config: WriterConfig, render: Render) -> (Writer, WriterTask) {
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
    let commit = CommitOptions {
        stream: config.stream.clone(),
        timeout: config.commit_timeout,
        unknown_outcome_retries_max: config.unknown_outcome_retries_max,
        conflict_lookups: CONFLICT_LOOKUPS,
    };
    let pipeline = Pipeline {
        client,
        commit,
        render,
        cache: StateCache::new(cache_len),
        config,
        stats,
        inbox: inbox_rx,
        carried: None,
        run: OwnRun::default(),
    };
    (writer, WriterTask(tokio::spawn(pipeline.run())))
}

/// A submission, the `traceparent` its messages carry, and where its answer goes.
pub(super) type Queued = (Submission, Option<String>, oneshot::Sender<Answer>);

struct Pipeline {
    client: Client,
    commit: CommitOptions,
    render: Render,
    config: WriterConfig,
    cache: StateCache,
    stats: Arc<WriterStats>,
    inbox: mpsc::Receiver<Queued>,
    /// A submission that did not fit the previous round.
    carried: Option<Queued>,
    /// This instance's unbroken run of commits: which subject checks the stream check may
    /// replace.
    run: OwnRun,
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
        let mut budget = RoundBudget::starting_with(&first.0);
        let mut round = vec![first];
        while let Ok(next) = self.inbox.try_recv() {
            if !budget.admit(&next.0) {
                self.carried = Some(next);
                break;
            }
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
        let mut working: HashMap<String, Slot> = HashMap::with_capacity(subjects.len());
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
            let round: Vec<Planned<'_>> = submissions
                .iter()
                .zip(&traces)
                .zip(&replies)
                .map(|((submission, traceparent), reply)| Planned {
                    submission,
                    traceparent: traceparent.as_deref(),
                    abandoned: reply.is_closed(),
                })
                .collect();
            let mut plan = plan(&round, &working, &fresh, Utc::now(), self.render);
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
            self.run.narrow(&mut plan.messages, &working);
            let started = std::time::Instant::now();
            let stats = &self.stats;
            let commit = commit_atomic(&self.client, &plan.messages, &self.commit, || {
                stats.unknown_outcomes.fetch_add(1, Ordering::Relaxed);
            })
            .await;
            metrics::histogram!("tally_publish_seconds").record(started.elapsed().as_secs_f64());
            match commit {
                Commit::Stored(ack) => {
                    self.run.committed(ack);
                    if plan
                        .messages
                        .first()
                        .is_some_and(|m| m.expected_last_seq.is_some())
                    {
                        self.stats.stream_checked.fetch_add(1, Ordering::Relaxed);
                    }
                    metrics::histogram!("tally_writer_batch_messages")
                        .record(plan.messages.len() as f64);
                    self.remember(&plan, ack, &mut working);
                    return self.answer(&kinds, replies, plan, Some(ack));
                }
                Commit::Conflict => {
                    self.run.broken();
                    metrics::counter!("tally_writer_conflicts_total").increment(1);
                    self.stats.conflicts.fetch_add(1, Ordering::Relaxed);
                    for subject in plan.written.keys() {
                        self.cache.forget(subject);
                    }
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Commit::Refused(reason) | Commit::Unknown(reason) => {
                    self.run.broken();
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
        // A single replica answers after every write it acknowledged: what it read is the
        // subjects' state as of this instance's last commit, at least.
        let current_at = self.run.last().filter(|_| current);
        for (subject, trusted) in misses
            .into_iter()
            .map(|s| (s, current))
            .chain(from_leader.into_iter().map(|s| (s, true)))
        {
            let slot = working.entry(subject.clone()).or_insert(Slot::ABSENT);
            slot.current_at = current_at;
            self.cache.put(subject.clone(), slot.clone());
            if trusted {
                fresh.insert(subject);
            }
        }
        Ok(())
    }

    /// Records a committed batch's post-states and sequences in the cache.
    fn remember(&mut self, plan: &Plan, ack: BatchAck, working: &mut HashMap<String, Slot>) {
        for (subject, (index, aggregate)) in &plan.written {
            let slot = Slot {
                seq: ack.first_seq() + *index as u64,
                aggregate: aggregate.clone(),
                current_at: Some(ack.seq),
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
                    outcome,
                    writes,
                    read_seq,
                } => Ok(Ok(Reply {
                    answer: Answered::Decided(outcome),
                    seq: if writes { batch_seq } else { read_seq },
                })),
                Tentative::Replayed { answer, seq } => {
                    self.stats.replays.fetch_add(1, Ordering::Relaxed);
                    Ok(Ok(Reply {
                        answer: Answered::Replayed(answer),
                        seq: seq.unwrap_or(batch_seq),
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
