//! One HTTP/1.1 keep-alive connection of a load generator's client, as `wrk` drives one: the
//! request's fixed head (method, path, host, authorization) written once, each request one
//! `write`, each answer read into the connection's own buffer and parsed in place (`httparse`,
//! the parser hyper uses), on the task that sent it.
//!
//! A general-purpose client costs the two cores the ledger shares with its load more than the
//! ledger's own answer is worth measuring: `reqwest` (URL parsed, headers built, pool looked up
//! per request) took ~60 µs of CPU per transfer, hyper's connection API (a task per connection,
//! a channel hop each way per request) ~33 µs, `wrk` ~18 µs.

use anyhow::{Context, bail};
use http_edge::headers::LEDGER_SEQ;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Most headers an answer of the API carries (its own, CORS, tracing, rate limits), with room.
const ANSWER_HEADERS_MAX: usize = 32;

/// Largest answer read whole, bytes: a transfer's answer is under 1 KB; a problem+json body
/// under 2 KB.
const ANSWER_LEN_MAX: usize = 64 * 1024;

#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    /// `POST {path} HTTP/1.1` and the fixed headers, up to `Content-Length: `.
    head: Vec<u8>,
    /// The request being sent: `head`, its length, the body.
    request: Vec<u8>,
    /// What the server sent that is not yet taken as an answer.
    read: Vec<u8>,
}

/// What a request was answered: its status and, if the answer carried one, `Ledger-Seq`.
#[derive(Debug)]
pub struct Answered {
    pub status: u16,
    pub ledger_seq: Option<String>,
}

impl Connection {
    /// Connects to the host of `base_url` (`http://host:port`) as the bearer of `token`, to
    /// post JSON to `path`.
    pub async fn open(base_url: &str, path: &str, token: &str) -> anyhow::Result<Self> {
        let authority = base_url
            .strip_prefix("http://")
            .context("the API's base URL is not http://host:port")?
            .trim_end_matches('/');
        let stream = TcpStream::connect(authority).await?;
        // As every HTTP client does: a request is one small write, not held back for more.
        stream.set_nodelay(true)?;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: "
        )
        .into_bytes();
        Ok(Self {
            stream,
            request: Vec::with_capacity(head.len() + 256),
            head,
            read: Vec::with_capacity(4096),
        })
    }

    /// Posts a JSON `body` and reads the answer whole (the connection takes its next request
    /// only once the answer is in).
    pub async fn post_json(&mut self, body: &str) -> anyhow::Result<Answered> {
        self.request.clear();
        self.request.extend_from_slice(&self.head);
        self.request
            .extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
        self.request.extend_from_slice(b"\r\n\r\n");
        self.request.extend_from_slice(body.as_bytes());
        self.stream.write_all(&self.request).await?;
        loop {
            if let Some((answered, len)) = parse(&self.read)? {
                self.read.drain(..len);
                return Ok(answered);
            }
            if self.read.len() >= ANSWER_LEN_MAX {
                bail!("an answer longer than {ANSWER_LEN_MAX} bytes");
            }
            self.read.reserve(4096);
            if self.stream.read_buf(&mut self.read).await? == 0 {
                bail!("the server closed the connection");
            }
        }
    }
}

/// The answer at the start of `read` and its length in bytes, once all of it has arrived.
fn parse(read: &[u8]) -> anyhow::Result<Option<(Answered, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; ANSWER_HEADERS_MAX];
    let mut answer = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head_len) = answer.parse(read)? else {
        return Ok(None);
    };
    let (mut body_len, mut ledger_seq) = (None, None);
    for header in answer.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            body_len = Some(std::str::from_utf8(header.value)?.parse::<usize>()?);
        } else if header.name.eq_ignore_ascii_case(LEDGER_SEQ.as_str()) {
            ledger_seq = Some(std::str::from_utf8(header.value)?.to_owned());
        }
    }
    // The API sizes every answer; one it streamed (chunked) is not a transfer's.
    let len = head_len + body_len.context("an answer without Content-Length")?;
    if read.len() < len {
        return Ok(None);
    }
    let status = answer.code.context("an answer without a status")?;
    Ok(Some((Answered { status, ledger_seq }, len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_taken_once_its_whole_body_has_arrived() {
        let whole = b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\nledger-seq: 42\r\n\
                      content-length: 7\r\n\r\n{\"a\":1}HTTP/1.1 409";
        let first = whole.len() - b"HTTP/1.1 409".len();
        let partial = parse(&whole[..first - 1]).expect("a well-formed head");
        assert!(partial.is_none(), "taken before its body's last byte");
        let (answered, len) = parse(whole)
            .expect("a well-formed answer")
            .expect("a whole answer");
        assert_eq!(
            (answered.status, answered.ledger_seq.as_deref(), len),
            (201, Some("42"), first)
        );
    }

    #[test]
    fn a_streamed_answer_is_refused() {
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
        assert!(parse(chunked).is_err());
    }
}
