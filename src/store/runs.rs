//! `engine.runs`, `engine.tasks` and `engine.effects`: the durable queue.
//!
//! Claiming is one short statement (`FOR UPDATE SKIP LOCKED` + lease); no
//! transaction is held while a task runs. Finishing checks the lease holder, so a
//! worker that lost its lease cannot overwrite the task's new owner.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::event_payloads::RunEvent;
pub use crate::domain::run::{RunStatus, RunTrigger, TaskStatus};
use crate::domain::{client::Client, events::EventType};

pub const TASKS_CHANNEL: &str = "switchboard_tasks";

#[derive(Debug, Clone)]
pub struct RunRow {
    pub id: Uuid,
    pub workflow: String,
    pub workflow_version: i32,
    pub status: RunStatus,
    pub trigger: RunTrigger,
    pub params: Value,
    pub dry_run: bool,
    pub callback_url: Option<String>,
    pub schedule_id: Option<Uuid>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

pub struct NewRun<'a> {
    pub workflow: &'a str,
    pub workflow_version: i32,
    pub trigger: RunTrigger,
    pub params: &'a Value,
    pub dry_run: bool,
    pub callback_url: Option<&'a str>,
    pub schedule_id: Option<Uuid>,
    pub created_by: Option<Uuid>,
    /// Only these clients; all `active` clients when `None`.
    pub client_ids: Option<&'a [Uuid]>,
    pub max_attempts: i32,
}

/// Creates a run and one queued task per client, and wakes the workers (on commit).
pub async fn create(conn: &mut PgConnection, new: &NewRun<'_>) -> Result<RunRow, sqlx::Error> {
    let id = Uuid::now_v7();
    let run = sqlx::query_as!(
        RunRow,
        r#"INSERT INTO engine.runs (id, workflow, workflow_version, trigger, params, dry_run, callback_url, schedule_id, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         RETURNING id, workflow, workflow_version, status AS "status: RunStatus", trigger AS "trigger: RunTrigger",
                   params, dry_run, callback_url, schedule_id, created_by, created_at, started_at, finished_at"#,
        id,
        new.workflow,
        new.workflow_version,
        new.trigger.as_str(),
        new.params,
        new.dry_run,
        new.callback_url,
        new.schedule_id,
        new.created_by
    )
    .fetch_one(&mut *conn)
    .await?;
    // Task ids follow the run's id and the order the tasks are written in: the run's first
    // 12 bytes (its time and counter, unique per run) and a 4-byte sequence number. The
    // claim takes tasks in id order, so a batch is a stretch of neighbouring heap and
    // index pages instead of ~100 random ones (random ids cost the claim a quarter more).
    let tasks = sqlx::query!(
        "INSERT INTO engine.tasks (id, run_id, client_id, max_attempts)
         SELECT encode(overlay(uuid_send($1) PLACING int4send((row_number() OVER ())::int) FROM 13 FOR 4), 'hex')::uuid,
                $1, c.id, $3
         FROM knowledge.clients c
         WHERE CASE WHEN $2::uuid[] IS NULL THEN c.status = 'active' ELSE c.id = ANY ($2) END",
        id,
        new.client_ids as Option<&[Uuid]>,
        new.max_attempts
    )
    .execute(&mut *conn)
    .await?;
    super::events::emit(&mut *conn, EventType::RunStarted, &RunEvent::of(&run, None)).await?;
    if tasks.rows_affected() == 0 {
        // Nothing to do: the run is born finished.
        sqlx::query!(
            "UPDATE engine.runs SET status = 'succeeded', started_at = now(), finished_at = now() WHERE id = $1",
            id
        )
        .execute(&mut *conn)
        .await?;
        let run = find(&mut *conn, id).await?.expect("just created");
        super::events::emit(&mut *conn, EventType::RunSucceeded, &RunEvent::of(&run, Some(TaskCounts::default())))
            .await?;
        announce(conn, &run).await?;
        return Ok(run);
    }
    sqlx::query!("SELECT pg_notify($1, $2)", TASKS_CHANNEL, id.to_string()).execute(conn).await?;
    Ok(run)
}

