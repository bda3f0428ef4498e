//! `engine.whatsapp_messages`: every outbound WhatsApp message the Cloud API
//! accepted, moved forward by status webhooks; and the 24 h window each customer
//! opened (from `engine.inbound_messages`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::events::EventType;
pub use crate::domain::message::{MessageKind, MessageStatus};

/// An outbound WhatsApp message as stored and as `GET /v1/messages` lists it (also the
/// `message.failed` event's `data`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0192f0c4-5d7e-7c1a-9f4e-2b8d6a1c3e5f", "wamid": "wamid.HBgNNTUxMTk5OTk5MDAwMBUCABEYEjgxQkVF",
    "client_id": "0192f0c4-0000-7000-8000-2b8d6a1c3e5f", "recipient": "5511999990000", "kind": "template",
    "template": "switchboard_daily_digest", "status": "failed", "error_code": "131026",
    "error_title": "Message undeliverable", "run_id": "0192f0c4-0000-7000-8000-000000000003",
    "task_id": "0192f0c4-0000-7000-8000-000000000004", "report_id": null,
    "created_at": "2026-06-15T07:00:03.120Z", "status_at": "2026-06-15T07:00:05.000Z",
    "updated_at": "2026-06-15T07:00:05.210Z"
}))]
pub struct Message {
    pub id: Uuid,
    /// Meta's message id (`wamid.…`).
    pub wamid: String,
    pub client_id: Option<Uuid>,
    /// The recipient's WhatsApp id (digits).
    pub recipient: String,
    pub kind: MessageKind,
    /// The template's name (`kind: template`).
    pub template: Option<String>,
    pub status: MessageStatus,
    /// The vendor's error code of a failed message (e.g. `131026`).
    pub error_code: Option<String>,
    pub error_title: Option<String>,
    /// The workflow run and task that sent it (`null` for API sends and command replies).
    pub run_id: Option<Uuid>,
    pub task_id: Option<Uuid>,
    /// The report it delivered (weekly report).
    pub report_id: Option<Uuid>,
    #[serde(with = "crate::domain::timestamp")]
    #[schema(value_type = String)]
    pub created_at: DateTime<Utc>,
    /// When Meta says the current status happened.
    #[serde(with = "crate::domain::timestamp::option")]
    #[schema(value_type = Option<String>)]
    pub status_at: Option<DateTime<Utc>>,
    #[serde(with = "crate::domain::timestamp")]
    #[schema(value_type = String)]
    pub updated_at: DateTime<Utc>,
}

/// A message the Cloud API just accepted.
pub struct NewMessage<'a> {
    pub wamid: &'a str,
    pub client_id: Option<Uuid>,
    pub recipient: &'a str,
    pub kind: MessageKind,
    pub template: Option<&'a str>,
    pub run_id: Option<Uuid>,
    pub task_id: Option<Uuid>,
    pub report_id: Option<Uuid>,
}

/// Records an accepted message (`accepted`). A wamid seen before (a status webhook
/// raced ahead of this insert cannot create one, so only a repeated call) keeps its row.
pub async fn record(conn: &mut PgConnection, m: &NewMessage<'_>) -> Result<Message, sqlx::Error> {
    sqlx::query_as!(
        Message,
        r#"INSERT INTO engine.whatsapp_messages (id, wamid, client_id, recipient, kind, template, run_id, task_id, report_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (wamid) DO UPDATE SET updated_at = engine.whatsapp_messages.updated_at
           RETURNING id, wamid, client_id, recipient, kind AS "kind: MessageKind", template,
                     status AS "status: MessageStatus", error_code, error_title, run_id, task_id, report_id,
                     created_at, status_at, updated_at"#,
        Uuid::now_v7(),
        m.wamid,
        m.client_id,
        m.recipient,
        m.kind.as_str(),
        m.template,
        m.run_id,
        m.task_id,
        m.report_id
    )
    .fetch_one(conn)
    .await
}

/// What a status webhook says about one message.
#[derive(Debug, Clone)]
pub struct StatusUpdate {
    pub wamid: String,
    pub status: MessageStatus,
    pub at: Option<DateTime<Utc>>,
    pub error_code: Option<String>,
    pub error_title: Option<String>,
}

