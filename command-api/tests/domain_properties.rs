//! Property tests of the pure decisions: random command sequences (accounts with random
//! overdraft limits and currencies, deposits, withdrawals, transfers, holds placed, captured,
//! voided and expired, orders placed, paid and refunded, transfers reversed, balance batches)
//! are decided one after the
//! other. Every accepted decision's events are folded into an in-memory journal with
//! each aggregate's `Evolve::evolve`, as the writer and `projector verify` do; a
//! reference model, written from the commands' meaning alone, predicts each answer.
//!
//! After every step: each event's post-state is what `evolve` makes of the state before it,
//! versions grow by one per event, every event lands on a subject the command declared, each
//! answer (accepted, or which rejection) is the model's, each account matches the model, no
//! balance or available balance goes below `-overdraft_limit`, `held` is the sum of the
//! account's placed holds, and money is conserved: the sum of balances is deposits −
//! withdrawals − captures − order charges + refunds ± balance sets (reversals move money
//! between accounts and change no total), no transfer's reversed total exceeds its amount and
//! no order's refunds exceed its charge.
//!
//! `PROPTEST_CASES` raises the number of sequences for a deeper run.

use chrono::{DateTime, Duration, TimeZone, Utc};
use command_api::domain::{
    Actor, AggregateKey, Aggregates, ApplyBatchPart, CaptureHold, Command, Decision, DomainError,
    ExpireHold, MoveFunds, OpenAccount, PayOrder, PlaceHold, PlaceOrder, RefundOrder,
    ReverseTransfer, SubmitBatch, TransferFunds, VoidHold, decide,
};
use command_api::writer::subject_of;
use events::batch::{BatchItem, item_job_id};
use events::{
    AMOUNT_MAX, AccountId, AccountState, Amount, Currency, Envelope, Event, Evolve, HoldState,
    HoldStatus, OrderState, OrderStatus, OwnerId, TransferState,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use std::collections::{BTreeMap, HashMap, HashSet};
use uuid::Uuid;

/// Sequences per run: enough to reach every rule many times, few enough to finish in seconds.
const CASES_DEFAULT: u32 = 256;
/// Longest command sequence: holds, orders and batches need a few steps to set up, and
/// shrinking stays quick below this.
const SEQUENCE_LEN_MAX: usize = 40;
const ACCOUNTS: usize = 4;
/// Users `u0`..`u2`, the possible owners.
const USERS: usize = 3;
const HOLDS: usize = 3;
const ORDERS: usize = 3;
const CURRENCIES: [&str; 2] = ["USD", "EUR"];

/// Who issues a command: mostly the account's owner, so that sequences get past the
/// ownership check; sometimes an admin, or any user (often not the owner).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Owner,
    Admin,
    User(usize),
}

fn who() -> impl Strategy<Value = Who> + Clone {
    prop_oneof![6 => Just(Who::Owner), 2 => Just(Who::Admin), 2 => (0..USERS).prop_map(Who::User)]
}

/// One step, with small indexes in place of ids so that shrinking keeps sequences readable.
#[derive(Debug, Clone)]
enum Op {
    Open {
        account: usize,
        owner: usize,
        currency: usize,
        overdraft_limit: i64,
    },
    Deposit {
        actor: Who,
        account: usize,
        amount: i64,
    },
    Withdraw {
        actor: Who,
        account: usize,
        amount: i64,
    },
    Transfer {
        actor: Who,
        from: usize,
        to: usize,
        amount: i64,
    },
    PlaceHold {
        actor: Who,
        account: usize,
        hold: usize,
        amount: i64,
        expires_in_s: Option<i64>,
    },
    /// `account: None`: the hold's own account.
    CaptureHold {
        actor: Who,
        account: Option<usize>,
        hold: usize,
        amount: Option<i64>,
    },
    VoidHold {
        actor: Who,
        account: Option<usize>,
        hold: usize,
    },
    ExpireHold {
        hold: usize,
    },
    PlaceOrder {
        actor: Who,
        order: usize,
        account: usize,
        amount: i64,
        currency: Option<usize>,
    },
    PayOrder {
        order: usize,
    },
    /// `transfer` picks one of the transfers made so far (none yet: the step is skipped);
    /// `actor: Owner` is the receiver's owner.
    Reverse {
        actor: Who,
        transfer: usize,
        amount: Option<i64>,
    },
    /// By an admin, as the HTTP edge allows; `pay_first`: the payment executor's turn comes
    /// just before (paid orders are otherwise too rare for refunds to reach them).
    Refund {
        order: usize,
        amount: Option<i64>,
        pay_first: bool,
    },
    /// A balance batch submitted, then applied (`twice`: its part redelivered).
    SetBalances {
        items: Vec<(usize, i64)>,
        twice: bool,
    },
    Tick {
        seconds: i64,
    },
}

fn amount() -> impl Strategy<Value = i64> {
    prop_oneof![6 => 1..=500_i64, 1 => 1..=AMOUNT_MAX, 1 => Just(AMOUNT_MAX)]
}

