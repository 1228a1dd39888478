//! What every handler can reach. Kept apart from the router so that handlers never import
//! the module that routes to them.

use crate::writer::Writer;
use http_edge::{Auth, HasAuth};

/// The command API's shared state.
#[derive(Debug, Clone)]
pub struct AppState {
    pub writer: Writer,
    pub auth: Auth,
    pub nats: async_nats::Client,
    pub stream: String,
}

impl HasAuth for AppState {
    fn auth(&self) -> &Auth {
        &self.auth
    }
}
