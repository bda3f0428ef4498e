//! `engine.idempotency_keys`: remembered responses of POSTs sent with an `Idempotency-Key`.

use sqlx::PgPool;
use uuid::Uuid;

pub struct StoredResponse {
    pub status: i16,
    pub headers: serde_json::Value,
    pub body: Vec<u8>,
}

pub enum Claim {
    /// This request owns the key now and must run.
    Acquired,
    /// The key was used before with a different request.
    Mismatch,
    /// The first request with this key is still running.
    InFlight,
    /// The first request finished; replay its response.
    Completed(StoredResponse),
}

/// Takes the key for this request, or reports what holds it. An expired key, or one whose
/// request died while in flight (lock passed), is taken over.
pub async fn claim(pool: &PgPool, token_id: Uuid, key: &str, hash: &str, lock_secs: f64, ttl_hours: i32) -> Result<Claim, sqlx::Error> {
    let acquired = sqlx::query_scalar!(
        r#"INSERT INTO engine.idempotency_keys (token_id, key, request_hash, state, locked_until, expires_at)
           VALUES ($1, $2, $3, 'in_progress', now() + make_interval(secs => $4), now() + make_interval(hours => $5))
           ON CONFLICT (token_id, key) DO UPDATE
               SET request_hash = excluded.request_hash, state = 'in_progress', locked_until = excluded.locked_until,
                   expires_at = excluded.expires_at, response_status = NULL, response_headers = NULL,
                   response_body = NULL, created_at = now()
               WHERE idempotency_keys.expires_at < now()
                  OR (idempotency_keys.state = 'in_progress' AND idempotency_keys.locked_until < now()
                      AND idempotency_keys.request_hash = excluded.request_hash)
           RETURNING true AS "acquired!""#,
        token_id,
        key,
        hash,
        lock_secs,
        ttl_hours
    )
    .fetch_optional(pool)
    .await?;
    if acquired.is_some() {
        return Ok(Claim::Acquired);
    }
    let Some(row) = sqlx::query!(
        "SELECT request_hash, state, response_status, response_headers, response_body
         FROM engine.idempotency_keys WHERE token_id = $1 AND key = $2",
        token_id,
        key
    )
    .fetch_optional(pool)
    .await?
    else {
        // Deleted between the two statements (its request failed): try once more.
        return Box::pin(claim(pool, token_id, key, hash, lock_secs, ttl_hours)).await;
    };
    Ok(if row.request_hash != hash {
        Claim::Mismatch
    } else if row.state == "in_progress" {
        Claim::InFlight
    } else {
        Claim::Completed(StoredResponse {
            status: row.response_status.unwrap_or(200),
            headers: row.response_headers.unwrap_or_default(),
            body: row.response_body.unwrap_or_default(),
        })
    })
}

pub async fn complete(pool: &PgPool, token_id: Uuid, key: &str, response: &StoredResponse) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE engine.idempotency_keys
         SET state = 'completed', response_status = $3, response_headers = $4, response_body = $5
         WHERE token_id = $1 AND key = $2",
        token_id,
        key,
        response.status,
        response.headers,
        response.body
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets a key whose request failed in a way worth retrying (5xx, 409, 429).
pub async fn release(pool: &PgPool, token_id: Uuid, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query!("DELETE FROM engine.idempotency_keys WHERE token_id = $1 AND key = $2", token_id, key)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn purge_expired(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!("DELETE FROM engine.idempotency_keys WHERE expires_at < now()").execute(pool).await?;
    Ok(done.rows_affected())
}
