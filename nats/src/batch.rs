//! Atomic batch publish (ADR-50): all messages of a batch are stored, or none.
//!
//! Every message but the last is published with `Nats-Batch-Id` and `Nats-Batch-Sequence`;
//! the last adds `Nats-Batch-Commit: 1` and is sent as a request whose reply is the pub ack.
//! The server checks every `Nats-Expected-Last-Subject-Sequence` against the stream as it was
//! before the batch, under one lock, at commit. One check per subject is allowed, on the
//! subject's first message in the batch; the batch's first message may also carry
//! `Nats-Expected-Last-Sequence`, checked against the stream's last sequence (proposals in
//! flight included) without reading any message.

use crate::api::{ApiError, ApiResponse};
use async_nats::{Client, HeaderMap, HeaderName, RequestErrorKind};
use bytes::Bytes;
use serde::Deserialize;
use std::time::Duration;
use thiserror::Error;

/// The server's limit on messages in one atomic batch.
pub const BATCH_LEN_MAX: usize = 1000;

/// JetStream error codes the writer reacts to.
pub mod err_code {
    /// `wrong last sequence`: an expected-sequence check failed; nothing was stored.
    pub const WRONG_LAST_SEQUENCE: u16 = 10071;
    /// `wrong last sequence` without a number: on a replicated stream, a subject of the batch
    /// has another write proposed but not yet applied (nats-server's `jetstream_batching.go`
    /// refuses rather than check against a state about to change); nothing was stored. The
    /// same conflict as 10071, and with two command APIs on the same accounts a frequent one.
    pub const WRONG_LAST_SEQUENCE_IN_FLIGHT: u16 = 10164;
    /// A message id of the batch is already in the de-duplication window: the batch (or one
    /// with the same ids) may have been stored before; nothing was stored now.
    pub const DUPLICATE_MESSAGE_ID: u16 = 10201;
}

/// One message of a batch.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub subject: String,
    /// Sent as `Nats-Msg-Id`.
    pub msg_id: String,
    /// Further headers, e.g. the event type and job id.
    pub headers: Vec<(&'static str, String)>,
    pub payload: Bytes,
    /// `Nats-Expected-Last-Subject-Sequence`: 0 = the subject must have no message yet.
    pub expected_last_subject_seq: Option<u64>,
    /// `Nats-Expected-Last-Sequence`: the stream's last sequence before the batch. The server
    /// accepts it on a batch's first message only.
    pub expected_last_seq: Option<u64>,
}

/// A committed batch: its messages hold stream sequences `first_seq() ..= seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct BatchAck {
    /// Stream sequence of the batch's last message (the commit).
    pub seq: u64,
    /// Messages in the batch.
    pub count: u64,
}

impl BatchAck {
    pub fn first_seq(&self) -> u64 {
        self.seq + 1 - self.count
    }
}

#[derive(Debug, Error)]
pub enum PublishError {
    #[error("an expected last subject sequence did not match: {0}")]
    WrongLastSequence(ApiError),
    #[error("a message id of the batch was seen before: {0}")]
    DuplicateMessageId(ApiError),
    /// Any other refusal: nothing was stored.
    #[error("the batch was refused: {0}")]
    Refused(ApiError),
    #[error("a batch holds 1 to {BATCH_LEN_MAX} messages, not {0}")]
    BadLength(usize),
    /// No answer (time-out, lost connection) or an answer that does not fit the batch: the
    /// batch may or may not be stored.
    #[error("outcome unknown: {0}")]
    Unknown(String),
}

#[derive(Debug, Deserialize)]
struct PubAck {
    seq: u64,
    #[serde(default)]
    batch: String,
    #[serde(default)]
    count: u64,
}

