//! SQL of the outbox, the webhook endpoints, their deliveries and the attempt log
//! (`engine.events`, `engine.webhook_endpoints`, `engine.deliveries`,
//! `engine.delivery_attempts`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use super::Event;

// ---------------------------------------------------------------- events

#[derive(FromRow)]
struct EventRow {
    id: Uuid,
    #[sqlx(rename = "type")]
    kind: String,
    data: Value,
    created_at: DateTime<Utc>,
}

impl From<EventRow> for Event {
    fn from(r: EventRow) -> Self {
        Event { id: r.id, kind: r.kind, created_at: r.created_at, data: r.data }
    }
}

/// Events after `after` and before `horizon` (ids), oldest first; only `types` when given.
pub async fn feed(
    conn: &mut PgConnection,
    after: Option<Uuid>,
    horizon: Uuid,
    types: Option<&[&str]>,
    limit: i64,
) -> Result<Vec<Event>, sqlx::Error> {
    let types: Option<Vec<String>> = types.map(|t| t.iter().map(|s| s.to_string()).collect());
    let rows: Vec<EventRow> = sqlx::query_as(
        "SELECT id, type, data, created_at FROM engine.events
         WHERE ($1::uuid IS NULL OR id > $1) AND id < $2 AND ($3::text[] IS NULL OR type = ANY ($3))
         ORDER BY id LIMIT $4",
    )
    .bind(after)
    .bind(horizon)
    .bind(types)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Event::from).collect())
}

// ---------------------------------------------------------------- endpoints

#[derive(Debug, Clone, FromRow)]
pub struct EndpointRow {
    pub id: Uuid,
    pub url: String,
    pub description: String,
    pub events: Vec<String>,
    /// Sealed (see [`super::secret`]); open it to sign.
    pub secret: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const ENDPOINT_COLUMNS: &str =
    "id, url, description, events, secret, enabled, disabled_reason, failing_since, created_at, updated_at";

/// The writable fields of an endpoint.
pub struct EndpointFields<'a> {
    pub url: &'a str,
    pub description: &'a str,
    pub events: &'a [String],
    pub enabled: bool,
}

/// `sealed_secret`: from [`super::secret::seal`] for this `id`.
pub async fn insert_endpoint(
    conn: &mut PgConnection,
    id: Uuid,
    f: &EndpointFields<'_>,
    sealed_secret: &str,
    created_by: Option<Uuid>,
) -> Result<EndpointRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO engine.webhook_endpoints (id, url, description, events, secret, enabled, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {ENDPOINT_COLUMNS}"
    )))
    .bind(id)
    .bind(f.url)
    .bind(f.description)
    .bind(f.events)
    .bind(sealed_secret)
    .bind(f.enabled)
    .bind(created_by)
    .fetch_one(conn)
    .await
}

pub async fn find_endpoint(
    conn: &mut PgConnection,
    id: Uuid,
    for_update: bool,
) -> Result<Option<EndpointRow>, sqlx::Error> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ENDPOINT_COLUMNS} FROM engine.webhook_endpoints WHERE id = $1{lock}"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// In creation order, after the `after` id.
pub async fn list_endpoints(
    conn: &mut PgConnection,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<EndpointRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ENDPOINT_COLUMNS} FROM engine.webhook_endpoints WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2"
    )))
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Saves the writable fields. Enabling clears the disabled reason and the failure
/// streak; disabling through the API records that as the reason.
pub async fn update_endpoint(
    conn: &mut PgConnection,
    id: Uuid,
    f: &EndpointFields<'_>,
) -> Result<EndpointRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE engine.webhook_endpoints
         SET url = $2, description = $3, events = $4, enabled = $5,
             disabled_reason = CASE WHEN $5 THEN NULL WHEN enabled THEN 'disabled through the API' ELSE disabled_reason END,
             failing_since = CASE WHEN $5 AND NOT enabled THEN NULL ELSE failing_since END,
             updated_at = now()
         WHERE id = $1 RETURNING {ENDPOINT_COLUMNS}"
    )))
    .bind(id)
    .bind(f.url)
    .bind(f.description)
    .bind(f.events)
    .bind(f.enabled)
    .fetch_one(conn)
    .await
}

