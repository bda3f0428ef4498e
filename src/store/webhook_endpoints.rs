//! `engine.webhook_endpoints`: where events are pushed, their sealed signing
//! secrets (see `events::secret`) and their failure streak.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct EndpointRow {
    pub id: Uuid,
    pub url: String,
    pub description: String,
    pub events: Vec<String>,
    /// Sealed (see `events::secret`); open it to sign.
    pub secret: String,
    /// The custom headers, sealed as one list (`events::secret::seal_headers`); `None`: none.
    pub headers: Option<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The writable fields of an endpoint.
pub struct EndpointFields<'a> {
    pub url: &'a str,
    pub description: &'a str,
    pub events: &'a [String],
    pub enabled: bool,
    /// From `events::secret::seal_headers` for this endpoint.
    pub sealed_headers: Option<&'a str>,
}

/// `sealed_secret`: from `events::secret::seal` for this `id`.
pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    f: &EndpointFields<'_>,
    sealed_secret: &str,
    created_by: Option<Uuid>,
) -> Result<EndpointRow, sqlx::Error> {
    sqlx::query_as!(
        EndpointRow,
        "INSERT INTO engine.webhook_endpoints (id, url, description, events, secret, enabled, created_by, headers)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         RETURNING id, url, description, events, secret, headers, enabled, disabled_reason, failing_since, created_at, updated_at",
        id,
        f.url,
        f.description,
        f.events,
        sealed_secret,
        f.enabled,
        created_by,
        f.sealed_headers
    )
    .fetch_one(conn)
    .await
}

pub async fn find(conn: &mut PgConnection, id: Uuid) -> Result<Option<EndpointRow>, sqlx::Error> {
    sqlx::query_as!(
        EndpointRow,
        "SELECT id, url, description, events, secret, headers, enabled, disabled_reason, failing_since, created_at, updated_at
         FROM engine.webhook_endpoints WHERE id = $1",
        id
    )
    .fetch_optional(conn)
    .await
}

/// [`find`], locking the row until the transaction ends.
pub async fn find_for_update(conn: &mut PgConnection, id: Uuid) -> Result<Option<EndpointRow>, sqlx::Error> {
    sqlx::query_as!(
        EndpointRow,
        "SELECT id, url, description, events, secret, headers, enabled, disabled_reason, failing_since, created_at, updated_at
         FROM engine.webhook_endpoints WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(conn)
    .await
}

/// In creation order, after the `after` id.
pub async fn list(conn: &mut PgConnection, after: Option<Uuid>, limit: i64) -> Result<Vec<EndpointRow>, sqlx::Error> {
    sqlx::query_as!(
        EndpointRow,
        "SELECT id, url, description, events, secret, headers, enabled, disabled_reason, failing_since, created_at, updated_at
         FROM engine.webhook_endpoints WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2",
        after,
        limit
    )
    .fetch_all(conn)
    .await
}

/// Saves the writable fields. Enabling clears the disabled reason and the failure
/// streak; disabling through the API records that as the reason.
pub async fn update(conn: &mut PgConnection, id: Uuid, f: &EndpointFields<'_>) -> Result<EndpointRow, sqlx::Error> {
    sqlx::query_as!(
        EndpointRow,
        "UPDATE engine.webhook_endpoints
         SET url = $2, description = $3, events = $4, enabled = $5, headers = $6,
             disabled_reason = CASE WHEN $5 THEN NULL WHEN enabled THEN 'disabled through the API' ELSE disabled_reason END,
             failing_since = CASE WHEN $5 AND NOT enabled THEN NULL ELSE failing_since END,
             updated_at = now()
         WHERE id = $1
         RETURNING id, url, description, events, secret, headers, enabled, disabled_reason, failing_since, created_at, updated_at",
        id,
        f.url,
        f.description,
        f.events,
        f.enabled,
        f.sealed_headers
    )
    .fetch_one(conn)
    .await
}

/// `sealed_secret`: from `events::secret::seal` for this `id`.
pub async fn set_secret(conn: &mut PgConnection, id: Uuid, sealed_secret: &str) -> Result<EndpointRow, sqlx::Error> {
    sqlx::query_as!(
        EndpointRow,
        "UPDATE engine.webhook_endpoints SET secret = $2, updated_at = now() WHERE id = $1
         RETURNING id, url, description, events, secret, headers, enabled, disabled_reason, failing_since, created_at, updated_at",
        id,
        sealed_secret
    )
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
    let rows = sqlx::query!(
        "SELECT id, secret FROM engine.webhook_endpoints
         WHERE id > $1 AND (NOT starts_with(secret, 'v1:') OR ($2::text IS NOT NULL AND NOT starts_with(secret, $2)))
         ORDER BY id LIMIT $3",
        after,
        current_prefix,
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.secret)).collect())
}

/// Replaces a stored secret with `sealed` unless it changed since it was read (a rotation).
pub async fn reseal_secret(pool: &PgPool, id: Uuid, old: &str, sealed: &str) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query!("UPDATE engine.webhook_endpoints SET secret = $3 WHERE id = $1 AND secret = $2", id, old, sealed)
            .execute(pool)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Up to `limit` (id, sealed headers) after `after` whose headers are sealed under
/// another key than the one of `current_prefix` (e.g. `v1:1a2b3c4d:`).
pub async fn headers_to_reseal(
    pool: &PgPool,
    after: Uuid,
    current_prefix: &str,
    limit: i64,
) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT id, headers AS "headers!" FROM engine.webhook_endpoints
           WHERE id > $1 AND headers IS NOT NULL AND NOT starts_with(headers, $2)
           ORDER BY id LIMIT $3"#,
        after,
        current_prefix,
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.headers)).collect())
}

/// Replaces stored headers with `sealed` unless they changed since they were read.
pub async fn reseal_headers(pool: &PgPool, id: Uuid, old: &str, sealed: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "UPDATE engine.webhook_endpoints SET headers = $3 WHERE id = $1 AND headers = $2",
        id,
        old,
        sealed
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes the endpoint with its deliveries and their attempts.
pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!("DELETE FROM engine.webhook_endpoints WHERE id = $1", id).execute(conn).await?;
    Ok(())
}

/// Disables an endpoint and fails its pending deliveries (nothing more is sent to it).
pub async fn disable(conn: &mut PgConnection, id: Uuid, reason: &str) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE engine.webhook_endpoints SET enabled = false, disabled_reason = $2, updated_at = now() WHERE id = $1",
        id,
        reason
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE engine.deliveries SET status = 'failed', last_error = $2, locked_by = NULL, locked_until = NULL
         WHERE endpoint_id = $1 AND status = 'pending'",
        id,
        format!("endpoint disabled: {reason}")
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Ends an endpoint's failure streak (a delivery succeeded).
pub async fn clear_failing(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE engine.webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL",
        id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Starts (or keeps) an enabled endpoint's failure streak; returns since when it
/// has failed (`None` when it is disabled or gone).
pub async fn mark_failing(conn: &mut PgConnection, id: Uuid) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let since = sqlx::query_scalar!(
        "UPDATE engine.webhook_endpoints SET failing_since = coalesce(failing_since, now()) WHERE id = $1 AND enabled
         RETURNING failing_since",
        id
    )
    .fetch_optional(conn)
    .await?;
    Ok(since.flatten())
}
