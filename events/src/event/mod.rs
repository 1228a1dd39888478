//! The journal's message format: one JSON envelope per message.
//!
//! ```json
//! {"event_id":"0193…","schema":1,"occurred_at":"2026-11-22T00:00:00Z","job_id":"0193…",
//!  "type":"funds_deposited","account_id":"alice","amount":500,
//!  "state":{"version":2,"balance":500,"held":0,"currency":"USD","status":"open",
//!           "owner_id":"alice","overdraft_limit":0}}
//! ```
//!
//! Every account event carries the account's post-state in `state`, so the last message on a
//! subject is the aggregate's current state.
//!
//! `payloads.rs` holds each event's fields; `aggregate.rs` says which aggregate each payload's
//! message belongs to; the accessors of [`Event`] below follow from the two.

mod aggregate;
mod payloads;

pub use aggregate::AggregateRef;
pub use payloads::*;

use crate::account::AccountState;
use crate::hold::HoldState;
use crate::ids::AccountId;
use crate::order::OrderState;
use crate::subjects;
use crate::transfer::TransferState;
use aggregate::Payload;
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Version of the envelope and event shapes written by this code.
pub const SCHEMA: u16 = 1;

/// One journaled message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// UUIDv7; also the message's `Nats-Msg-Id`.
    pub event_id: Uuid,
    pub schema: u16,
    pub occurred_at: DateTime<Utc>,
    /// The command (job) that produced this event; all events of one command share it.
    pub job_id: Uuid,
    #[serde(flatten)]
    pub event: Event,
}

impl Envelope {
    /// A new envelope with a fresh event id. `occurred_at` is kept to the microsecond, the
    /// precision the read models (PostgreSQL `timestamptz`) store, so both say the same.
    pub fn new(job_id: Uuid, occurred_at: DateTime<Utc>, event: Event) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            schema: SCHEMA,
            occurred_at: occurred_at.trunc_subsecs(6),
            job_id,
            event,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serializing these plain data types cannot fail: no maps with non-string keys, no
        // custom serializers that error.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes a message. The same result as the derived `Deserialize` (which other formats
    /// and `serde_json::Value`s use), reached in two passes over the bytes, each straight into
    /// its own struct: the envelope's fields with the `type` tag, then the tagged payload,
    /// which skips the envelope's fields as it would any unknown one. The derived decoder
    /// (`flatten` over an internally tagged enum) first copies every field into serde's
    /// buffered `Content` and then reads that: a profile of bulk transfers found envelope
    /// decoding at 8 % of the services' CPU, most of it in that copy.
    pub fn from_json(payload: &[u8]) -> Result<Self, serde_json::Error> {
        #[derive(Deserialize)]
        struct Head<'a> {
            event_id: Uuid,
            schema: u16,
            occurred_at: DateTime<Utc>,
            job_id: Uuid,
            #[serde(rename = "type", borrow)]
            tag: std::borrow::Cow<'a, str>,
        }
        let head: Head<'_> = serde_json::from_slice(payload)?;
        Ok(Self {
            event_id: head.event_id,
            schema: head.schema,
            occurred_at: head.occurred_at,
            job_id: head.job_id,
            event: Event::from_tagged_json(&head.tag, payload)?,
        })
    }
}

/// Every word an account's history uses (see [`Event::history_type`]).
pub const HISTORY_TYPES: [&str; 9] = [
    "opening",
    "deposit",
    "withdrawal",
    "transfer",
    "adjustment",
    "payment",
    "hold",
    "reversal",
    "refund",
];

