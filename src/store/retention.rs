//! Retention: deletes old rows in small batches. Each call is one short statement
//! (its own transaction) over at most `limit` rows, taken with `SKIP LOCKED` so a
//! batch never waits on a row a worker or deliverer holds.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// Events older than `before` and, by `ON DELETE CASCADE`, their deliveries and delivery
/// attempts. An event with a pending delivery stays until that delivery ends.
pub async fn prune_events(pool: &PgPool, before: DateTime<Utc>, limit: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "DELETE FROM engine.events WHERE id IN (
             SELECT e.id FROM engine.events e
             WHERE e.created_at < $1
               AND NOT EXISTS (SELECT 1 FROM engine.deliveries d WHERE d.event_id = e.id AND d.status = 'pending')
             ORDER BY e.created_at LIMIT $2
             FOR UPDATE SKIP LOCKED)",
        before,
        limit
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Runs finished before `before` and, by cascade, their tasks, effects and run callbacks.
/// A run with an open task or a pending callback stays; an open run has no `finished_at`.
pub async fn prune_runs(pool: &PgPool, before: DateTime<Utc>, limit: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "DELETE FROM engine.runs WHERE id IN (
             SELECT r.id FROM engine.runs r
             WHERE r.finished_at < $1
               AND r.status IN ('succeeded', 'partially_failed', 'failed', 'canceled')
               AND NOT EXISTS (SELECT 1 FROM engine.tasks t
                               WHERE t.run_id = r.id AND t.status IN ('queued', 'running'))
               AND NOT EXISTS (SELECT 1 FROM engine.run_callbacks c
                               WHERE c.run_id = r.id AND c.status = 'pending')
             ORDER BY r.finished_at LIMIT $2
             FOR UPDATE SKIP LOCKED)",
        before,
        limit
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Inbound WhatsApp messages received before `before`.
pub async fn prune_inbound(pool: &PgPool, before: DateTime<Utc>, limit: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "DELETE FROM engine.inbound_messages WHERE message_id IN (
             SELECT message_id FROM engine.inbound_messages WHERE received_at < $1
             ORDER BY received_at LIMIT $2
             FOR UPDATE SKIP LOCKED)",
        before,
        limit
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// The outbound WhatsApp message log (`engine.whatsapp_messages`), created before `before`.
pub async fn prune_messages(pool: &PgPool, before: DateTime<Utc>, limit: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "DELETE FROM engine.whatsapp_messages WHERE id IN (
             SELECT id FROM engine.whatsapp_messages WHERE created_at < $1
             ORDER BY created_at LIMIT $2
             FOR UPDATE SKIP LOCKED)",
        before,
        limit
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Idempotency keys past their `expires_at` (set from `IDEMPOTENCY_TTL_HOURS`).
pub async fn prune_idempotency_keys(pool: &PgPool, limit: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "DELETE FROM engine.idempotency_keys WHERE (token_id, key) IN (
             SELECT token_id, key FROM engine.idempotency_keys WHERE expires_at < now()
             ORDER BY expires_at LIMIT $1
             FOR UPDATE SKIP LOCKED)",
        limit
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Audit rows older than `before`, through `audit.prune`: the only path the append-only
/// trigger lets delete (docs/SECURITY.md).
pub async fn prune_audit(pool: &PgPool, before: DateTime<Utc>, limit: i64) -> Result<u64, sqlx::Error> {
    let limit = i32::try_from(limit).unwrap_or(i32::MAX);
    let pruned =
        sqlx::query_scalar!(r#"SELECT audit.prune($1, $2) AS "pruned!""#, before, limit).fetch_one(pool).await?;
    Ok(u64::try_from(pruned).unwrap_or(0))
}
