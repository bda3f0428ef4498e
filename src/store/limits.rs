//! `engine.rate_limits` and `engine.limit_pauses`: the limits every process on this database
//! shares (docs/decisions/0022-shared-limits.md). [`PgLimits`] is the Postgres
//! [`LimitStore`]; the arithmetic runs in `engine.take_tokens`, by the database's clock.

use std::time::Duration;

use futures::{FutureExt, future::BoxFuture};
use sqlx::PgPool;

use crate::domain::limits::{Grant, LimitStore, LimitStoreError, Rule};

/// Takes up to `want` tokens of `key` (see the 20261201000006 migration).
pub async fn take(
    pool: &PgPool,
    key: &str,
    rule: Rule,
    want: u32,
    max_wait: Option<Duration>,
) -> Result<Grant, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT granted AS "granted!", wait_secs AS "wait_secs!", ahead_secs AS "ahead_secs!"
             FROM engine.take_tokens($1, $2, $3, $4, $5)"#,
        key,
        rule.spacing(),
        rule.tolerance(),
        want.max(1) as i32,
        max_wait.map(|w| w.as_secs_f64()),
    )
    .fetch_one(pool)
    .await?;
    let secs = |s: f64| Duration::from_secs_f64(if s.is_finite() { s.max(0.0) } else { 0.0 });
    Ok(Grant { granted: row.granted.max(0) as u32, wait: secs(row.wait_secs), ahead: secs(row.ahead_secs) })
}

/// Pauses `key` until `for_how_long` from now, unless it is paused longer already.
pub async fn pause(pool: &PgPool, key: &str, for_how_long: Duration) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO engine.limit_pauses (key, until) VALUES ($1, clock_timestamp() + make_interval(secs => $2))
         ON CONFLICT (key) DO UPDATE SET until = greatest(engine.limit_pauses.until, EXCLUDED.until)",
        key,
        for_how_long.as_secs_f64(),
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// How long `key` is still paused, if it is.
pub async fn paused(pool: &PgPool, key: &str) -> Result<Option<Duration>, sqlx::Error> {
    let left = sqlx::query_scalar!(
        r#"SELECT extract(epoch FROM until - clock_timestamp())::float8 AS "left!"
             FROM engine.limit_pauses WHERE key = $1 AND until > clock_timestamp()"#,
        key
    )
    .fetch_optional(pool)
    .await?;
    Ok(left.filter(|s| s.is_finite() && *s > 0.0).map(Duration::from_secs_f64))
}

/// Deletes buckets full again for `idle` (a missing row is a full bucket) and pauses over.
pub async fn forget_idle(pool: &PgPool, idle: Duration) -> Result<u64, sqlx::Error> {
    let buckets = sqlx::query!(
        "DELETE FROM engine.rate_limits WHERE tat < clock_timestamp() - make_interval(secs => $1)",
        idle.as_secs_f64()
    )
    .execute(pool)
    .await?
    .rows_affected();
    let pauses = sqlx::query!("DELETE FROM engine.limit_pauses WHERE until < clock_timestamp()")
        .execute(pool)
        .await?
        .rows_affected();
    Ok(buckets + pauses)
}

/// The limits of every process on this database, in Postgres.
#[derive(Clone)]
pub struct PgLimits {
    pool: PgPool,
}

impl PgLimits {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn failed(e: sqlx::Error) -> LimitStoreError {
    LimitStoreError(e.to_string())
}

impl LimitStore for PgLimits {
    fn take<'a>(
        &'a self,
        key: &'a str,
        rule: Rule,
        want: u32,
        max_wait: Option<Duration>,
    ) -> BoxFuture<'a, Result<Grant, LimitStoreError>> {
        take(&self.pool, key, rule, want, max_wait).map(|r| r.map_err(failed)).boxed()
    }

    fn pause<'a>(&'a self, key: &'a str, for_how_long: Duration) -> BoxFuture<'a, Result<(), LimitStoreError>> {
        pause(&self.pool, key, for_how_long).map(|r| r.map_err(failed)).boxed()
    }

    fn paused<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Duration>, LimitStoreError>> {
        paused(&self.pool, key).map(|r| r.map_err(failed)).boxed()
    }
}
