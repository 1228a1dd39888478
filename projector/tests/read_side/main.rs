//! End-to-end tests of the read side: command API → journal → projector → Postgres → query API,
//! on a real nats-server and a real PostgreSQL.

mod authorization;
mod batches;
mod cluster;
mod exactly_once;
mod faults;
mod feed;
mod history;
mod holds;
mod nats_users;
mod operations;
mod orders;
mod read_your_writes;
mod rebuild_verify;
mod reversals;
mod snapshots;
mod support;