fn open() -> impl Strategy<Value = Op> {
    (
        0..ACCOUNTS,
        0..USERS,
        prop_oneof![4 => Just(0_usize), 1 => Just(1_usize)],
        prop_oneof![3 => Just(0_i64), 2 => 1..=1_000_i64, 1 => Just(AMOUNT_MAX)],
    )
        .prop_map(|(account, owner, currency, overdraft_limit)| Op::Open {
            account,
            owner,
            currency,
            overdraft_limit,
        })
}

/// A few accounts opened first (so that most commands find one), then any steps.
fn sequence() -> impl Strategy<Value = Vec<Op>> {
    (
        proptest::collection::vec(open(), 1..=ACCOUNTS),
        proptest::collection::vec(op(), 0..=SEQUENCE_LEN_MAX - ACCOUNTS),
    )
        .prop_map(|(mut opens, steps)| {
            opens.extend(steps);
            opens
        })
}

fn op() -> impl Strategy<Value = Op> {
    let actor = who();
    let account = 0..ACCOUNTS;
    prop_oneof![
        3 => open(),
        4 => (actor.clone(), account.clone(), amount())
            .prop_map(|(actor, account, amount)| Op::Deposit { actor, account, amount }),
        3 => (actor.clone(), account.clone(), amount())
            .prop_map(|(actor, account, amount)| Op::Withdraw { actor, account, amount }),
        3 => (actor.clone(), account.clone(), account.clone(), amount())
            .prop_map(|(actor, from, to, amount)| Op::Transfer { actor, from, to, amount }),
        3 => (actor.clone(), account.clone(), 0..HOLDS, amount(), proptest::option::of(1..=300_i64))
            .prop_map(|(actor, account, hold, amount, expires_in_s)| Op::PlaceHold {
                actor, account, hold, amount, expires_in_s,
            }),
        2 => (actor.clone(), proptest::option::weighted(0.2, account.clone()), 0..HOLDS,
              proptest::option::of(amount()))
            .prop_map(|(actor, account, hold, amount)| Op::CaptureHold {
                actor, account, hold, amount,
            }),
        2 => (actor.clone(), proptest::option::weighted(0.2, account.clone()), 0..HOLDS)
            .prop_map(|(actor, account, hold)| Op::VoidHold { actor, account, hold }),
        1 => (0..HOLDS).prop_map(|hold| Op::ExpireHold { hold }),
        2 => (actor, 0..ORDERS, account.clone(), amount(),
              proptest::option::weighted(0.3, 0..CURRENCIES.len()))
            .prop_map(|(actor, order, account, amount, currency)| Op::PlaceOrder {
                actor, order, account, amount, currency,
            }),
        2 => (0..ORDERS).prop_map(|order| Op::PayOrder { order }),
        4 => (who(), 0..8_usize, proptest::option::of(prop_oneof![1..=300_i64, 1..=AMOUNT_MAX]))
            .prop_map(|(actor, transfer, amount)| Op::Reverse { actor, transfer, amount }),
        3 => (0..ORDERS, proptest::option::of(prop_oneof![4 => 1..=300_i64, 1 => 1..=AMOUNT_MAX]),
              any::<bool>())
            .prop_map(|(order, amount, pay_first)| Op::Refund { order, amount, pay_first }),
        1 => (proptest::collection::vec((account, prop_oneof![0..=1_000_i64, Just(AMOUNT_MAX)]), 1..4),
              any::<bool>())
            .prop_map(|(items, twice)| Op::SetBalances { items, twice }),
        2 => (1..=120_i64).prop_map(|seconds| Op::Tick { seconds }),
    ]
}

fn account_id(index: usize) -> AccountId {
    AccountId::parse(format!("a{index}")).expect("valid account id")
}

fn user(index: usize) -> String {
    format!("u{index}")
}

fn admin() -> Actor {
    Actor {
        principal: OwnerId::parse("root").expect("valid owner"),
        admin: true,
    }
}

fn principal(raw: &str) -> Actor {
    Actor {
        principal: OwnerId::parse(raw).expect("valid owner"),
        admin: false,
    }
}

fn hold_id(index: usize) -> Uuid {
    Uuid::from_u128(0x1000 + index as u128)
}

fn order_id(index: usize) -> Uuid {
    Uuid::from_u128(0x2000 + index as u128)
}

fn units(raw: i64) -> Amount {
    Amount::new(raw).expect("generated amounts are valid")
}

fn currency(index: usize) -> Currency {
    Currency::parse(CURRENCIES[index]).expect("valid currency")
}

/// The journal's last word per subject, built from events only (as the writer's cache and
/// `projector verify` are).
#[derive(Debug, Default)]
struct Journal {
    accounts: HashMap<AccountId, AccountState>,
    holds: HashMap<Uuid, HoldState>,
    orders: HashMap<Uuid, OrderState>,
    transfers: HashMap<Uuid, TransferState>,
    subjects: HashSet<String>,
}

