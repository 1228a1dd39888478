//! What the query API reads: one module per resource, each with its typed row and its
//! `SELECT`s. Rows that belong to someone say whom ([`Owned`]); who may see them is the
//! query API's rule, not this crate's.

pub mod accounts;
pub mod batches;
pub mod entries;
pub mod feed;
pub mod holds;
pub mod jobs;
pub mod orders;
pub mod transfers;

use events::OwnerId;

/// A row that belongs to an owner.
pub trait Owned {
    /// `None`: no owner is recorded (a job that failed before it had one); only admins see it.
    fn owner_id(&self) -> Option<&OwnerId>;
}
