//! `engine.schedules` and `engine.schedule_firings`: when workflows run on their
//! own, and the slots that fired (their primary key makes each slot fire once
//! across scheduler replicas; see `workflows::scheduler`).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct ScheduleRow {
    pub id: Uuid,
    pub workflow: String,
    pub cron: String,
    pub timezone: String,
    pub params: Value,
    pub enabled: bool,
    pub next_fire_at: Option<DateTime<Utc>>,
    pub last_fired_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The writable fields, validated.
pub struct ScheduleFields<'a> {
    pub workflow: &'a str,
    pub cron: &'a str,
    pub timezone: &'a str,
    pub params: &'a Value,
    pub enabled: bool,
    pub next_fire_at: Option<DateTime<Utc>>,
}

pub async fn find(conn: &mut PgConnection, id: Uuid) -> Result<Option<ScheduleRow>, sqlx::Error> {
    sqlx::query_as!(
        ScheduleRow,
        "SELECT id, workflow, cron, timezone, params, enabled, next_fire_at, last_fired_at, created_at, updated_at
         FROM engine.schedules WHERE id = $1",
        id
    )
    .fetch_optional(conn)
    .await
}

pub async fn insert(conn: &mut PgConnection, id: Uuid, f: &ScheduleFields<'_>) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO engine.schedules (id, workflow, cron, timezone, params, enabled, next_fire_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        id,
        f.workflow,
        f.cron,
        f.timezone,
        f.params,
        f.enabled,
        f.next_fire_at
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Only this workflow / enabled state when given; in creation order after `after`.
pub async fn list(
    conn: &mut PgConnection,
    workflow: Option<&str>,
    enabled: Option<bool>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ScheduleRow>, sqlx::Error> {
    sqlx::query_as!(
        ScheduleRow,
        "SELECT id, workflow, cron, timezone, params, enabled, next_fire_at, last_fired_at, created_at, updated_at
         FROM engine.schedules
         WHERE ($1::text IS NULL OR workflow = $1) AND ($2::bool IS NULL OR enabled = $2) AND ($3::uuid IS NULL OR id > $3)
         ORDER BY id LIMIT $4",
        workflow,
        enabled,
        after,
        limit
    )
    .fetch_all(conn)
    .await
}

pub async fn update(conn: &mut PgConnection, id: Uuid, f: &ScheduleFields<'_>) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE engine.schedules
         SET workflow = $2, cron = $3, timezone = $4, params = $5, enabled = $6, next_fire_at = $7, updated_at = now()
         WHERE id = $1",
        id,
        f.workflow,
        f.cron,
        f.timezone,
        f.params,
        f.enabled,
        f.next_fire_at
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!("DELETE FROM engine.schedules WHERE id = $1", id).execute(conn).await?;
    Ok(())
}

/// Advisory lock key serialising [`seed_default`] across replicas.
const SEED_LOCK: i64 = 0x5357_5343_4845_4400; // "SWSCHED"

/// Holds the seeding lock until the transaction ends: replicas starting together
/// would each find no schedule and insert one.
pub async fn lock_seeding(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query!("SELECT pg_advisory_xact_lock($1)", SEED_LOCK).execute(conn).await?;
    Ok(())
}

/// Creates a disabled schedule for `workflow` unless it has one.
pub async fn seed_default(
    conn: &mut PgConnection,
    workflow: &str,
    cron: &str,
    timezone: &str,
    next_fire_at: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO engine.schedules (id, workflow, cron, timezone, params, enabled, next_fire_at)
         SELECT $1, $2, $3, $4, '{}'::jsonb, false, $5
         WHERE NOT EXISTS (SELECT 1 FROM engine.schedules WHERE workflow = $2)",
        Uuid::now_v7(),
        workflow,
        cron,
        timezone,
        next_fire_at
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A schedule whose slot is due, locked by the caller's transaction.
#[derive(Debug, Clone)]
pub struct Due {
    pub id: Uuid,
    pub workflow: String,
    pub cron: String,
    pub timezone: String,
    pub params: Value,
    pub next_fire_at: DateTime<Utc>,
}

/// The enabled schedule due the longest, skipping those another replica holds.
pub async fn lock_next_due(conn: &mut PgConnection) -> Result<Option<Due>, sqlx::Error> {
    sqlx::query_as!(
        Due,
        r#"SELECT id, workflow, cron, timezone, params, next_fire_at AS "next_fire_at!"
           FROM engine.schedules
           WHERE enabled AND next_fire_at <= now()
           ORDER BY next_fire_at
           LIMIT 1
           FOR UPDATE SKIP LOCKED"#
    )
    .fetch_optional(conn)
    .await
}

/// Records that the slot `fire_at` fired as `run_id`; false when it already had.
pub async fn record_firing(
    conn: &mut PgConnection,
    schedule_id: Uuid,
    fire_at: DateTime<Utc>,
    run_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let fired = sqlx::query!(
        "INSERT INTO engine.schedule_firings (schedule_id, fire_at, run_id) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
        schedule_id,
        fire_at,
        run_id
    )
    .execute(conn)
    .await?;
    Ok(fired.rows_affected() == 1)
}

/// Moves a schedule past a slot that already fired (unless it moved meanwhile).
pub async fn skip_slot(
    conn: &mut PgConnection,
    id: Uuid,
    slot: DateTime<Utc>,
    next: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    sqlx::query!("UPDATE engine.schedules SET next_fire_at = $2 WHERE id = $1 AND next_fire_at = $3", id, next, slot)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records the firing of `slot` and moves the schedule on to `next`.
pub async fn fired(
    conn: &mut PgConnection,
    id: Uuid,
    slot: DateTime<Utc>,
    next: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE engine.schedules SET next_fire_at = $2, last_fired_at = $3, updated_at = now() WHERE id = $1",
        id,
        next,
        slot
    )
    .execute(conn)
    .await?;
    Ok(())
}
