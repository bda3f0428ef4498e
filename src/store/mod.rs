//! Postgres access, one module per concern. Functions take a connection or a
//! transaction so a change and its audit row commit together.

pub mod alerts;
pub mod audit;
pub mod clients;
pub mod costs;
pub mod idempotency;
pub mod inbound;
pub mod knowledge;
pub mod metrics;
pub mod prompt_templates;
pub mod reports;
pub mod run_view;
pub mod runs;
pub mod tokens;

use sqlx::postgres::{PgPool, PgPoolOptions};

/// Migrations embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(std::time::Duration::from_secs(10))
        // The default pings every connection on checkout: one extra round trip per
        // request. A broken connection fails its query instead and is discarded.
        .test_before_acquire(false)
        .connect(url)
        .await
}

/// SQLSTATE of a unique violation and the constraint it hit, if that is what `e` is.
pub fn unique_violation(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
            Some(db.constraint().unwrap_or_default().to_string())
        }
        _ => None,
    }
}