pub async fn find(conn: &mut PgConnection, id: Uuid) -> Result<Option<RunRow>, sqlx::Error> {
    sqlx::query_as!(
        RunRow,
        r#"SELECT id, workflow, workflow_version, status AS "status: RunStatus", trigger AS "trigger: RunTrigger",
                params, dry_run, callback_url, schedule_id, created_by, created_at, started_at, finished_at
         FROM engine.runs WHERE id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await
}

#[derive(Debug, Default)]
pub struct RunFilter {
    pub workflow: Option<String>,
    pub status: Option<RunStatus>,
    pub client_id: Option<Uuid>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// Newest first, before the `before` id.
pub async fn list(
    conn: &mut PgConnection,
    f: &RunFilter,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<RunRow>, sqlx::Error> {
    sqlx::query_as!(
        RunRow,
        r#"SELECT id, workflow, workflow_version, status AS "status: RunStatus", trigger AS "trigger: RunTrigger",
                params, dry_run, callback_url, schedule_id, created_by, created_at, started_at, finished_at
         FROM engine.runs r
         WHERE ($1::text IS NULL OR workflow = $1)
           AND ($2::text IS NULL OR status = $2)
           AND ($3::uuid IS NULL OR EXISTS (SELECT 1 FROM engine.tasks t WHERE t.run_id = r.id AND t.client_id = $3))
           AND ($4::timestamptz IS NULL OR created_at >= $4)
           AND ($5::timestamptz IS NULL OR created_at < $5)
           AND ($6::uuid IS NULL OR id < $6)
         ORDER BY id DESC
         LIMIT $7"#,
        f.workflow,
        f.status.map(RunStatus::as_str),
        f.client_id,
        f.from,
        f.to,
        before,
        limit
    )
    .fetch_all(conn)
    .await
}

/// Task counts of a run by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct TaskCounts {
    pub queued: i64,
    pub running: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub canceled: i64,
}

impl TaskCounts {
    pub fn total(&self) -> i64 {
        self.queued + self.running + self.succeeded + self.failed + self.canceled
    }

    pub fn open(&self) -> i64 {
        self.queued + self.running
    }
}

pub async fn counts(conn: &mut PgConnection, run_id: Uuid) -> Result<TaskCounts, sqlx::Error> {
    let r = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE status = 'queued') AS "queued!",
                  count(*) FILTER (WHERE status = 'running') AS "running!",
                  count(*) FILTER (WHERE status = 'succeeded') AS "succeeded!",
                  count(*) FILTER (WHERE status = 'failed') AS "failed!",
                  count(*) FILTER (WHERE status = 'canceled') AS "canceled!"
           FROM engine.tasks WHERE run_id = $1"#,
        run_id
    )
    .fetch_one(conn)
    .await?;
    Ok(TaskCounts {
        queued: r.queued,
        running: r.running,
        succeeded: r.succeeded,
        failed: r.failed,
        canceled: r.canceled,
    })
}