/// True when a stored message ends an atomic batch, or was not part of one: a reader that
/// stops only at such messages never sees part of a batch (one leg of a transfer). The server
/// stores a batch whole or not at all, so the rest of a started batch is always there.
pub fn ends_atomic_batch(headers: Option<&HeaderMap>) -> bool {
    let Some(headers) = headers else { return true };
    headers.get(crate::headers::BATCH_ID).is_none()
        || headers
            .get(crate::headers::BATCH_COMMIT)
            .is_some_and(|v| v.as_str() == "1")
}

/// Publishes `messages` as one atomic batch and waits for the commit's pub ack.
pub async fn publish_atomic(
    client: &Client,
    messages: &[Outbound],
    timeout: Duration,
) -> Result<BatchAck, PublishError> {
    let Some((last, init)) = messages.split_last() else {
        return Err(PublishError::BadLength(0));
    };
    if messages.len() > BATCH_LEN_MAX {
        return Err(PublishError::BadLength(messages.len()));
    }
    let batch_id = uuid::Uuid::now_v7().simple().to_string();
    for (index, message) in init.iter().enumerate() {
        let headers = headers_for(message, &batch_id, index + 1);
        client
            .publish_with_headers(message.subject.clone(), headers, message.payload.clone())
            .await
            .map_err(|e| PublishError::Unknown(format!("publish: {e}")))?;
    }
    let mut headers = headers_for(last, &batch_id, messages.len());
    headers.insert(HeaderName::from_static(crate::headers::BATCH_COMMIT), "1");
    let request = async_nats::Request::new()
        .headers(headers)
        .payload(last.payload.clone())
        .timeout(Some(timeout));
    let reply = client
        .send_request(last.subject.clone(), request)
        .await
        .map_err(|e| match e.kind() {
            RequestErrorKind::TimedOut => PublishError::Unknown("commit timed out".into()),
            _ => PublishError::Unknown(format!("commit: {e}")),
        })?;
    let ack = match serde_json::from_slice::<ApiResponse<PubAck>>(&reply.payload) {
        Ok(ApiResponse::Ok(ack)) => ack,
        Ok(ApiResponse::Err { error }) => return Err(classify(error)),
        Err(e) => return Err(PublishError::Unknown(format!("unreadable pub ack: {e}"))),
    };
    if ack.batch != batch_id || ack.count != messages.len() as u64 || ack.seq < ack.count {
        return Err(PublishError::Unknown(format!(
            "pub ack {ack:?} does not match batch {batch_id} of {}",
            messages.len()
        )));
    }
    Ok(BatchAck {
        seq: ack.seq,
        count: ack.count,
    })
}

fn classify(error: ApiError) -> PublishError {
    match error.err_code {
        err_code::WRONG_LAST_SEQUENCE | err_code::WRONG_LAST_SEQUENCE_IN_FLIGHT => {
            PublishError::WrongLastSequence(error)
        }
        err_code::DUPLICATE_MESSAGE_ID => PublishError::DuplicateMessageId(error),
        _ => PublishError::Refused(error),
    }
}

fn headers_for(message: &Outbound, batch_id: &str, sequence: usize) -> HeaderMap {
    // Names from static strings and values moved in where they are built here: a header
    // named from a `&str` allocates a copy of its name on every message.
    let mut map = HeaderMap::new();
    map.insert(HeaderName::from_static(crate::headers::BATCH_ID), batch_id);
    map.insert(
        HeaderName::from_static(crate::headers::BATCH_SEQUENCE),
        sequence.to_string(),
    );
    map.insert(
        HeaderName::from_static(crate::headers::MSG_ID),
        message.msg_id.as_str(),
    );
    if let Some(seq) = message.expected_last_subject_seq {
        map.insert(
            HeaderName::from_static(crate::headers::EXPECTED_LAST_SUBJECT_SEQUENCE),
            seq.to_string(),
        );
    }
    if let Some(seq) = message.expected_last_seq {
        map.insert(
            HeaderName::from_static(crate::headers::EXPECTED_LAST_SEQUENCE),
            seq.to_string(),
        );
    }
    for (name, value) in &message.headers {
        map.insert(HeaderName::from_static(name), value.as_str());
    }
    map
}
