//! The bank: K accounts of one owner, funded with a fixed total, and C clients moving money
//! between them at random. Most transfers carry their own `Idempotency-Key` (also sent as the
//! transfer's `reference`, so the audit can find it in the journal) and are retried with the
//! same key until the API gives a definite answer or the attempts run out. One in four carries
//! no key and is sent once: nothing but the command API's own settling of unknown commits then
//! stands between a fault and a double payment, and the audit finds one by its reference.
//! With several command APIs, each client starts on its own instance and moves to the next on
//! an unknown outcome, as behind a load balancer.
//!
//! One operation in five is a reversal instead: part or all of a transfer the client made
//! earlier moved back (the bank's owner owns every receiver, so it may), carrying a key and a
//! reference the same way. Reversals move money between accounts, so the total stays what the
//! bank was funded with; the audit also holds every transfer's reversals to its amount.
//!
//! One request in eight is a bulk request (`POST /v1/transfers/batch`) of two to five
//! transfers, each with its own reference, under one `Idempotency-Key` for the request, half of
//! them atomic: every transfer in it is an operation of the history, answered by its item of
//! the request's answer, which the request's idempotency record must hold.

use http_edge::headers::LEDGER_SEQ;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// The owner of every account: one owner, so that one query lists them all in one snapshot.
pub const OWNER: &str = "bank";

/// The principal that opens and funds the bank (`open_bank`), with keys `open-<id>` and
/// `fund-<id>`.
pub const ADMIN: &str = "chaos-admin";

/// How long one request may take before the client calls its outcome unknown and retries.
/// Above the command API's own answer timeout (20 s) would make a killed API cost 20 s per
/// client; 10 s still lets a slow, healthy commit answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// First and largest pause between attempts of one operation.
const RETRY_PAUSE_MIN: Duration = Duration::from_millis(50);
const RETRY_PAUSE_MAX: Duration = Duration::from_secs(1);

pub fn account_id(index: usize) -> String {
    format!("acct-{index:03}")
}

/// How an operation ended, as far as its client knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: the transfer (or reversal) happened; its id and the post-states the API reported.
    Ok {
        /// The transfer's id, or the reversal's for a reversal.
        transfer_id: String,
        replayed: bool,
        from_balance: i64,
        from_version: u64,
        to_balance: i64,
        to_version: u64,
    },
    /// A definite refusal (4xx other than a conflict), with its problem code.
    Failed { status: u16, code: String },
    /// No definite answer within the attempts: it may or may not have happened.
    Indeterminate { last_error: String },
}

/// One client operation: a transfer or reversal request and what came of it.
#[derive(Debug, Clone)]
pub struct Operation {
    /// For a reversal: the transfer it moves back (`from`/`to` are then the reversal's own
    /// direction, the transfer's receiver to its sender).
    pub reverses: Option<String>,
    /// The transfer's reference, and its `Idempotency-Key` when `keyed` and not in a batch.
    pub key: String,
    pub keyed: bool,
    /// A transfer sent in a bulk request: the request's `Idempotency-Key` and the transfer's
    /// index in it (bulk requests here are always keyed and of one part).
    pub batch: Option<(String, usize)>,
    pub from: String,
    pub to: String,
    pub amount: i64,
    pub attempts: u32,
    pub outcome: Outcome,
}

/// What the readers and clients share: the newest batch-commit sequence a client was told.
#[derive(Debug, Default)]
pub struct Progress {
    /// The largest `Ledger-Seq` of a non-replayed write answer: the last message of a
    /// committed batch, so a cut of the journal there never splits a transfer.
    pub acked_seq: AtomicU64,
}

/// A client of the command API that retries unknown outcomes with the same key.
#[derive(Debug, Clone)]
pub struct Writer {
    pub http: reqwest::Client,
    /// The command APIs' base URLs; attempts start at `first` and move on after an unknown
    /// outcome.
    pub bases: Vec<String>,
    pub first: usize,
    pub token: String,
    pub attempts_max: u32,
}

/// A definite answer, or why there was none.
enum Attempt {
    Definite(u16, Value, Option<u64>, bool),
    Unknown(String),
}

