//! `engine.alerts`: findings of the monitoring, one per (client, kind, subject, day).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

pub use crate::domain::alert::{AlertKind, AlertStatus, Severity};

/// An alert as stored and returned by the API (also the `alert.created` event's `data`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Alert {
    pub id: Uuid,
    pub client_id: Uuid,
    /// The run that first raised it (`null` when not raised by a run).
    pub run_id: Option<Uuid>,
    /// What the monitoring found.
    #[schema(value_type = AlertKind, example = "spend_anomaly")]
    pub kind: String,
    pub severity: Severity,
    /// What the finding is about: a platform key (`meta`, `google_ads`) or `total`.
    #[schema(example = "meta")]
    pub subject: String,
    /// The day the finding is about.
    #[schema(value_type = NaiveDate, example = "2026-06-14")]
    pub day: NaiveDate,
    #[schema(example = "Meta spend on 2026-06-14 was 812.40 BRL, 2.1× the 7-day average (386.10)")]
    pub message: String,
    /// The figures behind the finding.
    #[schema(value_type = Object, example = json!({"platform": "meta", "spend": 812.4, "trailing_average": 386.1, "ratio": 2.1, "currency": "BRL"}))]
    pub data: Value,
    pub status: AlertStatus,
    #[serde(with = "crate::domain::timestamp")]
    #[schema(value_type = String, example = "2026-06-15T07:00:03.120Z")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::domain::timestamp::option")]
    #[schema(value_type = Option<String>, example = "2026-06-15T09:12:00.000Z")]
    pub acknowledged_at: Option<DateTime<Utc>>,
    #[serde(with = "crate::domain::timestamp::option")]
    #[schema(value_type = Option<String>)]
    pub resolved_at: Option<DateTime<Utc>>,
}

struct AlertRow {
    id: Uuid,
    client_id: Uuid,
    run_id: Option<Uuid>,
    kind: String,
    severity: Severity,
    subject: String,
    day: NaiveDate,
    message: String,
    data: Value,
    status: AlertStatus,
    created_at: DateTime<Utc>,
    acknowledged_at: Option<DateTime<Utc>>,
    resolved_at: Option<DateTime<Utc>>,
}

impl From<AlertRow> for Alert {
    fn from(r: AlertRow) -> Self {
        Alert {
            id: r.id,
            client_id: r.client_id,
            run_id: r.run_id,
            kind: r.kind,
            severity: r.severity,
            subject: r.subject,
            day: r.day,
            message: r.message,
            data: r.data,
            status: r.status,
            created_at: r.created_at,
            acknowledged_at: r.acknowledged_at,
            resolved_at: r.resolved_at,
        }
    }
}

/// A finding to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    pub kind: &'static str,
    pub severity: Severity,
    pub subject: String,
    pub message: String,
    pub data: Value,
}

/// Records a client's findings for `day` in one statement. A finding already
/// recorded for the same (kind, subject, day) stays one alert: it keeps its id,
/// run and status and takes the new severity, message and figures. An alert is
/// new to `run_id` when its `run_id` is that run (first raised by it, possibly in
/// an earlier attempt of the same task). `alerts` must not repeat a (kind, subject).
pub async fn record(
    conn: &mut PgConnection,
    client_id: Uuid,
    run_id: Option<Uuid>,
    day: NaiveDate,
    alerts: &[NewAlert],
) -> Result<Vec<Alert>, sqlx::Error> {
    if alerts.is_empty() {
        return Ok(vec![]);
    }
    let ids: Vec<Uuid> = alerts.iter().map(|_| Uuid::now_v7()).collect();
    let kinds: Vec<String> = alerts.iter().map(|a| a.kind.to_string()).collect();
    let severities: Vec<String> = alerts.iter().map(|a| a.severity.as_str().to_string()).collect();
    let subjects: Vec<String> = alerts.iter().map(|a| a.subject.clone()).collect();
    let messages: Vec<String> = alerts.iter().map(|a| a.message.clone()).collect();
    let data: Vec<Value> = alerts.iter().map(|a| a.data.clone()).collect();
    let rows = sqlx::query_as!(
        AlertRow,
        r#"INSERT INTO engine.alerts (id, client_id, run_id, kind, severity, subject, day, message, data)
         SELECT a.id, $2, $3, a.kind, a.severity, a.subject, $4, a.message, a.data
         FROM unnest($1::uuid[], $5::text[], $6::text[], $7::text[], $8::text[], $9::jsonb[])
              AS a(id, kind, severity, subject, message, data)
         ON CONFLICT (client_id, kind, subject, day) DO UPDATE
             SET severity = excluded.severity, message = excluded.message, data = excluded.data
         RETURNING id, client_id, run_id, kind, severity AS "severity: Severity", subject, day, message, data,
                   status AS "status: AlertStatus",
                   created_at, acknowledged_at, resolved_at"#,
        &ids,
        client_id,
        run_id,
        day,
        &kinds,
        &severities,
        &subjects,
        &messages,
        &data
    )
    .fetch_all(&mut *conn)
    .await?;
    let alerts: Vec<Alert> = rows.into_iter().map(Alert::from).collect();
    // A row that kept an id other than the one offered was already there (deduplicated): not new.
    for alert in alerts.iter().filter(|a| ids.contains(&a.id)) {
        super::events::emit(&mut *conn, crate::domain::events::EventType::AlertCreated, alert).await?;
    }
    Ok(alerts)
}