impl Aggregates for Journal {
    fn account(&self, id: &AccountId) -> Option<&AccountState> {
        self.accounts.get(id)
    }
    fn order(&self, id: &Uuid) -> Option<&OrderState> {
        self.orders.get(id)
    }
    fn hold(&self, id: &Uuid) -> Option<&HoldState> {
        self.holds.get(id)
    }
    fn transfer(&self, id: &Uuid) -> Option<&TransferState> {
        self.transfers.get(id)
    }
    fn recorded(&self, key: &AggregateKey) -> bool {
        self.subjects.contains(&subject_of(key))
    }
}

impl Journal {
    /// Appends a decision's events in order, checking each against `evolve`.
    fn append(&mut self, command: &Command, events: &[Event]) -> Result<(), TestCaseError> {
        let declared: Vec<String> = command.aggregates().iter().map(subject_of).collect();
        prop_assert!(
            events.len() <= command.events_max(),
            "{} events for {}, at most {} declared",
            events.len(),
            command.kind(),
            command.events_max()
        );
        for event in events {
            // Every event decodes back to itself from its message, by the journal's decoder
            // and by the derived one.
            let envelope = Envelope::new(Uuid::now_v7(), Utc::now(), event.clone());
            let bytes = envelope.to_json();
            let fast = Envelope::from_json(&bytes).ok();
            let derived = serde_json::from_slice::<Envelope>(&bytes).ok();
            prop_assert_eq!(fast.as_ref(), Some(&envelope));
            prop_assert_eq!(derived.as_ref(), Some(&envelope));
            let subject = event.subject().expect("every decided event has a subject");
            prop_assert!(
                declared.contains(&subject),
                "{} written to {subject}, not among {declared:?}",
                event.event_type()
            );
            if let Some(id) = event.account_id() {
                let prev = self.accounts.get(id);
                let after = AccountState::evolve(prev, event)
                    .map_err(|e| TestCaseError::fail(format!("{event:?} does not follow: {e}")))?;
                prop_assert_eq!(
                    Some(&after),
                    event.account_state(),
                    "post-state of {:?}",
                    event
                );
                prop_assert_eq!(after.version, prev.map_or(1, |p| p.version + 1));
                self.accounts.insert(id.clone(), after);
            } else if let (Some(hold), Some(state)) = (event.hold(), event.hold_state()) {
                let prev = self.holds.get(&hold.hold_id);
                let after = HoldState::evolve(prev, event)
                    .map_err(|e| TestCaseError::fail(format!("{event:?} does not follow: {e}")))?;
                prop_assert_eq!(&after, state, "hold post-state of {:?}", event);
                prop_assert_eq!(after.version, prev.map_or(1, |p| p.version + 1));
                self.holds.insert(hold.hold_id, after);
            } else if let (Some(id), Some(state)) = (event.order_id(), event.order_state()) {
                let prev = self.orders.get(id);
                let after = OrderState::evolve(prev, event)
                    .map_err(|e| TestCaseError::fail(format!("{event:?} does not follow: {e}")))?;
                prop_assert_eq!(&after, state, "order post-state of {:?}", event);
                prop_assert_eq!(after.version, prev.map_or(1, |p| p.version + 1));
                self.orders.insert(*id, after);
            } else if let (Event::TransferReversed(reversal), Some(state)) =
                (event, event.transfer_state())
            {
                let prev = self.transfers.get(&reversal.transfer_id);
                let after = TransferState::evolve(prev, event)
                    .map_err(|e| TestCaseError::fail(format!("{event:?} does not follow: {e}")))?;
                prop_assert_eq!(&after, state, "transfer post-state of {:?}", event);
                prop_assert_eq!(after.version, prev.map_or(1, |p| p.version + 1));
                self.transfers.insert(reversal.transfer_id, after);
            }
            self.subjects.insert(subject);
        }
        Ok(())
    }
}

/// What the rules say, kept apart from the code under test.
#[derive(Debug, Clone)]
struct ModelAccount {
    owner: String,
    currency: usize,
    overdraft_limit: i64,
    balance: i64,
    held: i64,
}