impl Writer {
    /// One request to the `turn`-th command API (counting from `first`), with `key` as its
    /// `Idempotency-Key` if given.
    async fn attempt(&self, turn: usize, path: &str, key: Option<&str>, body: &Value) -> Attempt {
        let base = &self.bases[(self.first + turn) % self.bases.len().max(1)];
        let mut request = self
            .http
            .post(format!("{base}{path}"))
            .bearer_auth(&self.token)
            .json(body)
            .timeout(REQUEST_TIMEOUT);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let sent = request.send().await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => return Attempt::Unknown(format!("request: {e}")),
        };
        let status = response.status();
        let seq = response
            .headers()
            .get(LEDGER_SEQ)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let replayed = response
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true");
        let body: Value = match response.bytes().await {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            Err(e) => return Attempt::Unknown(format!("reading the answer: {e}")),
        };
        let conflict = status == StatusCode::CONFLICT && body["code"] == "conflict";
        // With a key, a conflict is retried like any transient refusal; without one it is a
        // definite "not done" (the writer gave up before anything was stored).
        if status.is_server_error()
            || (conflict && key.is_some())
            || status == StatusCode::TOO_MANY_REQUESTS
        {
            return Attempt::Unknown(format!("{status} {}", body["code"]));
        }
        Attempt::Definite(status.as_u16(), body, seq, replayed)
    }

    /// Sends `body` once, without an idempotency key: a definite answer, or why there was none
    /// (a retry would be a second command, so there is none).
    pub async fn send_once(
        &self,
        path: &str,
        body: &Value,
        progress: &Progress,
    ) -> Result<(u16, Value, bool), String> {
        match self.attempt(0, path, None, body).await {
            Attempt::Definite(status, body, seq, replayed) => {
                if (200..300).contains(&status)
                    && let Some(seq) = seq
                {
                    progress.acked_seq.fetch_max(seq, Ordering::Relaxed);
                }
                Ok((status, body, replayed))
            }
            Attempt::Unknown(error) => Err(error),
        }
    }

    /// Sends `body` to `path` with `key` until a definite answer or `attempts_max` attempts.
    pub async fn send(
        &self,
        path: &str,
        key: &str,
        body: &Value,
        progress: &Progress,
    ) -> (u32, Result<(u16, Value, bool), String>) {
        let mut pause = RETRY_PAUSE_MIN;
        let mut last_error = String::new();
        for attempt in 1..=self.attempts_max {
            match self
                .attempt(attempt as usize - 1, path, Some(key), body)
                .await
            {
                Attempt::Definite(status, body, seq, replayed) => {
                    if (200..300).contains(&status)
                        && !replayed
                        && let Some(seq) = seq
                    {
                        progress.acked_seq.fetch_max(seq, Ordering::Relaxed);
                    }
                    return (attempt, Ok((status, body, replayed)));
                }
                Attempt::Unknown(error) => last_error = error,
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(RETRY_PAUSE_MAX);
        }
        (self.attempts_max, Err(last_error))
    }
}

/// Opens the accounts and deposits `balance` into each: the total the bank must conserve.
pub async fn open_bank(
    admin: &Writer,
    accounts: usize,
    balance: i64,
    progress: &Progress,
) -> anyhow::Result<()> {
    for index in 0..accounts {
        let id = account_id(index);
        let body = json!({"account_id": id, "owner_id": OWNER});
        let (_, opened) = admin
            .send("/v1/accounts", &format!("open-{id}"), &body, progress)
            .await;
        match opened {
            Ok((status, _, _)) if (200..300).contains(&status) => {}
            other => anyhow::bail!("opening {id}: {other:?}"),
        }
        let body = json!({"amount": balance, "reference": format!("fund-{id}")});
        let path = format!("/v1/accounts/{id}/deposits");
        let (_, funded) = admin
            .send(&path, &format!("fund-{id}"), &body, progress)
            .await;
        match funded {
            Ok((status, _, _)) if (200..300).contains(&status) => {}
            other => anyhow::bail!("funding {id}: {other:?}"),
        }
    }
    Ok(())
}

/// One client: random transfers until `stop`, one at a time, each to a definite answer or
/// given up.
pub async fn client(
    index: usize,
    writer: Writer,
    accounts: usize,
    balance: i64,
    stop: Arc<AtomicBool>,
    progress: Arc<Progress>,
) -> Vec<Operation> {
    let mut history = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        if rand::random_range(0..5) == 0
            && let Some(op) = reversal(index, &writer, &history, &progress).await
        {
            history.push(op);
            continue;
        }
        let key = format!("c{index}-{}", uuid::Uuid::now_v7().simple());
        if rand::random_range(0..8) == 0 {
            history.extend(bulk(&writer, &key, accounts, balance, &progress).await);
            continue;
        }
        let (from, to, amount) = pick(accounts, balance);
        let body = json!({
            "from_account_id": account_id(from),
            "to_account_id": account_id(to),
            "amount": amount,
            "reference": key,
        });
        let keyed = rand::random_range(0..4) != 0;
        let (attempts, answer) = if keyed {
            writer.send("/v1/transfers", &key, &body, &progress).await
        } else {
            (1, writer.send_once("/v1/transfers", &body, &progress).await)
        };
        let outcome = match answer {
            Ok((status, body, replayed)) => outcome(status, &body, replayed),
            Err(last_error) => Outcome::Indeterminate { last_error },
        };
        history.push(Operation {
            reverses: None,
            key,
            keyed,
            batch: None,
            from: account_id(from),
            to: account_id(to),
            amount,
            attempts,
            outcome,
        });
    }
    history
}

