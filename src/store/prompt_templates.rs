//! `knowledge.prompt_templates`: every change is a new version; the newest is current.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::audit::{self, Actor};

#[derive(Debug, Clone, serde::Serialize)]
pub struct TemplateRow {
    pub key: String,
    pub version: i32,
    pub description: String,
    pub system: String,
    pub body: String,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct VersionRow {
    pub version: i32,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

pub struct NewTemplate<'a> {
    pub description: &'a str,
    pub system: &'a str,
    pub body: &'a str,
    pub created_by: Option<Uuid>,
}

/// The current (newest) version of `key`; `for_update` locks it so concurrent
/// writers of the same key take turns.
pub async fn current(conn: &mut PgConnection, key: &str, for_update: bool) -> Result<Option<TemplateRow>, sqlx::Error> {
    if for_update {
        sqlx::query_as!(
            TemplateRow,
            "SELECT key, version, description, system, body, created_by, created_at
             FROM knowledge.prompt_templates WHERE key = $1 ORDER BY version DESC LIMIT 1 FOR UPDATE",
            key
        )
        .fetch_optional(conn)
        .await
    } else {
        sqlx::query_as!(
            TemplateRow,
            "SELECT key, version, description, system, body, created_by, created_at
             FROM knowledge.prompt_templates WHERE key = $1 ORDER BY version DESC LIMIT 1",
            key
        )
        .fetch_optional(conn)
        .await
    }
}

pub async fn version(conn: &mut PgConnection, key: &str, version: i32) -> Result<Option<TemplateRow>, sqlx::Error> {
    sqlx::query_as!(
        TemplateRow,
        "SELECT key, version, description, system, body, created_by, created_at
         FROM knowledge.prompt_templates WHERE key = $1 AND version = $2",
        key,
        version
    )
    .fetch_optional(conn)
    .await
}

/// Every version of `key`, oldest first.
pub async fn versions(conn: &mut PgConnection, key: &str) -> Result<Vec<VersionRow>, sqlx::Error> {
    sqlx::query_as!(
        VersionRow,
        "SELECT version, created_by, created_at FROM knowledge.prompt_templates WHERE key = $1 ORDER BY version",
        key
    )
    .fetch_all(conn)
    .await
}

/// The current version of each key, in key order, after `after`.
pub async fn list_current(
    conn: &mut PgConnection,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<TemplateRow>, sqlx::Error> {
    sqlx::query_as!(
        TemplateRow,
        "SELECT DISTINCT ON (key) key, version, description, system, body, created_by, created_at
         FROM knowledge.prompt_templates
         WHERE ($1::text IS NULL OR key > $1)
         ORDER BY key, version DESC
         LIMIT $2",
        after,
        limit
    )
    .fetch_all(conn)
    .await
}

/// Inserts version 1 of a new key; a key that exists is a unique violation.
pub async fn insert_first(conn: &mut PgConnection, key: &str, t: &NewTemplate<'_>) -> Result<TemplateRow, sqlx::Error> {
    sqlx::query_as!(
        TemplateRow,
        "INSERT INTO knowledge.prompt_templates (key, version, description, system, body, created_by)
         VALUES ($1, 1, $2, $3, $4, $5)
         RETURNING key, version, description, system, body, created_by, created_at",
        key,
        t.description,
        t.system,
        t.body,
        t.created_by
    )
    .fetch_one(conn)
    .await
}

/// Inserts the next version of an existing key (lock its current row first with
/// [`current`]`(.., true)` in the same transaction).
pub async fn insert_next(conn: &mut PgConnection, key: &str, t: &NewTemplate<'_>) -> Result<TemplateRow, sqlx::Error> {
    sqlx::query_as!(
        TemplateRow,
        "INSERT INTO knowledge.prompt_templates (key, version, description, system, body, created_by)
         SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4, $5 FROM knowledge.prompt_templates WHERE key = $1
         RETURNING key, version, description, system, body, created_by, created_at",
        key,
        t.description,
        t.system,
        t.body,
        t.created_by
    )
    .fetch_one(conn)
    .await
}

/// A template seeded as version 1 when its key has no version yet (the defaults
/// themselves are in `prompts::DEFAULTS`).
#[derive(Debug, Clone, Copy)]
pub struct DefaultTemplate {
    pub key: &'static str,
    pub description: &'static str,
    pub system: &'static str,
    pub body: &'static str,
}

/// Seeds version 1 of each default template whose key has no version yet (an
/// edited default is never overwritten). Safe on every start and on many replicas
/// at once. Returns the keys seeded.
pub async fn seed_defaults(pool: &PgPool, defaults: &[DefaultTemplate]) -> Result<Vec<String>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut seeded = vec![];
    for d in defaults {
        let row = sqlx::query_as!(
            TemplateRow,
            "INSERT INTO knowledge.prompt_templates (key, version, description, system, body)
             SELECT $1, 1, $2, $3, $4
             WHERE NOT EXISTS (SELECT 1 FROM knowledge.prompt_templates WHERE key = $1)
             ON CONFLICT (key, version) DO NOTHING
             RETURNING key, version, description, system, body, created_by, created_at",
            d.key,
            d.description,
            d.system,
            d.body
        )
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = row {
            let actor = Actor { token_id: None, name: "seed".into(), request_id: None };
            audit::record(
                &mut tx,
                &actor,
                "prompt_template.create",
                "prompt_template",
                &row.key,
                None::<&()>,
                Some(&row),
            )
            .await?;
            seeded.push(row.key);
        }
    }
    tx.commit().await?;
    Ok(seeded)
}
