//! The console's only way to the ledger: HTTP calls to the command and query APIs with the
//! signed-in person's bearer token. An API's problem+json answer becomes a [`Problem`] that
//! the pages show (beside the field it concerns, see [`crate::fields`]).

use crate::session::Session;
use http_edge::headers::{LEDGER_MIN_SEQ, LEDGER_SEQ};
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;

/// How long to wait for a TCP connection to an API: both run beside the console, so a second
/// is plenty; longer only delays telling the person that the ledger is down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    commands: String,
    queries: String,
    timeout: Duration,
}

/// A successful answer: its JSON body and the `Ledger-Seq` header (the journal sequence a
/// command committed at, or the checkpoint a query read at).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub ledger_seq: Option<u64>,
}

/// An API's refusal (RFC 9457 problem), or a failure to reach it (status 502 here).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct Problem {
    pub status: u16,
    pub code: String,
    pub detail: String,
}

impl Problem {
    fn unreachable(e: &reqwest::Error) -> Self {
        tracing::warn!(error = %e, "API call failed");
        Self {
            status: 502,
            code: "unavailable".to_owned(),
            detail: "the ledger could not be reached; try again in a moment".to_owned(),
        }
    }
}

/// Which API a call goes to.
#[derive(Debug, Clone, Copy)]
pub enum Side {
    Commands,
    Queries,
}

impl Api {
    pub fn new(
        command_api_url: &str,
        query_api_url: &str,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()?;
        Ok(Self {
            http,
            commands: command_api_url.trim_end_matches('/').to_owned(),
            queries: query_api_url.trim_end_matches('/').to_owned(),
            timeout,
        })
    }

    pub fn url(&self, side: Side, path: &str) -> String {
        match side {
            Side::Commands => format!("{}{path}", self.commands),
            Side::Queries => format!("{}{path}", self.queries),
        }
    }

    /// Whether an API answers its liveness probe (`GET /healthz`) within the connect time.
    pub async fn alive(&self, side: Side) -> bool {
        self.http
            .get(self.url(side, "/healthz"))
            .timeout(CONNECT_TIMEOUT)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }

    /// The underlying client, for the live feed (which must not time out).
    pub fn client(&self) -> &reqwest::Client {
        &self.http
    }

    /// A query; `min_seq` asks the query API to wait until its read model has caught up with
    /// that journal sequence (read-your-writes).
    ///
    /// Every query also waits for the last write the person made through the console (the
    /// session's `seen_seq`), so a page never shows a state older than what they just did.
    pub async fn query(
        &self,
        session: &Session,
        path: &str,
        min_seq: Option<u64>,
    ) -> Result<Answer, Problem> {
        let mut request = self
            .http
            .get(self.url(Side::Queries, path))
            .bearer_auth(&session.token)
            .timeout(self.timeout);
        if let Some(seq) = min_seq.max(session.seen_seq) {
            request = request.header(LEDGER_MIN_SEQ, seq.to_string());
        }
        Self::answer(request.send().await).await
    }

    /// A read from the command API (the journal, which only it can read): no
    /// `Ledger-Min-Seq`, since the journal is the source and never lags itself.
    pub async fn read_commands(&self, session: &Session, path: &str) -> Result<Answer, Problem> {
        let request = self
            .http
            .get(self.url(Side::Commands, path))
            .bearer_auth(&session.token)
            .timeout(self.timeout);
        Self::answer(request.send().await).await
    }

    /// A command with its idempotency key.
    pub async fn command(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: &Value,
        idempotency_key: &str,
    ) -> Result<Answer, Problem> {
        let request = self
            .http
            .request(method, self.url(Side::Commands, path))
            .bearer_auth(token)
            .header("idempotency-key", idempotency_key)
            .json(body)
            .timeout(self.timeout);
        Self::answer(request.send().await).await
    }

    async fn answer(sent: Result<reqwest::Response, reqwest::Error>) -> Result<Answer, Problem> {
        let response = sent.map_err(|e| Problem::unreachable(&e))?;
        let status = response.status().as_u16();
        let ledger_seq = response
            .headers()
            .get(LEDGER_SEQ)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Problem::unreachable(&e))?;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(Answer {
                status,
                body,
                ledger_seq,
            });
        }
        Err(problem_of(status, &body))
    }
}

/// Reads a problem+json body; an answer without one still gets a code from its status.
pub fn problem_of(status: u16, body: &Value) -> Problem {
    let code = body["code"].as_str().map(str::to_owned).unwrap_or_else(|| {
        match status {
            401 => "unauthorized",
            403 => "forbidden",
            404 => "not_found",
            429 => "rate_limited",
            s if s >= 500 => "unavailable",
            _ => "invalid_request",
        }
        .to_owned()
    });
    let detail = match body["detail"].as_str() {
        // A 5xx body is opaque by design; say what the person can do.
        _ if status >= 500 => {
            "the ledger is unavailable right now; try again in a moment".to_owned()
        }
        Some(detail) => detail.to_owned(),
        None => body["title"]
            .as_str()
            .unwrap_or("the request was refused")
            .to_owned(),
    };
    Problem {
        status,
        code,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_problem_body_gives_its_code_and_detail() {
        let problem = problem_of(
            422,
            &json!({"type": "about:blank", "code": "insufficient_funds", "detail": "balance 5 < 10"}),
        );
        assert_eq!(problem.code, "insufficient_funds");
        assert_eq!(problem.detail, "balance 5 < 10");
    }

    #[test]
    fn a_server_error_never_shows_the_servers_own_words() {
        let problem = problem_of(
            500,
            &json!({"code": "internal", "detail": "pool timed out at x.rs:10"}),
        );
        assert!(!problem.detail.contains("x.rs"), "{}", problem.detail);
        let bare = problem_of(404, &Value::Null);
        assert_eq!(bare.code, "not_found");
    }
}

/// Percent-encodes a query-string value (everything but RFC 3986's unreserved characters).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod encode_tests {
    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(super::encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(super::encode("eyJ2Ijo1fQ-_"), "eyJ2Ijo1fQ-_");
    }
}
