//! The `data` of the `run.*` events, whose payload is not a record the API already shows
//! (`report.ready` carries `domain::report::ReportReady`). The other types carry the record itself: `client.*` a
//! `Client`, `alert.created` an `Alert`, `message.failed` a `Message`. Each type derives
//! `Deserialize` too, so a receiver (and the tests) can read what was sent back into it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::runs::{RunRow, RunStatus, RunTrigger, TaskCounts};

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
