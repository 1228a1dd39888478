//! `projector verify`: folds the journal with `evolve`, checks every event's post-state, and
//! compares the fold with the read model and with the stream's own last-by-subject states.

use crate::apply::{self, Entry};
use crate::read_model::{self, PROJECTION, to_i64};
use events::{AccountState, Envelope, Event, evolve, subjects};
use ledger_nats::direct;
use sqlx::{PgPool, Row};
use std::collections::BTreeMap;

/// Most drift lines kept: past this, more of the same helps nobody.
const DRIFT_LINES_MAX: usize = 100;

/// What verify found.
#[derive(Debug, Default)]
pub struct Findings {
    /// Journal messages folded (up to the read model's checkpoint).
    pub events: u64,
    pub accounts: usize,
    /// Every disagreement, in words.
    pub drift: Vec<String>,
}

impl Findings {
    fn drift(&mut self, line: String) {
        if self.drift.len() < DRIFT_LINES_MAX {
            self.drift.push(line);
        }
    }
}

/// Verifies the read model in `pool` against the journal, up to the read model's checkpoint
/// (what it claims to contain).
pub async fn verify(
    nats: &async_nats::Client,
    stream: &str,
    pool: &PgPool,
) -> anyhow::Result<Findings> {
    let checkpoint = read_model::checkpoint(pool, PROJECTION).await?;
    let mut findings = Findings::default();
    let mut states: BTreeMap<String, (u64, AccountState)> = BTreeMap::new();
    let mut expected_entries: Vec<Entry> = Vec::new();
    let mut orders: BTreeMap<uuid::Uuid, events::OrderState> = BTreeMap::new();
    let mut holds: BTreeMap<uuid::Uuid, events::HoldState> = BTreeMap::new();
    let (mut credits, mut debits) = (0_i128, 0_i128);
    let mut next = 1;
    while next <= checkpoint {
        let page = direct::range(nats, stream, next, direct::RANGE_LEN_MAX).await?;
        if page.is_empty() {
            findings.drift(format!(
                "the read model's checkpoint {checkpoint} is past the journal's end {}",
                next - 1
            ));
            break;
        }
        for message in page.iter().take_while(|m| m.seq <= checkpoint) {
            next = message.seq + 1;
            findings.events += 1;
            let envelope = match Envelope::from_json(&message.payload) {
                Ok(envelope) => envelope,
                Err(e) => {
                    findings.drift(format!("message {} cannot be decoded: {e}", message.seq));
                    continue;
                }
            };
            if let (Some(hold), Some(state)) = (envelope.event.hold(), envelope.event.hold_state())
            {
                match events::evolve_hold(holds.get(&hold.hold_id), &envelope.event) {
                    Ok(after) if &after == state => {
                        holds.insert(hold.hold_id, after);
                    }
                    Ok(after) => findings.drift(format!(
                        "message {}: hold post-state {state:?} is not evolve's {after:?}",
                        message.seq
                    )),
                    Err(e) => findings.drift(format!("message {}: {e}", message.seq)),
                }
            }
            if let (Some(order_id), Some(state)) =
                (envelope.event.order_id(), envelope.event.order_state())
            {
                match events::evolve_order(orders.get(order_id), &envelope.event) {
                    Ok(after) if &after == state => {
                        orders.insert(*order_id, after);
                    }
                    Ok(after) => findings.drift(format!(
                        "message {}: order post-state {state:?} is not evolve's {after:?}",
                        message.seq
                    )),
                    Err(e) => findings.drift(format!("message {}: {e}", message.seq)),
                }
            }
            let Some(account_id) = envelope.event.account_id() else {
                continue;
            };
            if message.subject != subjects::account(account_id) {
                findings.drift(format!(
                    "message {} for {account_id} is on {}",
                    message.seq, message.subject
                ));
            }
            let previous = states.get(account_id.as_str()).map(|(_, s)| s);
            match evolve(previous, &envelope.event) {
                Ok(after) if Some(&after) == envelope.event.account_state() => {
                    match &envelope.event {
                        Event::FundsDeposited(m) => credits += i128::from(m.amount.minor_units()),
                        Event::FundsWithdrawn(m) => debits += i128::from(m.amount.minor_units()),
                        Event::OrderCharged(c) => debits += i128::from(c.amount.minor_units()),
                        Event::BalanceSet(b) => {
                            credits += i128::from(b.balance) - i128::from(b.previous)
                        }
                        Event::HoldCaptured(h) => {
                            debits += i128::from(h.captured.map_or(0, |c| c.minor_units()));
                        }
                        _ => {}
                    }
                    states.insert(account_id.to_string(), (message.seq, after));
                }
                Ok(after) => findings.drift(format!(
                    "message {}: post-state {:?} is not evolve's {:?}",
                    message.seq,
                    envelope.event.account_state(),
                    after
                )),
                Err(e) => findings.drift(format!("message {}: {e}", message.seq)),
            }
            if let Some(entry) = apply::entry(message.seq, &envelope) {
                expected_entries.push(entry);
            }
        }
        if page.last().is_some_and(|m| m.seq >= checkpoint) {
            break;
        }
    }
    findings.accounts = states.len();
    let total: i128 = states.values().map(|(_, s)| i128::from(s.balance)).sum();
    if total != credits - debits {
        findings.drift(format!(
            "money is not conserved: balances sum to {total}, deposits − withdrawals = {}",
            credits - debits
        ));
    }
    compare_entries(pool, checkpoint, &expected_entries, &mut findings).await?;
    compare_accounts(pool, checkpoint, &states, &mut findings).await?;
    compare_stream_states(nats, stream, checkpoint, &states, &mut findings).await?;
    Ok(findings)
}

