//! Which concurrency checks a batch carries: one per subject, or — for the subjects whose
//! state this instance knows as of a point where only it has written since — one for the
//! whole stream.
//!
//! Each subject's first message in a batch carries `Nats-Expected-Last-Subject-Sequence`, and
//! nats-server answers each such check by reading the subject's last message from its store
//! (~10 µs a message on a journal of 1M messages; `docs/benchmarks.md`). While this
//! instance's commits follow one another in the stream with nothing between them (its run),
//! a subject's state known as of a point in the run is still its state at the run's end, but
//! for this instance's own writes, which it knows. One `Nats-Expected-Last-Sequence` on the
//! batch's first message — the stream still ends where the run's last commit ended — then
//! proves those subjects unchanged without a read, and their own checks are dropped.
//!
//! A state is known as of a point ([`Slot::current_at`]) when this instance's own commit
//! wrote it (its ack), or when a single-replica stream answered the read after this
//! instance's last ack. Kept per subject: states read from a replicated stream (a follower
//! may have served an old one) and states known only as of before the run began. Only acks
//! count as knowledge of the run: it extends when a commit lands right after the previous
//! one, and anything else — another writer's message between two of ours, a conflict, a
//! commit whose outcome was settled without an ack of ours in sequence — ends it.

use super::cache::Slot;
use ledger_nats::batch::{BatchAck, Outbound};
use std::collections::HashMap;

/// Commits in an unbroken run before its batches use the stream check. Two instances writing
/// at once rarely commit this many in a row, and a stream check sent while another instance
/// writes fails the whole batch (settled and re-decided, but a wasted round).
pub const RUN_LEN_MIN: u32 = 8;

/// This instance's latest unbroken run of commits: every stream message in `(since, last]`
/// is its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OwnRun(Option<Span>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    since: u64,
    last: u64,
    commits: u32,
}

impl OwnRun {
    /// A batch of ours was stored: it extends the run if it begins right after the run's
    /// last message, and starts a new run otherwise.
    pub fn committed(&mut self, ack: BatchAck) {
        self.0 = Some(match self.0 {
            Some(span) if ack.first_seq() == span.last + 1 => Span {
                since: span.since,
                last: ack.seq,
                commits: span.commits.saturating_add(1),
            },
            _ => Span {
                since: ack.first_seq() - 1,
                last: ack.seq,
                commits: 1,
            },
        });
    }

    /// The stream sequence of the run's last commit: this instance's last ack, while the run
    /// lasts.
    pub fn last(&self) -> Option<u64> {
        self.0.map(|span| span.last)
    }

    /// A batch was not stored as far as this instance knows (a conflict: someone else
    /// wrote; refused; unknown: ours may be stored where no ack says).
    pub fn broken(&mut self) {
        self.0 = None;
    }

