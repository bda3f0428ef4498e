//! Postgres access, one module per concern. Functions take a connection or a
//! transaction so a change and its audit row commit together.

pub mod alerts;
pub mod audit;
pub mod callbacks;
pub mod clients;
pub mod constraints;
pub mod costs;
pub mod deliveries;
pub mod drive_folders;
pub mod events;
pub mod idempotency;
pub mod inbound;
pub mod knowledge;
pub mod limits;
pub mod messages;
pub mod metrics;
pub mod prompt_templates;
pub mod reports;
pub mod retention;
pub mod run_view;
pub mod runs;
pub mod schedules;
#[cfg(test)]
mod schema;
pub mod tokens;
pub mod webhook_endpoints;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

/// Migrations embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Applies [`MIGRATOR`] on a connection of its own without `statement_timeout` (a
/// migration may rewrite a large table); the connection is closed afterwards.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    let mut conn = pool.acquire().await?;
    sqlx::query!("SET statement_timeout = 0").execute(&mut *conn).await?;
    let applied = MIGRATOR.run(&mut *conn).await;
    let _ = conn.close().await;
    applied
}

/// The versions of the migrations applied successfully to the database.
pub async fn applied_migrations(pool: &PgPool) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar!("SELECT version FROM _sqlx_migrations WHERE success").fetch_all(pool).await
}

/// A pool whose connections cancel any statement running longer than
/// `statement_timeout` (None: no limit), so a stuck query cannot hold a request
/// and its connection for ever.
pub async fn connect(
    url: &str,
    max_connections: u32,
    statement_timeout: Option<Duration>,
) -> Result<PgPool, sqlx::Error> {
    connect_with(url.parse()?, max_connections, statement_timeout).await
}

pub async fn connect_with(
    options: PgConnectOptions,
    max_connections: u32,
    statement_timeout: Option<Duration>,
) -> Result<PgPool, sqlx::Error> {
    let options = match statement_timeout {
        Some(limit) => options.options([("statement_timeout", limit.as_millis())]),
        None => options,
    };
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        // The default pings every connection on checkout: one extra round trip per
        // request. A broken connection fails its query instead and is discarded.
        .test_before_acquire(false)
        .connect_with(options)
        .await
}

/// SQLSTATE 57014: the statement ran past `statement_timeout` (or was cancelled).
pub fn query_canceled(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("57014"))
}

/// The constraint a unique violation (SQLSTATE 23505) hit, if that is what `e` is.
/// What the API answers for each constraint is in `constraints`.
pub fn unique_violation(e: &sqlx::Error) -> Option<String> {
    match constraints::violated(e) {
        Some((constraints::Rule::Unique, name)) => Some(name.to_string()),
        _ => None,
    }
}
