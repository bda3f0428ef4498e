//! `knowledge.clients`: the agency's clients.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, types::Json};
use uuid::Uuid;

use crate::domain::client::{Accounts, Client, ClientFields, ClientStatus, Contact, Targets};

/// How a path addresses a client: by id or by slug.
#[derive(Debug, Clone)]
pub enum ClientKey {
    Id(Uuid),
    Slug(String),
}

impl ClientKey {
    pub fn parse(raw: &str) -> Self {
        match Uuid::parse_str(raw) {
            Ok(id) => ClientKey::Id(id),
            Err(_) => ClientKey::Slug(raw.to_string()),
        }
    }
}

#[derive(Debug, Default)]
pub struct ClientFilter {
    pub status: Option<ClientStatus>,
    pub industry: Option<String>,
    /// Case-insensitive substring of the name or slug.
    pub q: Option<String>,
}

struct ClientRow {
    id: Uuid,
    slug: String,
    name: String,
    industry: Option<String>,
    status: ClientStatus,
    timezone: String,
    currency: String,
    accounts: Json<Accounts>,
    budgets: Json<std::collections::BTreeMap<String, f64>>,
    targets: Json<Targets>,
    contacts: Json<Vec<Contact>>,
    notes: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<ClientRow> for Client {
    fn from(r: ClientRow) -> Self {
        Client {
            id: r.id,
            slug: r.slug,
            name: r.name,
            industry: r.industry,
            status: r.status,
            timezone: r.timezone,
            currency: r.currency,
            accounts: r.accounts.0,
            budgets: r.budgets.0,
            targets: r.targets.0,
            contacts: r.contacts.0,
            notes: r.notes,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

pub async fn insert(conn: &mut PgConnection, id: Uuid, f: &ClientFields) -> Result<Client, sqlx::Error> {
    let row = sqlx::query_as!(
        ClientRow,
        r#"INSERT INTO knowledge.clients
               (id, slug, name, industry, status, timezone, currency, accounts, budgets, targets, contacts, notes)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
           RETURNING id, slug, name, industry, status AS "status: ClientStatus", timezone, currency,
                     accounts AS "accounts: Json<Accounts>", budgets AS "budgets: Json<std::collections::BTreeMap<String, f64>>",
                     targets AS "targets: Json<Targets>", contacts AS "contacts: Json<Vec<Contact>>",
                     notes, created_at, updated_at"#,
        id,
        f.slug,
        f.name,
        f.industry,
        f.status.as_str(),
        f.timezone,
        f.currency,
        Json(&f.accounts) as _,
        Json(&f.budgets) as _,
        Json(&f.targets) as _,
        Json(&f.contacts) as _,
        f.notes,
    )
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}

/// Finds a client by id or slug; `for_update` locks the row for the rest of the transaction.
/// The row is always read by primary key: a slug is resolved to its id first. (One
/// `id = $1 OR slug = $2` query would be re-planned on every execution, which
/// dominated the read path's cost.)
pub async fn find(conn: &mut PgConnection, key: &ClientKey, for_update: bool) -> Result<Option<Client>, sqlx::Error> {
    let id = match key {
        ClientKey::Id(id) => *id,
        ClientKey::Slug(slug) => {
            match sqlx::query_scalar!("SELECT id FROM knowledge.clients WHERE slug = $1", slug)
                .fetch_optional(&mut *conn)
                .await?
            {
                Some(id) => id,
                None => return Ok(None),
            }
        }
    };
    let row = if for_update {
        sqlx::query_as!(
            ClientRow,
            r#"SELECT id, slug, name, industry, status AS "status: ClientStatus", timezone, currency,
                      accounts AS "accounts: Json<Accounts>", budgets AS "budgets: Json<std::collections::BTreeMap<String, f64>>",
                      targets AS "targets: Json<Targets>", contacts AS "contacts: Json<Vec<Contact>>",
                      notes, created_at, updated_at
               FROM knowledge.clients WHERE id = $1 FOR UPDATE"#,
            id
        )
        .fetch_optional(conn)
        .await?
    } else {
        sqlx::query_as!(
            ClientRow,
            r#"SELECT id, slug, name, industry, status AS "status: ClientStatus", timezone, currency,
                      accounts AS "accounts: Json<Accounts>", budgets AS "budgets: Json<std::collections::BTreeMap<String, f64>>",
                      targets AS "targets: Json<Targets>", contacts AS "contacts: Json<Vec<Contact>>",
                      notes, created_at, updated_at
               FROM knowledge.clients WHERE id = $1"#,
            id
        )
        .fetch_optional(conn)
        .await?
    };
    Ok(row.map(Into::into))
}

/// The clients of `ids` that exist, in one statement (a worker loads the clients of a
/// whole claimed batch at once).
pub async fn find_many(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<Client>, sqlx::Error> {
    let rows = sqlx::query_as!(
        ClientRow,
        r#"SELECT id, slug, name, industry, status AS "status: ClientStatus", timezone, currency,
                  accounts AS "accounts: Json<Accounts>", budgets AS "budgets: Json<std::collections::BTreeMap<String, f64>>",
                  targets AS "targets: Json<Targets>", contacts AS "contacts: Json<Vec<Contact>>",
                  notes, created_at, updated_at
           FROM knowledge.clients WHERE id = ANY ($1)"#,
        ids
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub async fn update(conn: &mut PgConnection, id: Uuid, f: &ClientFields) -> Result<Client, sqlx::Error> {
    let row = sqlx::query_as!(
        ClientRow,
        r#"UPDATE knowledge.clients
           SET slug = $2, name = $3, industry = $4, status = $5, timezone = $6, currency = $7,
               accounts = $8, budgets = $9, targets = $10, contacts = $11, notes = $12, updated_at = now()
           WHERE id = $1
           RETURNING id, slug, name, industry, status AS "status: ClientStatus", timezone, currency,
                     accounts AS "accounts: Json<Accounts>", budgets AS "budgets: Json<std::collections::BTreeMap<String, f64>>",
                     targets AS "targets: Json<Targets>", contacts AS "contacts: Json<Vec<Contact>>",
                     notes, created_at, updated_at"#,
        id,
        f.slug,
        f.name,
        f.industry,
        f.status.as_str(),
        f.timezone,
        f.currency,
        Json(&f.accounts) as _,
        Json(&f.budgets) as _,
        Json(&f.targets) as _,
        Json(&f.contacts) as _,
        f.notes,
    )
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}

pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!("DELETE FROM knowledge.clients WHERE id = $1", id).execute(conn).await?;
    Ok(())
}

/// One page in creation order, after `after`. Archived clients show only when asked for by status.
pub async fn list(
    conn: &mut PgConnection,
    filter: &ClientFilter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Client>, sqlx::Error> {
    let pattern = filter.q.as_deref().map(like_pattern);
    let rows = sqlx::query_as!(
        ClientRow,
        r#"SELECT id, slug, name, industry, status AS "status: ClientStatus", timezone, currency,
                  accounts AS "accounts: Json<Accounts>", budgets AS "budgets: Json<std::collections::BTreeMap<String, f64>>",
                  targets AS "targets: Json<Targets>", contacts AS "contacts: Json<Vec<Contact>>",
                  notes, created_at, updated_at
           FROM knowledge.clients
           WHERE (CASE WHEN $1::text IS NULL THEN status <> 'archived' ELSE status = $1 END)
             AND ($2::text IS NULL OR lower(industry) = lower($2))
             AND ($3::text IS NULL OR name ILIKE $3 OR slug ILIKE $3)
             AND ($4::uuid IS NULL OR id > $4)
           ORDER BY id
           LIMIT $5"#,
        filter.status.map(|s| s.as_str()),
        filter.industry,
        pattern,
        after,
        limit
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// `%text%` with LIKE's wildcards escaped.
fn like_pattern(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}
