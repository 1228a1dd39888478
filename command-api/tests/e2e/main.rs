//! End-to-end tests of the write path against a real nats-server.

mod atomicity;
mod auth;
mod authorization;
mod bad_input;
mod bulk;
mod cluster;
mod concurrency;
mod crash;
mod executors;
mod hold_expiry;
mod idempotency;
mod instances;
mod journal;
mod observability;
mod rate_limit;
mod reversals;
mod startup;
mod support;
mod write_path;
