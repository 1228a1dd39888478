//! Direct gets (ADR-31): reading stored messages without a consumer.
//!
//! The command side loads an aggregate's current state as the last message on its subject;
//! a cache miss for many subjects is one `multi_last` request answered by a burst of messages
//! ending in an end-of-batch status.

use async_nats::{Client, HeaderMap, StatusCode};
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
}

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

/// The first message on `subject` at or after stream sequence `from_seq`.
pub async fn next_for_subject(
    client: &Client,
    stream: &str,
    subject: &str,
    from_seq: u64,
) -> Result<Option<Stored>, DirectGetError> {
    let request = json!({ "seq": from_seq.max(1), "next_by_subj": subject });
    let reply = client
        .request(
            format!("$JS.API.DIRECT.GET.{stream}"),
            Bytes::from(request.to_string()),
        )
        .await
        .map_err(|e| DirectGetError::Request(e.to_string()))?;
    match reply.status {
        Some(StatusCode::NOT_FOUND) => Ok(None),
        _ => stored(reply).map(Some),
    }
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

/// Sends a batched direct get and collects messages until the end-of-batch status.
async fn batch_request(
    client: &Client,
    stream: &str,
    request: serde_json::Value,
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
        .get("Nats-Sequence")
        .and_then(|v| v.as_str().parse().ok())
        .ok_or(DirectGetError::Malformed("Nats-Sequence"))?;
    let subject = headers
        .get("Nats-Subject")
        .map(|v| v.as_str().to_owned())
        .ok_or(DirectGetError::Malformed("Nats-Subject"))?;
    let msg_id = headers.get("Nats-Msg-Id").map(|v| v.as_str().to_owned());
    Ok(Stored {
        seq,
        subject,
        msg_id,
        headers,
        payload: message.payload,
    })
}