#[derive(Debug, Clone)]
struct ModelHold {
    account: usize,
    amount: i64,
    status: HoldStatus,
    expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
struct ModelOrder {
    owner: String,
    account: usize,
    amount: i64,
    currency: Option<usize>,
    status: OrderStatus,
    refunded: i64,
}

/// A transfer made, and how much of it was moved back.
#[derive(Debug, Clone)]
struct ModelTransfer {
    id: Uuid,
    from: usize,
    to: usize,
    amount: i64,
    currency: usize,
    reversed: i64,
}

/// Money that entered or left the ledger, by way.
#[derive(Debug, Default)]
struct Flows {
    deposits: i128,
    withdrawals: i128,
    captures: i128,
    charges: i128,
    refunds: i128,
    sets: i128,
}

#[derive(Debug, Default)]
struct Model {
    accounts: BTreeMap<usize, ModelAccount>,
    holds: HashMap<usize, ModelHold>,
    orders: HashMap<usize, ModelOrder>,
    transfers: Vec<ModelTransfer>,
    flows: Flows,
}

/// The answer the model expects: accepted, or rejected with this [`DomainError`] variant.
type Expected = Result<(), &'static str>;

fn rejection(e: &DomainError) -> &'static str {
    match e {
        DomainError::AccountNotFound(_) => "AccountNotFound",
        DomainError::AccountExists(_) => "AccountExists",
        DomainError::InsufficientFunds { .. } => "InsufficientFunds",
        DomainError::CurrencyMismatch { .. } => "CurrencyMismatch",
        DomainError::SameAccount => "SameAccount",
        DomainError::BalanceOverflow(_) => "BalanceOverflow",
        DomainError::OrderExists(_) => "OrderExists",
        DomainError::OrderNotFound(_) => "OrderNotFound",
        DomainError::HoldNotFound(_) => "HoldNotFound",
        DomainError::BatchExists(_) => "BatchExists",
        DomainError::HoldExists(_) => "HoldExists",
        DomainError::HoldFinal(_) => "HoldFinal",
        DomainError::HoldExpired(_) => "HoldExpired",
        DomainError::CaptureExceedsHold { .. } => "CaptureExceedsHold",
        DomainError::TransferNotFound(_) => "TransferNotFound",
        DomainError::ReversalExceedsTransfer { .. } => "ReversalExceedsTransfer",
        DomainError::OrderNotPaid(_) => "OrderNotPaid",
        DomainError::RefundExceedsCharge { .. } => "RefundExceedsCharge",
        DomainError::BulkItemRejected { .. } => "BulkItemRejected",
    }
}

impl Model {
    /// The account if `actor` may act on it; "not found" otherwise, as for a missing one.
    fn owned(&self, actor: &Actor, account: usize) -> Result<&ModelAccount, &'static str> {
        self.accounts
            .get(&account)
            .filter(|a| actor.admin || a.owner == actor.principal.as_str())
            .ok_or("AccountNotFound")
    }

    /// The actor `who` stands for, on `account`.
    fn actor(&self, who: Who, account: usize) -> Actor {
        match who {
            Who::Admin => admin(),
            Who::User(index) => principal(&user(index)),
            Who::Owner => principal(
                self.accounts
                    .get(&account)
                    .map_or(user(0), |a| a.owner.clone())
                    .as_str(),
            ),
        }
    }

    fn funds(account: &ModelAccount, amount: i64) -> Expected {
        if account.balance - account.held - amount >= -account.overdraft_limit {
            Ok(())
        } else {
            Err("InsufficientFunds")
        }
    }

    /// Sum of balances as the flows say it must be.
    fn expected_total(&self) -> i128 {
        let f = &self.flows;
        f.deposits - f.withdrawals - f.captures - f.charges + f.refunds + f.sets
    }
}

/// Tallies across all sequences, so that a run shows what it exercised.
#[derive(Debug, Default)]
struct Tally {
    steps: usize,
    accepted: BTreeMap<&'static str, usize>,
    rejected: BTreeMap<&'static str, usize>,
}

/// One sequence: the commands, the model, the journal and the clock.
struct Run<'a> {
    journal: Journal,
    model: Model,
    now: DateTime<Utc>,
    batches: u128,
    tally: &'a mut Tally,
}

