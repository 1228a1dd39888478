//! `projector verify`: folds the journal with `evolve`, checks every event's post-state, and
//! compares the fold with the read model and with the stream's own last-by-subject states.
//!
//! History rows are derived independently of the projector ([`history`]: its own table of
//! types and signs, `balance_after` as a running sum), and compared a journal page at a time,
//! so memory stays bounded by the page and by the number of accounts, whatever the journal's
//! length.

mod history;

use events::{
    AccountState, Envelope, Event, Evolve, HoldState, OrderState, TransferState, subjects,
};
use ledger_nats::direct::{self, Journal, NextPage};
use read_model::rows::Entry;
use read_model::{PROJECTION, to_i64, to_u64};
use sqlx::PgPool;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;
/// Most drift lines kept: past this, more of the same helps nobody.
const DRIFT_LINES_MAX: usize = 100;

/// How long verify waits, without progress, for the replicas answering its reads to hold what
/// the stream's leader holds, before it reads from the leader itself. On a cluster a direct
/// get may be answered by a follower that trails the leader — one that lost its disk copies
/// the whole journal back — and its short answer is not the journal's end: a chaos run's
/// verify reported "checkpoint 7016 past the journal's end 7000" while all three nodes held
/// 7016 moments later. Verify runs offline and can wait.
pub const REPLICA_CATCH_UP_WAIT: Duration = Duration::from_secs(60);

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

/// The fold of one account: its last sequence and state, and the running sum of its
/// movements (what `balance_after` must be).
#[derive(Debug)]
struct Folded {
    seq: u64,
    state: AccountState,
    running: i64,
}

/// Verifies the read model in `pool` against the journal, up to the read model's checkpoint
/// (what it claims to contain).
pub async fn verify(
    nats: &async_nats::Client,
    stream: &str,
    pool: &PgPool,
) -> anyhow::Result<Findings> {
    verify_against(
        &direct::JetStream { nats, stream },
        pool,
        REPLICA_CATCH_UP_WAIT,
    )
    .await
}

