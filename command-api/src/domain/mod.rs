//! The write side's decisions: pure, synchronous, no I/O.
//!
//! [`decide`] takes the current state of the aggregates a command touches (through
//! [`Aggregates`]) and answers with the events to journal (each carrying its post-state,
//! computed by `events::Evolve`) and the [`Outcome`] to report, or a
//! [`DomainError`] — a business rejection (`error`). Infrastructure failures never appear here.
//! - [`account`]: open, deposit, withdraw, transfer;
//! - [`order`]: place an order, pay or reject it, refund it;
//! - [`reversal`]: move a transfer's money back, in parts or whole;
//! - [`hold`], [`batch`]: holds on an account's money, and balance batches;
//! - [`bulk`]: many transfers in one command, all or each on its own.
//!
//! The domain names what it reads by [`AggregateKey`]; where an aggregate is journaled (its
//! subject) is the writer's business.

pub mod account;
pub mod batch;
pub mod bulk;
mod error;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod hold;
pub mod order;
pub mod reversal;

pub use account::{MoveFunds, OpenAccount, TransferFunds};
pub use batch::{ApplyBatchPart, SubmitBatch};
pub use bulk::{BulkItem, TransferBatch};
pub use error::DomainError;
pub use hold::{CaptureHold, ExpireHold, PlaceHold, VoidHold};
pub use order::{PayOrder, PlaceOrder, RefundOrder};
pub use reversal::ReverseTransfer;

use events::{
    AccountId, AccountState, Amount, Event, IdempotencyKey, OrderState, OwnerId, TransferState,
};
use uuid::Uuid;

/// The current states a decision may read.
pub trait Aggregates {
    fn account(&self, id: &AccountId) -> Option<&AccountState>;
    fn order(&self, id: &Uuid) -> Option<&OrderState>;
    fn hold(&self, id: &Uuid) -> Option<&events::HoldState>;
    /// A transfer's state once it has been reversed (`None`: never reversed, or no such
    /// transfer).
    fn transfer(&self, id: &Uuid) -> Option<&TransferState>;
    /// Whether the aggregate has been journaled at all (for records that carry no state).
    fn recorded(&self, key: &AggregateKey) -> bool;
}

/// An aggregate a command reads or writes: one consistency boundary, one journal subject
/// (the writer maps keys to subjects).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AggregateKey {
    Account(AccountId),
    Order(Uuid),
    Hold(Uuid),
    /// A transfer's reversals (its subject is written by the first one).
    Transfer(Uuid),
    /// A balance batch as submitted (all its chunks).
    Batch(Uuid),
    /// One part of a batch chunk, recorded once applied.
    BatchPart {
        batch_id: Uuid,
        chunk: u32,
        part: u32,
    },
    /// A job an executor gave up on.
    Job(Uuid),
    /// A caller's `Idempotency-Key`: the first request's fingerprint and answer (`part` 0),
    /// or one part's answer of a request answered in parts (bulk transfers).
    Idempotency {
        principal: OwnerId,
        key: IdempotencyKey,
        part: u32,
    },
}

/// Who issues a command: a JWT's subject, and whether it carries the admin role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub principal: OwnerId,
    pub admin: bool,
}

impl Actor {
    /// Users act on their own accounts only; admins on all.
    pub fn may_act_on(&self, account: &AccountState) -> bool {
        self.may_act_for(&account.owner_id)
    }

    /// The ownership rule (`OwnerId::allows`, shared with the query side), the one way the
    /// command side asks it: users act for themselves only; admins for anyone.
    pub fn may_act_for(&self, owner: &OwnerId) -> bool {
        owner.allows(&self.principal, self.admin)
    }
}

/// Everything the write side can be asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    OpenAccount(OpenAccount),
    DepositFunds(MoveFunds),
    WithdrawFunds(MoveFunds),
    TransferFunds(TransferFunds),
    ReverseTransfer(ReverseTransfer),
    TransferBatch(TransferBatch),
    PlaceOrder(PlaceOrder),
    RefundOrder(RefundOrder),
    PayOrder(PayOrder),
    PlaceHold(PlaceHold),
    CaptureHold(CaptureHold),
    VoidHold(VoidHold),
    ExpireHold(ExpireHold),
    SubmitBatch(SubmitBatch),
    ApplyBatchPart(ApplyBatchPart),
    /// An executor gives up on a job: record it, once.
    FailJob(events::JobFailed),
}

