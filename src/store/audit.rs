//! `audit.log`: the append-only record of every change.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

/// Who did it and under which request.
#[derive(Debug, Clone)]
pub struct Actor {
    pub token_id: Option<Uuid>,
    pub name: String,
    pub request_id: Option<String>,
}

impl Actor {
    /// Changes made from the command line (e.g. `switchboard token create`).
    pub fn cli() -> Self {
        Actor { token_id: None, name: "cli".into(), request_id: None }
    }
}

/// Appends one audit row; call inside the transaction of the change it records.
pub async fn record<B: Serialize, A: Serialize>(
    conn: &mut PgConnection,
    actor: &Actor,
    action: &str,
    resource_type: &str,
    resource_id: &str,
    before: Option<&B>,
    after: Option<&A>,
) -> Result<(), sqlx::Error> {
    let before = before.map(|b| serde_json::to_value(b).unwrap_or_default());
    let after = after.map(|a| serde_json::to_value(a).unwrap_or_default());
    sqlx::query!(
        "INSERT INTO audit.log (actor_id, actor_name, action, resource_type, resource_id, request_id, before, after)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        actor.token_id,
        actor.name,
        action,
        resource_type,
        resource_id,
        actor.request_id,
        before,
        after
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub struct AuditRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub actor_name: String,
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    pub request_id: Option<String>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

#[derive(Debug, Default)]
pub struct AuditFilter {
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    /// Token id or token name.
    pub actor: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// Newest first, before the `before` id.
pub async fn list(
    conn: &mut PgConnection,
    f: &AuditFilter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditRow>, sqlx::Error> {
    let actor_id = f.actor.as_deref().and_then(|a| Uuid::parse_str(a).ok());
    sqlx::query_as!(
        AuditRow,
        "SELECT id, at, actor_id, actor_name, action, resource_type, resource_id, request_id, before, after
         FROM audit.log
         WHERE ($1::text IS NULL OR resource_type = $1)
           AND ($2::text IS NULL OR resource_id = $2)
           AND ($3::text IS NULL OR actor_id = $4 OR actor_name = $3)
           AND ($5::timestamptz IS NULL OR at >= $5)
           AND ($6::timestamptz IS NULL OR at < $6)
           AND ($7::bigint IS NULL OR id < $7)
         ORDER BY id DESC
         LIMIT $8",
        f.resource_type,
        f.resource_id,
        f.actor,
        actor_id,
        f.from,
        f.to,
        before,
        limit
    )
    .fetch_all(conn)
    .await
}
