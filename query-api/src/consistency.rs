//! Read-your-writes: `Ledger-Min-Seq: <n>` waits until the read model has applied the journal
//! up to `n` (bounded, then `503 projection_lagging`), and every answer says how far the read
//! model was when the request was served (`Ledger-Seq`).

use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_edge::ApiError;
use http_edge::headers::{LEDGER_MIN_SEQ, LEDGER_SEQ};
use http_edge::problem::ProblemKind;

/// Any query may meet it: `Ledger-Min-Seq` asked for more than the read model reached in time.
pub const PROJECTION_LAGGING: ProblemKind = ProblemKind::new(
    StatusCode::SERVICE_UNAVAILABLE,
    "projection_lagging",
    "the read model has not reached `Ledger-Min-Seq` in time; retry (Retry-After)",
)
.retried();

/// The largest stream sequence a client may ask for: the read model keeps sequences as
/// PostgreSQL `bigint`, and the document promises an `int64`.
const MIN_SEQ_MAX: u64 = i64::MAX as u64;

pub async fn ledger_seq(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let mut checkpoint = app.checkpoint.clone();
    if let Some(raw) = request.headers().get(LEDGER_MIN_SEQ) {
        let parsed = raw.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok());
        let Some(min_seq) = parsed.filter(|seq| *seq <= MIN_SEQ_MAX) else {
            return ApiError::invalid_request(
                "Ledger-Min-Seq must be a stream sequence (an integer from 0 to 2^63 - 1)",
            )
            .into_response();
        };
        let reached =
            tokio::time::timeout(app.min_seq_wait, checkpoint.wait_for(|seq| *seq >= min_seq))
                .await
                .is_ok_and(|r| r.is_ok());
        if !reached {
            let lagging = ApiError::new(
                PROJECTION_LAGGING,
                format!("the read model has not reached sequence {min_seq} yet; retry shortly"),
            );
            let mut response = lagging.into_response();
            stamp(&mut response, *checkpoint.borrow());
            return response;
        }
    }
    // Taken before the handler reads: the data it reads is at least this far.
    let seq = *checkpoint.borrow();
    let mut response = next.run(request).await;
    stamp(&mut response, seq);
    response
}

fn stamp(response: &mut Response, seq: u64) {
    response
        .headers_mut()
        .insert(LEDGER_SEQ, HeaderValue::from(seq));
}
