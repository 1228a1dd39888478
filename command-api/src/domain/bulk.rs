//! Bulk transfers (`POST /v1/transfers/batch`): many transfers in one command, each decided
//! in order against the states the earlier ones left.
//!
//! Not atomic, a rejected transfer is one item's answer and the others go on; atomic, the
//! first rejection refuses the whole command, naming the item. A request of more transfers
//! than one journal batch holds is several commands (parts), numbered across by
//! `first_index`.

use super::account::transfer;
use super::{Actor, AggregateKey, Aggregates, Decision, DomainError, Outcome, TransferFunds};
use events::{AccountId, AccountState, HoldState, OrderState};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// `POST /v1/transfers/batch`, or one part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferBatch {
    /// The request's index of the first transfer here.
    pub first_index: usize,
    pub transfers: Vec<TransferFunds>,
    /// All or nothing: the first rejection refuses every transfer.
    pub atomic: bool,
}

/// One transfer's fate within a batch: `Outcome::Transferred`, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkItem {
    /// Its index in the request.
    pub index: usize,
    pub result: Result<Outcome, DomainError>,
}

impl TransferBatch {
    /// Every account the transfers touch, once each, in order of first appearance.
    pub fn aggregates(&self) -> Vec<AggregateKey> {
        let mut seen = HashSet::with_capacity(2 * self.transfers.len());
        self.transfers
            .iter()
            .flat_map(|t| [&t.from, &t.to])
            .filter(|id| seen.insert(*id))
            .map(|id| AggregateKey::Account(id.clone()))
            .collect()
    }

    /// The accounts the rejected items of `items` read: a rejection may rest on a state that
    /// was stale, and the writer checks those again before it answers.
    pub fn rejected_reads(&self, items: &[BulkItem]) -> Vec<AggregateKey> {
        items
            .iter()
            .filter(|item| item.result.is_err())
            .filter_map(|item| self.transfers.get(item.index - self.first_index))
            .flat_map(|t| [&t.from, &t.to])
            .map(|id| AggregateKey::Account(id.clone()))
            .collect()
    }
}

/// Decides every transfer in order; each sees the post-states of the ones accepted before it.
pub fn decide_batch(
    actor: &Actor,
    c: &TransferBatch,
    states: &impl Aggregates,
) -> Result<Decision, DomainError> {
    let mut working = Overlay {
        base: states,
        accounts: HashMap::with_capacity(2 * c.transfers.len()),
    };
    let mut events = Vec::with_capacity(2 * c.transfers.len());
    let mut items = Vec::with_capacity(c.transfers.len());
    for (offset, item) in c.transfers.iter().enumerate() {
        let index = c.first_index + offset;
        match transfer(actor, item, &working) {
            Ok(decision) => {
                if let Outcome::Transferred { from, to, .. } = &decision.outcome {
                    working.accounts.insert(from.0.clone(), from.1.clone());
                    working.accounts.insert(to.0.clone(), to.1.clone());
                }
                events.extend(decision.events);
                items.push(BulkItem {
                    index,
                    result: Ok(decision.outcome),
                });
            }
            Err(error) if c.atomic => {
                return Err(DomainError::BulkItemRejected {
                    index,
                    error: Box::new(error),
                });
            }
            Err(error) => items.push(BulkItem {
                index,
                result: Err(error),
            }),
        }
    }
    Ok(Decision {
        events,
        outcome: Outcome::TransfersBatched {
            atomic: c.atomic,
            items,
        },
    })
}

/// The given states with the batch's own changes laid over them.
struct Overlay<'a, A> {
    base: &'a A,
    accounts: HashMap<AccountId, AccountState>,
}

impl<A: Aggregates> Aggregates for Overlay<'_, A> {
    fn account(&self, id: &AccountId) -> Option<&AccountState> {
        self.accounts.get(id).or_else(|| self.base.account(id))
    }

    fn order(&self, id: &Uuid) -> Option<&OrderState> {
        self.base.order(id)
    }

    fn hold(&self, id: &Uuid) -> Option<&HoldState> {
        self.base.hold(id)
    }

    fn transfer(&self, id: &Uuid) -> Option<&events::TransferState> {
        self.base.transfer(id)
    }

    fn recorded(&self, key: &AggregateKey) -> bool {
        self.base.recorded(key)
    }
}

#[cfg(test)]
mod tests;
