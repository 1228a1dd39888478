//! Direct gets (ADR-31): reading stored messages without a consumer.
//!
//! The command side loads an aggregate's current state as the last message on its subject;
//! a cache miss for many subjects is one `multi_last` request answered by a burst of messages
//! ending in an end-of-batch status.
//!
//! On a replicated stream any replica answers a direct get, and a follower may trail the
//! leader (nats-server lets a follower serve direct gets once ~90 % caught up). That is fine
//! where the expected-sequence check at commit catches a stale read; where nothing would —
//! settling an unknown commit, confirming a rejection — the reads here that say "from the
//! leader" go through the stream API's message get, which only the leader answers.

use crate::startup::Transient;
use async_nats::{Client, HeaderMap};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::json;
use std::time::Duration;
use thiserror::Error;

/// Subjects per `multi_last` request: nats-server 2.15 refuses more than 1024 results in one
/// answer (status 413, measured); larger sets are split into requests sent concurrently.
pub const MULTI_LAST_SUBJECTS_MAX: usize = 1000;

/// Messages per range request: the server's own cap on a direct-get batch.
pub const RANGE_LEN_MAX: usize = 1000;

/// How long to wait for each message of a direct-get answer.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(5);

/// The status NATS answers a request with when no subscriber has the subject.
pub const NO_RESPONDERS: u16 = 503;

/// How often a direct get that met [`NO_RESPONDERS`] is sent again, after pauses of 25, 50,
/// 100 and 200 ms. On a cluster, a server learns within milliseconds that another node
/// serves the stream's reads — but a read sent in that moment, right after the stream was
/// created, met no responders and failed a command in CI (and under load here, now and then
/// mid-run too). Longer than ~0.4 s means no replica can answer, and the caller is better
/// told so soon.
const NO_RESPONDERS_RETRIES: u32 = 4;
const NO_RESPONDERS_PAUSE_FIRST: Duration = Duration::from_millis(25);

/// How long a read from the stream's leader may take. It answers in milliseconds; while a
/// new leader is being elected nobody answers, and a caller settling an unknown commit should
/// ask again soon rather than wait out the client's 5 s request time-out, which added up to
/// 5 s to the write outage after a leader's death (docs/scale-out.md has the figures).
pub const LEADER_READ_TIMEOUT: Duration = Duration::from_secs(1);

/// How long [`first_since`] waits for the replica answering it to reach the leader's last
/// message. A follower trails by milliseconds in steady state; one back from a partition or
/// a lost disk may trail by seconds, and a caller is better told "retry" than kept waiting.
pub const REPLICA_CATCH_UP_MAX: Duration = Duration::from_secs(3);

/// The first pause of a [`CatchUp`]: a follower in steady state trails by milliseconds.
const CATCH_UP_PAUSE_FIRST: Duration = Duration::from_millis(20);

/// How long a replica may trail before a [`CatchUp`] says so in a warning: a follower trails
/// by milliseconds after every commit, which is the replication working, not a fault worth a
/// line in the log of every request that meets it.
const CATCH_UP_WARN_AFTER: Duration = Duration::from_secs(1);

/// The longest pause of a [`CatchUp`]: a replica copying a lost journal back takes seconds,
/// and asking it every 20 ms meanwhile only adds to its work.
const CATCH_UP_PAUSE_MAX: Duration = Duration::from_millis(200);

/// Patience with a replica that trails the stream's leader: a reader that finds its answer
/// short of what the leader holds calls [`CatchUp::wait`] and reads again. The budget starts
/// at the first trailing answer, not when the reading began, so a long read that meets a
/// trailing replica late still gets the whole of it.
#[derive(Debug)]
pub struct CatchUp {
    max: Duration,
    deadline: Option<tokio::time::Instant>,
    pause: Duration,
    warned: bool,
}

impl CatchUp {
    /// Waits at most `max` in all for the replicas to catch up.
    pub fn new(max: Duration) -> Self {
        Self {
            max,
            deadline: None,
            pause: CATCH_UP_PAUSE_FIRST,
            warned: false,
        }
    }