    /// Drops the subject checks the stream check makes redundant and puts the stream check on
    /// the first message; leaves `messages` as they are while the run is shorter than
    /// [`RUN_LEN_MIN`] or no subject qualifies. `slots` holds the states the batch was
    /// decided on.
    pub fn narrow(&self, messages: &mut [Outbound], slots: &HashMap<String, Slot>) {
        let Some(span) = self.0.filter(|span| span.commits >= RUN_LEN_MIN) else {
            return;
        };
        let mut narrowed = false;
        for message in messages.iter_mut() {
            let Some(expected) = message.expected_last_subject_seq else {
                continue;
            };
            // Known as the subject's last message as of a point in the run: every message
            // since is this instance's, and its own writes are in `slots`.
            let ours = slots.get(&message.subject).is_some_and(|slot| {
                slot.seq == expected && slot.current_at.is_some_and(|at| at >= span.since)
            });
            if ours {
                message.expected_last_subject_seq = None;
                narrowed = true;
            }
        }
        if let (true, Some(first)) = (narrowed, messages.first_mut()) {
            first.expected_last_seq = Some(span.last);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::cache::Aggregate;
    use bytes::Bytes;

    fn message(subject: &str, expected: Option<u64>) -> Outbound {
        Outbound {
            subject: subject.to_owned(),
            msg_id: format!("id-{subject}"),
            headers: vec![],
            payload: Bytes::new(),
            expected_last_subject_seq: expected,
            expected_last_seq: None,
        }
    }

    fn slot(seq: u64, current_at: Option<u64>) -> Slot {
        Slot {
            seq,
            aggregate: Aggregate::Recorded,
            current_at,
        }
    }

    /// A run of `commits` batches of 10 messages each, the first stored at 101.
    fn run_of(commits: u64) -> OwnRun {
        let mut run = OwnRun::default();
        for n in 0..commits {
            run.committed(BatchAck {
                seq: 110 + 10 * n,
                count: 10,
            });
        }
        run
    }

    fn checks(messages: &[Outbound]) -> Vec<(Option<u64>, Option<u64>)> {
        messages
            .iter()
            .map(|m| (m.expected_last_seq, m.expected_last_subject_seq))
            .collect()
    }

    #[test]
    fn subjects_known_during_the_run_trade_their_checks_for_the_streams() {
        let run = run_of(RUN_LEN_MIN.into());
        assert_eq!(run.last(), Some(180));
        // Run: (100, 180]. `a` written by this instance at 150 (its batch ended at 155); `b`
        // read from a replicated stream; `c` known as of before the run; `d` found empty by a
        // single replica after the ack at 170; `e` found empty by a follower.
        let slots = HashMap::from([
            ("a".to_owned(), slot(150, Some(155))),
            ("b".to_owned(), slot(160, None)),
            ("c".to_owned(), slot(90, Some(95))),
            ("d".to_owned(), slot(0, Some(170))),
            ("e".to_owned(), slot(0, None)),
        ]);
        let mut batch = vec![
            message("b", Some(160)),
            message("a", Some(150)),
            message("a", None),
            message("c", Some(90)),
            message("d", Some(0)),
            message("e", Some(0)),
        ];
        run.narrow(&mut batch, &slots);
        assert_eq!(
            checks(&batch),
            [
                (Some(180), Some(160)),
                (None, None),
                (None, None),
                (None, Some(90)),
                (None, None),
                (None, Some(0)),
            ]
        );
    }

    #[test]
    fn a_short_run_or_no_subject_known_in_it_leaves_every_subject_check() {
        let slots = HashMap::from([("a".to_owned(), slot(150, Some(155)))]);
        let short = run_of(u64::from(RUN_LEN_MIN) - 1);
        let mut batch = vec![message("a", Some(150))];
        short.narrow(&mut batch, &slots);
        assert_eq!(checks(&batch), [(None, Some(150))]);

        let long = run_of(u64::from(RUN_LEN_MIN));
        let mut batch = vec![message("b", Some(0))];
        long.narrow(&mut batch, &slots);
        assert_eq!(checks(&batch), [(None, Some(0))]);
    }

    #[test]
    fn a_state_the_batch_was_not_decided_on_keeps_its_check() {
        // The slot says 150, the message expects 140: not the state this instance knows.
        let slots = HashMap::from([("a".to_owned(), slot(150, Some(155)))]);
        let mut batch = vec![message("a", Some(140))];
        run_of(RUN_LEN_MIN.into()).narrow(&mut batch, &slots);
        assert_eq!(checks(&batch), [(None, Some(140))]);
    }

    #[test]
    fn a_gap_or_a_failed_commit_starts_the_run_again() {
        let mut run = run_of(RUN_LEN_MIN.into());
        let slots = HashMap::from([("a".to_owned(), slot(150, Some(155)))]);
        // Another writer's message at 181: the next run starts after it.
        run.committed(BatchAck {
            seq: 191,
            count: 10,
        });
        let mut batch = vec![message("a", Some(150))];
        run.narrow(&mut batch, &slots);
        assert_eq!(checks(&batch), [(None, Some(150))], "a new run is short");

        let mut run = run_of(RUN_LEN_MIN.into());
        run.broken();
        assert_eq!(run.last(), None);
        for n in 0..u64::from(RUN_LEN_MIN) {
            run.committed(BatchAck {
                seq: 190 + 10 * n,
                count: 10,
            });
        }
        // The new run began after 180: `a`, known as of 155, predates it.
        let mut batch = vec![message("a", Some(150))];
        run.narrow(&mut batch, &slots);
        assert_eq!(checks(&batch), [(None, Some(150))]);
    }
}
