//! `engine.workers`: one heartbeat row per worker process. A worker keeps its row fresh
//! (one small update per beat, however many tasks it holds); a row gone stale means the
//! worker died, and [`take_over_dead`] hands its tasks back to the queue at once — the
//! task leases (`runs::reap_expired`) stay as the backstop for workers without a row.

use sqlx::PgPool;

use super::runs::TASKS_CHANNEL;

/// Writes (or re-creates) the worker's heartbeat row.
pub async fn beat(pool: &PgPool, worker: &str) -> Result<(), sqlx::Error> {
    sqlx::query!("INSERT INTO engine.workers (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET seen_at = now()", worker)
        .execute(pool)
        .await?;
    Ok(())
}

/// A stopping worker removes its row (the tasks it held are finished or given back).
pub async fn forget(pool: &PgPool, worker: &str) -> Result<(), sqlx::Error> {
    sqlx::query!("DELETE FROM engine.workers WHERE id = $1", worker).execute(pool).await?;
    Ok(())
}

/// Workers whose heartbeat is older than `dead_after_secs` are removed and, in the same
/// statement, the tasks they held are returned to the queue (failed when their attempts
/// are used up, canceled when their run was), as `runs::reap_expired` does for expired
/// leases. Two reapers never both act: the second waits on the row the first deletes and
/// then finds it gone. Wakes the workers. Returns the runs touched.
pub async fn take_over_dead(pool: &PgPool, dead_after_secs: f64) -> Result<Vec<uuid::Uuid>, sqlx::Error> {
    let runs = sqlx::query_scalar!(
        "WITH dead AS (
             DELETE FROM engine.workers WHERE seen_at < now() - make_interval(secs => $1) RETURNING id)
         UPDATE engine.tasks t
         SET status = CASE WHEN r.status = 'canceled' THEN 'canceled'
                           WHEN t.attempt < t.max_attempts THEN 'queued' ELSE 'failed' END,
             run_at = now(), locked_by = NULL, locked_until = NULL,
             error = 'the worker holding this task stopped (its heartbeat went stale)',
             finished_at = CASE WHEN r.status <> 'canceled' AND t.attempt < t.max_attempts THEN NULL ELSE now() END
         FROM engine.runs r
         WHERE t.status = 'running' AND t.locked_by IN (SELECT id FROM dead) AND r.id = t.run_id
         RETURNING t.run_id",
        dead_after_secs
    )
    .fetch_all(pool)
    .await?;
    if !runs.is_empty() {
        sqlx::query!("SELECT pg_notify($1, 'taken over')", TASKS_CHANNEL).execute(pool).await?;
    }
    Ok(runs)
}