    /// A read made progress: the next trailing answer starts a budget of its own.
    pub fn progressed(&mut self) {
        self.deadline = None;
        self.pause = CATCH_UP_PAUSE_FIRST;
    }

    /// Pauses before the next read of a replica that answered up to `at` while the leader
    /// holds `leader`; [`DirectGetError::Trailing`] once the budget is spent (at once, for
    /// every call after that until [`progressed`](Self::progressed)).
    pub async fn wait(&mut self, at: Option<u64>, leader: u64) -> Result<(), DirectGetError> {
        if self
            .pause_within_budget(|waited_ms| {
                tracing::warn!(
                    ?at,
                    leader,
                    waited_ms,
                    "a replica trails the stream's leader; still waiting"
                );
            })
            .await
        {
            Ok(())
        } else {
            Err(DirectGetError::Trailing { at, leader })
        }
    }

    /// Pauses before a read is sent again after `error`, a [`Transient`] failure (a replica
    /// that stalls mid-answer: paused, cut off, or rejoining after a fault), spending the
    /// same budget as a trailing replica; `error` back once the budget is spent.
    pub async fn retry_after(&mut self, error: DirectGetError) -> Result<(), DirectGetError> {
        if self
            .pause_within_budget(|waited_ms| {
                tracing::warn!(reason = %error, waited_ms, "a journal read failed; still trying");
            })
            .await
        {
            Ok(())
        } else {
            Err(error)
        }
    }

    /// Sleeps the next pause of the budget and answers true, or answers false once the budget
    /// is spent; `warn` is told how long the budget has run, once, after
    /// [`CATCH_UP_WARN_AFTER`].
    async fn pause_within_budget(&mut self, warn: impl FnOnce(u128)) -> bool {
        let now = tokio::time::Instant::now();
        let deadline = match self.deadline {
            Some(deadline) => deadline,
            None => {
                tracing::debug!("a replica is behind or not answering; waiting");
                *self.deadline.insert(now + self.max)
            }
        };
        let waited = self
            .max
            .saturating_sub(deadline.saturating_duration_since(now));
        if waited >= CATCH_UP_WARN_AFTER && !self.warned {
            self.warned = true;
            warn(waited.as_millis());
        }
        if now >= deadline {
            return false;
        }
        tokio::time::sleep(self.pause.min(deadline - now)).await;
        self.pause = (self.pause * 2).min(CATCH_UP_PAUSE_MAX);
        true
    }
}

/// A message as stored in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub seq: u64,
    pub subject: String,
    pub msg_id: Option<String>,
    pub headers: HeaderMap,
    pub payload: Bytes,
}

impl Stored {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.as_str())
    }

    /// When the server stored the message (direct-get answers say it in a header; a leader's
    /// message get says it in a field, copied into that header).
    pub fn stored_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let raw = self.header(crate::headers::TIME_STAMP)?;
        chrono::DateTime::parse_from_rfc3339(raw)
            .ok()
            .map(|at| at.with_timezone(&chrono::Utc))
    }
}

/// Why a read of the journal failed.
#[derive(Debug, Error)]
pub enum DirectGetError {
    #[error("direct get failed: {0}")]
    Request(String),
    #[error("direct get timed out")]
    TimedOut,
    #[error("direct get answered status {status}: {description}")]
    Status { status: u16, description: String },
    #[error("direct get answer lacks {0}")]
    Malformed(&'static str),
    #[error(
        "the replicas answering direct gets trail the leader (read up to {at:?}, the leader holds {leader})"
    )]
    Trailing { at: Option<u64>, leader: u64 },
}

/// The last message of each subject that has one (subjects without messages are absent).
pub async fn last_for_subjects(
    client: &Client,
    stream: &str,
    subjects: &[String],
) -> Result<Vec<Stored>, DirectGetError> {
    let requests = subjects.chunks(MULTI_LAST_SUBJECTS_MAX).map(|chunk| {
        batch_request(
            client,
            stream,
            json!({ "multi_last": chunk, "batch": chunk.len() }),
        )
    });
    let answers = futures::future::try_join_all(requests).await?;
    Ok(answers.into_iter().flatten().collect())
}