#[derive(Debug, Clone)]
pub struct TaskRow {
    pub id: Uuid,
    pub run_id: Uuid,
    pub client_id: Uuid,
    pub status: TaskStatus,
    pub attempt: i32,
    pub max_attempts: i32,
    pub result: Option<Value>,
    pub error: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

pub async fn tasks(
    conn: &mut PgConnection,
    run_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<TaskRow>, sqlx::Error> {
    sqlx::query_as!(
        TaskRow,
        r#"SELECT id, run_id, client_id, status AS "status: TaskStatus", attempt, max_attempts, result, error,
                  started_at, finished_at
           FROM engine.tasks WHERE run_id = $1 AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3"#,
        run_id,
        after,
        limit
    )
    .fetch_all(conn)
    .await
}

/// A task a worker now holds under a lease.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: Uuid,
    pub run_id: Uuid,
    pub client_id: Uuid,
    pub attempt: i32,
    pub max_attempts: i32,
}

/// Claimed tasks with the clients they run for, read in the claim's transaction.
#[derive(Debug)]
pub struct ClaimedBatch {
    pub tasks: Vec<Claimed>,
    pub clients: Vec<Client>,
}

/// Claims up to `limit` ready tasks for `worker` with a lease of `lease_secs`, oldest
/// first, and marks their runs started — one statement and one commit for the batch.
pub async fn claim(pool: &PgPool, worker: &str, lease_secs: f64, limit: i64) -> Result<Vec<Claimed>, sqlx::Error> {
    let mut tx = begin_claim(pool).await?;
    let tasks = claim_in(&mut tx, worker, lease_secs, limit).await?;
    tx.commit().await?;
    Ok(tasks)
}

/// [`claim`], and the clients of the claimed tasks read in the same transaction: the
/// worker's whole round of claiming is four round trips and one commit that does not
/// wait for the disk.
pub async fn claim_with_clients(
    pool: &PgPool,
    worker: &str,
    lease_secs: f64,
    limit: i64,
) -> Result<ClaimedBatch, sqlx::Error> {
    let mut tx = begin_claim(pool).await?;
    let tasks = claim_in(&mut tx, worker, lease_secs, limit).await?;
    let mut ids: Vec<Uuid> = tasks.iter().map(|t| t.client_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let clients = if ids.is_empty() { vec![] } else { super::clients::find_many(&mut tx, &ids).await? };
    tx.commit().await?;
    Ok(ClaimedBatch { tasks, clients })
}

/// Opens a claim's transaction, its settings sent with `BEGIN` in one round trip.
///
/// `enable_sort = off`: the ready tasks are read by walking `tasks_ready_idx` in its order
/// and stopping at the limit; never by collecting every ready task and sorting them.
/// PostgreSQL picks the sort whenever its statistics say few tasks are queued — a fresh
/// table, or a big run just created on a table of finished ones (autoanalyze waits for 10 %
/// of the table to change) — and then each claim sorted the whole queue: 23 ms instead of
/// 7 ms per claim of 100 at 20,000 queued (docs/decisions/0023).
///
/// `synchronous_commit = off`: a claim's commit does not wait for its WAL to reach the
/// disk. Losing a claim in a database crash loses nothing: the task is queued again, as
/// when its worker dies, and the worker's own outcome commit, which does wait, flushes
/// the claim before it (WAL is written in order). Waiting here only made every claim
/// pay a disk flush (decision 0023).
async fn begin_claim(pool: &PgPool) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    pool.begin_with("BEGIN; SET LOCAL enable_sort = off; SET LOCAL synchronous_commit = off").await
}

async fn claim_in(
    conn: &mut PgConnection,
    worker: &str,
    lease_secs: f64,
    limit: i64,
) -> Result<Vec<Claimed>, sqlx::Error> {
    // The locked rows are found again by their `ctid` (a TID scan), not by an index
    // probe per id: a row we hold locked cannot move. The ids go through an array, not a
    // join: a generic plan does not know the LIMIT and would join them by hashing the
    // whole table. The runs update only touches runs still `queued` (their first claim):
    // later claims of a run take no lock on its row.
    sqlx::query_as!(
        Claimed,
        r#"WITH claimed AS (
               UPDATE engine.tasks t
               SET status = 'running', attempt = t.attempt + 1, locked_by = $1,
                   locked_until = now() + make_interval(secs => $2), started_at = coalesce(t.started_at, now())
               WHERE t.ctid = ANY (ARRAY(
                   SELECT ctid FROM engine.tasks
                   WHERE status = 'queued' AND run_at <= now()
                   ORDER BY run_at, id
                   LIMIT $3
                   FOR UPDATE SKIP LOCKED))
               RETURNING t.id, t.run_id, t.client_id, t.attempt, t.max_attempts),
           started AS (
               UPDATE engine.runs SET status = 'running', started_at = coalesce(started_at, now())
               WHERE id IN (SELECT run_id FROM claimed) AND status = 'queued')
           SELECT id AS "id!", run_id AS "run_id!", client_id AS "client_id!", attempt AS "attempt!",
                  max_attempts AS "max_attempts!"
           FROM claimed"#,
        worker,
        lease_secs,
        limit
    )
    .fetch_all(conn)
    .await
}

/// Extends the leases `worker` holds on `ids`, in one statement. Returns the tasks whose
/// lease was still held, each with whether its run was canceled meanwhile; a task left
/// out lost its lease (it was reaped and may belong to another worker now).
pub async fn heartbeat(
    pool: &PgPool,
    ids: &[Uuid],
    worker: &str,
    lease_secs: f64,
) -> Result<Vec<(Uuid, bool)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"UPDATE engine.tasks t SET locked_until = now() + make_interval(secs => $3)
           FROM engine.runs r
           WHERE t.id = ANY ($1) AND t.locked_by = $2 AND t.status = 'running' AND r.id = t.run_id
           RETURNING t.id, r.status = 'canceled' AS "canceled!""#,
        ids,
        worker,
        lease_secs
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.canceled)).collect())
}

/// Gives back claimed tasks this worker never started (it is stopping): queued again at
/// once with their attempt returned, or canceled when their run was. Wakes the other
/// workers. Returns the runs touched.
pub async fn release(pool: &PgPool, worker: &str, ids: &[Uuid]) -> Result<Vec<Uuid>, sqlx::Error> {
    let runs = sqlx::query_scalar!(
        "UPDATE engine.tasks t
         SET status = CASE WHEN r.status = 'canceled' THEN 'canceled' ELSE 'queued' END,
             attempt = t.attempt - 1, locked_by = NULL, locked_until = NULL,
             finished_at = CASE WHEN r.status = 'canceled' THEN now() END
         FROM engine.runs r
         WHERE t.id = ANY ($1) AND t.locked_by = $2 AND t.status = 'running' AND r.id = t.run_id
         RETURNING t.run_id",
        ids,
        worker
    )
    .fetch_all(pool)
    .await?;
    if !runs.is_empty() {
        sqlx::query!("SELECT pg_notify($1, 'released')", TASKS_CHANNEL).execute(pool).await?;
    }
    Ok(runs)
}

