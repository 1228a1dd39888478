//! `sqlx::migrate!` embeds `../migrations` when this crate compiles; cargo does not know to
//! compile it again when a migration is added or changed unless told so here.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
