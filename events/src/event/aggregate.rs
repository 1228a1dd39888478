//! Which aggregate an event's message belongs to, by its payload: an account's side, a hold's
//! side, an order, a batch chunk or part, a failed job, or an idempotency record.

use super::payloads::*;
use crate::account::AccountState;
use crate::hold::HoldState;
use crate::ids::AccountId;
use crate::order::OrderState;
use crate::transfer::TransferState;
use uuid::Uuid;

/// The aggregate a message belongs to, with its post-state where the message carries one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AggregateRef<'a> {
    Account {
        id: &'a AccountId,
        state: &'a AccountState,
    },
    Hold {
        id: &'a Uuid,
        state: &'a HoldState,
    },
    Order {
        id: &'a Uuid,
        state: &'a OrderState,
    },
    /// A transfer that has been reversed.
    Transfer {
        id: &'a Uuid,
        state: &'a TransferState,
    },
    /// A chunk of a balance batch.
    Batch(&'a Uuid),
    /// The record that a part of a chunk was applied.
    BatchPart {
        batch_id: &'a Uuid,
        chunk: u32,
        part: u32,
    },
    /// A job an executor gave up on.
    Job(&'a Uuid),
    /// An idempotency record: its subject is a hash only the writer knows.
    Idempotency,
}

/// What an event's payload says about the aggregate its message belongs to.
pub(super) trait Payload {
    fn aggregate(&self) -> AggregateRef<'_>;

    /// The account's post-state, for account-side messages.
    fn account_state_mut(&mut self) -> Option<&mut AccountState> {
        None
    }
}

/// Payloads that are an account's side only: an `account_id` and the account's `state`.
macro_rules! account_payload {
    ($($payload:ty),*) => {$(
        impl Payload for $payload {
            fn aggregate(&self) -> AggregateRef<'_> {
                AggregateRef::Account { id: &self.account_id, state: &self.state }
            }
            fn account_state_mut(&mut self) -> Option<&mut AccountState> {
                Some(&mut self.state)
            }
        }
    )*};
}

account_payload!(
    AccountOpened,
    AccountMovement,
    TransferLeg,
    OrderCharge,
    BalanceSet
);

impl Payload for HoldEvent {
    fn aggregate(&self) -> AggregateRef<'_> {
        match &self.state {
            HoldSide::Account(state) => AggregateRef::Account {
                id: &self.account_id,
                state,
            },
            HoldSide::Hold(state) => AggregateRef::Hold {
                id: &self.hold_id,
                state,
            },
        }
    }
    fn account_state_mut(&mut self) -> Option<&mut AccountState> {
        match &mut self.state {
            HoldSide::Account(state) => Some(state),
            HoldSide::Hold(_) => None,
        }
    }
}

impl Payload for OrderEvent {
    fn aggregate(&self) -> AggregateRef<'_> {
        AggregateRef::Order {
            id: &self.order_id,
            state: &self.state,
        }
    }
}

impl Payload for OrderRefund {
    fn aggregate(&self) -> AggregateRef<'_> {
        AggregateRef::Order {
            id: &self.order_id,
            state: &self.state,
        }
    }
}

impl Payload for TransferReversal {
    fn aggregate(&self) -> AggregateRef<'_> {
        AggregateRef::Transfer {
            id: &self.transfer_id,
            state: &self.state,
        }
    }
}

impl Payload for BatchSubmitted {
    fn aggregate(&self) -> AggregateRef<'_> {
        AggregateRef::Batch(&self.batch_id)
    }
}

impl Payload for BatchPartApplied {
    fn aggregate(&self) -> AggregateRef<'_> {
        AggregateRef::BatchPart {
            batch_id: &self.batch_id,
            chunk: self.chunk,
            part: self.part,
        }
    }
}

impl Payload for JobFailed {
    fn aggregate(&self) -> AggregateRef<'_> {
        AggregateRef::Job(&self.failed_job_id)
    }
}

impl Payload for IdempotencyRecorded {
    fn aggregate(&self) -> AggregateRef<'_> {
        AggregateRef::Idempotency
    }
}
