//! The `data` of the events whose payload is not a record the API already shows
//! (`run.*`, `report.ready`). The other types carry the record itself: `client.*` a
//! `Client`, `alert.created` an `Alert`, `message.failed` a `Message`. Each type derives
//! `Deserialize` too, so a receiver (and the tests) can read what was sent back into it.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    reports::ReportRow,
    runs::{RunRow, RunStatus, RunTrigger, TaskCounts},
};

/// A run as the `run.*` events carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunEvent {
    pub id: Uuid,
    #[schema(example = "daily-monitoring")]
    pub workflow: String,
    pub workflow_version: i32,
    pub status: RunStatus,
    pub trigger: RunTrigger,
    pub dry_run: bool,
    /// The parameters the run was started with.
    #[schema(value_type = Object)]
    pub params: Value,
    /// The schedule that started it (`null` when not started by a schedule).
    pub schedule_id: Option<Uuid>,
    #[serde(with = "crate::domain::timestamp")]
    #[schema(value_type = String)]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::domain::timestamp::option")]
    #[schema(value_type = Option<String>)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(with = "crate::domain::timestamp::option")]
    #[schema(value_type = Option<String>)]
    pub finished_at: Option<DateTime<Utc>>,
    /// Tasks (one per client) by status when the run ended; `null` in `run.started`.
    pub tasks: Option<TaskCounts>,
}

impl RunEvent {
    pub fn of(run: &RunRow, tasks: Option<TaskCounts>) -> Self {
        Self {
            id: run.id,
            workflow: run.workflow.clone(),
            workflow_version: run.workflow_version,
            status: run.status,
            trigger: run.trigger,
            dry_run: run.dry_run,
            params: run.params.clone(),
            schedule_id: run.schedule_id,
            created_at: run.created_at,
            started_at: run.started_at,
            finished_at: run.finished_at,
            tasks,
        }
    }
}

/// A report a workflow wrote, as `report.ready` announces it (read it whole with
/// `GET /v1/reports/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportEvent {
    pub id: Uuid,
    pub client_id: Uuid,
    /// The run that wrote it (`null` when written outside a run).
    pub run_id: Option<Uuid>,
    #[schema(example = "weekly")]
    pub kind: String,
    #[schema(value_type = String, example = "2026-06-08")]
    pub period_start: NaiveDate,
    #[schema(value_type = String, example = "2026-06-14")]
    pub period_end: NaiveDate,
}

impl From<&ReportRow> for ReportEvent {
    fn from(r: &ReportRow) -> Self {
        Self {
            id: r.id,
            client_id: r.client_id,
            run_id: r.run_id,
            kind: r.kind.clone(),
            period_start: r.period_start,
            period_end: r.period_end,
        }
    }
}