/// The last message of each subject at or before stream sequence `up_to_seq`: the subjects'
/// states as of that point of the journal, one consistent cut even while writers append
/// (subjects without a message by then are absent). Reading the subjects one by one, or with
/// [`last_for_subjects`], gives no such cut: a transfer committed between two reads shows one
/// leg only.
pub async fn last_for_subjects_up_to(
    client: &Client,
    stream: &str,
    subjects: &[String],
    up_to_seq: u64,
) -> Result<Vec<Stored>, DirectGetError> {
    let requests = subjects.chunks(MULTI_LAST_SUBJECTS_MAX).map(|chunk| {
        batch_request(
            client,
            stream,
            json!({ "multi_last": chunk, "batch": chunk.len(), "up_to_seq": up_to_seq }),
        )
    });
    let answers = futures::future::try_join_all(requests).await?;
    Ok(answers.into_iter().flatten().collect())
}

/// The first message on `subject` at or after stream sequence `from_seq`, read from the
/// stream's leader.
///
/// This settles whether a commit of unknown outcome was stored, so it must see every
/// acknowledged write: on a replicated stream a direct get may be answered by a follower
/// that has not applied the newest entries yet, and "not there" from it would let the same
/// command be decided twice. The stream API's message get is answered by the leader only
/// (the one that acknowledged the write, or a successor elected with every committed entry).
pub async fn next_for_subject(
    client: &Client,
    stream: &str,
    subject: &str,
    from_seq: u64,
) -> Result<Option<Stored>, DirectGetError> {
    leader_get(
        client,
        stream,
        json!({ "seq": from_seq.max(1), "next_by_subj": subject }),
    )
    .await
}

/// The message at stream sequence `seq` (any subject), read from the stream's leader (see
/// [`next_for_subject`]); `None` when the stream holds none there yet.
pub async fn at_seq(
    client: &Client,
    stream: &str,
    seq: u64,
) -> Result<Option<Stored>, DirectGetError> {
    leader_get(client, stream, json!({ "seq": seq.max(1) })).await
}

/// The last message on `subject`, read from the stream's leader: the state every
/// acknowledged write has reached (see [`next_for_subject`]). One request per subject, so
/// only for the few states a decision must not read stale — a rejection, say — where
/// [`last_for_subjects`] serves the bulk.
pub async fn last_for_subject_from_leader(
    client: &Client,
    stream: &str,
    subject: &str,
) -> Result<Option<Stored>, DirectGetError> {
    leader_get(client, stream, json!({ "last_by_subj": subject })).await
}

/// A `$JS.API.STREAM.MSG.GET` request (answered by the stream's leader only).
async fn leader_get(
    client: &Client,
    stream: &str,
    request: serde_json::Value,
) -> Result<Option<Stored>, DirectGetError> {
    let reply = client
        .send_request(
            format!("$JS.API.STREAM.MSG.GET.{stream}"),
            async_nats::Request::new()
                .payload(Bytes::from(request.to_string()))
                .timeout(Some(LEADER_READ_TIMEOUT)),
        )
        .await
        .map_err(|e| DirectGetError::Request(e.to_string()))?;
    let answer: MsgGetAnswer = serde_json::from_slice(&reply.payload)
        .map_err(|_| DirectGetError::Malformed("message get answer"))?;
    match answer {
        MsgGetAnswer::Found { message } => message.stored().map(Some),
        // 10037: no message found.
        MsgGetAnswer::Error { error } if error.err_code == 10037 => Ok(None),
        MsgGetAnswer::Error { error } => Err(DirectGetError::Status {
            status: error.code,
            description: error.description,
        }),
    }
}

/// `$JS.API.STREAM.MSG.GET` answers: the stored message (headers and data base64-encoded)
/// or a JetStream error.
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum MsgGetAnswer {
    Error { error: crate::api::ApiError },
    Found { message: RawMessage },
}