impl Command {
    /// The command's name in metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::OpenAccount(_) => "open_account",
            Self::DepositFunds(_) => "deposit",
            Self::WithdrawFunds(_) => "withdraw",
            Self::TransferFunds(_) => "transfer",
            Self::ReverseTransfer(_) => "reverse_transfer",
            Self::TransferBatch(_) => "transfer_batch",
            Self::PlaceOrder(_) => "place_order",
            Self::RefundOrder(_) => "refund_order",
            Self::PayOrder(_) => "pay_order",
            Self::PlaceHold(_) => "place_hold",
            Self::CaptureHold(_) => "capture_hold",
            Self::VoidHold(_) => "void_hold",
            Self::ExpireHold(_) => "expire_hold",
            Self::SubmitBatch(_) => "submit_batch",
            Self::ApplyBatchPart(_) => "apply_batch_part",
            Self::FailJob(_) => "fail_job",
        }
    }

    /// The aggregates whose state the decision needs (and that it may write).
    pub fn aggregates(&self) -> Vec<AggregateKey> {
        use AggregateKey::{Account, Hold, Order};
        match self {
            Self::OpenAccount(c) => vec![Account(c.account_id.clone())],
            Self::DepositFunds(c) | Self::WithdrawFunds(c) => vec![Account(c.account_id.clone())],
            Self::TransferFunds(c) => vec![Account(c.from.clone()), Account(c.to.clone())],
            Self::ReverseTransfer(c) => vec![
                AggregateKey::Transfer(c.transfer_id),
                Account(c.transfer.to_account_id.clone()),
                Account(c.transfer.from_account_id.clone()),
            ],
            Self::TransferBatch(c) => c.aggregates(),
            Self::PlaceOrder(c) => vec![Order(c.order_id)],
            Self::RefundOrder(c) => vec![Order(c.order_id), Account(c.account_id.clone())],
            Self::PayOrder(c) => vec![Order(c.order_id), Account(c.account_id.clone())],
            Self::PlaceHold(c) => vec![Account(c.account_id.clone()), Hold(c.hold_id)],
            Self::CaptureHold(c) => vec![Account(c.account_id.clone()), Hold(c.hold_id)],
            Self::VoidHold(c) => vec![Account(c.account_id.clone()), Hold(c.hold_id)],
            Self::ExpireHold(c) => vec![Account(c.account_id.clone()), Hold(c.hold_id)],
            Self::SubmitBatch(c) => vec![AggregateKey::Batch(c.batch_id)],
            Self::FailJob(f) => vec![AggregateKey::Job(f.failed_job_id)],
            Self::ApplyBatchPart(c) => std::iter::once(AggregateKey::BatchPart {
                batch_id: c.batch_id,
                chunk: c.chunk,
                part: c.part,
            })
            .chain(c.items.iter().map(|i| Account(i.account_id.clone())))
            .collect(),
        }
    }

    /// The most events a decision can produce: sizes group-commit batches without deciding.
    pub fn events_max(&self) -> usize {
        match self {
            Self::ReverseTransfer(_) => 3,
            Self::TransferFunds(_)
            | Self::PayOrder(_)
            | Self::RefundOrder(_)
            | Self::PlaceHold(_)
            | Self::CaptureHold(_)
            | Self::VoidHold(_)
            | Self::ExpireHold(_) => 2,
            Self::SubmitBatch(c) => c.items.len().div_ceil(events::batch::CHUNK_LEN_MAX).max(1),
            Self::TransferBatch(c) => 2 * c.transfers.len(),
            Self::ApplyBatchPart(c) => c.items.len() + 1,
            Self::FailJob(_) => 1,
            _ => 1,
        }
    }
}

