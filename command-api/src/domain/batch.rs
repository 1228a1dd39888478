//! Balance batches: journal the request as chunks, then apply each chunk in parts — each part
//! one atomic batch with its exactly-once record.

use super::{Actor, AggregateKey, Aggregates, Decision, DomainError, Outcome};
use events::batch::{BatchItem, BatchState, CHUNK_LEN_MAX, ItemRejected};
use events::{
    AccountState, AccountStatus, BalanceSet, BatchPartApplied, BatchSubmitted, Currency, Event,
    Evolve, OwnerId,
};
use uuid::Uuid;

/// `PUT /v1/balances`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitBatch {
    pub batch_id: Uuid,
    pub items: Vec<BatchItem>,
}

/// The batch executor's command for one part of a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyBatchPart {
    pub batch_id: Uuid,
    pub chunk: u32,
    pub part: u32,
    pub items: Vec<BatchItem>,
}

pub fn submit(
    actor: &Actor,
    c: &SubmitBatch,
    states: &impl Aggregates,
) -> Result<Decision, DomainError> {
    if states.recorded(&AggregateKey::Batch(c.batch_id)) {
        return Err(DomainError::BatchExists(c.batch_id));
    }
    let chunks = c.items.chunks(CHUNK_LEN_MAX);
    let count = u32::try_from(chunks.len()).unwrap_or(u32::MAX);
    let total = u32::try_from(c.items.len()).unwrap_or(u32::MAX);
    let events = chunks
        .enumerate()
        .map(|(index, items)| {
            let chunk = u32::try_from(index).unwrap_or(u32::MAX);
            Event::BatchSubmitted(BatchSubmitted {
                batch_id: c.batch_id,
                chunk,
                items: items.to_vec(),
                state: BatchState {
                    version: u64::from(chunk) + 1,
                    owner_id: actor.principal.clone(),
                    total,
                    chunks: count,
                },
            })
        })
        .collect();
    Ok(Decision {
        events,
        outcome: Outcome::BatchSubmitted {
            batch_id: c.batch_id,
            items: c.items.len(),
        },
    })
}

/// Sets each item's balance, opening accounts that do not exist (owner = the account id,
/// USD). An item whose account holds more than the new balance is rejected: setting it would
/// leave held money uncovered.
pub fn apply_part(c: &ApplyBatchPart, states: &impl Aggregates) -> Result<Decision, DomainError> {
    if states.recorded(&AggregateKey::BatchPart {
        batch_id: c.batch_id,
        chunk: c.chunk,
        part: c.part,
    }) {
        return Ok(Decision {
            events: vec![],
            outcome: Outcome::BatchPartApplied {
                already: true,
                applied: 0,
                rejected: 0,
            },
        });
    }
    let mut events = Vec::with_capacity(c.items.len() + 1);
    let mut rejected = Vec::new();
    for item in &c.items {
        let current = states.account(&item.account_id);
        if current.is_some_and(|state| item.balance < state.held) {
            rejected.push(ItemRejected {
                job_id: item.job_id,
                account_id: item.account_id.clone(),
                code: "balance_below_held".into(),
            });
            continue;
        }
        // For an account the batch opens, the pre-state names its owner (the account id)
        // and currency; `evolve` turns it into version 1.
        let before = match current {
            Some(state) => state.clone(),
            None => AccountState {
                version: 0,
                balance: 0,
                held: 0,
                currency: Currency::default(),
                status: AccountStatus::Open,
                owner_id: OwnerId::parse(item.account_id.as_str())
                    .map_err(|_| DomainError::AccountNotFound(item.account_id.clone()))?,
                overdraft_limit: 0,
            },
        };
        let set = Event::BalanceSet(BalanceSet {
            account_id: item.account_id.clone(),
            balance: item.balance,
            previous: before.balance,
            batch_id: c.batch_id,
            item_job_id: item.job_id,
            state: before,
        });
        let after = AccountState::evolve(current, &set)
            .map_err(|_| DomainError::BalanceOverflow(item.account_id.clone()))?;
        events.push(set.with_account_state(after));
    }
    let applied = c.items.len() - rejected.len();
    let rejected_count = rejected.len();
    events.push(Event::BatchPartApplied(BatchPartApplied {
        batch_id: c.batch_id,
        chunk: c.chunk,
        part: c.part,
        applied: u32::try_from(applied).unwrap_or(u32::MAX),
        rejected,
    }));
    Ok(Decision {
        events,
        outcome: Outcome::BatchPartApplied {
            already: false,
            applied,
            rejected: rejected_count,
        },
    })
}
