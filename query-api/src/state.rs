//! What every handler can reach: built by [`crate::start`], read by the handlers and the
//! read-your-writes layer. Its own module, so that handlers depend on it and not on the module
//! that builds their router.

use crate::account_cache::AccountCache;
use crate::feed::Hub;
use http_edge::{Auth, HasAuth};
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct AppState {
    pub pool: sqlx::PgPool,
    pub auth: Auth,
    /// The projector's checkpoint as last announced (never ahead of what is committed).
    pub checkpoint: watch::Receiver<u64>,
    pub min_seq_wait: Duration,
    /// The live feeds' hub.
    pub feed: Hub,
    /// Hot account rows, exact through the checkpoint.
    pub accounts: AccountCache,
}

impl HasAuth for AppState {
    fn auth(&self) -> &Auth {
        &self.auth
    }
}
