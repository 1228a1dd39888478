//! `GET /v1/admin/projector`: the checkpoint, the session of the projector holding the lock
//! and the standbys waiting for it, as PostgreSQL sees them — admins only.

use crate::support::*;
use projector::consume::Role;
use serde_json::Value;
use std::time::{Duration, Instant};

async fn status(stack: &Stack) -> Value {
    let answer = stack
        .queries
        .get("/v1/admin/projector", &token("root", true))
        .await;
    assert_eq!(answer.status.as_u16(), 200, "{:?}", answer.body);
    answer.body
}

/// Asks again (bounded) until the status satisfies `done`.
async fn status_until(stack: &Stack, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = status(stack).await;
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "never {what}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The pids of the projectors' lock connections on the test's database.
async fn lock_sessions(stack: &Stack) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'tally-lock' ORDER BY pid",
    )
    .fetch_all(&stack.pool().await)
    .await
    .expect("pg_stat_activity")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projector_status_names_the_active_session_and_counts_the_standby() {
    let stack = Stack::start().await;
    let idle = status(&stack).await;
    assert!(idle["active_instance"].is_null(), "{idle}");
    assert_eq!(idle["standby_count"], 0, "{idle}");

    let first = stack.start_projector().await;
    let seq = stack.open_funded("ops-1", "olga", 250).await;
    stack.wait_caught_up(Duration::from_secs(20)).await;
    assert_eq!(first.status.role(), Role::Active);
    let active = status_until(&stack, "caught up", |s| {
        s["checkpoint"].as_u64() >= Some(seq) && s["active_instance"].is_object()
    })
    .await;
    let sessions = lock_sessions(&stack).await;
    assert_eq!(sessions.len(), 1, "one lock connection: {sessions:?}");
    let instance = &active["active_instance"];
    assert_eq!(instance["pid"].as_i64(), Some(i64::from(sessions[0])));
    assert_eq!(instance["application_name"], "tally-lock");
    assert!(instance["client_addr"].is_string(), "{instance}");
    assert!(instance["backend_start"].is_string(), "{instance}");
    assert_eq!(active["standby_count"], 0);

    // A second projector waits as a standby, and is counted as one.
    let second = stack.start_projector().await;
    let with_standby =
        status_until(&stack, "counting the standby", |s| s["standby_count"] == 1).await;
    assert_eq!(with_standby["active_instance"]["pid"], instance["pid"]);
    assert_eq!(second.status.role(), Role::Standby);

    // The active one stops: the standby takes over and is named instead.
    first.stop().await.expect("first projector stops");
    let taken_over = status_until(&stack, "naming the new active projector", |s| {
        s["active_instance"].is_object()
            && s["active_instance"]["pid"] != instance["pid"]
            && s["standby_count"] == 0
    })
    .await;
    assert_eq!(lock_sessions(&stack).await.len(), 1);
    assert_eq!(
        taken_over["active_instance"]["pid"].as_i64(),
        lock_sessions(&stack).await.first().map(|&p| i64::from(p))
    );
    second.stop().await.expect("second projector stops");
}

#[tokio::test]
async fn the_projector_status_is_refused_to_a_user_and_to_no_token() {
    let stack = Stack::start().await;
    let refused = stack
        .queries
        .get("/v1/admin/projector", &token("olga", false))
        .await;
    refused.assert_problem(403, "forbidden");
    let anonymous = stack
        .queries
        .get_with("/v1/admin/projector", None, &[])
        .await;
    anonymous.assert_unauthorized("the projector status without a token");
}