/// What a command did, for the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    AccountOpened {
        /// false: the same account existed already (an idempotent re-open).
        created: bool,
        account_id: AccountId,
        state: AccountState,
    },
    FundsMoved {
        account_id: AccountId,
        amount: Amount,
        state: AccountState,
    },
    Transferred {
        transfer_id: Uuid,
        amount: Amount,
        from: (AccountId, AccountState),
        to: (AccountId, AccountState),
    },
    /// Part or all of a transfer moved back (boxed: the largest outcome, and rare).
    Reversed(Box<Reversal>),
    /// Part or all of an order's charge given back to its account (boxed, as reversals).
    OrderRefunded(Box<Refund>),
    OrderPlaced {
        /// false: the same order existed already.
        created: bool,
        order_id: Uuid,
        state: OrderState,
    },
    /// An order paid or rejected now — or earlier (then nothing was journaled now).
    OrderDecided { order_id: Uuid, state: OrderState },
    /// A job's failure recorded now (or earlier: `already`).
    JobFailed { job_id: Uuid, already: bool },
    /// A hold placed, captured, voided or expired, and the account after it.
    /// A balance batch journaled (its chunks wait for the batch executor).
    BatchSubmitted { batch_id: Uuid, items: usize },
    /// A part of a batch chunk applied now (or earlier: `already`).
    BatchPartApplied {
        already: bool,
        applied: usize,
        rejected: usize,
    },
    HoldChanged {
        hold_id: Uuid,
        hold: events::HoldState,
        account_id: AccountId,
        account: AccountState,
    },
    /// Transfers decided together: each item `Transferred` or rejected (atomic: none is).
    TransfersBatched { atomic: bool, items: Vec<BulkItem> },
}

impl Outcome {
    /// Whether an `Idempotency-Key` binds this answer even when nothing else was written: a
    /// bulk answer lists its rejections beside its transfers, and a repeat must replay both
    /// (ADR 0017).
    pub fn recorded_without_events(&self) -> bool {
        matches!(self, Self::TransfersBatched { .. })
    }
}

/// The aggregates that rejected parts of a partly accepted command read (a bulk item's
/// accounts): the writer checks such states again, as it does a rejected command's.
pub fn rejected_reads(command: &Command, outcome: &Outcome) -> Vec<AggregateKey> {
    match (command, outcome) {
        (Command::TransferBatch(c), Outcome::TransfersBatched { items, .. }) => {
            c.rejected_reads(items)
        }
        _ => Vec::new(),
    }
}

/// A reversal done: `from` is the account the money left now (the transfer's receiver), `to`
/// the one it returned to (the transfer's sender).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reversal {
    pub transfer_id: Uuid,
    pub amount: Amount,
    pub transfer: TransferState,
    pub from: (AccountId, AccountState),
    pub to: (AccountId, AccountState),
}

/// A refund done: the order and its account after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub order_id: Uuid,
    pub amount: Amount,
    pub order: OrderState,
    pub account: (AccountId, AccountState),
}

/// The events to journal, in order, and the outcome they amount to.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub events: Vec<Event>,
    pub outcome: Outcome,
}

/// Decides `command` for `actor` given the current states of what it touches.
pub fn decide(
    actor: &Actor,
    command: &Command,
    states: &impl Aggregates,
) -> Result<Decision, DomainError> {
    match command {
        Command::OpenAccount(c) => account::open(c, states.account(&c.account_id)),
        Command::DepositFunds(c) => account::deposit(actor, c, states),
        Command::WithdrawFunds(c) => account::withdraw(actor, c, states),
        Command::TransferFunds(c) => account::transfer(actor, c, states),
        Command::ReverseTransfer(c) => reversal::reverse(actor, c, states),
        Command::TransferBatch(c) => bulk::decide_batch(actor, c, states),
        Command::PlaceOrder(c) => order::place(actor, c, states),
        Command::RefundOrder(c) => order::refund(actor, c, states),
        Command::PayOrder(c) => order::pay(c, states),
        Command::PlaceHold(c) => hold::place(actor, c, states),
        Command::CaptureHold(c) => hold::capture(actor, c, states),
        Command::VoidHold(c) => hold::void(actor, c, states),
        Command::ExpireHold(c) => hold::expire(c, states),
        Command::SubmitBatch(c) => batch::submit(actor, c, states),
        Command::ApplyBatchPart(c) => batch::apply_part(c, states),
        Command::FailJob(f) => {
            let already = states.recorded(&AggregateKey::Job(f.failed_job_id));
            Ok(Decision {
                events: if already {
                    vec![]
                } else {
                    vec![Event::JobFailed(f.clone())]
                },
                outcome: Outcome::JobFailed {
                    job_id: f.failed_job_id,
                    already,
                },
            })
        }
    }
}
