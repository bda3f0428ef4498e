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
pub mod effects;
pub mod event_payloads;
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
pub mod workers;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

/// Migrations embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Applies [`MIGRATOR`] on a connection of its own without `statement_timeout` (a
/// migration may rewrite a large table); the connection is closed afterwards.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    let mut conn = pool.acquire().await?;
    sqlx::query!("SET statement_timeout = 0").execute(&mut *conn).await?;
    accept_reworded(&mut conn).await?;
    let applied = MIGRATOR.run(&mut *conn).await;
    let _ = conn.close().await;
    applied
}

/// Migrations whose text changed after release in comments only (they cited sections of a
/// design plan that is not in the repository; they now name the docs/ file that holds each),
/// with the SHA-384 sqlx recorded for the old text. sqlx refuses an applied migration whose
/// text changed, so a database that applied exactly the old text is given the new checksum
/// first; any other checksum is left alone and still refused.
pub const REWORDED: [(i64, &str); 3] = [
    (
        20261129000001,
        "35a9211be2cbefb396325d462d83b94d2cdf8d6d552e1d49dc3e2250922bee2334f134e8f73c3aee69098e50077c461a",
    ),
    (
        20261129000004,
        "c860917659bcbe0ce06ee9a16e1f729ec30873e4ebe14a4d634fc4d1fe043eed2bdea1ad01e3a79b8b1baef4aae489eb",
    ),
    (
        20261129000005,
        "c82bdff02cd5c19b438b43ff2419bd9585227ee7cab9f2ae67a85a1dc273210a7e56d322c0a6cb9d66c1aefef9d130cf",
    ),
];

async fn accept_reworded(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    let tracked = sqlx::query_scalar!(r#"SELECT to_regclass('public._sqlx_migrations') IS NOT NULL AS "tracked!""#)
        .fetch_one(&mut *conn)
        .await?;
    if !tracked {
        return Ok(());
    }
    for (version, old) in REWORDED {
        let Some(migration) = MIGRATOR.iter().find(|m| m.version == version) else { continue };
        let old = hex::decode(old).expect("REWORDED holds hex");
        sqlx::query!(
            "UPDATE _sqlx_migrations SET checksum = $3 WHERE version = $1 AND checksum = $2",
            version,
            &old,
            migration.checksum.as_ref()
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
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
