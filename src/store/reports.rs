//! `engine.reports`: reports the workflows wrote (e.g. the weekly report).

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct ReportRow {
    pub id: Uuid,
    pub client_id: Uuid,
    pub run_id: Option<Uuid>,
    pub kind: String,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub body: String,
    pub figures: Value,
    pub model: Option<String>,
    pub input_tokens: Option<i32>,
    pub output_tokens: Option<i32>,
    pub created_at: DateTime<Utc>,
}

pub struct NewReport<'a> {
    pub client_id: Uuid,
    pub run_id: Option<Uuid>,
    pub kind: &'a str,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub body: &'a str,
    pub figures: &'a Value,
    pub model: Option<&'a str>,
    pub input_tokens: Option<i32>,
    pub output_tokens: Option<i32>,
}

/// Stores a report and announces it (`report.ready`) atomically, also when `conn`
/// is not in a transaction (a savepoint when it is).
pub async fn insert(conn: &mut PgConnection, r: &NewReport<'_>) -> Result<ReportRow, sqlx::Error> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let report = sqlx::query_as!(
        ReportRow,
        "INSERT INTO engine.reports
             (id, client_id, run_id, kind, period_start, period_end, body, figures, model, input_tokens, output_tokens)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         RETURNING id, client_id, run_id, kind, period_start, period_end, body, figures, model, input_tokens,
                   output_tokens, created_at",
        Uuid::now_v7(),
        r.client_id,
        r.run_id,
        r.kind,
        r.period_start,
        r.period_end,
        r.body,
        r.figures,
        r.model,
        r.input_tokens,
        r.output_tokens
    )
    .fetch_one(&mut *tx)
    .await?;
    super::events::emit(
        &mut tx,
        crate::domain::events::EventType::ReportReady,
        &super::event_payloads::ReportEvent::from(&report),
    )
    .await?;
    tx.commit().await?;
    Ok(report)
}

pub async fn find(conn: &mut PgConnection, id: Uuid) -> Result<Option<ReportRow>, sqlx::Error> {
    sqlx::query_as!(
        ReportRow,
        "SELECT id, client_id, run_id, kind, period_start, period_end, body, figures, model, input_tokens,
                output_tokens, created_at
         FROM engine.reports WHERE id = $1",
        id
    )
    .fetch_optional(conn)
    .await
}

/// The report a run already wrote for a client (a retried task reuses it).
pub async fn find_for_run(
    conn: &mut PgConnection,
    run_id: Uuid,
    client_id: Uuid,
    kind: &str,
) -> Result<Option<ReportRow>, sqlx::Error> {
    sqlx::query_as!(
        ReportRow,
        "SELECT id, client_id, run_id, kind, period_start, period_end, body, figures, model, input_tokens,
                output_tokens, created_at
         FROM engine.reports WHERE run_id = $1 AND client_id = $2 AND kind = $3
         ORDER BY id LIMIT 1",
        run_id,
        client_id,
        kind
    )
    .fetch_optional(conn)
    .await
}

#[derive(Debug, Default)]
pub struct ReportFilter {
    pub client_id: Option<Uuid>,
    pub kind: Option<String>,
    /// Reports whose period ends on or after this day.
    pub from: Option<NaiveDate>,
    /// Reports whose period starts on or before this day.
    pub to: Option<NaiveDate>,
}

/// Newest first, before the `before` id.
pub async fn list(
    conn: &mut PgConnection,
    f: &ReportFilter,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ReportRow>, sqlx::Error> {
    sqlx::query_as!(
        ReportRow,
        "SELECT id, client_id, run_id, kind, period_start, period_end, body, figures, model, input_tokens,
                output_tokens, created_at
         FROM engine.reports
         WHERE ($1::uuid IS NULL OR client_id = $1)
           AND ($2::text IS NULL OR kind = $2)
           AND ($3::date IS NULL OR period_end >= $3)
           AND ($4::date IS NULL OR period_start <= $4)
           AND ($5::uuid IS NULL OR id < $5)
         ORDER BY id DESC
         LIMIT $6",
        f.client_id,
        f.kind,
        f.from,
        f.to,
        before,
        limit
    )
    .fetch_all(conn)
    .await
}