/// The one table of event types: each row is a variant, its payload, its `type` tag (also the
/// `Ledger-Event-Type` header) and its word in an account's history (`None`: not an account
/// event). Adding an event type is a row here and, for a new payload, its struct with a
/// [`Payload`] impl saying which aggregate its message belongs to; every accessor of
/// [`Event`] follows from those two.
macro_rules! event_table {
    ($( $(#[$doc:meta])* $variant:ident($payload:ty) = $tag:literal, history $history:expr; )*) => {
        /// Every event type in the journal, tagged by `type`.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type")]
        pub enum Event {
            $( $(#[$doc])* #[serde(rename = $tag)] $variant($payload), )*
        }

        /// Every `type` tag, in the table's order.
        pub const EVENT_TYPES: &[&str] = &[$($tag),*];

        impl Event {
            /// The `type` tag, also sent as the `Ledger-Event-Type` header.
            pub fn event_type(&self) -> &'static str {
                match self { $( Self::$variant(_) => $tag, )* }
            }

            /// The word for this event in an account's history (`type` in the query API and
            /// its filter); `None` for events that are not account events.
            ///
            /// `opening` is a seventh word beside the design's six (deposit, withdrawal,
            /// transfer, adjustment, payment, hold): the opening is an account event too, and
            /// keeping it as version 1 makes every account's history gapless from its start.
            pub fn history_type(&self) -> Option<&'static str> {
                match self { $( Self::$variant(_) => $history, )* }
            }

            /// The event tagged `tag`, its payload read from `payload` (a whole envelope:
            /// fields the payload does not name are skipped).
            fn from_tagged_json(tag: &str, payload: &[u8]) -> Result<Self, serde_json::Error> {
                match tag {
                    $( $tag => serde_json::from_slice(payload).map(Self::$variant), )*
                    other => Err(serde::de::Error::unknown_variant(other, EVENT_TYPES)),
                }
            }

            fn payload(&self) -> &dyn Payload {
                match self { $( Self::$variant(p) => p, )* }
            }

            fn payload_mut(&mut self) -> &mut dyn Payload {
                match self { $( Self::$variant(p) => p, )* }
            }
        }
    };
}

event_table! {
    AccountOpened(AccountOpened) = "account_opened", history Some("opening");
    FundsDeposited(AccountMovement) = "funds_deposited", history Some("deposit");
    FundsWithdrawn(AccountMovement) = "funds_withdrawn", history Some("withdrawal");
    TransferSent(TransferLeg) = "transfer_sent", history Some("transfer");
    TransferReceived(TransferLeg) = "transfer_received", history Some("transfer");
    IdempotencyRecorded(IdempotencyRecorded) = "idempotency_recorded", history None;
    OrderPlaced(OrderEvent) = "order_placed", history None;
    OrderPaid(OrderEvent) = "order_paid", history None;
    OrderRejected(OrderEvent) = "order_rejected", history None;
    OrderCharged(OrderCharge) = "order_charged", history Some("payment");
    HoldPlaced(HoldEvent) = "hold_placed", history Some("hold");
    HoldCaptured(HoldEvent) = "hold_captured", history Some("hold");
    HoldVoided(HoldEvent) = "hold_voided", history Some("hold");
    BatchSubmitted(BatchSubmitted) = "batch_submitted", history None;
    BalanceSet(BalanceSet) = "balance_set", history Some("adjustment");
    BatchPartApplied(BatchPartApplied) = "batch_part_applied", history None;
    JobFailed(JobFailed) = "job_failed", history None;
    ReversalSent(TransferLeg) = "reversal_sent", history Some("reversal");
    ReversalReceived(TransferLeg) = "reversal_received", history Some("reversal");
    TransferReversed(TransferReversal) = "transfer_reversed", history None;
    OrderRefunded(OrderRefund) = "order_refunded", history None;
    RefundCredited(OrderCharge) = "refund_credited", history Some("refund");
}
impl Event {
    /// The aggregate this event's message belongs to, and its post-state.
    pub fn aggregate(&self) -> AggregateRef<'_> {
        self.payload().aggregate()
    }

    /// The hold event's parts, for hold events (either side).
    pub fn hold(&self) -> Option<&HoldEvent> {
        match self {
            Self::HoldPlaced(e) | Self::HoldCaptured(e) | Self::HoldVoided(e) => Some(e),
            _ => None,
        }
    }

    /// The hold's post-state, for the hold-side message of a hold event.
    pub fn hold_state(&self) -> Option<&HoldState> {
        match self.aggregate() {
            AggregateRef::Hold { state, .. } => Some(state),
            _ => None,
        }
    }

    /// The subject this event is journaled on (`None` for idempotency records, whose subject
    /// is a hash only the writer knows).
    pub fn subject(&self) -> Option<String> {
        Some(match self.aggregate() {
            AggregateRef::Account { id, .. } => subjects::account(id),
            AggregateRef::Hold { id, .. } => subjects::hold(id),
            AggregateRef::Order { id, .. } => subjects::order(id),
            AggregateRef::Transfer { id, .. } => subjects::transfer(id),
            AggregateRef::Batch(id) => subjects::batch(id),
            AggregateRef::BatchPart {
                batch_id,
                chunk,
                part,
            } => subjects::batch_part(batch_id, chunk, part),
            AggregateRef::Job(id) => subjects::job(id),
            AggregateRef::Idempotency => return None,
        })
    }

    /// The order this event belongs to, for order events (not `order_charged`, which is the
    /// account's side of a payment).
    pub fn order_id(&self) -> Option<&Uuid> {
        match self.aggregate() {
            AggregateRef::Order { id, .. } => Some(id),
            _ => None,
        }
    }

    /// The order's post-state, for order events.
    pub fn order_state(&self) -> Option<&OrderState> {
        match self.aggregate() {
            AggregateRef::Order { state, .. } => Some(state),
            _ => None,
        }
    }

    /// The transfer's post-state, for `transfer_reversed`.
    pub fn transfer_state(&self) -> Option<&TransferState> {
        match self.aggregate() {
            AggregateRef::Transfer { state, .. } => Some(state),
            _ => None,
        }
    }

    /// The account this event belongs to, for account events.
    pub fn account_id(&self) -> Option<&AccountId> {
        match self.aggregate() {
            AggregateRef::Account { id, .. } => Some(id),
            _ => None,
        }
    }

    /// The account's post-state, for account events.
    pub fn account_state(&self) -> Option<&AccountState> {
        match self.aggregate() {
            AggregateRef::Account { state, .. } => Some(state),
            _ => None,
        }
    }

    /// The same event with `state` replaced: `decide` builds events with the prior state as a
    /// placeholder and fills in `evolve`'s answer, so the arithmetic lives in one place.
    pub fn with_account_state(mut self, new_state: AccountState) -> Self {
        if let Some(state) = self.payload_mut().account_state_mut() {
            *state = new_state;
        }
        self
    }
}

#[cfg(test)]
mod tests;
