//! What every handler can reach. Kept apart from the router so that handlers never import
//! the module that routes to them.

use crate::writer::Writer;
use http_edge::{Auth, HasAuth};
use std::ops::Deref;
use std::sync::Arc;

/// The command API's shared state. axum clones the state for every request that extracts
/// it; behind one `Arc` that clone is a counter increment rather than a copy of the stream's
/// name and of a NATS client (a profile found these per-request clones at ~6 % of the
/// allocations in single transfers).
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

/// The state's fields, reached through [`AppState`]'s `Deref`.
#[derive(Debug)]
pub struct Shared {
    pub writer: Writer,
    pub auth: Auth,
    pub nats: async_nats::Client,
    pub stream: String,
    /// The read models, when transfer look-ups may ask them (`TRANSFER_LOOKUP_READ_MODEL`).
    pub read_model: Option<sqlx::PgPool>,
    /// The cap on transfer look-ups reading their whole window.
    pub window_reads: crate::lookup::WindowReads,
}

impl Shared {
    /// Where a handler looks facts up.
    pub fn sources(&self) -> crate::lookup::Sources<'_> {
        crate::lookup::Sources {
            nats: &self.nats,
            stream: &self.stream,
            read_model: self.read_model.as_ref(),
            window_reads: &self.window_reads,
        }
    }
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl HasAuth for AppState {
    fn auth(&self) -> &Auth {
        &self.auth
    }
}
