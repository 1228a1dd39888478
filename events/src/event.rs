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

use crate::account::AccountState;
use crate::batch::{BatchItem, BatchState, ItemRejected};
use crate::hold::HoldState;
use crate::ids::{AccountId, Metadata, OwnerId, Reference};
use crate::money::Amount;
use crate::order::OrderState;
use crate::subjects;
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

    pub fn from_json(payload: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(payload)
    }
}

/// Every word an account's history uses (see [`Event::history_type`]).
pub const HISTORY_TYPES: [&str; 7] = [
    "opening",
    "deposit",
    "withdrawal",
    "transfer",
    "adjustment",
    "payment",
    "hold",
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
}

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
trait Payload {
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

/// `account_opened`: the state is the new account (version 1, balance 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountOpened {
    pub account_id: AccountId,
    pub state: AccountState,
}

/// `funds_deposited` / `funds_withdrawn`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountMovement {
    pub account_id: AccountId,
    pub amount: Amount,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    pub state: AccountState,
}

/// `transfer_sent` (on the sender) / `transfer_received` (on the receiver): the two legs of
/// one transfer, committed in one atomic batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferLeg {
    pub account_id: AccountId,
    pub transfer_id: Uuid,
    pub amount: Amount,
    /// The other side: the receiver on `transfer_sent`, the sender on `transfer_received`.
    pub counterparty_account_id: AccountId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    pub state: AccountState,
}

/// `order_placed` / `order_paid` / `order_rejected`, on `ledger.order.<order_id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderEvent {
    pub order_id: Uuid,
    pub state: OrderState,
}

/// `order_charged`: the account's side of a paid order, committed atomically with
/// `order_paid`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderCharge {
    pub account_id: AccountId,
    pub order_id: Uuid,
    pub amount: Amount,
    pub state: AccountState,
}

/// `hold_placed` / `hold_captured` / `hold_voided`: journaled twice in one atomic batch — on
/// the account (with the account's post-state) and on `ledger.hold.<hold_id>` (with the hold's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldEvent {
    pub hold_id: Uuid,
    pub account_id: AccountId,
    /// The hold's whole amount: reserved when placed, released when captured or voided.
    pub hold_amount: Amount,
    /// Taken from the balance (captures only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    pub state: HoldSide,
}

/// Which aggregate a hold event's message belongs to, by its post-state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HoldSide {
    Account(AccountState),
    Hold(HoldState),
}

/// `batch_submitted`: one chunk (≤ 1000 items) of a balance batch, on `ledger.batch.<batch_id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchSubmitted {
    pub batch_id: Uuid,
    /// 0-based index of this chunk.
    pub chunk: u32,
    pub items: Vec<BatchItem>,
    pub state: BatchState,
}

/// `balance_set`: an account's balance set by a balance batch (history type `adjustment`). On
/// an account that does not exist it opens it (post-state version 1, `previous` 0): the
/// account's first event is then this one rather than `account_opened`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BalanceSet {
    pub account_id: AccountId,
    /// The balance asked for.
    pub balance: i64,
    /// The balance before (0 for an account the batch opened): the history's signed amount
    /// is `balance - previous`.
    pub previous: i64,
    pub batch_id: Uuid,
    /// The item's own job (the envelope's job is the batch part's).
    pub item_job_id: Uuid,
    pub state: AccountState,
}

/// `batch_part_applied`: the record that a part of a chunk was applied, committed in the same
/// atomic batch as the part's events with expected sequence 0 — a second attempt at the same
/// part fails its check and changes nothing. On `ledger.batch.<batch_id>.<chunk>.<part>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchPartApplied {
    pub batch_id: Uuid,
    pub chunk: u32,
    pub part: u32,
    pub applied: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<ItemRejected>,
}