#[derive(Debug, serde::Deserialize)]
struct RawMessage {
    subject: String,
    seq: u64,
    #[serde(default)]
    hdrs: Option<String>,
    #[serde(default)]
    data: Option<String>,
    /// When the server stored it (RFC 3339): a direct get's `Nats-Time-Stamp` header.
    #[serde(default)]
    time: Option<String>,
}

impl RawMessage {
    fn stored(self) -> Result<Stored, DirectGetError> {
        use base64::Engine as _;
        let decode = |field: Option<String>, what: &'static str| {
            field
                .map(|text| base64::engine::general_purpose::STANDARD.decode(text))
                .transpose()
                .map_err(|_| DirectGetError::Malformed(what))
                .map(Option::unwrap_or_default)
        };
        let mut headers =
            parse_headers(&decode(self.hdrs, "hdrs")?).ok_or(DirectGetError::Malformed("hdrs"))?;
        if let Some(time) = self.time {
            headers.insert(crate::headers::TIME_STAMP, time.as_str());
        }
        let msg_id = headers
            .get(crate::headers::MSG_ID)
            .map(|v| v.as_str().to_owned());
        Ok(Stored {
            seq: self.seq,
            subject: self.subject,
            msg_id,
            headers,
            payload: Bytes::from(decode(self.data, "data")?),
        })
    }
}

/// Reads a stored header block (`NATS/1.0\r\nName: value\r\n...\r\n\r\n`).
fn parse_headers(block: &[u8]) -> Option<HeaderMap> {
    let mut headers = HeaderMap::new();
    if block.is_empty() {
        return Some(headers);
    }
    let text = std::str::from_utf8(block).ok()?;
    let mut lines = text.split("\r\n");
    if !lines.next()?.starts_with("NATS/1.0") {
        return None;
    }
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':')?;
        headers.append(name.trim(), value.trim());
    }
    Some(headers)
}

/// Up to `len` messages from stream sequence `from_seq` on (any subject), in order.
pub async fn range(
    client: &Client,
    stream: &str,
    from_seq: u64,
    len: usize,
) -> Result<Vec<Stored>, DirectGetError> {
    let len = len.clamp(1, RANGE_LEN_MAX);
    batch_request(
        client,
        stream,
        json!({ "seq": from_seq.max(1), "batch": len }),
    )
    .await
}

/// Where [`first_since`] looks: messages on subjects matching `filter`, stored from `since` to
/// `until` (the server's clock), after sequence `known_to`.
#[derive(Debug, Clone)]
pub struct TimeWindow<'a> {
    pub filter: &'a str,
    pub since: chrono::DateTime<chrono::Utc>,
    pub until: chrono::DateTime<chrono::Utc>,
    /// Messages up to this sequence are known not to be the one looked for (an index over
    /// them said so), so the reading starts after it when that is later than `since`. 0:
    /// nothing known.
    pub known_to: u64,
}

/// What [`first_since`] found, and what it cost.
#[derive(Debug)]
pub struct Searched {
    pub found: Option<Stored>,
    /// Messages read from the journal (the cost the window and `known_to` bound).
    pub messages_read: u64,
}