/// [`verify`], reading the journal through `journal`, waiting up to `patience` without
/// progress for a replica that trails before reading from the leader.
pub async fn verify_against(
    journal: &impl Journal,
    pool: &PgPool,
    patience: Duration,
) -> anyhow::Result<Findings> {
    let checkpoint = read_model::checkpoint(pool, PROJECTION).await?;
    let mut findings = Findings::default();
    let mut accounts: BTreeMap<String, Folded> = BTreeMap::new();
    // Orders and holds in flight; finished ones are kept by id only (a later event for one
    // is still found), so memory does not grow with their states. A charged order stays in
    // flight while it may still be refunded.
    let mut orders: BTreeMap<uuid::Uuid, events::OrderState> = BTreeMap::new();
    // Reversed transfers: each reversal must follow from the last (never past the amount).
    let mut transfers: BTreeMap<uuid::Uuid, TransferState> = BTreeMap::new();
    let mut holds: BTreeMap<uuid::Uuid, events::HoldState> = BTreeMap::new();
    let mut finished: HashSet<uuid::Uuid> = HashSet::new();
    let (mut credits, mut debits) = (0_i128, 0_i128);
    let mut next = 1;
    let mut catch_up = direct::CatchUp::new(patience);
    while next <= checkpoint {
        let page = match direct::next_page(journal, next, &mut catch_up).await? {
            NextPage::Messages(page) => page,
            NextPage::End(end) => {
                findings.drift(format!(
                    "the read model's checkpoint {checkpoint} is past the journal's end {end}"
                ));
                break;
            }
        };
        let first = next;
        // This page's expected history rows, by (account, version).
        let mut expected: BTreeMap<(String, i64), Entry> = BTreeMap::new();
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
                let previous = holds.get(&hold.hold_id);
                if previous.is_none() && finished.contains(&hold.hold_id) {
                    findings.drift(format!(
                        "message {}: hold {} changed after it was captured or voided",
                        message.seq, hold.hold_id
                    ));
                }
                match HoldState::evolve(previous, &envelope.event) {
                    Ok(after) if &after == state => {
                        if after.status == events::hold::HoldStatus::Placed {
                            holds.insert(hold.hold_id, after);
                        } else {
                            holds.remove(&hold.hold_id);
                            finished.insert(hold.hold_id);
                        }
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
                let previous = orders.get(order_id);
                if previous.is_none() && finished.contains(order_id) {
                    findings.drift(format!(
                        "message {}: order {order_id} changed after it was decided",
                        message.seq
                    ));
                }
                match OrderState::evolve(previous, &envelope.event) {
                    Ok(after) if &after == state => {
                        if after.status == events::order::OrderStatus::New || after.refundable() > 0
                        {
                            orders.insert(*order_id, after);
                        } else {
                            orders.remove(order_id);
                            finished.insert(*order_id);
                        }
                    }
                    Ok(after) => findings.drift(format!(
                        "message {}: order post-state {state:?} is not evolve's {after:?}",
                        message.seq
                    )),
                    Err(e) => findings.drift(format!("message {}: {e}", message.seq)),
                }
            }
            if let (Event::TransferReversed(reversal), Some(state)) =
                (&envelope.event, envelope.event.transfer_state())
            {
                let previous = transfers.get(&reversal.transfer_id);
                match TransferState::evolve(previous, &envelope.event) {
                    Ok(after) if &after == state => {
                        transfers.insert(reversal.transfer_id, after);
                    }
                    Ok(after) => findings.drift(format!(
                        "message {}: transfer post-state {state:?} is not evolve's {after:?}",
                        message.seq
                    )),
                    Err(e) => findings.drift(format!(
                        "message {}: transfer {}: {e}",
                        message.seq, reversal.transfer_id
                    )),
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
            let folded = accounts.get(account_id.as_str());
            let previous = folded.map(|f| &f.state);
            let running_before = folded.map(|f| f.running);
            let mut running = running_before.unwrap_or(0);
            if let Some(derived) = history::derive(message.seq, &envelope, running_before) {
                if let Some(line) = derived.drift {
                    findings.drift(line);
                }
                running = derived.entry.balance_after;
                expected.insert(
                    (
                        derived.entry.account_id.to_string(),
                        to_i64(derived.entry.version),
                    ),
                    derived.entry,
                );
            }
            match AccountState::evolve(previous, &envelope.event) {
                Ok(after) if Some(&after) == envelope.event.account_state() => {
                    match &envelope.event {
                        Event::FundsDeposited(m) => credits += i128::from(m.amount.minor_units()),
                        Event::FundsWithdrawn(m) => debits += i128::from(m.amount.minor_units()),
                        Event::OrderCharged(c) => debits += i128::from(c.amount.minor_units()),
                        // A refund gives back what a charge took; a reversal moves money
                        // between accounts and changes no total.
                        Event::RefundCredited(c) => credits += i128::from(c.amount.minor_units()),
                        Event::BalanceSet(b) => {
                            credits += i128::from(b.balance) - i128::from(b.previous)
                        }
                        Event::HoldCaptured(h) => {
                            debits += i128::from(h.captured.map_or(0, |c| c.minor_units()));
                        }
                        _ => {}
                    }
                    // Once a difference is reported, go on from the journal's own balance, so
                    // one bad event is one line of drift, not one per later event.
                    let running = if running == after.balance {
                        running
                    } else {
                        after.balance
                    };
                    accounts.insert(
                        account_id.to_string(),
                        Folded {
                            seq: message.seq,
                            state: after,
                            running,
                        },
                    );
                }
                Ok(after) => findings.drift(format!(
                    "message {}: post-state {:?} is not evolve's {:?}",
                    message.seq,
                    envelope.event.account_state(),
                    after
                )),
                Err(e) => findings.drift(format!("message {}: {e}", message.seq)),
            }
        }
        compare_entries(pool, (first, next - 1), expected, &mut findings).await?;
        if page.last().is_some_and(|m| m.seq >= checkpoint) {
            break;
        }
    }
    findings.accounts = accounts.len();
    let total: i128 = accounts.values().map(|f| i128::from(f.state.balance)).sum();
    if total != credits - debits {
        findings.drift(format!(
            "money is not conserved: balances sum to {total}, deposits − withdrawals − \
             charges + refunds ± sets = {}",
            credits - debits
        ));
    }
    let states: BTreeMap<&str, (u64, &AccountState)> = accounts
        .iter()
        .map(|(id, f)| (id.as_str(), (f.seq, &f.state)))
        .collect();
    compare_accounts(pool, checkpoint, &states, &mut findings).await?;
    compare_stream_states(journal, checkpoint, &states, patience, &mut findings).await?;
    Ok(findings)
}

/// The read model's history rows with a sequence in `seqs` (one journal page) against the
/// rows derived from that page.
async fn compare_entries(
    pool: &PgPool,
    seqs: (u64, u64),
    mut expected: BTreeMap<(String, i64), Entry>,
    findings: &mut Findings,
) -> anyhow::Result<()> {
    let rows = read_model::verify::entries_by_seq(pool, seqs.0, seqs.1).await?;
    for row in rows {
        let (account_id, version) = (row.account_id, row.version);
        let Some(entry) = expected.remove(&(account_id.clone(), version)) else {
            findings.drift(format!(
                "entry {account_id} v{version} is not in the journal"
            ));
            continue;
        };
        let stored = Entry {
            seq: to_u64(row.seq),
            event_id: row.event_id,
            event_type: stored_name(&row.event_type, entry.event_type),
            entry_type: stored_name(&row.entry_type, entry.entry_type),
            amount: row.amount,
            balance_after: row.balance_after,
            held_after: row.held_after,
            counterparty_account_id: row
                .counterparty_account_id
                .and_then(|id| events::AccountId::parse(id).ok()),
            transfer_id: row.transfer_id,
            order_id: row.order_id,
            hold_id: row.hold_id,
            job_id: row.job_id,
            reference: row.reference,
            metadata: row.metadata,
            occurred_at: row.occurred_at,
            ..entry.clone()
        };
        let differences = history::differences(&stored, &entry);
        if !differences.is_empty() {
            findings.drift(format!(
                "entry {account_id} v{version} differs from journal message {} in {}",
                entry.seq,
                differences.join(", ")
            ));
        }
    }
    for (account_id, version) in expected.keys() {
        findings.drift(format!(
            "entry {account_id} v{version} is missing from the read model"
        ));
    }
    Ok(())
}

/// A name read from the read model, as the expected `&'static str` when they are equal, else
/// a marker that cannot equal any name.
fn stored_name(stored: &str, expected: &'static str) -> &'static str {
    if stored == expected {
        expected
    } else {
        "(another name)"
    }
}

async fn compare_accounts(
    pool: &PgPool,
    checkpoint: u64,
    states: &BTreeMap<&str, (u64, &AccountState)>,
    findings: &mut Findings,
) -> anyhow::Result<()> {
    let rows = read_model::verify::accounts(pool).await?;
    let mut seen = 0;
    for row in &rows {
        let account_id = &row.account_id;
        if row.last_seq > to_i64(checkpoint) {
            // Changed after verify read the checkpoint: a live projector is running.
            seen += 1;
            continue;
        }
        let Some((_, state)) = states.get(account_id.as_str()) else {
            findings.drift(format!("account {account_id} is not in the journal"));
            continue;
        };
        seen += 1;
        let same = row.owner_id == state.owner_id.as_str()
            && row.currency == state.currency.as_str()
            && row.balance == state.balance
            && row.held == state.held
            && row.overdraft_limit == state.overdraft_limit
            && row.version == to_i64(state.version);
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
    journal: &impl Journal,
    checkpoint: u64,
    states: &BTreeMap<&str, (u64, &AccountState)>,
    patience: Duration,
    findings: &mut Findings,
) -> anyhow::Result<()> {
    let account_subjects: Vec<String> = states
        .keys()
        .map(|id| format!("{}{id}", subjects::ACCOUNT_PREFIX))
        .collect();
    // The journal only grows, so an answer older than the fold's last message on a subject,
    // or none at all, comes from a replica that trails: ask again until none trails (the fold
    // itself was read through to the checkpoint); past `patience`, ask the leader for the
    // subjects still behind. What differs then is drift.
    let mut catch_up = direct::CatchUp::new(patience);
    let last = loop {
        let mut last = journal.last_for_subjects(&account_subjects).await?;
        let answered: BTreeMap<&str, u64> =
            last.iter().map(|m| (m.subject.as_str(), m.seq)).collect();
        let trailing: Vec<(&String, Option<u64>, u64)> = account_subjects
            .iter()
            .zip(states.values())
            .filter_map(|(subject, (folded_seq, _))| {
                let at = answered.get(subject.as_str()).copied();
                at.is_none_or(|at| at < *folded_seq)
                    .then_some((subject, at, *folded_seq))
            })
            .collect();
        let Some(&(_, at, leader)) = trailing.first() else {
            break last;
        };
        if catch_up.wait(at, leader).await.is_ok() {
            continue;
        }
        let behind: HashSet<&String> = trailing.iter().map(|(subject, ..)| *subject).collect();
        last.retain(|m| !behind.contains(&m.subject));
        for subject in behind {
            last.extend(journal.leader_last(subject).await?);
        }
        break last;
    };
    let present: HashSet<&str> = last.iter().map(|m| m.subject.as_str()).collect();
    for (subject, account_id) in account_subjects.iter().zip(states.keys()) {
        if !present.contains(subject.as_str()) {
            findings.drift(format!(
                "the stream holds no message on {account_id}'s subject"
            ));
        }
    }
    for message in last.iter() {
        if message.seq > checkpoint {
            continue;
        }
        let Some(account_id) = subjects::account_id_of(&message.subject) else {
            continue;
        };
        let stored = Envelope::from_json(&message.payload).ok();
        let stored_state = stored.as_ref().and_then(|e| e.event.account_state());
        let folded = states.get(account_id.as_str()).map(|(_, s)| *s);
        if stored_state != folded {
            findings.drift(format!(
                "the stream's last state of {account_id} is not the fold's"
            ));
        }
    }
    Ok(())
}
