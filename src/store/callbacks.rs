//! `engine.run_callbacks`: a run's `callback_url` is an outbox row written in the
//! transaction that ends the run; the delivery workers claim it under a lease and
//! send it like a webhook (see `events::delivery`, decision 0017).

use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::events::wake_deliverers;
use crate::domain::events::{Attempt, Next};

/// Queues the announcement of a finished run to `url`; call inside the
/// transaction that ends the run. Wakes the delivery workers on commit.
pub async fn enqueue(conn: &mut PgConnection, run_id: Uuid, url: &str) -> Result<(), sqlx::Error> {
    sqlx::query!("INSERT INTO engine.run_callbacks (id, run_id, url) VALUES ($1, $2, $3)", Uuid::now_v7(), run_id, url)
        .execute(&mut *conn)
        .await?;
    wake_deliverers(conn, run_id).await
}

/// A callback a worker holds under a lease.
#[derive(Debug, Clone)]
pub struct ClaimedCallback {
    /// Also the `webhook-id` header.
    pub id: Uuid,
    pub run_id: Uuid,
    pub url: String,
    /// This attempt's number (1 = the first).
    pub attempts: i32,
}

/// Claims up to `limit` due callbacks; the lease is also the next attempt time, so
/// a callback whose worker died is due again when its lease runs out.
pub async fn claim(
    pool: &PgPool,
    worker: &str,
    lease: Duration,
    limit: i64,
) -> Result<Vec<ClaimedCallback>, sqlx::Error> {
    sqlx::query_as!(
        ClaimedCallback,
        "WITH due AS (
             SELECT id FROM engine.run_callbacks
             WHERE status = 'pending' AND next_attempt_at <= now()
             ORDER BY next_attempt_at, id
             LIMIT $3
             FOR UPDATE SKIP LOCKED)
         UPDATE engine.run_callbacks c
         SET attempts = c.attempts + 1, locked_by = $1,
             locked_until = now() + make_interval(secs => $2), next_attempt_at = now() + make_interval(secs => $2)
         FROM due WHERE c.id = due.id
         RETURNING c.id, c.run_id, c.url, c.attempts",
        worker,
        lease.as_secs_f64(),
        limit
    )
    .fetch_all(pool)
    .await
}

/// Records an attempt's outcome, when `worker` still holds the callback.
pub async fn finish(
    pool: &PgPool,
    c: &ClaimedCallback,
    worker: &str,
    attempt: &Attempt,
    next: Next,
) -> Result<(), sqlx::Error> {
    let (status, retry_in) = next.status();
    sqlx::query!(
        "UPDATE engine.run_callbacks
         SET status = $3, next_attempt_at = now() + make_interval(secs => $4), last_status = $5, last_error = $6,
             locked_by = NULL, locked_until = NULL, delivered_at = CASE WHEN $3 = 'succeeded' THEN now() END
         WHERE id = $1 AND locked_by = $2 AND status = 'pending'",
        c.id,
        worker,
        status.as_str(),
        retry_in.as_secs_f64(),
        attempt.status.map(i32::from),
        attempt.error
    )
    .execute(pool)
    .await?;
    Ok(())
}