/// `job_failed`: an executor gave up on a message (undecodable, or still failing after its
/// bounded retries). On `ledger.job.<job_id>` with expected sequence 0: recorded once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFailed {
    /// The job that failed (named apart from the envelope's own `job_id`, which the flat
    /// JSON already uses).
    pub failed_job_id: Uuid,
    /// The executor that gave up.
    pub executor: String,
    /// Where the message was: its subject and stream sequence.
    pub subject: String,
    pub seq: u64,
    pub code: String,
    pub detail: String,
}

/// `idempotency_recorded`: binds a caller's `Idempotency-Key` to the request it first came
/// with and the answer it got, forever.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdempotencyRecorded {
    pub principal: OwnerId,
    /// SHA-256 (hex) of method, path and canonical JSON body.
    pub fingerprint: String,
    /// The HTTP status of the original answer.
    pub status: u16,
    /// The original answer's body.
    pub response: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::AccountStatus;
    use crate::money::Currency;

    fn state() -> AccountState {
        AccountState {
            version: 2,
            balance: 500,
            held: 0,
            currency: Currency::default(),
            status: AccountStatus::Open,
            owner_id: OwnerId::parse("alice").expect("valid"),
            overdraft_limit: 0,
        }
    }

    #[test]
    fn envelopes_round_trip_through_json() {
        let event = Event::FundsDeposited(AccountMovement {
            account_id: AccountId::parse("alice").expect("valid"),
            amount: Amount::new(500).expect("valid"),
            reference: Some(Reference::parse("INV-1").expect("valid")),
            metadata: None,
            state: state(),
        });
        let envelope = Envelope::new(Uuid::now_v7(), Utc::now(), event);
        let decoded = Envelope::from_json(&envelope.to_json()).expect("decodes");
        assert_eq!(decoded, envelope);
    }

    #[test]
    fn the_wire_shape_is_flat_with_a_type_tag_and_a_nested_state() {
        let event = Event::FundsWithdrawn(AccountMovement {
            account_id: AccountId::parse("alice").expect("valid"),
            amount: Amount::new(7).expect("valid"),
            reference: None,
            metadata: None,
            state: state(),
        });
        let json: serde_json::Value =
            serde_json::from_slice(&Envelope::new(Uuid::now_v7(), Utc::now(), event).to_json())
                .expect("json");
        assert_eq!(json["type"], "funds_withdrawn");
        assert_eq!(json["schema"], 1);
        assert_eq!(json["account_id"], "alice");
        assert_eq!(json["amount"], 7);
        assert_eq!(json["state"]["balance"], 500);
        assert_eq!(json["state"]["currency"], "USD");
        assert_eq!(json["state"]["status"], "open");
        assert!(json.get("reference").is_none());
    }

    #[test]
    fn an_invalid_amount_in_the_journal_is_a_decode_error() {
        let raw = br#"{"event_id":"0193a0c4-0000-7000-8000-000000000000","schema":1,
            "occurred_at":"2026-01-01T00:00:00Z","job_id":"0193a0c4-0000-7000-8000-000000000000",
            "type":"funds_deposited","account_id":"alice","amount":0,
            "state":{"version":2,"balance":0,"held":0,"currency":"USD","status":"open",
            "owner_id":"alice","overdraft_limit":0}}"#;
        assert!(Envelope::from_json(raw).is_err());
    }
}

#[cfg(test)]
mod shape_tests {
    use super::*;

    /// Every event's fields sit beside the envelope's in one flat JSON object: none may reuse
    /// an envelope field name, or the message would not decode.
    #[test]
    fn a_job_failure_round_trips_beside_the_envelope() {
        let failed = Event::JobFailed(JobFailed {
            failed_job_id: Uuid::now_v7(),
            executor: "payments".into(),
            subject: "ledger.order.x".into(),
            seq: 7,
            code: "undecodable".into(),
            detail: "not a Tally event".into(),
        });
        let envelope = Envelope::new(Uuid::now_v7(), Utc::now(), failed);
        assert_eq!(
            Envelope::from_json(&envelope.to_json()).ok(),
            Some(envelope)
        );
    }
}