impl Run<'_> {
    /// Decides `command`, compares the answer with the model's, appends what was accepted.
    fn decide(
        &mut self,
        who: &Actor,
        command: Command,
        expected: Expected,
    ) -> Result<Option<Decision>, TestCaseError> {
        let answer = decide(who, &command, &self.journal);
        match (&answer, expected) {
            (Ok(_), Ok(())) => {}
            (Err(e), Err(name)) if rejection(e) == name => {}
            _ => {
                return Err(TestCaseError::fail(format!(
                    "{command:?} by {who:?}: decided {answer:?}, the rules say {expected:?}"
                )));
            }
        }
        match answer {
            Ok(decision) => {
                *self.tally.accepted.entry(command.kind()).or_default() += 1;
                self.journal.append(&command, &decision.events)?;
                Ok(Some(decision))
            }
            Err(e) => {
                *self.tally.rejected.entry(rejection(&e)).or_default() += 1;
                Ok(None)
            }
        }
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        self.tally.steps += 1;
        match *op {
            Op::Open {
                account,
                owner,
                currency: cur,
                overdraft_limit,
            } => {
                let expected = match self.model.accounts.get(&account) {
                    None => Ok(()),
                    Some(a)
                        if a.owner == user(owner)
                            && a.currency == cur
                            && a.overdraft_limit == overdraft_limit =>
                    {
                        Ok(())
                    }
                    Some(_) => Err("AccountExists"),
                };
                let command = Command::OpenAccount(OpenAccount {
                    account_id: account_id(account),
                    owner_id: OwnerId::parse(user(owner)).expect("valid owner"),
                    currency: currency(cur),
                    overdraft_limit,
                });
                // Opening for someone else, or with an overdraft, is an admin's act.
                if self.decide(&admin(), command, expected)?.is_some() {
                    self.model
                        .accounts
                        .entry(account)
                        .or_insert_with(|| ModelAccount {
                            owner: user(owner),
                            currency: cur,
                            overdraft_limit,
                            balance: 0,
                            held: 0,
                        });
                }
            }
            Op::Deposit {
                actor: who,
                account,
                amount,
            } => {
                let who = self.model.actor(who, account);
                let expected = self.model.owned(&who, account).map(|_| ());
                let command = Command::DepositFunds(movement(account, amount));
                if self.decide(&who, command, expected)?.is_some() {
                    self.balance(account, amount);
                    self.model.flows.deposits += i128::from(amount);
                }
            }
            Op::Withdraw {
                actor: who,
                account,
                amount,
            } => {
                let who = self.model.actor(who, account);
                let expected = self
                    .model
                    .owned(&who, account)
                    .and_then(|a| Model::funds(a, amount));
                let command = Command::WithdrawFunds(movement(account, amount));
                if self.decide(&who, command, expected)?.is_some() {
                    self.balance(account, -amount);
                    self.model.flows.withdrawals += i128::from(amount);
                }
            }
            Op::Transfer {
                actor: who,
                from,
                to,
                amount,
            } => {
                let who = self.model.actor(who, from);
                let expected = if from == to {
                    Err("SameAccount")
                } else {
                    self.model.owned(&who, from).and_then(|sender| {
                        let receiver = self.model.accounts.get(&to).ok_or("AccountNotFound")?;
                        if receiver.currency != sender.currency {
                            return Err("CurrencyMismatch");
                        }
                        Model::funds(sender, amount)
                    })
                };
                let command = Command::TransferFunds(TransferFunds {
                    transfer_id: Uuid::now_v7(),
                    from: account_id(from),
                    to: account_id(to),
                    amount: units(amount),
                    currency: None,
                    reference: None,
                    metadata: None,
                });
                let transfer_id = match &command {
                    Command::TransferFunds(t) => t.transfer_id,
                    _ => unreachable!("a transfer"),
                };
                if self.decide(&who, command, expected)?.is_some() {
                    self.balance(from, -amount);
                    self.balance(to, amount);
                    let currency = self.model.accounts[&from].currency;
                    self.model.transfers.push(ModelTransfer {
                        id: transfer_id,
                        from,
                        to,
                        amount,
                        currency,
                        reversed: 0,
                    });
                }
            }
            Op::PlaceHold {
                actor: who,
                account,
                hold,
                amount,
                expires_in_s,
            } => {
                let who = self.model.actor(who, account);
                let expected = if self.model.holds.contains_key(&hold) {
                    Err("HoldExists")
                } else {
                    self.model
                        .owned(&who, account)
                        .and_then(|a| Model::funds(a, amount))
                };
                let expires_at = expires_in_s.map(|s| self.now + Duration::seconds(s));
                let command = Command::PlaceHold(PlaceHold {
                    hold_id: hold_id(hold),
                    account_id: account_id(account),
                    amount: units(amount),
                    expires_at,
                });
                if self.decide(&who, command, expected)?.is_some() {
                    self.held(account, amount);
                    self.model.holds.insert(
                        hold,
                        ModelHold {
                            account,
                            amount,
                            status: HoldStatus::Placed,
                            expires_at,
                        },
                    );
                }
            }
            Op::CaptureHold {
                actor: who,
                account,
                hold,
                amount,
            } => {
                let account = self.hold_account(account, hold);
                let who = self.model.actor(who, account);
                let expected = self.active(&who, account, hold).and_then(|h| {
                    if h.expires_at.is_some_and(|at| at <= self.now) {
                        Err("HoldExpired")
                    } else if amount.is_some_and(|a| a > h.amount) {
                        Err("CaptureExceedsHold")
                    } else {
                        Ok(())
                    }
                });
                let command = Command::CaptureHold(CaptureHold {
                    hold_id: hold_id(hold),
                    account_id: account_id(account),
                    amount: amount.map(units),
                    now: self.now,
                });
                if self.decide(&who, command, expected)?.is_some() {
                    let h = self.model.holds.get_mut(&hold).expect("active hold");
                    h.status = HoldStatus::Captured;
                    let (reserved, captured) = (h.amount, amount.unwrap_or(h.amount));
                    self.held(account, -reserved);
                    self.balance(account, -captured);
                    self.model.flows.captures += i128::from(captured);
                }
            }
            Op::VoidHold {
                actor: who,
                account,
                hold,
            } => {
                let account = self.hold_account(account, hold);
                let who = self.model.actor(who, account);
                let expected = self.active(&who, account, hold).map(|_| ());
                let command = Command::VoidHold(VoidHold {
                    hold_id: hold_id(hold),
                    account_id: account_id(account),
                });
                if self.decide(&who, command, expected)?.is_some() {
                    self.release(hold);
                }
            }
            Op::ExpireHold { hold } => {
                let due = match self.model.holds.get(&hold) {
                    None => Err("HoldNotFound"),
                    Some(h) => Ok(h.status == HoldStatus::Placed
                        && h.expires_at.is_some_and(|at| at <= self.now)),
                };
                let account = self.model.holds.get(&hold).map_or(0, |h| h.account);
                let command = Command::ExpireHold(ExpireHold {
                    hold_id: hold_id(hold),
                    account_id: account_id(account),
                    now: self.now,
                });
                let decision = self.decide(&admin(), command, due.map(|_| ()))?;
                if let Some(decision) = decision {
                    prop_assert_eq!(decision.events.is_empty(), due != Ok(true));
                    if due == Ok(true) {
                        self.release(hold);
                    }
                }
            }
            Op::PlaceOrder {
                actor: who,
                order,
                account,
                amount,
                currency: cur,
            } => {
                let who = self.model.actor(who, account);
                let owner = who.principal.as_str().to_owned();
                let expected = match self.model.orders.get(&order) {
                    Some(o)
                        if !(o.owner == owner
                            && o.account == account
                            && o.amount == amount
                            && o.currency == cur) =>
                    {
                        Err("OrderExists")
                    }
                    _ => Ok(()),
                };
                let command = Command::PlaceOrder(PlaceOrder {
                    order_id: order_id(order),
                    account_id: account_id(account),
                    amount: units(amount),
                    currency: cur.map(currency),
                    description: None,
                });
                if self.decide(&who, command, expected)?.is_some() {
                    self.model.orders.entry(order).or_insert(ModelOrder {
                        owner,
                        account,
                        amount,
                        currency: cur,
                        status: OrderStatus::New,
                        refunded: 0,
                    });
                }
            }
            Op::PayOrder { order } => {
                let Some(o) = self.model.orders.get(&order).cloned() else {
                    let command = Command::PayOrder(PayOrder {
                        order_id: order_id(order),
                        account_id: account_id(0),
                    });
                    self.decide(&admin(), command, Err("OrderNotFound"))?;
                    return Ok(());
                };
                let paid = o.status == OrderStatus::New
                    && self
                        .model
                        .accounts
                        .get(&o.account)
                        .filter(|a| a.owner == o.owner)
                        .is_some_and(|a| {
                            o.currency.is_none_or(|c| c == a.currency)
                                && Model::funds(a, o.amount).is_ok()
                        });
                let command = Command::PayOrder(PayOrder {
                    order_id: order_id(order),
                    account_id: account_id(o.account),
                });
                let decision = self
                    .decide(&admin(), command, Ok(()))?
                    .expect("paying is never refused");
                let charged = decision
                    .events
                    .iter()
                    .any(|e| matches!(e, Event::OrderCharged(_)));
                prop_assert_eq!(charged, paid, "order {} charged", order);
                prop_assert_eq!(decision.events.is_empty(), o.status != OrderStatus::New);
                if o.status == OrderStatus::New {
                    let status = if paid {
                        OrderStatus::Paid
                    } else {
                        OrderStatus::Rejected
                    };
                    self.model.orders.get_mut(&order).expect("order").status = status;
                }
                if paid {
                    self.balance(o.account, -o.amount);
                    self.model.flows.charges += i128::from(o.amount);
                }
            }
            Op::Reverse {
                actor: who,
                transfer,
                amount,
            } => self.reverse(who, transfer, amount)?,
            Op::Refund {
                order,
                amount,
                pay_first,
            } => {
                if pay_first {
                    self.step(&Op::PayOrder { order })?;
                }
                self.refund(order, amount)?
            }
            Op::SetBalances { ref items, twice } => self.set_balances(items, twice)?,
            Op::Tick { seconds } => self.now += Duration::seconds(seconds),
        }
        self.check()
    }

    /// Moves part or all of a transfer back from its receiver to its sender: allowed to an
    /// admin or the receiver's owner, never past the transfer, only with the receiver's funds.
    fn reverse(
        &mut self,
        who: Who,
        transfer: usize,
        amount: Option<i64>,
    ) -> Result<(), TestCaseError> {
        if self.model.transfers.is_empty() {
            return Ok(());
        }
        let index = transfer % self.model.transfers.len();
        let t = self.model.transfers[index].clone();
        let who = self.model.actor(who, t.to);
        let remaining = t.amount - t.reversed;
        let expected = self
            .model
            .owned(&who, t.to)
            .map_err(|_| "TransferNotFound")
            .and_then(|receiver| match amount.unwrap_or(remaining) {
                0 => Err("ReversalExceedsTransfer"),
                asked if asked > remaining => Err("ReversalExceedsTransfer"),
                asked => Model::funds(receiver, asked),
            });
        let command = Command::ReverseTransfer(ReverseTransfer {
            transfer_id: t.id,
            transfer: TransferState::unreversed(
                account_id(t.from),
                account_id(t.to),
                units(t.amount),
                currency(t.currency),
            ),
            amount: amount.map(units),
            reference: None,
        });
        if self.decide(&who, command, expected)?.is_some() {
            let moved = amount.unwrap_or(remaining);
            self.balance(t.to, -moved);
            self.balance(t.from, moved);
            self.model.transfers[index].reversed += moved;
        }
        Ok(())
    }

    /// Gives part or all of a paid order's charge back to its account, never past the charge.
    fn refund(&mut self, order: usize, amount: Option<i64>) -> Result<(), TestCaseError> {
        let model = self.model.orders.get(&order).cloned();
        let refundable = model.as_ref().map_or(0, |o| o.amount - o.refunded);
        let expected = match &model {
            None => Err("OrderNotFound"),
            Some(o) if matches!(o.status, OrderStatus::New | OrderStatus::Rejected) => {
                Err("OrderNotPaid")
            }
            Some(_) => match amount.unwrap_or(refundable) {
                asked if asked == 0 || asked > refundable => Err("RefundExceedsCharge"),
                _ => Ok(()),
            },
        };
        let command = Command::RefundOrder(RefundOrder {
            order_id: order_id(order),
            account_id: account_id(model.as_ref().map_or(0, |o| o.account)),
            amount: amount.map(units),
        });
        if self.decide(&admin(), command, expected)?.is_some() {
            let given = amount.unwrap_or(refundable);
            let o = self.model.orders.get_mut(&order).expect("order");
            o.refunded += given;
            o.status = if o.refunded == o.amount {
                OrderStatus::Refunded
            } else {
                OrderStatus::PartiallyRefunded
            };
            let account = o.account;
            self.balance(account, given);
            self.model.flows.refunds += i128::from(given);
        }
        Ok(())
    }

    /// Submits a balance batch (as an admin), then applies its one part as the executor does.
    fn set_balances(&mut self, items: &[(usize, i64)], twice: bool) -> Result<(), TestCaseError> {
        self.batches += 1;
        let batch_id = Uuid::from_u128(0x3000 + self.batches);
        let mut seen = HashSet::new();
        let items: Vec<BatchItem> = items
            .iter()
            .filter(|(account, _)| seen.insert(*account))
            .map(|&(account, balance)| BatchItem {
                job_id: item_job_id(&batch_id, &account_id(account)),
                account_id: account_id(account),
                balance,
            })
            .collect();
        let submit = Command::SubmitBatch(SubmitBatch {
            batch_id,
            items: items.clone(),
        });
        self.decide(&admin(), submit, Ok(()))?;
        let apply = Command::ApplyBatchPart(ApplyBatchPart {
            batch_id,
            chunk: 0,
            part: 0,
            items: items.clone(),
        });
        let decision = self
            .decide(&admin(), apply.clone(), Ok(()))?
            .expect("applying is never refused");
        let mut rejected = Vec::new();
        for item in &items {
            let account = (0..ACCOUNTS)
                .find(|&i| account_id(i) == item.account_id)
                .expect("a generated account");
            // An item below what the account holds would leave held money uncovered.
            if self
                .model
                .accounts
                .get(&account)
                .is_some_and(|a| item.balance < a.held)
            {
                rejected.push(item.account_id.clone());
                continue;
            }
            let model = self
                .model
                .accounts
                .entry(account)
                .or_insert_with(|| ModelAccount {
                    owner: item.account_id.as_str().to_owned(),
                    currency: 0,
                    overdraft_limit: 0,
                    balance: 0,
                    held: 0,
                });
            self.model.flows.sets += i128::from(item.balance) - i128::from(model.balance);
            model.balance = item.balance;
        }
        let journaled: Vec<AccountId> = decision
            .events
            .iter()
            .filter_map(|e| match e {
                Event::BatchPartApplied(p) => Some(p.rejected.iter().map(|r| r.account_id.clone())),
                _ => None,
            })
            .flatten()
            .collect();
        prop_assert_eq!(journaled, rejected, "items rejected");
        if twice {
            let again = self
                .decide(&admin(), apply, Ok(()))?
                .expect("a redelivered part is answered");
            prop_assert!(again.events.is_empty(), "a part applied twice");
        }
        Ok(())
    }

    /// For capture and void: the account asked for, or the hold's own.
    fn hold_account(&self, asked: Option<usize>, hold: usize) -> usize {
        asked.unwrap_or_else(|| self.model.holds.get(&hold).map_or(0, |h| h.account))
    }

    /// The hold, if `actor` may act on `account` and the hold is placed there.
    fn active(&self, who: &Actor, account: usize, hold: usize) -> Result<&ModelHold, &'static str> {
        self.model.owned(who, account)?;
        let h = self
            .model
            .holds
            .get(&hold)
            .filter(|h| h.account == account)
            .ok_or("HoldNotFound")?;
        if h.status == HoldStatus::Placed {
            Ok(h)
        } else {
            Err("HoldFinal")
        }
    }

    fn release(&mut self, hold: usize) {
        let h = self.model.holds.get_mut(&hold).expect("placed hold");
        h.status = HoldStatus::Voided;
        let (account, amount) = (h.account, h.amount);
        self.held(account, -amount);
    }

    fn balance(&mut self, account: usize, delta: i64) {
        self.model
            .accounts
            .get_mut(&account)
            .expect("account")
            .balance += delta;
    }

    fn held(&mut self, account: usize, delta: i64) {
        self.model.accounts.get_mut(&account).expect("account").held += delta;
    }

    /// The invariants that hold after every step.
    fn check(&self) -> Result<(), TestCaseError> {
        let journal = &self.journal;
        prop_assert_eq!(journal.accounts.len(), self.model.accounts.len());
        let mut total: i128 = 0;
        for (index, model) in &self.model.accounts {
            let id = account_id(*index);
            let state = journal.accounts.get(&id).expect("journaled account");
            prop_assert_eq!(
                (state.balance, state.held, state.overdraft_limit),
                (model.balance, model.held, model.overdraft_limit),
                "account {} against the model",
                id
            );
            prop_assert_eq!(state.owner_id.as_str(), model.owner.as_str());
            prop_assert!(state.held >= 0, "{id} holds {}", state.held);
            prop_assert!(
                state.balance >= -state.overdraft_limit,
                "{id} at {} below -{}",
                state.balance,
                state.overdraft_limit
            );
            prop_assert!(
                state.balance - state.held >= -state.overdraft_limit,
                "{id} holds {} of {} with overdraft {}",
                state.held,
                state.balance,
                state.overdraft_limit
            );
            let placed: i64 = journal
                .holds
                .values()
                .filter(|h| h.account_id == id && h.status == HoldStatus::Placed)
                .map(|h| h.amount.minor_units())
                .sum();
            prop_assert_eq!(state.held, placed, "{} held against its placed holds", id);
            total += i128::from(state.balance);
        }
        for (index, model) in &self.model.holds {
            let hold = journal.holds.get(&hold_id(*index)).expect("journaled hold");
            prop_assert_eq!(hold.status, model.status);
        }
        for (index, model) in &self.model.orders {
            let order = journal
                .orders
                .get(&order_id(*index))
                .expect("journaled order");
            prop_assert_eq!(order.status, model.status);
            prop_assert_eq!(order.refunded_total, model.refunded);
            prop_assert!(order.refunded_total <= order.amount.minor_units());
        }
        for model in &self.model.transfers {
            let reversed = journal
                .transfers
                .get(&model.id)
                .map_or(0, |t| t.reversed_total);
            prop_assert_eq!(reversed, model.reversed, "transfer {} reversed", model.id);
            prop_assert!(
                reversed <= model.amount,
                "transfer {} over-reversed",
                model.id
            );
        }
        prop_assert_eq!(
            total,
            self.model.expected_total(),
            "sum of balances against {:?}",
            self.model.flows
        );
        Ok(())
    }
}

