//! `knowledge.entries`: knowledge entries and their full-text search.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::knowledge::{KnowledgeEntry, KnowledgeHit, KnowledgeInput, KnowledgeKind};

struct EntryRow {
    id: Uuid,
    client_id: Uuid,
    kind: KnowledgeKind,
    title: String,
    body: String,
    tags: Vec<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<EntryRow> for KnowledgeEntry {
    fn from(r: EntryRow) -> Self {
        KnowledgeEntry {
            id: r.id,
            client_id: r.client_id,
            kind: r.kind,
            title: r.title,
            body: r.body,
            tags: r.tags,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    client_id: Uuid,
    e: &KnowledgeInput,
) -> Result<KnowledgeEntry, sqlx::Error> {
    let row = sqlx::query_as!(
        EntryRow,
        r#"INSERT INTO knowledge.entries (id, client_id, kind, title, body, tags)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING id, client_id, kind AS "kind: KnowledgeKind", title, body, tags, created_at, updated_at"#,
        id,
        client_id,
        e.kind.as_str(),
        e.title,
        e.body,
        &e.tags
    )
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}

pub async fn find(conn: &mut PgConnection, client_id: Uuid, id: Uuid) -> Result<Option<KnowledgeEntry>, sqlx::Error> {
    let row = sqlx::query_as!(
        EntryRow,
        r#"SELECT id, client_id, kind AS "kind: KnowledgeKind", title, body, tags, created_at, updated_at
         FROM knowledge.entries WHERE client_id = $1 AND id = $2"#,
        client_id,
        id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Into::into))
}

pub async fn update(conn: &mut PgConnection, id: Uuid, e: &KnowledgeInput) -> Result<KnowledgeEntry, sqlx::Error> {
    let row = sqlx::query_as!(
        EntryRow,
        r#"UPDATE knowledge.entries SET kind = $2, title = $3, body = $4, tags = $5, updated_at = now()
         WHERE id = $1
         RETURNING id, client_id, kind AS "kind: KnowledgeKind", title, body, tags, created_at, updated_at"#,
        id,
        e.kind.as_str(),
        e.title,
        e.body,
        &e.tags
    )
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}

pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!("DELETE FROM knowledge.entries WHERE id = $1", id).execute(conn).await?;
    Ok(())
}

/// One page of a client's entries in creation order, optionally one kind or tag.
pub async fn list(
    conn: &mut PgConnection,
    client_id: Uuid,
    kind: Option<KnowledgeKind>,
    tag: Option<&str>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<KnowledgeEntry>, sqlx::Error> {
    let rows = sqlx::query_as!(
        EntryRow,
        r#"SELECT id, client_id, kind AS "kind: KnowledgeKind", title, body, tags, created_at, updated_at
         FROM knowledge.entries
         WHERE client_id = $1
           AND ($2::text IS NULL OR kind = $2)
           AND ($3::text IS NULL OR $3 = ANY (tags))
           AND ($4::uuid IS NULL OR id > $4)
         ORDER BY id
         LIMIT $5"#,
        client_id,
        kind.map(|k| k.as_str()),
        tag,
        after,
        limit
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Ranked full-text search (web-search syntax: words, "phrases", -exclusions, OR),
/// optionally within one client. `offset` pages through the ranking.
pub async fn search(
    conn: &mut PgConnection,
    query: &str,
    client_id: Option<Uuid>,
    offset: i64,
    limit: i64,
) -> Result<Vec<KnowledgeHit>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT e.id, e.client_id, c.slug AS client_slug, e.kind AS "kind: KnowledgeKind", e.title, e.tags,
                  ts_rank(e.search, q) AS "rank!",
                  ts_headline('english', e.body, q,
                              'StartSel=<b>, StopSel=</b>, MaxWords=30, MinWords=10, MaxFragments=2') AS "snippet!"
           FROM knowledge.entries e
           JOIN knowledge.clients c ON c.id = e.client_id,
                websearch_to_tsquery('english', $1) q
           WHERE e.search @@ q AND ($2::uuid IS NULL OR e.client_id = $2)
           ORDER BY 7 DESC, e.id
           OFFSET $3 LIMIT $4"#,
        query,
        client_id,
        offset,
        limit
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| KnowledgeHit {
            id: r.id,
            client_id: r.client_id,
            client_slug: r.client_slug,
            kind: r.kind,
            title: r.title,
            tags: r.tags,
            rank: r.rank,
            snippet: r.snippet,
        })
        .collect())
}
