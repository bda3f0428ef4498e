//! `auth.api_tokens`: token records (never the JWT itself).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The Postgres channel a revocation is announced on (every replica's token cache listens).
pub const REVOCATION_CHANNEL: &str = "switchboard_token_revoked";

pub struct TokenRow {
    pub id: Uuid,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    name: &str,
    scopes: &[String],
    created_by: Option<Uuid>,
    expires_at: Option<DateTime<Utc>>,
) -> Result<TokenRow, sqlx::Error> {
    sqlx::query_as!(
        TokenRow,
        "INSERT INTO auth.api_tokens (id, name, scopes, created_by, expires_at) VALUES ($1, $2, $3, $4, $5)
         RETURNING id, name, scopes, created_by, created_at, expires_at, revoked_at, last_used_at",
        id,
        name,
        scopes,
        created_by,
        expires_at
    )
    .fetch_one(conn)
    .await
}

pub async fn find(conn: &mut PgConnection, id: Uuid) -> Result<Option<TokenRow>, sqlx::Error> {
    sqlx::query_as!(
        TokenRow,
        "SELECT id, name, scopes, created_by, created_at, expires_at, revoked_at, last_used_at
         FROM auth.api_tokens WHERE id = $1",
        id
    )
    .fetch_optional(conn)
    .await
}

pub async fn list(
    conn: &mut PgConnection,
    after: Option<Uuid>,
    limit: i64,
    include_revoked: bool,
) -> Result<Vec<TokenRow>, sqlx::Error> {
    sqlx::query_as!(
        TokenRow,
        "SELECT id, name, scopes, created_by, created_at, expires_at, revoked_at, last_used_at
         FROM auth.api_tokens
         WHERE ($1::uuid IS NULL OR id > $1) AND ($2 OR revoked_at IS NULL)
         ORDER BY id LIMIT $3",
        after,
        include_revoked,
        limit
    )
    .fetch_all(conn)
    .await
}

/// Serialises issuing and revoking tokens, so a token created while its parent is
/// being revoked is either refused or seen (and revoked) by the revocation.
pub async fn lock_lineage(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query!("SELECT pg_advisory_xact_lock($1)", LINEAGE_LOCK).execute(conn).await?;
    Ok(())
}

const LINEAGE_LOCK: i64 = 0x5357_544f_4b45_4e00; // "SWTOKEN"

/// A token and every token it created, transitively (empty when `id` is unknown).
pub async fn lineage(conn: &mut PgConnection, id: Uuid) -> Result<Vec<TokenRow>, sqlx::Error> {
    sqlx::query_as!(
        TokenRow,
        r#"WITH RECURSIVE tree AS (
             SELECT id FROM auth.api_tokens WHERE id = $1
             UNION
             SELECT t.id FROM auth.api_tokens t JOIN tree ON t.created_by = tree.id
         )
         SELECT t.id AS "id!", t.name AS "name!", t.scopes AS "scopes!", t.created_by, t.created_at AS "created_at!",
                t.expires_at, t.revoked_at, t.last_used_at
         FROM auth.api_tokens t JOIN tree ON tree.id = t.id
         ORDER BY t.id"#,
        id
    )
    .fetch_all(conn)
    .await
}

/// Marks tokens revoked (keeping an earlier revocation time) and tells every replica
/// at once: one NOTIFY per token, sent on commit.
pub async fn revoke(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<TokenRow>, sqlx::Error> {
    let rows = sqlx::query_as!(
        TokenRow,
        "UPDATE auth.api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = ANY($1)
         RETURNING id, name, scopes, created_by, created_at, expires_at, revoked_at, last_used_at",
        ids
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in &rows {
        sqlx::query!("SELECT pg_notify($1, $2)", REVOCATION_CHANNEL, row.id.to_string()).execute(&mut *conn).await?;
    }
    Ok(rows)
}

pub async fn count(pool: &PgPool) -> Result<i64, sqlx::Error> {
    let n = sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM auth.api_tokens"#).fetch_one(pool).await?;
    Ok(n)
}

/// What authentication needs to know about a token.
pub struct TokenStatus {
    pub revoked: bool,
    pub expires_at: Option<DateTime<Utc>>,
}

pub async fn status(pool: &PgPool, id: Uuid) -> Result<Option<TokenStatus>, sqlx::Error> {
    let row = sqlx::query!("SELECT revoked_at, expires_at FROM auth.api_tokens WHERE id = $1", id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|r| TokenStatus { revoked: r.revoked_at.is_some(), expires_at: r.expires_at }))
}

/// Records last use for many tokens in one statement (batched, not per request).
pub async fn touch_many(pool: &PgPool, ids: &[Uuid], at: &[DateTime<Utc>]) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE auth.api_tokens t
         SET last_used_at = greatest(coalesce(t.last_used_at, u.at), u.at)
         FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, at)
         WHERE t.id = u.id",
        ids,
        at
    )
    .execute(pool)
    .await?;
    Ok(())
}