/// A random transfer: two different accounts and mostly an amount an account may or may not
/// cover (so some fail for lack of funds under contention); one in ten more than the whole
/// bank holds, which must fail.
fn pick(accounts: usize, balance: i64) -> (usize, usize, i64) {
    let from = rand::random_range(0..accounts);
    let to = (from + rand::random_range(1..accounts.max(2))) % accounts;
    let total = balance.saturating_mul(accounts as i64);
    let amount = if rand::random_range(0..10) == 0 {
        total + 1
    } else {
        rand::random_range(1..=balance)
    };
    (from, to, amount)
}

/// What a transfer's answer (or a bulk item's) says happened.
fn outcome(status: u16, body: &Value, replayed: bool) -> Outcome {
    if (200..300).contains(&status) {
        Outcome::Ok {
            transfer_id: body["transfer_id"].as_str().unwrap_or_default().to_owned(),
            replayed,
            from_balance: body["from"]["balance"].as_i64().unwrap_or(i64::MIN),
            from_version: body["from"]["version"].as_u64().unwrap_or(0),
            to_balance: body["to"]["balance"].as_i64().unwrap_or(i64::MIN),
            to_version: body["to"]["version"].as_u64().unwrap_or(0),
        }
    } else {
        Outcome::Failed {
            status,
            code: body["code"].as_str().unwrap_or("?").to_owned(),
        }
    }
}

/// One bulk request of two to five transfers under `key` (half of them atomic), retried with
/// the key to a definite answer; an operation per transfer, answered by its item (an atomic
/// refusal, or no definite answer, answers every transfer alike).
async fn bulk(
    writer: &Writer,
    key: &str,
    accounts: usize,
    balance: i64,
    progress: &Progress,
) -> Vec<Operation> {
    let transfers: Vec<(String, usize, usize, i64)> = (0..rand::random_range(2..=5_usize))
        .map(|i| {
            let (from, to, amount) = pick(accounts, balance);
            (format!("{key}-{i}"), from, to, amount)
        })
        .collect();
    let atomic = rand::random_range(0..2) == 0;
    let body = json!({
        "atomic": atomic,
        "transfers": transfers.iter().map(|(reference, from, to, amount)| json!({
            "from_account_id": account_id(*from),
            "to_account_id": account_id(*to),
            "amount": amount,
            "reference": reference,
        })).collect::<Vec<_>>(),
    });
    let (attempts, answer) = writer
        .send("/v1/transfers/batch", key, &body, progress)
        .await;
    transfers
        .into_iter()
        .enumerate()
        .map(|(index, (reference, from, to, amount))| {
            let outcome = match &answer {
                Ok((status, body, replayed)) if body["results"].is_array() => {
                    let item = &body["results"][index];
                    let status = item["status"].as_u64().map_or(*status, |s| s as u16);
                    outcome(status, item, *replayed)
                }
                Ok((status, body, replayed)) => outcome(*status, body, *replayed),
                Err(last_error) => Outcome::Indeterminate {
                    last_error: last_error.clone(),
                },
            };
            Operation {
                reverses: None,
                key: reference,
                keyed: true,
                batch: Some((key.to_owned(), index)),
                from: account_id(from),
                to: account_id(to),
                amount,
                attempts,
                outcome,
            }
        })
        .collect()
}

/// A reversal of part or all of one of the client's acknowledged transfers (`None` while it
/// has none): often more than is left of it, or more than the receiver holds by now, so
/// that refusals come as well.
async fn reversal(
    index: usize,
    writer: &Writer,
    history: &[Operation],
    progress: &Progress,
) -> Option<Operation> {
    let done: Vec<&Operation> = history
        .iter()
        .filter(|op| op.reverses.is_none() && matches!(op.outcome, Outcome::Ok { .. }))
        .collect();
    let transfer = done.get(rand::random_range(0..done.len().max(1)))?;
    let Outcome::Ok { transfer_id, .. } = &transfer.outcome else {
        return None;
    };
    let amount = rand::random_range(1..=transfer.amount);
    let key = format!("c{index}-{}", uuid::Uuid::now_v7().simple());
    let body = json!({"amount": amount, "reference": key});
    let path = format!("/v1/transfers/{transfer_id}/reversals");
    let keyed = rand::random_range(0..4) != 0;
    let (attempts, answer) = if keyed {
        writer.send(&path, &key, &body, progress).await
    } else {
        (1, writer.send_once(&path, &body, progress).await)
    };
    let outcome = match answer {
        // The operation's id is the reversal's (the answer's `transfer_id` is the transfer's).
        Ok((status, mut body, replayed)) => {
            body["transfer_id"] = body["reversal_id"].take();
            outcome(status, &body, replayed)
        }
        Err(last_error) => Outcome::Indeterminate { last_error },
    };
    Some(Operation {
        reverses: Some(transfer_id.clone()),
        key,
        keyed,
        batch: None,
        from: transfer.to.clone(),
        to: transfer.from.clone(),
        amount,
        attempts,
        outcome,
    })
}