/// The first message in `window` that `wanted` accepts, read forward a page of
/// [`RANGE_LEN_MAX`] messages at a time from the first message stored at or after
/// `window.since` — or after `window.known_to`, when that comes later (the server finds
/// either without reading what is before). The reading stops at the first accepted message,
/// at the first message stored after `window.until`, or at the end of the stream. Its cost is
/// the number of messages read, so callers keep the window short.
///
/// "The end of the stream" is the leader's: the replica that answers a direct get may trail
/// it, and a message acknowledged just before the call must not be reported missing because
/// that replica has not stored it yet. So when a replica runs out of messages inside the
/// window, the leader is asked for the last message on `window.filter`, and the reading goes
/// on — waiting for the replicas to catch up, up to [`REPLICA_CATCH_UP_MAX`] — until it has
/// passed that message ([`DirectGetError::Trailing`] if the replicas stay behind).
pub async fn first_since(
    client: &Client,
    stream: &str,
    window: &TimeWindow<'_>,
    mut wanted: impl FnMut(&Stored) -> bool,
) -> Result<Searched, DirectGetError> {
    let by_time = json!({
        "start_time": window.since.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "next_by_subj": window.filter,
        "batch": RANGE_LEN_MAX,
    });
    let from_seq =
        |seq: u64| json!({ "seq": seq, "next_by_subj": window.filter, "batch": RANGE_LEN_MAX });
    // What is known already decides where to start; a first page wholly before `since`
    // (`known_to` lies before the window) turns the reading to `since`.
    let mut request = if window.known_to > 0 {
        from_seq(window.known_to + 1)
    } else {
        by_time.clone()
    };
    // The next sequence to read, once known.
    let mut next: Option<u64> = (window.known_to > 0).then_some(window.known_to + 1);
    // The leader's last sequence on the filter, asked once a replica runs out.
    let mut leader_last: Option<(u64, Option<chrono::DateTime<chrono::Utc>>)> = None;
    let mut catch_up = CatchUp::new(REPLICA_CATCH_UP_MAX);
    let mut messages_read = 0;
    let searched = |found, messages_read| {
        Ok(Searched {
            found,
            messages_read,
        })
    };
    loop {
        let page = batch_request(client, stream, request.clone()).await?;
        if let Some(last) = page.last() {
            let (last_seq, before_window) = (
                last.seq,
                last.stored_at().is_some_and(|at| at < window.since),
            );
            for message in page {
                messages_read += 1;
                let stored_at = message.stored_at();
                if stored_at.is_some_and(|at| at > window.until) {
                    return searched(None, messages_read);
                }
                if stored_at.is_none_or(|at| at >= window.since) && wanted(&message) {
                    return searched(Some(message), messages_read);
                }
            }
            next = Some(last_seq + 1);
            request = if before_window {
                by_time.clone()
            } else {
                from_seq(last_seq + 1)
            };
            continue;
        }
        let (stream_last, stored_at) = match leader_last {
            Some(last) => last,
            None => {
                let last = leader_get(client, stream, json!({ "last_by_subj": window.filter }))
                    .await?
                    .map_or((0, None), |m| (m.seq, m.stored_at()));
                *leader_last.insert(last)
            }
        };
        let read_past_it = match next {
            Some(seq) => seq > stream_last,
            // Nothing read yet: the leader's last message must be older than the window.
            None => stream_last == 0 || stored_at.is_some_and(|at| at < window.since),
        };
        if read_past_it {
            return searched(None, messages_read);
        }
        catch_up.wait(next, stream_last).await?;
    }
}

/// The reads a reader of the whole journal makes. [`JetStream`] makes them of the stream; a
/// test stands in a replica that trails the leader, which a real cluster shows only now and
/// then.
pub trait Journal: Sync {
    /// Up to [`RANGE_LEN_MAX`] messages from `from_seq` on, as the replica answering holds
    /// them.
    fn page(
        &self,
        from_seq: u64,
    ) -> impl Future<Output = Result<Vec<Stored>, DirectGetError>> + Send;

    /// The stream's last sequence, as its leader holds it.
    fn end(&self) -> impl Future<Output = Result<u64, DirectGetError>> + Send;

    /// The message at `seq`, read from the stream's leader.
    fn leader_message(
        &self,
        seq: u64,
    ) -> impl Future<Output = Result<Option<Stored>, DirectGetError>> + Send;

    /// The last message of each subject that has one, as the replica answering holds them.
    fn last_for_subjects(
        &self,
        subjects: &[String],
    ) -> impl Future<Output = Result<Vec<Stored>, DirectGetError>> + Send;

    /// The last message on `subject`, read from the stream's leader.
    fn leader_last(
        &self,
        subject: &str,
    ) -> impl Future<Output = Result<Option<Stored>, DirectGetError>> + Send;
}

/// The journal as a JetStream stream holds it.
#[derive(Debug, Clone, Copy)]
pub struct JetStream<'a> {
    pub nats: &'a Client,
    pub stream: &'a str,
}

