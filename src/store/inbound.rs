//! `engine.inbound_messages` (each inbound WhatsApp message once) and the small
//! reads the WhatsApp commands answer from.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// An inbound message as recorded.
pub struct Inbound<'a> {
    pub message_id: &'a str,
    /// E.164 number, or the business-scoped user id when the sender withholds the number.
    pub sender: &'a str,
    /// The business-scoped user id (BSUID), when Meta sent one.
    pub user_id: Option<&'a str>,
    pub body: &'a str,
    pub command: Option<&'a str>,
    /// Meta's `timestamp`: when the customer wrote (opens the 24 h window).
    pub sent_at: Option<DateTime<Utc>>,
}

/// Records a message unless its id was seen before. True when this call recorded
/// it (the caller processes it); false for a duplicate delivery.
pub async fn record(conn: &mut PgConnection, m: &Inbound<'_>) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "INSERT INTO engine.inbound_messages (message_id, sender, body, command, sent_at, user_id)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (message_id) DO NOTHING",
        m.message_id,
        m.sender,
        m.body,
        m.command,
        m.sent_at,
        m.user_id
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Keeps the answer sent for a message.
pub async fn set_reply(conn: &mut PgConnection, message_id: &str, reply: &str) -> Result<(), sqlx::Error> {
    sqlx::query!("UPDATE engine.inbound_messages SET reply = $2 WHERE message_id = $1", message_id, reply)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn open_alerts(conn: &mut PgConnection, client_id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM engine.alerts WHERE client_id = $1 AND status = 'open'"#,
        client_id
    )
    .fetch_one(conn)
    .await
}

pub struct LatestReport {
    pub kind: String,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

pub async fn latest_report(conn: &mut PgConnection, client_id: Uuid) -> Result<Option<LatestReport>, sqlx::Error> {
    sqlx::query_as!(
        LatestReport,
        "SELECT kind, period_start, period_end, body, created_at FROM engine.reports
         WHERE client_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1",
        client_id
    )
    .fetch_optional(conn)
    .await
}