fn movement(account: usize, amount: i64) -> MoveFunds {
    MoveFunds {
        account_id: account_id(account),
        amount: units(amount),
        currency: None,
        reference: None,
        metadata: None,
    }
}

#[test]
fn random_command_sequences_conserve_money_and_never_overdraw() {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|raw| raw.parse().ok())
        .unwrap_or(CASES_DEFAULT);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let tally = std::cell::RefCell::new(Tally::default());
    let start = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("instant");
    let result = runner.run(&sequence(), |ops| {
        let mut tally = tally.borrow_mut();
        let mut run = Run {
            journal: Journal::default(),
            model: Model::default(),
            now: start,
            batches: 0,
            tally: &mut tally,
        };
        for op in &ops {
            run.step(op)?;
        }
        Ok(())
    });
    let tally = tally.into_inner();
    eprintln!(
        "{cases} sequences, {} steps (shrinking included)\naccepted: {:?}\nrejected: {:?}",
        tally.steps, tally.accepted, tally.rejected
    );
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, ops)) => panic!("{reason}\nminimal sequence: {ops:#?}"),
        Err(e) => panic!("{e}"),
    }
    // The run reached every kind of command it generates, accepted.
    for kind in [
        "open_account",
        "deposit",
        "withdraw",
        "transfer",
        "place_hold",
        "capture_hold",
        "void_hold",
        "place_order",
        "pay_order",
        "reverse_transfer",
        "refund_order",
        "submit_batch",
        "apply_batch_part",
    ] {
        assert!(
            tally.accepted.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} was accepted: {:?}",
            tally.accepted
        );
    }
}