impl Journal for JetStream<'_> {
    async fn page(&self, from_seq: u64) -> Result<Vec<Stored>, DirectGetError> {
        range(self.nats, self.stream, from_seq, RANGE_LEN_MAX).await
    }

    async fn end(&self) -> Result<u64, DirectGetError> {
        crate::stream::stream_last_seq(self.nats, self.stream)
            .await
            .map_err(|e| DirectGetError::Request(e.to_string()))
    }

    async fn leader_message(&self, seq: u64) -> Result<Option<Stored>, DirectGetError> {
        leader_get(self.nats, self.stream, json!({ "seq": seq })).await
    }

    async fn last_for_subjects(&self, subjects: &[String]) -> Result<Vec<Stored>, DirectGetError> {
        last_for_subjects(self.nats, self.stream, subjects).await
    }

    async fn leader_last(&self, subject: &str) -> Result<Option<Stored>, DirectGetError> {
        last_for_subject_from_leader(self.nats, self.stream, subject).await
    }
}

/// What [`next_page`] found.
#[derive(Debug)]
pub enum NextPage {
    /// Messages from the sequence asked on, in order (at least one).
    Messages(Vec<Stored>),
    /// The sequence asked is past the stream's last one, `end`, as its leader holds it.
    End(u64),
}

/// The next page of the journal from `from_seq` on, for a reader of the whole journal.
///
/// A replica answering a direct get may trail the leader: one back from a lost disk copies
/// the journal back, and one whose store failed stays behind (a chaos run saw a replica stop
/// applying after "s2: corrupt input" and answer short for good). So an empty page is the
/// journal's end only if the leader says so. Short of it, the replicas are read again with
/// `catch_up`'s patience; once that is spent, the message is read from the leader, one at a
/// time — slow, but never a false end. A page read that fails with a [`Transient`] error (a
/// replica paused or cut off mid-answer: a chaos run's verify met one as the cluster healed)
/// is sent again within the same patience. A page of messages renews the patience.
pub async fn next_page(
    journal: &impl Journal,
    from_seq: u64,
    catch_up: &mut CatchUp,
) -> Result<NextPage, DirectGetError> {
    loop {
        let page = match journal.page(from_seq).await {
            Ok(page) => page,
            // Sent again: it may reach another replica, or this one back in step.
            Err(error) if error.is_transient() => {
                catch_up.retry_after(error).await?;
                continue;
            }
            Err(error) => return Err(error),
        };
        if !page.is_empty() {
            catch_up.progressed();
            return Ok(NextPage::Messages(page));
        }
        let end = journal.end().await?;
        if end < from_seq {
            return Ok(NextPage::End(end));
        }
        if catch_up.wait(from_seq.checked_sub(1), end).await.is_err() {
            return match journal.leader_message(from_seq).await? {
                Some(message) => Ok(NextPage::Messages(vec![message])),
                None => Err(DirectGetError::Trailing {
                    at: from_seq.checked_sub(1),
                    leader: end,
                }),
            };
        }
    }
}

/// Sends a batched direct get and collects messages until the end-of-batch status; one that
/// meets "no responders" is sent again, up to [`NO_RESPONDERS_RETRIES`] times.
async fn batch_request(
    client: &Client,
    stream: &str,
    request: serde_json::Value,
) -> Result<Vec<Stored>, DirectGetError> {
    let mut pause = NO_RESPONDERS_PAUSE_FIRST;
    for _ in 0..NO_RESPONDERS_RETRIES {
        match batch_request_once(client, stream, &request).await {
            Err(DirectGetError::Status {
                status: NO_RESPONDERS,
                ..
            }) => {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            outcome => return outcome,
        }
    }
    batch_request_once(client, stream, &request).await
}

async fn batch_request_once(
    client: &Client,
    stream: &str,
    request: &serde_json::Value,
) -> Result<Vec<Stored>, DirectGetError> {
    let inbox = client.new_inbox();
    let mut answers = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| DirectGetError::Request(e.to_string()))?;
    client
        .publish_with_reply(
            format!("$JS.API.DIRECT.GET.{stream}"),
            inbox,
            Bytes::from(request.to_string()),
        )
        .await
        .map_err(|e| DirectGetError::Request(e.to_string()))?;
    let mut found = Vec::new();
    loop {
        let message = tokio::time::timeout(MESSAGE_TIMEOUT, answers.next())
            .await
            .map_err(|_| DirectGetError::TimedOut)?
            .ok_or_else(|| DirectGetError::Request("subscription closed".into()))?;
        match message.status.map(|s| s.as_u16()) {
            // End of batch.
            Some(204) => break,
            // Nothing matched at all.
            Some(404) => break,
            None | Some(200) => found.push(stored(message)?),
            Some(status) => {
                return Err(DirectGetError::Status {
                    status,
                    description: message.description.unwrap_or_default(),
                });
            }
        }
    }
    let _ = answers.unsubscribe().await;
    Ok(found)
}