/// Moves a message forward (never backwards; `failed` is final — the rule of
/// [`MessageStatus::advances_to`], here in SQL so concurrent webhooks cannot undo it).
/// A move to `failed` emits `message.failed` in the same transaction. Returns the
/// updated message, or `None` when the status changed nothing or the wamid is not ours.
pub async fn apply_status(conn: &mut PgConnection, u: &StatusUpdate) -> Result<Option<Message>, sqlx::Error> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let updated = sqlx::query_as!(
        Message,
        r#"UPDATE engine.whatsapp_messages
           SET status = $2, status_at = $3, error_code = coalesce($4, error_code),
               error_title = coalesce($5, error_title), updated_at = now()
           WHERE wamid = $1 AND status <> 'failed'
             AND array_position(ARRAY['accepted', 'sent', 'delivered', 'read', 'failed'], status)
                 < array_position(ARRAY['accepted', 'sent', 'delivered', 'read', 'failed'], $2::text)
           RETURNING id, wamid, client_id, recipient, kind AS "kind: MessageKind", template,
                     status AS "status: MessageStatus", error_code, error_title, run_id, task_id, report_id,
                     created_at, status_at, updated_at"#,
        u.wamid,
        u.status.as_str(),
        u.at,
        u.error_code,
        u.error_title
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(m) = &updated
        && m.status == MessageStatus::Failed
    {
        super::events::emit(&mut tx, EventType::MessageFailed, m).await?;
    }
    tx.commit().await?;
    Ok(updated)
}

/// Whether a message with this wamid is in the log.
pub async fn known(conn: &mut PgConnection, wamid: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(r#"SELECT EXISTS (SELECT 1 FROM engine.whatsapp_messages WHERE wamid = $1) AS "known!""#, wamid)
        .fetch_one(conn)
        .await
}

#[derive(Debug, Default)]
pub struct MessageFilter {
    pub client_id: Option<Uuid>,
    pub status: Option<MessageStatus>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub run_id: Option<Uuid>,
    pub report_id: Option<Uuid>,
}

/// Newest first, before the `before` id (ids are UUIDv7: creation order).
pub async fn list(
    conn: &mut PgConnection,
    f: &MessageFilter,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Message>, sqlx::Error> {
    sqlx::query_as!(
        Message,
        r#"SELECT id, wamid, client_id, recipient, kind AS "kind: MessageKind", template,
                  status AS "status: MessageStatus", error_code, error_title, run_id, task_id, report_id,
                  created_at, status_at, updated_at
           FROM engine.whatsapp_messages
           WHERE ($1::uuid IS NULL OR client_id = $1)
             AND ($2::text IS NULL OR status = $2)
             AND ($3::timestamptz IS NULL OR created_at >= $3)
             AND ($4::timestamptz IS NULL OR created_at < $4)
             AND ($5::uuid IS NULL OR run_id = $5)
             AND ($6::uuid IS NULL OR report_id = $6)
             AND ($7::uuid IS NULL OR id < $7)
           ORDER BY id DESC
           LIMIT $8"#,
        f.client_id,
        f.status.map(MessageStatus::as_str),
        f.from,
        f.to,
        f.run_id,
        f.report_id,
        before,
        limit
    )
    .fetch_all(conn)
    .await
}

/// The messages these tasks sent, oldest first (for the run's task list).
pub async fn for_tasks(conn: &mut PgConnection, task_ids: &[Uuid]) -> Result<Vec<Message>, sqlx::Error> {
    sqlx::query_as!(
        Message,
        r#"SELECT id, wamid, client_id, recipient, kind AS "kind: MessageKind", template,
                  status AS "status: MessageStatus", error_code, error_title, run_id, task_id, report_id,
                  created_at, status_at, updated_at
           FROM engine.whatsapp_messages WHERE task_id = ANY($1) ORDER BY id"#,
        task_ids
    )
    .fetch_all(conn)
    .await
}

/// When `sender` (E.164, or a business-scoped user id) last wrote to the business,
/// by the timestamp Meta gave the message.
pub async fn last_inbound(conn: &mut PgConnection, sender: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT max(coalesce(sent_at, received_at)) FROM engine.inbound_messages WHERE sender = $1",
        sender
    )
    .fetch_one(conn)
    .await
}
