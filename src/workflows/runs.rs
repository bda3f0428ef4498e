//! Starting a run, the one way: `POST /v1/workflows/{key}/runs`, a schedule firing
//! and the WhatsApp `run` command all create the run and its tasks here, with the
//! audit row `run.start` naming who started it (the `run.started` event is written
//! with the run itself). Parameters are checked by the caller, which knows how to
//! report a bad one (a problem body, a reply, a log line).

use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use super::Workflow;
use crate::store::{
    self,
    audit::Actor,
    runs::{NewRun, RunRow, RunTrigger},
};

/// A run to start.
pub struct Start<'a> {
    pub workflow: &'a dyn Workflow,
    /// Already checked by [`Workflow::check_params`] (normalised).
    pub params: &'a Value,
    pub trigger: RunTrigger,
    pub dry_run: bool,
    pub callback_url: Option<&'a str>,
    pub schedule_id: Option<Uuid>,
    /// Only these clients; every active client when `None`.
    pub client_ids: Option<&'a [Uuid]>,
}

/// Creates the run and one task per client in the caller's transaction, with its
/// audit row. Workers are woken when the transaction commits.
pub async fn start(conn: &mut PgConnection, actor: &Actor, start: &Start<'_>) -> Result<RunRow, sqlx::Error> {
    let info = start.workflow.info();
    let new = NewRun {
        workflow: info.key,
        workflow_version: info.version as i32,
        trigger: start.trigger,
        params: start.params,
        dry_run: start.dry_run,
        callback_url: start.callback_url,
        schedule_id: start.schedule_id,
        created_by: actor.token_id,
        client_ids: start.client_ids,
        max_attempts: info.max_attempts as i32,
    };
    let run = store::runs::create(conn, &new).await?;
    let tasks = store::runs::counts(conn, run.id).await?.total();
    let after = json!({
        "workflow": run.workflow, "trigger": run.trigger, "params": run.params, "dry_run": run.dry_run,
        "client_ids": start.client_ids, "schedule_id": start.schedule_id, "tasks": tasks,
    });
    store::audit::record(conn, actor, "run.start", "run", &run.id.to_string(), None::<&()>, Some(&after)).await?;
    Ok(run)
}
