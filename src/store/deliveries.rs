//! `engine.deliveries` and `engine.delivery_attempts`: one event's delivery to one
//! endpoint, claimed by a delivery worker under a lease, and its attempt log.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{events::wake_deliverers, webhook_endpoints};
use crate::domain::events::{Attempt, DeliveryStatus, Event, Next};

#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub endpoint_id: Uuid,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    /// Set while a worker holds the delivery (an attempt in flight).
    pub locked_until: Option<DateTime<Utc>>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// An endpoint's deliveries, newest event first, before the `before` event id.
pub async fn list(
    conn: &mut PgConnection,
    endpoint_id: Uuid,
    status: Option<DeliveryStatus>,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    sqlx::query_as!(
        DeliveryRow,
        r#"SELECT d.id, d.event_id, ev.type AS event_type, d.endpoint_id, d.status AS "status: DeliveryStatus", d.attempts, d.next_attempt_at,
                  CASE WHEN d.locked_until > now() THEN d.locked_until END AS locked_until,
                  d.last_status, d.last_error, d.created_at, d.delivered_at
           FROM engine.deliveries d JOIN engine.events ev ON ev.id = d.event_id
           WHERE d.endpoint_id = $1 AND ($2::text IS NULL OR d.status = $2) AND ($3::uuid IS NULL OR d.event_id < $3)
           ORDER BY d.event_id DESC LIMIT $4"#,
        endpoint_id,
        status.map(DeliveryStatus::as_str),
        before,
        limit
    )
    .fetch_all(conn)
    .await
}

pub async fn find(conn: &mut PgConnection, id: Uuid) -> Result<Option<DeliveryRow>, sqlx::Error> {
    sqlx::query_as!(
        DeliveryRow,
        r#"SELECT d.id, d.event_id, ev.type AS event_type, d.endpoint_id, d.status AS "status: DeliveryStatus", d.attempts, d.next_attempt_at,
                  CASE WHEN d.locked_until > now() THEN d.locked_until END AS locked_until,
                  d.last_status, d.last_error, d.created_at, d.delivered_at
           FROM engine.deliveries d JOIN engine.events ev ON ev.id = d.event_id WHERE d.id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await
}

/// [`find`], locking the delivery until the transaction ends.
pub async fn find_for_update(conn: &mut PgConnection, id: Uuid) -> Result<Option<DeliveryRow>, sqlx::Error> {
    sqlx::query_as!(
        DeliveryRow,
        r#"SELECT d.id, d.event_id, ev.type AS event_type, d.endpoint_id, d.status AS "status: DeliveryStatus", d.attempts, d.next_attempt_at,
                  CASE WHEN d.locked_until > now() THEN d.locked_until END AS locked_until,
                  d.last_status, d.last_error, d.created_at, d.delivered_at
           FROM engine.deliveries d JOIN engine.events ev ON ev.id = d.event_id WHERE d.id = $1 FOR UPDATE OF d"#,
        id
    )
    .fetch_optional(conn)
    .await
}

/// Puts a delivery back in the queue for an attempt now.
pub async fn requeue(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE engine.deliveries
         SET status = 'pending', next_attempt_at = now(), locked_by = NULL, locked_until = NULL, delivered_at = NULL
         WHERE id = $1",
        id
    )
    .execute(&mut *conn)
    .await?;
    wake_deliverers(conn, id).await
}

#[derive(Debug, Clone)]
pub struct AttemptRow {
    pub delivery_id: Uuid,
    pub attempted_at: DateTime<Utc>,
    pub status: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

/// The attempts of these deliveries, oldest first.
pub async fn attempts(conn: &mut PgConnection, delivery_ids: &[Uuid]) -> Result<Vec<AttemptRow>, sqlx::Error> {
    sqlx::query_as!(
        AttemptRow,
        "SELECT delivery_id, attempted_at, status, latency_ms, error, response_excerpt
         FROM engine.delivery_attempts WHERE delivery_id = ANY ($1) ORDER BY id",
        delivery_ids
    )
    .fetch_all(conn)
    .await
}

// ---------------------------------------------------------------- the delivery worker

/// A delivery a worker holds under a lease, with what it needs to send it.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    /// This attempt's number (1 = the first).
    pub attempts: i32,
    pub url: String,
    /// Sealed (see `events::secret`).
    pub secret: String,
    /// The endpoint's custom headers, sealed (see `events::secret::open_headers`).
    pub headers: Option<String>,
    pub event_id: Uuid,
    pub event_type: String,
    pub event_data: Value,
    pub event_created_at: DateTime<Utc>,
}