/// `sealed_secret`: from [`super::secret::seal`] for this `id`.
pub async fn set_secret(conn: &mut PgConnection, id: Uuid, sealed_secret: &str) -> Result<EndpointRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE engine.webhook_endpoints SET secret = $2, updated_at = now() WHERE id = $1 RETURNING {ENDPOINT_COLUMNS}"
    )))
    .bind(id)
    .bind(sealed_secret)
    .fetch_one(conn)
    .await
}

/// Up to `limit` (id, stored secret) after `after` whose secret is plaintext (not `v1:`),
/// or (with `current_prefix`, e.g. `v1:1a2b3c4d:`) sealed under another key.
pub async fn secrets_to_seal(
    pool: &PgPool,
    after: Uuid,
    current_prefix: Option<&str>,
    limit: i64,
) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, secret FROM engine.webhook_endpoints
         WHERE id > $1 AND (NOT starts_with(secret, 'v1:') OR ($2::text IS NOT NULL AND NOT starts_with(secret, $2)))
         ORDER BY id LIMIT $3",
    )
    .bind(after)
    .bind(current_prefix)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Replaces a stored secret with `sealed` unless it changed since it was read (a rotation).
pub async fn reseal_secret(pool: &PgPool, id: Uuid, old: &str, sealed: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE engine.webhook_endpoints SET secret = $3 WHERE id = $1 AND secret = $2")
        .bind(id)
        .bind(old)
        .bind(sealed)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes the endpoint with its deliveries and their attempts.
pub async fn delete_endpoint(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM engine.webhook_endpoints WHERE id = $1").bind(id).execute(conn).await?;
    Ok(())
}

/// Disables an endpoint and fails its pending deliveries (nothing more is sent to it).
pub async fn disable_endpoint(conn: &mut PgConnection, id: Uuid, reason: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE engine.webhook_endpoints SET enabled = false, disabled_reason = $2, updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(reason)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE engine.deliveries SET status = 'failed', last_error = $2, locked_by = NULL, locked_until = NULL
         WHERE endpoint_id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(format!("endpoint disabled: {reason}"))
    .execute(conn)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------- deliveries

#[derive(Debug, Clone, FromRow)]
pub struct DeliveryRow {
    pub id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub endpoint_id: Uuid,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    /// Set while a worker holds the delivery (an attempt in flight).
    pub locked_until: Option<DateTime<Utc>>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

const DELIVERY_COLUMNS: &str = "d.id, d.event_id, ev.type AS event_type, d.endpoint_id, d.status, d.attempts, d.next_attempt_at,
     CASE WHEN d.locked_until > now() THEN d.locked_until END AS locked_until, d.last_status, d.last_error, d.created_at, d.delivered_at";

/// An endpoint's deliveries, newest event first, before the `before` event id.
pub async fn list_deliveries(
    conn: &mut PgConnection,
    endpoint_id: Uuid,
    status: Option<&str>,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLUMNS} FROM engine.deliveries d JOIN engine.events ev ON ev.id = d.event_id
         WHERE d.endpoint_id = $1 AND ($2::text IS NULL OR d.status = $2) AND ($3::uuid IS NULL OR d.event_id < $3)
         ORDER BY d.event_id DESC LIMIT $4"
    )))
    .bind(endpoint_id)
    .bind(status)
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await
}

pub async fn find_delivery(
    conn: &mut PgConnection,
    id: Uuid,
    for_update: bool,
) -> Result<Option<DeliveryRow>, sqlx::Error> {
    let lock = if for_update { " FOR UPDATE OF d" } else { "" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLUMNS} FROM engine.deliveries d JOIN engine.events ev ON ev.id = d.event_id WHERE d.id = $1{lock}"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Puts a delivery back in the queue for an attempt now.
pub async fn requeue(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE engine.deliveries SET status = 'pending', next_attempt_at = now(), locked_by = NULL, locked_until = NULL, delivered_at = NULL
         WHERE id = $1",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?;
    super::wake_deliverers(conn, id).await
}

#[derive(Debug, Clone, FromRow)]
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
    sqlx::query_as(
        "SELECT delivery_id, attempted_at, status, latency_ms, error, response_excerpt
         FROM engine.delivery_attempts WHERE delivery_id = ANY ($1) ORDER BY id",
    )
    .bind(delivery_ids)
    .fetch_all(conn)
    .await
}

