//! One HTTP/1.1 keep-alive connection of a load generator's client: opened before the clock
//! starts, its request's fixed parts (host, authorization) built once, as `wrk` sends them.
//!
//! A general-purpose client (`reqwest`) pools connections, parses each request's URL and builds
//! its headers afresh; on the two cores the ledger shares with its load, that cost the
//! generator ~60 µs of CPU per transfer, CPU the ledger under test then did not get.

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;

#[derive(Debug)]
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    host: HeaderValue,
    authorization: HeaderValue,
}

/// What a request was answered: its status and, if the answer carried one, `Ledger-Seq`.
#[derive(Debug)]
pub struct Answered {
    pub status: u16,
    pub ledger_seq: Option<HeaderValue>,
}

impl Connection {
    /// Connects to the host of `base_url` (`http://host:port`) as the bearer of `token`.
    pub async fn open(base_url: &str, token: &str) -> anyhow::Result<Self> {
        let uri: Uri = base_url.parse().context("the API's base URL")?;
        let authority = uri
            .authority()
            .context("the API's base URL names no host")?;
        let stream = tokio::net::TcpStream::connect(authority.as_str()).await?;
        // As every HTTP client does: a request is one small write, not held back for more.
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        // Drives the connection until the sender is dropped or the server closes it.
        tokio::spawn(connection);
        Ok(Self {
            sender,
            host: HeaderValue::from_str(authority.as_str())?,
            authorization: HeaderValue::from_str(&format!("Bearer {token}"))?,
        })
    }

    /// Sends `POST path` with a JSON `body` and reads the answer whole (the connection takes
    /// its next request only once the answer is drained).
    pub async fn post_json(
        &mut self,
        path: &'static str,
        body: String,
    ) -> anyhow::Result<Answered> {
        self.sender.ready().await?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(HOST, self.host.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(Full::new(Bytes::from(body)))?;
        let answer = self.sender.send_request(request).await?;
        let status = answer.status().as_u16();
        let ledger_seq = answer.headers().get("ledger-seq").cloned();
        answer.into_body().collect().await?;
        Ok(Answered { status, ledger_seq })
    }
}
