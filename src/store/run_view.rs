//! A run as the API shows it, and as its `callback_url` receives it: built from the
//! run's row and its task counts.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use super::runs::{self, RunRow, RunStatus, RunTrigger, TaskCounts};

#[derive(Debug, Serialize, ToSchema)]
pub struct RunLinks {
    #[serde(rename = "self")]
    #[schema(example = "/v1/runs/0192f0c4-5d7e-7c1a-9f4e-2b8d6a1c3e5f")]
    pub self_: String,
    pub tasks: String,
}

/// A run and where it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    pub id: Uuid,
    #[schema(example = "daily-monitoring")]
    pub workflow: String,
    pub workflow_version: i32,
    #[schema(example = "running")]
    pub status: RunStatus,
    #[schema(example = "api")]
    pub trigger: RunTrigger,
    #[schema(value_type = Object)]
    pub params: Value,
    pub dry_run: bool,
    /// POSTed the finished run (`callback_url` of the start request).
    pub callback_url: Option<String>,
    pub schedule_id: Option<Uuid>,
    /// Tasks (one per client) by status.
    pub tasks: TaskCounts,
    /// Share of tasks finished, 0–100.
    #[schema(example = 40)]
    pub progress: u8,
    #[serde(with = "crate::domain::timestamp")]
    #[schema(value_type = String)]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::domain::timestamp::option")]
    #[schema(value_type = Option<String>)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(with = "crate::domain::timestamp::option")]
    #[schema(value_type = Option<String>)]
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    pub links: RunLinks,
}

impl RunView {
    pub fn is_finished(&self) -> bool {
        !self.status.is_open()
    }
}

pub fn to_view(run: RunRow, counts: TaskCounts) -> RunView {
    let total = counts.total();
    let done = total - counts.open();
    let progress = if total == 0 { 100 } else { (done * 100 / total) as u8 };
    let duration_ms = run.started_at.map(|s| (run.finished_at.unwrap_or_else(Utc::now) - s).num_milliseconds());
    RunView {
        links: RunLinks { self_: format!("/v1/runs/{}", run.id), tasks: format!("/v1/runs/{}/tasks", run.id) },
        id: run.id,
        workflow: run.workflow,
        workflow_version: run.workflow_version,
        status: run.status,
        trigger: run.trigger,
        params: run.params,
        dry_run: run.dry_run,
        callback_url: run.callback_url,
        schedule_id: run.schedule_id,
        tasks: counts,
        progress,
        created_at: run.created_at,
        started_at: run.started_at,
        finished_at: run.finished_at,
        duration_ms,
    }
}

/// The run's view, or `None` when there is no such run.
pub async fn find(conn: &mut PgConnection, id: Uuid) -> Result<Option<RunView>, sqlx::Error> {
    let Some(run) = runs::find(&mut *conn, id).await? else { return Ok(None) };
    let counts = runs::counts(conn, id).await?;
    Ok(Some(to_view(run, counts)))
}
