//! The domain's one error type: the business rejections a well-formed command may meet. The
//! HTTP edge turns each into its problem (`http/problem.rs`).

use events::{AccountId, Currency};
use thiserror::Error;
use uuid::Uuid;

/// Business rejections: the command is well-formed but may not happen.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    /// Also given for another owner's account, so that existence does not leak.
    #[error("account {0} not found")]
    AccountNotFound(AccountId),
    #[error("account {0} exists with a different owner, currency or overdraft limit")]
    AccountExists(AccountId),
    #[error("account {account_id} has {available} available, {requested} requested")]
    InsufficientFunds {
        account_id: AccountId,
        available: i64,
        requested: i64,
    },
    #[error("account {account_id} holds {account}, not {requested}")]
    CurrencyMismatch {
        account_id: AccountId,
        account: Currency,
        requested: Currency,
    },
    #[error("a transfer needs two different accounts")]
    SameAccount,
    #[error("the balance of account {0} would leave the representable range")]
    BalanceOverflow(AccountId),
    #[error("order {0} exists with different details")]
    OrderExists(Uuid),
    #[error("order {0} not found")]
    OrderNotFound(Uuid),
    /// Also given to callers who may not reverse it (its sender included), so that
    /// existence does not leak.
    #[error("transfer {0} not found")]
    TransferNotFound(Uuid),
    #[error("transfer {transfer_id} has {remaining} left to reverse; {requested} cannot be")]
    ReversalExceedsTransfer {
        transfer_id: Uuid,
        remaining: i64,
        requested: i64,
    },
    #[error("order {0} was not paid")]
    OrderNotPaid(Uuid),
    #[error("order {order_id} has {refundable} left to refund; {requested} cannot be")]
    RefundExceedsCharge {
        order_id: Uuid,
        refundable: i64,
        requested: i64,
    },
    #[error("hold {0} not found")]
    HoldNotFound(Uuid),
    #[error("batch {0} exists")]
    BatchExists(Uuid),
    #[error("hold {0} exists")]
    HoldExists(Uuid),
    #[error("hold {0} is already captured or voided")]
    HoldFinal(Uuid),
    #[error("hold {0} has expired")]
    HoldExpired(Uuid),
    #[error("hold {hold_id} reserves {held}; {requested} cannot be captured")]
    CaptureExceedsHold {
        hold_id: Uuid,
        held: i64,
        requested: i64,
    },
    /// An atomic bulk transfer refused for its first rejected item.
    #[error("transfers[{index}]: {error}")]
    BulkItemRejected {
        index: usize,
        error: Box<DomainError>,
    },
}