async fn compare_entries(
    pool: &PgPool,
    checkpoint: u64,
    expected: &[Entry],
    findings: &mut Findings,
) -> anyhow::Result<()> {
    let rows = sqlx::query(
        "SELECT account_id, version, seq, event_id, event_type, entry_type, amount, balance_after,
                held_after, counterparty_account_id, transfer_id, job_id, reference,
                metadata, occurred_at
         FROM account_entries WHERE seq <= $1 ORDER BY seq, account_id",
    )
    .bind(to_i64(checkpoint))
    .fetch_all(pool)
    .await?;
    if rows.len() != expected.len() {
        findings.drift(format!(
            "the read model has {} entries up to sequence {checkpoint}; the journal has {}",
            rows.len(),
            expected.len()
        ));
    }
    let mut by_key: BTreeMap<(String, i64), &Entry> = BTreeMap::new();
    for entry in expected {
        by_key.insert((entry.account_id.to_string(), to_i64(entry.version)), entry);
    }
    for row in &rows {
        let account_id: String = row.try_get("account_id")?;
        let version: i64 = row.try_get("version")?;
        let Some(entry) = by_key.remove(&(account_id.clone(), version)) else {
            findings.drift(format!(
                "entry {account_id} v{version} is not in the journal"
            ));
            continue;
        };
        let metadata: Option<serde_json::Value> = row.try_get("metadata")?;
        let same = row.try_get::<i64, _>("seq")? == to_i64(entry.seq)
            && row.try_get::<uuid::Uuid, _>("event_id")? == entry.event_id
            && row.try_get::<String, _>("event_type")? == entry.event_type
            && row.try_get::<String, _>("entry_type")? == entry.entry_type
            && row.try_get::<i64, _>("amount")? == entry.amount
            && row.try_get::<i64, _>("balance_after")? == entry.balance_after
            && row.try_get::<i64, _>("held_after")? == entry.held_after
            && row.try_get::<Option<String>, _>("counterparty_account_id")?
                == entry
                    .counterparty_account_id
                    .as_ref()
                    .map(ToString::to_string)
            && row.try_get::<Option<uuid::Uuid>, _>("transfer_id")? == entry.transfer_id
            && row.try_get::<uuid::Uuid, _>("job_id")? == entry.job_id
            && row.try_get::<Option<String>, _>("reference")? == entry.reference
            && metadata == entry.metadata
            && row.try_get::<chrono::DateTime<chrono::Utc>, _>("occurred_at")? == entry.occurred_at;
        if !same {
            findings.drift(format!(
                "entry {account_id} v{version} differs from journal message {}",
                entry.seq
            ));
        }
    }
    for (account_id, version) in by_key.keys() {
        findings.drift(format!(
            "entry {account_id} v{version} is missing from the read model"
        ));
    }
    Ok(())
}

async fn compare_accounts(
    pool: &PgPool,
    checkpoint: u64,
    states: &BTreeMap<String, (u64, AccountState)>,
    findings: &mut Findings,
) -> anyhow::Result<()> {
    let rows = sqlx::query(
        "SELECT account_id, owner_id, currency, balance, held, overdraft_limit, version, status,
                last_seq FROM accounts",
    )
    .fetch_all(pool)
    .await?;
    let mut seen = 0;
    for row in &rows {
        let account_id: String = row.try_get("account_id")?;
        let last_seq: i64 = row.try_get("last_seq")?;
        if last_seq > to_i64(checkpoint) {
            // Changed after verify read the checkpoint: a live projector is running.
            seen += 1;
            continue;
        }
        let Some((_, state)) = states.get(&account_id) else {
            findings.drift(format!("account {account_id} is not in the journal"));
            continue;
        };
        seen += 1;
        let same = row.try_get::<String, _>("owner_id")? == state.owner_id.as_str()
            && row.try_get::<String, _>("currency")? == state.currency.as_str()
            && row.try_get::<i64, _>("balance")? == state.balance
            && row.try_get::<i64, _>("held")? == state.held
            && row.try_get::<i64, _>("overdraft_limit")? == state.overdraft_limit
            && row.try_get::<i64, _>("version")? == to_i64(state.version);
        if !same {
            findings.drift(format!(
                "account {account_id} in the read model differs from the journal's v{} balance {}",
                state.version, state.balance
            ));
        }
    }
    if seen != states.len() {
        findings.drift(format!(
            "the read model has {seen} accounts; the journal has {}",
            states.len()
        ));
    }
    Ok(())
}

/// The stream's own last message per account subject must be the fold's state.
async fn compare_stream_states(
    nats: &async_nats::Client,
    stream: &str,
    checkpoint: u64,
    states: &BTreeMap<String, (u64, AccountState)>,
    findings: &mut Findings,
) -> anyhow::Result<()> {
    let account_subjects: Vec<String> = states
        .keys()
        .map(|id| format!("{}{id}", subjects::ACCOUNT_PREFIX))
        .collect();
    let last = direct::last_for_subjects(nats, stream, &account_subjects).await?;
    for message in last {
        if message.seq > checkpoint {
            continue;
        }
        let Some(account_id) = subjects::account_id_of(&message.subject) else {
            continue;
        };
        let stored = Envelope::from_json(&message.payload).ok();
        let stored_state = stored.as_ref().and_then(|e| e.event.account_state());
        let folded = states.get(account_id.as_str()).map(|(_, s)| s);
        if stored_state != folded {
            findings.drift(format!(
                "the stream's last state of {account_id} is not the fold's"
            ));
        }
    }
    Ok(())
}
