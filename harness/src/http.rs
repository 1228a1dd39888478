//! An HTTP client for tests that reads whole answers.

use reqwest::StatusCode;
use serde_json::Value;

/// A base URL and a client.
#[derive(Debug, Clone)]
pub struct Http {
    pub base: String,
    client: reqwest::Client,
}

impl Http {
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            base: base.into(),
            client: reqwest::Client::new(),
        }
    }

    /// POSTs a JSON body with a bearer token.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.post_with(path, Some(token), &[], Some(body.to_string()))
            .await
    }

    /// POSTs a raw body (JSON content type unless `headers` say otherwise).
    pub async fn post_with(
        &self,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        raw_body: Option<String>,
    ) -> Answer {
        let mut request = self.client.post(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            request = request.header("content-type", "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = raw_body {
            request = request.body(body);
        }
        Answer::read(request.send().await.expect("request sent")).await
    }

    /// GETs with an optional bearer token and extra headers.
    pub async fn get_with(
        &self,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Answer::read(request.send().await.expect("request sent")).await
    }

    /// Sends `method` with a raw `Authorization` header (or none) and a raw JSON body (or
    /// none): for tests that try every kind of credential on every endpoint.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        authorization: Option<&str>,
        raw_body: Option<String>,
    ) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        if let Some(body) = raw_body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        Answer::read(request.send().await.expect("request sent")).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.get_with(path, Some(token), &[]).await
    }
}

/// An HTTP answer, read whole.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem+json answer with this status and code.
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "status of {:?}", self.body);
        assert_eq!(self.body["code"], code, "code of {:?}", self.body);
        assert_eq!(self.body["status"], status);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "content type"
        );
    }

    /// Asserts `401 unauthorized` with the `WWW-Authenticate: Bearer` challenge.
    pub fn assert_unauthorized(&self, context: &str) {
        self.assert_problem(401, "unauthorized");
        assert_eq!(self.header("www-authenticate"), Some("Bearer"), "{context}");
    }

    /// The body as text with each of `ids` replaced by `<id>`: two answers about different
    /// resources compare equal when they differ only in the ids they name.
    pub fn masked_body<S: AsRef<str>>(&self, ids: &[S]) -> String {
        ids.iter().fold(self.body.to_string(), |text, id| {
            text.replace(id.as_ref(), "<id>")
        })
    }
}
