//! Start-up's patience with a JetStream that does not answer yet.
//!
//! A service's start-up asks JetStream to create or check the stream and its consumers. On a
//! server that has just started, or a cluster still electing its meta leader (or a new
//! stream's or consumer's group leader), such a request can time out or be answered "not
//! available" although a later attempt succeeds: CI saw a stream create and a consumer create
//! each time out after 5 s on a busy two-core machine. Start-up therefore retries those
//! failures — and only those — until a deadline; a refusal that will not change (too many
//! replicas for the servers, a lowered replica count, a server without atomic batches) fails
//! at once. Every retried request is idempotent: create-or-update with the same definition.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

/// How long start-up keeps retrying a JetStream that does not answer yet. A cluster started
/// beside the services elects its leaders within seconds, longer on a loaded machine; past a
/// minute something else is wrong, and the service exits with the last error so that its
/// supervisor (and its operator) sees it.
pub const STARTUP_WAIT_MS: u64 = 60_000;

/// The first pause between attempts; it doubles up to [`RETRY_PAUSE_MAX_MS`]. Short, because
/// the usual cause (an election) ends within a second or two.
const RETRY_PAUSE_MS: u64 = 200;

/// The longest pause between attempts: a few attempts a minute are enough once a server is
/// slow, and each costs the server an API request.
const RETRY_PAUSE_MAX_MS: u64 = 3_200;

/// JetStream's "system temporarily unavailable" (no meta leader yet).
const ERR_CLUSTER_NOT_AVAILABLE: u16 = 10008;

/// JetStream's "cluster can not handle request" (the asked node is not the leader yet).
const ERR_CLUSTER_NOT_LEADER: u16 = 10009;

/// Whether a JetStream API error code says "not yet": a cluster still electing a leader.
pub(crate) fn transient_err_code(err_code: u64) -> bool {
    u16::try_from(err_code)
        .is_ok_and(|code| matches!(code, ERR_CLUSTER_NOT_AVAILABLE | ERR_CLUSTER_NOT_LEADER))
}

/// An error that a later attempt of the same request may not meet.
pub trait Transient {
    fn is_transient(&self) -> bool;
}

impl Transient for async_nats::RequestError {
    fn is_transient(&self) -> bool {
        use async_nats::RequestErrorKind::{NoResponders, TimedOut};
        matches!(self.kind(), TimedOut | NoResponders)
    }
}

impl Transient for crate::ApiError {
    fn is_transient(&self) -> bool {
        transient_err_code(u64::from(self.err_code))
    }
}

impl Transient for crate::DirectGetError {
    fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::TimedOut
                | Self::Status {
                    status: crate::direct::NO_RESPONDERS,
                    ..
                }
        )
    }
}

/// Runs `attempt` until it succeeds, fails with an error that is not [`Transient`], or `wait`
/// has passed (then the last error is returned). `what` names the request in the log.
pub async fn retry_while_starting<T, E, F, Fut>(
    what: &str,
    wait: Duration,
    mut attempt: F,
) -> Result<T, E>
where
    E: Transient + Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + wait;
    let mut pause = Duration::from_millis(RETRY_PAUSE_MS);
    loop {
        match attempt().await {
            Err(e) if e.is_transient() && tokio::time::Instant::now() + pause < deadline => {
                tracing::warn!(error = %e, retry_in_ms = pause.as_millis(), "{what}: JetStream not ready; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(RETRY_PAUSE_MAX_MS));
            }
            outcome => return outcome,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[derive(Debug)]
    struct Failure {
        transient: bool,
    }

    impl Display for Failure {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "transient: {}", self.transient)
        }
    }

    impl Transient for Failure {
        fn is_transient(&self) -> bool {
            self.transient
        }
    }

    /// An attempt that fails `failures` times with `transient` failures, then succeeds.
    async fn run(failures: u32, transient: bool, wait: Duration) -> (Result<u32, Failure>, u32) {
        let attempts = Cell::new(0);
        let outcome = retry_while_starting("test", wait, || {
            attempts.set(attempts.get() + 1);
            let n = attempts.get();
            async move {
                if n <= failures {
                    Err(Failure { transient })
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        (outcome, attempts.get())
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_until_the_request_succeeds() {
        let (outcome, attempts) = run(3, true, Duration::from_secs(60)).await;
        assert_eq!(outcome.expect("succeeds on the fourth attempt"), 4);
        assert_eq!(attempts, 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lasting_refusal_fails_at_once() {
        let (outcome, attempts) = run(3, false, Duration::from_secs(60)).await;
        assert!(!outcome.expect_err("refused").transient);
        assert_eq!(attempts, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_past_the_deadline_return_the_last_error() {
        let started = tokio::time::Instant::now();
        let (outcome, attempts) = run(u32::MAX, true, Duration::from_secs(10)).await;
        assert!(outcome.expect_err("gives up").transient);
        // Attempts at 0, 0.2, 0.6, 1.4, 3.0, 6.2 and 9.4 s (pauses doubling to 3.2 s); one
        // more pause would end past the 10 s deadline.
        assert_eq!(attempts, 7);
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn only_an_unelected_cluster_is_a_transient_refusal() {
        let refusal = |err_code| crate::ApiError {
            code: 503,
            err_code,
            description: String::new(),
        };
        assert!(refusal(ERR_CLUSTER_NOT_AVAILABLE).is_transient());
        assert!(refusal(ERR_CLUSTER_NOT_LEADER).is_transient());
        // No suitable peers: three replicas asked of fewer servers does not heal by waiting.
        assert!(!refusal(10005).is_transient());
    }

    #[test]
    fn a_read_nobody_answers_yet_is_transient_and_a_refused_read_is_not() {
        use crate::DirectGetError;
        let status = |status| DirectGetError::Status {
            status,
            description: String::new(),
        };
        assert!(status(503).is_transient(), "no responders");
        assert!(DirectGetError::TimedOut.is_transient());
        assert!(!status(408).is_transient(), "a bad request stays bad");
        assert!(!DirectGetError::Malformed("headers").is_transient());
    }
}