// ---------------------------------------------------------------- the delivery worker

/// A delivery a worker holds under a lease, with what it needs to send it.
#[derive(Debug, Clone, FromRow)]
pub struct Claimed {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    /// This attempt's number (1 = the first).
    pub attempts: i32,
    pub url: String,
    /// Sealed (see [`super::secret`]).
    pub secret: String,
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
    sqlx::query_as(
        "WITH due AS (
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
         SELECT h.id, h.endpoint_id, h.attempts, e.url, e.secret, h.event_id, ev.type AS event_type,
                ev.data AS event_data, ev.created_at AS event_created_at
         FROM held h JOIN engine.webhook_endpoints e ON e.id = h.endpoint_id JOIN engine.events ev ON ev.id = h.event_id",
    )
    .bind(worker)
    .bind(lease.as_secs_f64())
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// What one attempt saw.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub status: Option<u16>,
    pub latency_ms: i32,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s)) && self.error.is_none()
    }
}

/// What happens to the delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    Succeeded,
    /// Try again after this long.
    Retry(Duration),
    /// Out of attempts.
    Failed,
    /// The endpoint answered 410 Gone: disable it.
    Gone,
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
    sqlx::query("INSERT INTO engine.delivery_attempts (delivery_id, status, latency_ms, error, response_excerpt) VALUES ($1, $2, $3, $4, $5)")
        .bind(c.id)
        .bind(attempt.status.map(i32::from))
        .bind(attempt.latency_ms)
        .bind(&attempt.error)
        .bind(&attempt.response_excerpt)
        .execute(&mut *tx)
        .await?;
    let (status, retry_secs) = match next {
        Next::Succeeded => ("succeeded", 0.0),
        Next::Retry(after) => ("pending", after.as_secs_f64()),
        Next::Failed | Next::Gone => ("failed", 0.0),
    };
    let held = sqlx::query(
        "UPDATE engine.deliveries
         SET status = $3, next_attempt_at = now() + make_interval(secs => $4), last_status = $5, last_error = $6,
             locked_by = NULL, locked_until = NULL, delivered_at = CASE WHEN $3 = 'succeeded' THEN now() END
         WHERE id = $1 AND locked_by = $2 AND status = 'pending'",
    )
    .bind(c.id)
    .bind(worker)
    .bind(status)
    .bind(retry_secs)
    .bind(attempt.status.map(i32::from))
    .bind(&attempt.error)
    .execute(&mut *tx)
    .await?;
    if held.rows_affected() == 0 {
        // Lost the lease (another worker took over, or the endpoint was disabled meanwhile).
        tx.commit().await?;
        return Ok(None);
    }
    let disabled = match next {
        Next::Succeeded => {
            sqlx::query(
                "UPDATE engine.webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL",
            )
            .bind(c.endpoint_id)
            .execute(&mut *tx)
            .await?;
            None
        }
        Next::Gone => Some("the endpoint answered 410 Gone".to_string()),
        Next::Retry(_) | Next::Failed => {
            let since: Option<DateTime<Utc>> = sqlx::query_scalar(
                "UPDATE engine.webhook_endpoints SET failing_since = coalesce(failing_since, now()) WHERE id = $1 AND enabled
                 RETURNING failing_since",
            )
            .bind(c.endpoint_id)
            .fetch_optional(&mut *tx)
            .await?;
            since
                .filter(|s| {
                    Utc::now() - *s > chrono::Duration::from_std(disable_after).unwrap_or(chrono::TimeDelta::MAX)
                })
                .map(|s| {
                    format!(
                        "every delivery failed since {} (over {})",
                        crate::domain::timestamp::format(&s),
                        humantime::format_duration(disable_after)
                    )
                })
        }
    };
    if let Some(reason) = &disabled {
        disable_endpoint(&mut tx, c.endpoint_id, reason).await?;
    }
    tx.commit().await?;
    Ok(disabled)
}
