//! `engine.idempotency_keys`: remembered responses of POSTs sent with an `Idempotency-Key`.
//! Bodies are stored sealed (`response_sealed`); the caller seals and opens them.

use sqlx::PgPool;
use uuid::Uuid;

pub struct StoredResponse {
    pub status: i16,
    pub headers: serde_json::Value,
    pub body: StoredBody,
}

/// Associated data of a sealed body: a body only opens in its own row.
pub fn aad(token_id: Uuid, key: &str) -> Vec<u8> {
    format!("engine.idempotency_keys:{token_id}:{key}").into_bytes()
}

pub enum StoredBody {
    /// Sealed with the key ring (`crate::crypto`), bound to the token id and key.
    Sealed(String),
    /// Stored before bodies were sealed (sealed at start-up; see the 20261130000001 migration).
    Plain(Vec<u8>),
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
pub async fn claim(
    pool: &PgPool,
    token_id: Uuid,
    key: &str,
    hash: &str,
    lock_secs: f64,
    ttl_hours: i32,
) -> Result<Claim, sqlx::Error> {
    let acquired = sqlx::query_scalar!(
        r#"INSERT INTO engine.idempotency_keys (token_id, key, request_hash, state, locked_until, expires_at)
           VALUES ($1, $2, $3, 'in_progress', now() + make_interval(secs => $4), now() + make_interval(hours => $5))
           ON CONFLICT (token_id, key) DO UPDATE
               SET request_hash = excluded.request_hash, state = 'in_progress', locked_until = excluded.locked_until,
                   expires_at = excluded.expires_at, response_status = NULL, response_headers = NULL,
                   response_body = NULL, response_sealed = NULL, created_at = now()
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
        "SELECT request_hash, state, response_status, response_headers, response_body, response_sealed
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
            body: match (row.response_sealed, row.response_body) {
                (Some(sealed), _) => StoredBody::Sealed(sealed),
                (None, body) => StoredBody::Plain(body.unwrap_or_default()),
            },
        })
    })
}

/// Stores the response; `sealed_body` is the body sealed with the key ring.
pub async fn complete(
    pool: &PgPool,
    token_id: Uuid,
    key: &str,
    status: i16,
    headers: &serde_json::Value,
    sealed_body: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE engine.idempotency_keys
         SET state = 'completed', response_status = $3, response_headers = $4, response_body = NULL, response_sealed = $5
         WHERE token_id = $1 AND key = $2",
        token_id,
        key,
        status,
        headers,
        sealed_body
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

/// A stored body to seal (again): a legacy plaintext one, or one sealed under an old key.
pub struct Unsealed {
    pub token_id: Uuid,
    pub key: String,
    pub body: StoredBody,
}

/// Up to `limit` rows after (`token_id`, `key`) whose body is plaintext, or (with
/// `current_prefix`, e.g. `v1:1a2b3c4d:`) sealed under another key than the current one.
pub async fn to_seal(
    pool: &PgPool,
    after: (Uuid, &str),
    current_prefix: Option<&str>,
    limit: i64,
) -> Result<Vec<Unsealed>, sqlx::Error> {
    let rows = sqlx::query!(
        "SELECT token_id, key, response_body, response_sealed FROM engine.idempotency_keys
         WHERE (token_id, key) > ($1, $2)
           AND (response_body IS NOT NULL OR (response_sealed IS NOT NULL AND $3::text IS NOT NULL AND NOT starts_with(response_sealed, $3)))
         ORDER BY token_id, key LIMIT $4",
        after.0,
        after.1,
        current_prefix,
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Unsealed {
            token_id: r.token_id,
            key: r.key,
            body: match (r.response_body, r.response_sealed) {
                (Some(plain), _) => StoredBody::Plain(plain),
                (None, sealed) => StoredBody::Sealed(sealed.unwrap_or_default()),
            },
        })
        .collect())
}

/// Replaces the body with `sealed` unless the row changed since it was read.
pub async fn reseal(pool: &PgPool, row: &Unsealed, sealed: &str) -> Result<bool, sqlx::Error> {
    let (plain, old) = match &row.body {
        StoredBody::Plain(b) => (Some(b.as_slice()), None),
        StoredBody::Sealed(s) => (None, Some(s.as_str())),
    };
    let done = sqlx::query!(
        "UPDATE engine.idempotency_keys SET response_sealed = $3, response_body = NULL
         WHERE token_id = $1 AND key = $2 AND response_body IS NOT DISTINCT FROM $4 AND response_sealed IS NOT DISTINCT FROM $5",
        row.token_id,
        row.key,
        sealed,
        plain,
        old
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}
