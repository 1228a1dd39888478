//! Who may see what, on the read side: one rule ([`visible`]) for every resource, and the
//! look-ups the handlers share that apply it.
//!
//! Someone else's account, job or order answers "not found", exactly like a missing one, so
//! that existence does not leak (DESIGN §5). The kinds of "not found" are here, with the
//! problem sets the handlers' documents list.

use super::params::db;
use crate::state::AppState;
use axum::http::StatusCode;
use events::{AccountId, OwnerId};
pub use http_edge::problem::{ACCOUNT_NOT_FOUND, FORBIDDEN, ProblemKind};
use http_edge::{ApiError, Caller};
use read_model::query::Owned;
use read_model::query::accounts::Account;

pub const BATCH_NOT_FOUND: ProblemKind = ProblemKind::new(
    StatusCode::NOT_FOUND,
    "batch_not_found",
    "no such batch, or not the caller's",
);
pub const HOLD_NOT_FOUND: ProblemKind = ProblemKind::new(
    StatusCode::NOT_FOUND,
    "hold_not_found",
    "no such hold, or not the caller's",
);
pub const JOB_NOT_FOUND: ProblemKind = ProblemKind::new(
    StatusCode::NOT_FOUND,
    "job_not_found",
    "no such job, or not the caller's",
);
pub const ORDER_NOT_FOUND: ProblemKind = ProblemKind::new(
    StatusCode::NOT_FOUND,
    "order_not_found",
    "no such order, or not the caller's",
);

http_edge::problems!(
    /// An account's resources: missing, or another owner's.
    pub AccountHidden: [ACCOUNT_NOT_FOUND]
);
http_edge::problems!(
    /// A list of someone else's things, asked by a user.
    pub OthersListed: [FORBIDDEN]
);

/// Whether `caller` may see a row owned by `owner` (`None`: no owner recorded; admins only).
pub fn may_see(caller: &Caller, owner: Option<&OwnerId>) -> bool {
    match owner {
        Some(owner) => caller.may_access(owner),
        None => caller.admin,
    }
}

/// The row if there is one and the caller may see it.
pub fn visible<R: Owned>(caller: &Caller, row: Option<R>) -> Option<R> {
    row.filter(|row| may_see(caller, row.owner_id()))
}

/// The row if there is one and the caller may see it; otherwise the `missing` problem.
pub fn visible_or<R: Owned>(
    caller: &Caller,
    row: Option<R>,
    missing: ProblemKind,
) -> Result<R, ApiError> {
    visible(caller, row).ok_or_else(|| ApiError::new(missing, missing.meaning))
}

/// The account if it exists and the caller may see it; otherwise `404 account_not_found`.
pub async fn visible_account(
    app: &AppState,
    caller: &Caller,
    raw_id: String,
) -> Result<Account, ApiError> {
    let account_id = AccountId::parse(raw_id)?;
    let row = app
        .accounts
        .account(&app.pool, &account_id)
        .await
        .map_err(db)?;
    visible(caller, row)
        .ok_or_else(|| ApiError::new(ACCOUNT_NOT_FOUND, format!("account {account_id} not found")))
}

/// Whose things a list shows: the `owner_id` asked for (admins: anyone's; users: only their
/// own, else 403), or when none is asked, the caller's own (admins: everyone's, `None`).
pub fn listed_owner(caller: &Caller, asked: Option<String>) -> Result<Option<OwnerId>, ApiError> {
    let owner = match asked {
        Some(raw) => Some(OwnerId::parse(raw)?),
        None if caller.admin => None,
        None => Some(caller.principal.clone()),
    };
    match &owner {
        Some(owner) if !may_see(caller, Some(owner)) => {
            Err(ApiError::forbidden("users list their own things only"))
        }
        _ => Ok(owner),
    }
}
