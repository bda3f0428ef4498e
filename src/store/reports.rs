//! `engine.reports`: reports the workflows wrote (e.g. the weekly report), and their
//! delivery: the PDF in the client's Drive (or why not) and the one `report.ready`.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{
    events::EventType,
    report::{DriveDelivery, ReportLinks, ReportReady},
};

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
    /// The PDF's Drive file and link, once uploaded.
    pub drive_file_id: Option<String>,
    pub drive_url: Option<String>,
    /// Why the PDF was not uploaded.
    pub drive_skipped: Option<String>,
    /// When `report.ready` went out; `None` until the delivery is settled.
    pub ready_at: Option<DateTime<Utc>>,
}

impl ReportRow {
    /// The recorded Drive outcome, once the delivery is settled.
    pub fn drive(&self) -> Option<DriveDelivery> {
        self.ready_at?;
        Some(match (&self.drive_file_id, &self.drive_skipped) {
            (Some(id), _) => DriveDelivery::Uploaded { file_id: id.clone(), url: self.drive_url.clone() },
            (None, reason) => DriveDelivery::skipped(reason.clone().unwrap_or_default()),
        })
    }

    /// The `report.ready` payload of this report with this Drive outcome.
    pub fn ready_event(&self, links: &ReportLinks, drive: &DriveDelivery) -> ReportReady {
        ReportReady {
            id: self.id,
            client_id: self.client_id,
            run_id: self.run_id,
            kind: self.kind.clone(),
            period_start: self.period_start,
            period_end: self.period_end,
            pdf_url: links.pdf(self.id),
            html_url: links.html(self.id),
            drive_file_id: drive.file_id().map(str::to_string),
            drive_url: drive.url().map(str::to_string),
            drive_skipped: drive.skip_reason().map(str::to_string),
        }
    }
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

/// Stores a report. It is announced (`report.ready`) by [`mark_ready`] once its delivery
/// is settled.
pub async fn insert(conn: &mut PgConnection, r: &NewReport<'_>) -> Result<ReportRow, sqlx::Error> {
    sqlx::query_as!(
        ReportRow,
        "INSERT INTO engine.reports
             (id, client_id, run_id, kind, period_start, period_end, body, figures, model, input_tokens, output_tokens)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         RETURNING id, client_id, run_id, kind, period_start, period_end, body, figures, model, input_tokens,
                   output_tokens, created_at, drive_file_id, drive_url, drive_skipped, ready_at",
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
    .fetch_one(conn)
    .await
}

/// Records the report's Drive outcome and emits `report.ready` in one transaction (a
/// savepoint when `conn` is in one), once per report: a second call (a retried task, a
/// concurrent one) changes nothing and answers `None`.
pub async fn mark_ready(
    conn: &mut PgConnection,
    report: &ReportRow,
    links: &ReportLinks,
    drive: &DriveDelivery,
) -> Result<Option<ReportReady>, sqlx::Error> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let marked = sqlx::query_scalar!(
        "UPDATE engine.reports SET drive_file_id = $2, drive_url = $3, drive_skipped = $4, ready_at = now()
         WHERE id = $1 AND ready_at IS NULL
         RETURNING id",
        report.id,
        drive.file_id(),
        drive.url(),
        drive.skip_reason()
    )
    .fetch_optional(&mut *tx)
    .await?;
    if marked.is_none() {
        return Ok(None);
    }
    let event = report.ready_event(links, drive);
    super::events::emit(&mut tx, EventType::ReportReady, &event).await?;
    tx.commit().await?;
    Ok(Some(event))
}

pub async fn find(conn: &mut PgConnection, id: Uuid) -> Result<Option<ReportRow>, sqlx::Error> {
    sqlx::query_as!(
        ReportRow,
        "SELECT id, client_id, run_id, kind, period_start, period_end, body, figures, model, input_tokens,
                output_tokens, created_at, drive_file_id, drive_url, drive_skipped, ready_at
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
                output_tokens, created_at, drive_file_id, drive_url, drive_skipped, ready_at
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
                output_tokens, created_at, drive_file_id, drive_url, drive_skipped, ready_at
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