pub async fn find(conn: &mut PgConnection, id: Uuid) -> Result<Option<Alert>, sqlx::Error> {
    let row = sqlx::query_as!(
        AlertRow,
        r#"SELECT id, client_id, run_id, kind, severity AS "severity: Severity", subject, day, message, data,
                status AS "status: AlertStatus",
                created_at, acknowledged_at, resolved_at
         FROM engine.alerts WHERE id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Alert::from))
}

/// The alert, locked until the transaction ends (for a status change).
pub async fn find_for_update(conn: &mut PgConnection, id: Uuid) -> Result<Option<Alert>, sqlx::Error> {
    let row = sqlx::query_as!(
        AlertRow,
        r#"SELECT id, client_id, run_id, kind, severity AS "severity: Severity", subject, day, message, data,
                status AS "status: AlertStatus",
                created_at, acknowledged_at, resolved_at
         FROM engine.alerts WHERE id = $1 FOR UPDATE"#,
        id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Alert::from))
}

#[derive(Debug, Default)]
pub struct AlertFilter {
    pub client_id: Option<Uuid>,
    pub status: Option<AlertStatus>,
    pub kind: Option<String>,
    pub severity: Option<Severity>,
    pub run_id: Option<Uuid>,
}

/// Newest first, before the `before` id.
pub async fn list(
    conn: &mut PgConnection,
    f: &AlertFilter,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Alert>, sqlx::Error> {
    let rows = sqlx::query_as!(
        AlertRow,
        r#"SELECT id, client_id, run_id, kind, severity AS "severity: Severity", subject, day, message, data,
                status AS "status: AlertStatus",
                created_at, acknowledged_at, resolved_at
         FROM engine.alerts
         WHERE ($1::uuid IS NULL OR client_id = $1)
           AND ($2::text IS NULL OR status = $2)
           AND ($3::text IS NULL OR kind = $3)
           AND ($4::text IS NULL OR severity = $4)
           AND ($5::uuid IS NULL OR run_id = $5)
           AND ($6::uuid IS NULL OR id < $6)
         ORDER BY id DESC
         LIMIT $7"#,
        f.client_id,
        f.status.map(AlertStatus::as_str),
        f.kind,
        f.severity.map(Severity::as_str),
        f.run_id,
        before,
        limit
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Alert::from).collect())
}

/// Moves an alert to `status`, stamping when it was acknowledged or resolved.
pub async fn set_status(conn: &mut PgConnection, id: Uuid, status: AlertStatus) -> Result<Alert, sqlx::Error> {
    let row = sqlx::query_as!(
        AlertRow,
        r#"UPDATE engine.alerts
         SET status = $2,
             acknowledged_at = CASE WHEN $3 THEN now() ELSE acknowledged_at END,
             resolved_at = CASE WHEN $4 THEN now() ELSE resolved_at END
         WHERE id = $1
         RETURNING id, client_id, run_id, kind, severity AS "severity: Severity", subject, day, message, data,
                   status AS "status: AlertStatus",
                   created_at, acknowledged_at, resolved_at"#,
        id,
        status.as_str(),
        status == AlertStatus::Acknowledged,
        status == AlertStatus::Resolved
    )
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}