fn stored(message: async_nats::Message) -> Result<Stored, DirectGetError> {
    if let Some(status) = message.status {
        return Err(DirectGetError::Status {
            status: status.as_u16(),
            description: message.description.unwrap_or_default(),
        });
    }
    let headers = message
        .headers
        .ok_or(DirectGetError::Malformed("headers"))?;
    let seq = headers
        .get(crate::headers::SEQUENCE)
        .and_then(|v| v.as_str().parse().ok())
        .ok_or(DirectGetError::Malformed(crate::headers::SEQUENCE))?;
    let subject = headers
        .get(crate::headers::SUBJECT)
        .map(|v| v.as_str().to_owned())
        .ok_or(DirectGetError::Malformed(crate::headers::SUBJECT))?;
    let msg_id = headers
        .get(crate::headers::MSG_ID)
        .map(|v| v.as_str().to_owned());
    Ok(Stored {
        seq,
        subject,
        msg_id,
        headers,
        payload: message.payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A replica stuck at `held` of a journal of `end` messages (as after a store failure):
    /// it answers nothing past `held`, for good; the leader holds everything.
    struct StuckReplica {
        held: u64,
        end: u64,
        leader_reads: std::sync::atomic::AtomicU64,
    }

    fn message(seq: u64) -> Stored {
        Stored {
            seq,
            subject: format!("ledger.account.a{seq}"),
            msg_id: None,
            headers: HeaderMap::new(),
            payload: Bytes::new(),
        }
    }

    impl Journal for StuckReplica {
        async fn page(&self, from_seq: u64) -> Result<Vec<Stored>, DirectGetError> {
            Ok((from_seq..=self.held).map(message).collect())
        }

        async fn end(&self) -> Result<u64, DirectGetError> {
            Ok(self.end)
        }

        async fn leader_message(&self, seq: u64) -> Result<Option<Stored>, DirectGetError> {
            self.leader_reads
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok((seq <= self.end).then(|| message(seq)))
        }

        async fn last_for_subjects(&self, _: &[String]) -> Result<Vec<Stored>, DirectGetError> {
            Ok(Vec::new())
        }

        async fn leader_last(&self, _: &str) -> Result<Option<Stored>, DirectGetError> {
            Ok(None)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_replica_stuck_behind_is_waited_for_then_read_past_through_the_leader() {
        let journal = StuckReplica {
            held: 3,
            end: 6,
            leader_reads: Default::default(),
        };
        let max = Duration::from_secs(2);
        let mut catch_up = CatchUp::new(max);
        let started = tokio::time::Instant::now();
        let mut read = Vec::new();
        let mut next = 1;
        let end = loop {
            match next_page(&journal, next, &mut catch_up)
                .await
                .expect("read")
            {
                NextPage::Messages(page) => {
                    next = page.last().expect("a message").seq + 1;
                    read.extend(page.into_iter().map(|m| m.seq));
                }
                NextPage::End(end) => break end,
            }
        };
        assert_eq!(
            read,
            vec![1, 2, 3, 4, 5, 6],
            "no false end at the replica's 3"
        );
        assert_eq!(end, 6);
        // The replica was given its patience once, then the leader was read, one message
        // at a time, without waiting again.
        assert_eq!(tokio::time::Instant::now() - started, max);
        assert_eq!(
            journal
                .leader_reads
                .load(std::sync::atomic::Ordering::SeqCst),
            3
        );
    }

    /// A replica that leaves its first `stalls` page reads unanswered (timed out), then
    /// answers every message up to `end`.
    struct Stalling {
        stalls: std::sync::atomic::AtomicU64,
        end: u64,
    }

    impl Journal for Stalling {
        async fn page(&self, from_seq: u64) -> Result<Vec<Stored>, DirectGetError> {
            use std::sync::atomic::Ordering::SeqCst;
            if self.stalls.load(SeqCst) > 0 {
                self.stalls.fetch_sub(1, SeqCst);
                return Err(DirectGetError::TimedOut);
            }
            Ok((from_seq..=self.end).map(message).collect())
        }

        async fn end(&self) -> Result<u64, DirectGetError> {
            Ok(self.end)
        }

        async fn leader_message(&self, _: u64) -> Result<Option<Stored>, DirectGetError> {
            Ok(None)
        }

        async fn last_for_subjects(&self, _: &[String]) -> Result<Vec<Stored>, DirectGetError> {
            Ok(Vec::new())
        }

        async fn leader_last(&self, _: &str) -> Result<Option<Stored>, DirectGetError> {
            Ok(None)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_page_left_unanswered_is_read_again_within_the_patience() {
        let journal = Stalling {
            stalls: 3.into(),
            end: 4,
        };
        let mut catch_up = CatchUp::new(Duration::from_secs(2));
        let started = tokio::time::Instant::now();
        let page = match next_page(&journal, 1, &mut catch_up).await {
            Ok(NextPage::Messages(page)) => page,
            other => panic!("the page after three stalls, not {other:?}"),
        };
        assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
        // Paused 20, 40 and 80 ms, as for a trailing replica.
        assert_eq!(
            tokio::time::Instant::now() - started,
            Duration::from_millis(140)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_replica_that_never_answers_fails_the_read_once_the_patience_is_spent() {
        let journal = Stalling {
            stalls: u64::MAX.into(),
            end: 4,
        };
        let max = Duration::from_secs(1);
        let mut catch_up = CatchUp::new(max);
        let started = tokio::time::Instant::now();
        let error = next_page(&journal, 1, &mut catch_up)
            .await
            .expect_err("no page ever answered");
        assert!(matches!(error, DirectGetError::TimedOut), "{error:?}");
        assert_eq!(tokio::time::Instant::now() - started, max);
    }

    #[tokio::test(start_paused = true)]
    async fn patience_with_a_trailing_replica_counts_from_its_first_trailing_answer() {
        let max = Duration::from_secs(1);
        let mut catch_up = CatchUp::new(max);
        // A long read before any replica trailed does not use up the budget.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let first = tokio::time::Instant::now();
        let mut waits = 0;
        let error = loop {
            match catch_up.wait(Some(7), 9).await {
                Ok(()) => waits += 1,
                Err(error) => break error,
            }
        };
        assert_eq!(tokio::time::Instant::now() - first, max);
        // 20, 40, 80, 160, 200, 200, 200, then the 100 ms left.
        assert_eq!(waits, 8);
        assert!(matches!(
            error,
            DirectGetError::Trailing {
                at: Some(7),
                leader: 9
            }
        ));
    }

    #[test]
    fn a_stored_header_block_is_read_back() {
        let block =
            b"NATS/1.0\r\nNats-Msg-Id: 0193-abc\r\nLedger-Event-Type: funds_deposited\r\n\r\n";
        let headers = parse_headers(block).expect("headers");
        assert_eq!(
            headers.get(crate::headers::MSG_ID).map(|v| v.as_str()),
            Some("0193-abc")
        );
        assert_eq!(
            headers.get("Ledger-Event-Type").map(|v| v.as_str()),
            Some("funds_deposited")
        );
        assert!(parse_headers(b"HTTP/1.1 200\r\n\r\n").is_none());
        assert!(parse_headers(b"").is_some());
    }
}