/// Marks many held tasks succeeded in one statement (one commit for the batch).
/// Returns (task, run) of those whose lease was still held.
pub async fn succeed_many(
    pool: &PgPool,
    worker: &str,
    ids: &[Uuid],
    results: &[Value],
) -> Result<Vec<(Uuid, Uuid)>, sqlx::Error> {
    let rows = sqlx::query!(
        "UPDATE engine.tasks t SET status = 'succeeded', result = u.result, error = NULL, locked_by = NULL,
                locked_until = NULL, finished_at = now()
         FROM unnest($1::uuid[], $2::jsonb[]) AS u(id, result)
         WHERE t.id = u.id AND t.locked_by = $3 AND t.status = 'running'
         RETURNING t.id, t.run_id",
        ids,
        results,
        worker
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.run_id)).collect())
}

/// Records a failure: back to the queue after `retry_in_secs` while attempts remain
/// (and the error is retryable), else `failed`. False when the lease was lost.
pub async fn fail(
    pool: &PgPool,
    task_id: Uuid,
    worker: &str,
    error: &str,
    retryable: bool,
    retry_in_secs: f64,
) -> Result<bool, sqlx::Error> {
    // A task of a canceled run ends canceled: never back in the queue.
    let done = sqlx::query!(
        "UPDATE engine.tasks t
         SET status = CASE WHEN r.status = 'canceled' THEN 'canceled'
                           WHEN $4 AND t.attempt < t.max_attempts THEN 'queued' ELSE 'failed' END,
             run_at = now() + make_interval(secs => $5),
             error = $3, locked_by = NULL, locked_until = NULL,
             finished_at = CASE WHEN r.status <> 'canceled' AND $4 AND t.attempt < t.max_attempts THEN NULL ELSE now() END
         FROM engine.runs r
         WHERE t.id = $1 AND t.locked_by = $2 AND t.status = 'running' AND r.id = t.run_id",
        task_id,
        worker,
        error,
        retryable,
        retry_in_secs
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// How long after a task first started a platform's wait is free (does not spend an
/// attempt): long enough for any pause a vendor announces (Meta's regain estimates are
/// minutes to an hour), short enough that a platform that never lets us in cannot keep a
/// run open forever (after it, a wait spends an attempt like a failure).
pub const FREE_WAIT_SECS: f64 = 24.0 * 3600.0;

/// Puts a held task back in the queue until `wait_secs` from now because a platform asked
/// us to wait (`StepError::wait`): its lease is released (the worker slot is free at once)
/// and, within [`FREE_WAIT_SECS`] of its first start, the attempt is given back. A task of a
/// canceled run ends canceled. False when the lease was lost.
pub async fn requeue_after_wait(
    pool: &PgPool,
    task_id: Uuid,
    worker: &str,
    error: &str,
    wait_secs: f64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "WITH w AS (SELECT coalesce(started_at > now() - make_interval(secs => $5), false) AS free
                    FROM engine.tasks WHERE id = $1)
         UPDATE engine.tasks t
         SET status = CASE WHEN r.status = 'canceled' THEN 'canceled'
                           WHEN w.free OR t.attempt < t.max_attempts THEN 'queued' ELSE 'failed' END,
             attempt = CASE WHEN r.status <> 'canceled' AND w.free THEN t.attempt - 1 ELSE t.attempt END,
             run_at = now() + make_interval(secs => $4),
             error = $3, locked_by = NULL, locked_until = NULL,
             finished_at = CASE WHEN r.status <> 'canceled' AND (w.free OR t.attempt < t.max_attempts)
                                THEN NULL ELSE now() END
         FROM engine.runs r, w
         WHERE t.id = $1 AND t.locked_by = $2 AND t.status = 'running' AND r.id = t.run_id",
        task_id,
        worker,
        error,
        wait_secs,
        FREE_WAIT_SECS
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Returns tasks whose lease expired (their worker died) to the queue, or fails
/// them when their attempts are used up (cancels them when their run was canceled).
/// Returns the runs touched.
pub async fn reap_expired(pool: &PgPool) -> Result<Vec<Uuid>, sqlx::Error> {
    let runs = sqlx::query_scalar!(
        "UPDATE engine.tasks t
         SET status = CASE WHEN r.status = 'canceled' THEN 'canceled'
                           WHEN t.attempt < t.max_attempts THEN 'queued' ELSE 'failed' END,
             run_at = now(), locked_by = NULL, locked_until = NULL,
             error = 'the worker holding this task stopped (lease expired)',
             finished_at = CASE WHEN r.status <> 'canceled' AND t.attempt < t.max_attempts THEN NULL ELSE now() END
         FROM engine.runs r
         WHERE t.status = 'running' AND t.locked_until < now() AND r.id = t.run_id
         RETURNING t.run_id"
    )
    .fetch_all(pool)
    .await?;
    if !runs.is_empty() {
        sqlx::query!("SELECT pg_notify($1, 'reaped')", TASKS_CHANNEL).execute(pool).await?;
    }
    Ok(runs)
}

/// Settles a run's status from its tasks once none is open. Returns the run when
/// this call finished it (so the caller announces it once).
pub async fn settle(pool: &PgPool, run_id: Uuid) -> Result<Option<RunRow>, sqlx::Error> {
    // Cheap check first (an index probe, no lock): most finishing tasks are not the last.
    let open = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM engine.tasks WHERE run_id = $1 AND status IN ('queued', 'running')) AS "open!""#,
        run_id
    )
    .fetch_one(pool)
    .await?;
    if open {
        return Ok(None);
    }
    let mut tx = pool.begin().await?;
    let status: Option<RunStatus> = sqlx::query_scalar!(
        r#"SELECT status AS "status: RunStatus" FROM engine.runs WHERE id = $1 FOR UPDATE"#,
        run_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(status) = status else { return Ok(None) };
    if !status.is_open() {
        return Ok(None);
    }
    let c = counts(&mut tx, run_id).await?;
    if c.open() > 0 {
        return Ok(None);
    }
    let final_status = if c.failed == 0 && c.succeeded > 0 || c.total() == 0 {
        RunStatus::Succeeded
    } else if c.succeeded > 0 {
        RunStatus::PartiallyFailed
    } else if c.failed > 0 {
        RunStatus::Failed
    } else {
        RunStatus::Canceled
    };
    sqlx::query!(
        "UPDATE engine.runs SET status = $2, started_at = coalesce(started_at, now()), finished_at = now() WHERE id = $1",
        run_id,
        final_status.as_str()
    )
    .execute(&mut *tx)
    .await?;
    let run = find(&mut tx, run_id).await?;
    if let Some(run) = &run {
        if let Some(event) = EventType::run_finished(final_status.as_str()) {
            super::events::emit(&mut tx, event, &RunEvent::of(run, Some(c))).await?;
        }
        announce(&mut tx, run).await?;
    }
    tx.commit().await?;
    Ok(run)
}

/// Cancels a run: queued tasks are canceled now, running ones stop at their next heartbeat.
pub async fn cancel(conn: &mut PgConnection, run_id: Uuid) -> Result<bool, sqlx::Error> {
    let changed = sqlx::query!(
        "UPDATE engine.runs SET status = 'canceled', finished_at = now()
         WHERE id = $1 AND status IN ('queued', 'running')",
        run_id
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE engine.tasks SET status = 'canceled', finished_at = now() WHERE run_id = $1 AND status = 'queued'",
        run_id
    )
    .execute(&mut *conn)
    .await?;
    let canceled = changed.rows_affected() == 1;
    // Canceling ends the run here (the engine never settles it), so it is announced here.
    if canceled && let Some(run) = find(&mut *conn, run_id).await? {
        announce(conn, &run).await?;
    }
    Ok(canceled)
}

/// Queues the run's callback, if it has a `callback_url`; in the transaction that ends it.
async fn announce(conn: &mut PgConnection, run: &RunRow) -> Result<(), sqlx::Error> {
    match &run.callback_url {
        Some(url) => super::callbacks::enqueue(conn, run.id, url).await,
        None => Ok(()),
    }
}

/// Puts a finished run's failed tasks back in the queue as a new attempt of the same run.
pub async fn retry_failed(conn: &mut PgConnection, run_id: Uuid) -> Result<u64, sqlx::Error> {
    let requeued = sqlx::query!(
        "UPDATE engine.tasks SET status = 'queued', attempt = 0, run_at = now(), finished_at = NULL
         WHERE run_id = $1 AND status = 'failed'",
        run_id
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if requeued > 0 {
        sqlx::query!("UPDATE engine.runs SET status = 'running', finished_at = NULL WHERE id = $1", run_id)
            .execute(&mut *conn)
            .await?;
        sqlx::query!("SELECT pg_notify($1, $2)", TASKS_CHANNEL, run_id.to_string()).execute(conn).await?;
    }
    Ok(requeued)
}
