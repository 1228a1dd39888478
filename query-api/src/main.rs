//! Tally's query API: balances, history, jobs and orders from the read models.
//!
//! Not built yet: the read side arrives with its own issue. The binary exists so that the
//! workspace has its final shape and `scripts/run` can grow into it.

fn main() {
    eprintln!("query-api: the read side is not built yet");
    std::process::exit(2);
}
