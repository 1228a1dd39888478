//! `GET /v1/accounts`, `GET /v1/accounts/{id}`, `GET /v1/accounts/{id}/balance`.

use super::access::{ACCOUNT_NOT_FOUND, AccountHidden, OthersListed, QueryCall};
use super::params::{cursor_page, db, decode_cursor};
use axum::Json;
use chrono::{DateTime, Utc};
use events::{AccountId, Currency, OwnerId};
use http_edge::openapi::AccountIdParam;
use http_edge::{ApiError, ApiPath, ApiQuery};
use read_model::query::accounts;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// An account as the read model has it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Account {
    account_id: AccountId,
    /// `balance - held` (`null` only if that would overflow).
    #[schema(required = true)]
    available: Option<i64>,
    /// Minor units; as low as `-overdraft_limit`.
    balance: i64,
    currency: Currency,
    /// Minor units reserved by holds.
    #[schema(minimum = 0)]
    held: i64,
    opened_at: DateTime<Utc>,
    #[schema(minimum = 0)]
    overdraft_limit: i64,
    owner_id: OwnerId,
    #[schema(example = "open")]
    status: String,
    updated_at: DateTime<Utc>,
    #[schema(minimum = 1)]
    version: i64,
}

impl From<accounts::Account> for Account {
    fn from(row: accounts::Account) -> Self {
        Self {
            available: row.balance.checked_sub(row.held),
            account_id: row.account_id,
            balance: row.balance,
            currency: row.currency,
            held: row.held,
            opened_at: row.opened_at,
            overdraft_limit: row.overdraft_limit,
            owner_id: row.owner_id,
            status: row.status,
            updated_at: row.updated_at,
            version: row.version,
        }
    }
}

/// An account
#[utoipa::path(
    get,
    path = "/v1/accounts/{id}",
    params(AccountIdParam),
    responses(
        (status = 200, description = "the account", body = Account),
        AccountHidden,
    )
)]
pub async fn get_account(
    call: QueryCall,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Account>, ApiError> {
    let row = call.account(id).await?;
    Ok(Json(row.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BalanceQuery {
    /// An RFC 3339 instant: the balance as it was then (default: now).
    #[param(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    as_of: Option<String>,
}

/// A balance, now or as of `as_of`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Balance {
    account_id: AccountId,
    /// The instant asked for (only when asked).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    as_of: Option<DateTime<Utc>>,
    /// `balance - held` (`null` only if that would overflow).
    #[schema(required = true)]
    available: Option<i64>,
    balance: i64,
    currency: Currency,
    /// The account's version at that moment.
    #[schema(minimum = 1)]
    version: i64,
}

/// An account's balance, now or as of a past instant
#[utoipa::path(
    get,
    path = "/v1/accounts/{id}/balance",
    params(AccountIdParam, BalanceQuery),
    responses(
        (status = 200, description = "the balance", body = Balance),
        AccountHidden,
    )
)]
pub async fn get_balance(
    call: QueryCall,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<BalanceQuery>,
) -> Result<Json<Balance>, ApiError> {
    let row = call.account(id).await?;
    let Some(raw) = query.as_of else {
        return Ok(Json(Balance {
            available: row.balance.checked_sub(row.held),
            account_id: row.account_id,
            as_of: None,
            balance: row.balance,
            currency: row.currency,
            version: row.version,
        }));
    };
    let instant = DateTime::parse_from_rfc3339(&raw)
        .map_err(|_| ApiError::invalid_request("as_of must be an RFC 3339 instant"))?
        .with_timezone(&Utc);
    let at = accounts::balance_at(&call.app.pool, &row.account_id, instant)
        .await
        .map_err(db)?
        .ok_or_else(|| {
            ApiError::new(
                ACCOUNT_NOT_FOUND,
                format!("account {} did not exist at {raw}", row.account_id),
            )
        })?;
    Ok(Json(Balance {
        account_id: row.account_id,
        as_of: Some(instant),
        available: at.balance_after.checked_sub(at.held_after),
        balance: at.balance_after,
        currency: row.currency,
        version: at.version,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Whose accounts (users: only their own; admins: anyone's, default everyone's).
    #[param(value_type = Option<OwnerId>)]
    owner_id: Option<String>,
    /// Items per page.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A page of accounts.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountPage {
    items: Vec<Account>,
    /// Pass as `cursor` for the next page; `null` on the last.
    next_cursor: Option<String>,
}

/// The caller's accounts (admins: anyone's), by account id
///
/// Ids are in byte order on every deployment: `-` < digits < upper case < `_` < lower case.
#[utoipa::path(
    get,
    path = "/v1/accounts",
    params(ListQuery),
    responses(
        (status = 200, description = "a page of accounts", body = AccountPage),
        OthersListed,
    )
)]
pub async fn list_accounts(
    call: QueryCall,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<AccountPage>, ApiError> {
    let (owner, limit) = call.listing(query.owner_id, query.limit)?;
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let rows = accounts::accounts(&call.app.pool, owner.as_ref(), after.as_deref(), limit + 1)
        .await
        .map_err(db)?;
    let (rows, next_cursor) = cursor_page(rows, limit, |row| row.account_id.to_string());
    Ok(Json(AccountPage {
        items: rows.into_iter().map(Account::from).collect(),
        next_cursor,
    }))
}