impl Claimed {
    pub fn event(&self) -> Event {
        Event {
            id: self.event_id,
            kind: self.event_type.clone(),
            created_at: self.event_created_at,
            data: self.event_data.clone(),
        }
    }
}

/// Claims up to `limit` due deliveries of enabled endpoints for `worker`. The lease
/// is also the next attempt time, so a delivery whose worker died is due again
/// when its lease runs out.
pub async fn claim(pool: &PgPool, worker: &str, lease: Duration, limit: i64) -> Result<Vec<Claimed>, sqlx::Error> {
    sqlx::query_as!(
        Claimed,
        r#"WITH due AS (
               SELECT d.id FROM engine.deliveries d JOIN engine.webhook_endpoints e ON e.id = d.endpoint_id
               WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND e.enabled
               ORDER BY d.next_attempt_at, d.id
               LIMIT $3
               FOR UPDATE OF d SKIP LOCKED),
           held AS (
               UPDATE engine.deliveries d
               SET attempts = d.attempts + 1, locked_by = $1,
                   locked_until = now() + make_interval(secs => $2), next_attempt_at = now() + make_interval(secs => $2)
               FROM due WHERE d.id = due.id
               RETURNING d.id, d.endpoint_id, d.attempts, d.event_id)
           SELECT h.id AS "id!", h.endpoint_id AS "endpoint_id!", h.attempts AS "attempts!", e.url, e.secret, e.headers,
                  h.event_id AS "event_id!", ev.type AS event_type, ev.data AS event_data,
                  ev.created_at AS event_created_at
           FROM held h JOIN engine.webhook_endpoints e ON e.id = h.endpoint_id JOIN engine.events ev ON ev.id = h.event_id"#,
        worker,
        lease.as_secs_f64(),
        limit
    )
    .fetch_all(pool)
    .await
}

/// Extends `worker`'s lease on a claimed delivery to `lease` from now, just before
/// its attempt is sent. False when the worker no longer holds it (the lease ran out
/// and another worker took it, it was requeued, or the endpoint was disabled): then
/// the attempt must not be sent.
pub async fn renew(pool: &PgPool, id: Uuid, worker: &str, lease: Duration) -> Result<bool, sqlx::Error> {
    let held = sqlx::query!(
        "UPDATE engine.deliveries d
         SET locked_until = now() + make_interval(secs => $3), next_attempt_at = now() + make_interval(secs => $3)
         FROM engine.webhook_endpoints e
         WHERE d.id = $1 AND d.locked_by = $2 AND d.status = 'pending' AND e.id = d.endpoint_id AND e.enabled",
        id,
        worker,
        lease.as_secs_f64()
    )
    .execute(pool)
    .await?;
    Ok(held.rows_affected() == 1)
}

/// Logs the attempt and moves the delivery on (when `worker` still holds it), and
/// keeps the endpoint's failure streak. Returns why the endpoint was disabled, if it was.
pub async fn finish(
    pool: &PgPool,
    c: &Claimed,
    worker: &str,
    attempt: &Attempt,
    next: Next,
    disable_after: Duration,
) -> Result<Option<String>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query!(
        "INSERT INTO engine.delivery_attempts (delivery_id, status, latency_ms, error, response_excerpt)
         VALUES ($1, $2, $3, $4, $5)",
        c.id,
        attempt.status.map(i32::from),
        attempt.latency_ms,
        attempt.error,
        attempt.response_excerpt
    )
    .execute(&mut *tx)
    .await?;
    let (status, retry_in) = next.status();
    let held = sqlx::query!(
        "UPDATE engine.deliveries
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
    .execute(&mut *tx)
    .await?;
    if held.rows_affected() == 0 {
        // Lost the lease (another worker took over, or the endpoint was disabled meanwhile).
        tx.commit().await?;
        return Ok(None);
    }
    let disabled = match next {
        Next::Succeeded => {
            webhook_endpoints::clear_failing(&mut tx, c.endpoint_id).await?;
            None
        }
        Next::Gone => Some("the endpoint answered 410 Gone".to_string()),
        Next::Retry(_) | Next::Failed => webhook_endpoints::mark_failing(&mut tx, c.endpoint_id)
            .await?
            .filter(|s| Utc::now() - *s > chrono::Duration::from_std(disable_after).unwrap_or(chrono::TimeDelta::MAX))
            .map(|s| {
                format!(
                    "every delivery failed since {} (over {})",
                    crate::domain::timestamp::format(&s),
                    humantime::format_duration(disable_after)
                )
            }),
    };
    if let Some(reason) = &disabled {
        webhook_endpoints::disable(&mut tx, c.endpoint_id, reason).await?;
    }
    tx.commit().await?;
    Ok(disabled)
}
