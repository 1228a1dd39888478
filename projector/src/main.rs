//! Tally's projector: consumes the journal into the Postgres read models.
//!
//! Not built yet: the read side arrives with its own issue. The binary exists so that the
//! workspace has its final shape and `scripts/run` can grow into it.

fn main() {
    eprintln!("projector: the read side is not built yet");
    std::process::exit(2);
}
