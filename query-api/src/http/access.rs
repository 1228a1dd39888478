//! Who may see what, on the read side: one rule ([`QueryCall::may_see`]) for every resource, and
//! [`QueryCall`] — the caller of a query with the look-ups the handlers share that apply it.
//!
//! Someone else's account, job or order answers "not found", exactly like a missing one, so
//! that existence does not leak (DESIGN §5). The kinds of "not found" are here, with the
//! problem sets the handlers' documents list.

use super::params::{db, page_len};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
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

/// A query as every `/v1` handler takes it first: the verified caller (no token: 401 before
/// anything else is read) and the app's state, with the look-ups that apply
/// [`QueryCall::may_see`] for the caller. The read side's counterpart of the command API's
/// `CommandCall`.
#[derive(Debug)]
pub struct QueryCall {
    pub app: AppState,
    pub caller: Caller,
}

impl FromRequestParts<AppState> for QueryCall {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, app).await?;
        Ok(Self {
            app: app.clone(),
            caller,
        })
    }
}

impl QueryCall {
    /// Whether the caller may see a row owned by `owner` (`None`: no owner recorded; admins
    /// only).
    pub fn may_see(&self, owner: Option<&OwnerId>) -> bool {
        match owner {
            Some(owner) => self.caller.may_access(owner),
            None => self.caller.admin,
        }
    }

    /// The row if there is one and the caller may see it.
    pub fn visible<R: Owned>(&self, row: Option<R>) -> Option<R> {
        row.filter(|row| self.may_see(row.owner_id()))
    }

    /// The row if there is one and the caller may see it; otherwise the `missing` problem.
    pub fn visible_or<R: Owned>(
        &self,
        row: Option<R>,
        missing: ProblemKind,
    ) -> Result<R, ApiError> {
        self.visible(row)
            .ok_or_else(|| ApiError::new(missing, missing.meaning))
    }

    /// The account if it exists and the caller may see it; otherwise `404 account_not_found`.
    pub async fn account(&self, raw_id: String) -> Result<Account, ApiError> {
        let account_id = AccountId::parse(raw_id)?;
        let row = self
            .app
            .accounts
            .account(&self.app.pool, &account_id)
            .await
            .map_err(db)?;
        self.visible(row).ok_or_else(|| {
            ApiError::new(ACCOUNT_NOT_FOUND, format!("account {account_id} not found"))
        })
    }

    /// What a list shows: whose things — the `owner_id` asked for (admins: anyone's; users:
    /// only their own, else 403), or when none is asked, the caller's own (admins:
    /// everyone's, `None`) — and how many per page ([`page_len`]).
    pub fn listing(
        &self,
        asked_owner: Option<String>,
        asked_limit: Option<i64>,
    ) -> Result<(Option<OwnerId>, i64), ApiError> {
        let owner = match asked_owner {
            Some(raw) => Some(OwnerId::parse(raw)?),
            None if self.caller.admin => None,
            None => Some(self.caller.principal.clone()),
        };
        if let Some(owner) = &owner
            && !self.may_see(Some(owner))
        {
            return Err(ApiError::forbidden("users list their own things only"));
        }
        Ok((owner, page_len(asked_limit)?))
    }
}
