//! `sqlx::migrate!` embeds `migrations/` at compile time, but cargo does not know the
//! macro read that folder: a new migration alone would leave an incremental build with
//! the old set (the binary would then refuse nothing and apply nothing). This tells cargo
//! to rebuild the crate whenever the folder changes (sqlx's documented remedy).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
