//! What a workflow's step function gets: the client, the run, the platforms, and
//! the side-effect ledger.

use std::{future::Future, time::Duration};

use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use uuid::Uuid;

use super::Runtime;
use crate::{domain::client::Client, operations::Refusal, platforms::PlatformError, store, store::audit::Actor};

/// Why a client's task failed, and whether trying again can help.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    pub message: String,
    pub retryable: bool,
    /// A platform asked us to stay away this long (a deferred call, see
    /// `PlatformError::deferred`): the task goes back to the queue until then, its slot
    /// freed, without spending an attempt (docs/WORKFLOWS.md).
    pub wait: Option<Duration>,
}

impl StepError {
    pub fn permanent(message: impl Into<String>) -> Self {
        Self { message: message.into(), retryable: false, wait: None }
    }

    pub fn transient(message: impl Into<String>) -> Self {
        Self { message: message.into(), retryable: true, wait: None }
    }

    /// Retry no sooner than `wait` from now, as the platform asked.
    pub fn wait(message: impl Into<String>, wait: Duration) -> Self {
        Self { message: message.into(), retryable: true, wait: Some(wait) }
    }
}

impl From<PlatformError> for StepError {
    fn from(e: PlatformError) -> Self {
        let wait = if e.deferred { e.retry_after } else { None };
        Self { retryable: e.retryable, message: e.to_string(), wait }
    }
}

/// A WhatsApp send: a platform error keeps its retryability; a closed window or a
/// bad template setting cannot change by trying again.
impl From<crate::operations::messages::SendError> for StepError {
    fn from(e: crate::operations::messages::SendError) -> Self {
        use crate::operations::messages::SendError;
        match e {
            SendError::Platform(e) => e.into(),
            SendError::Database(e) => e.into(),
            other => Self::permanent(other.to_string()),
        }
    }
}

/// A refused operation fails the task for good (trying again cannot help); a
/// database error is worth another attempt.
impl From<Refusal> for StepError {
    fn from(e: Refusal) -> Self {
        match e {
            Refusal::Database(e) => e.into(),
            other => Self::permanent(other.to_string()),
        }
    }
}

impl From<sqlx::Error> for StepError {
    fn from(e: sqlx::Error) -> Self {
        Self::transient(format!("database: {e}"))
    }
}

/// The run a task belongs to.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub id: Uuid,
    pub workflow: String,
    pub params: Value,
    pub dry_run: bool,
}

pub struct TaskContext {
    pub runtime: Runtime,
    pub run: RunInfo,
    pub client: Client,
    pub task_id: Uuid,
    pub attempt: i32,
}

impl TaskContext {
    /// Performs an external effect (a Drive folder, a ClickUp task, a WhatsApp
    /// message, an LLM call) at most once per (run, client, step): if this step
    /// already completed in an earlier attempt, its recorded result is returned and
    /// `act` is not called. The result is recorded as soon as the effect returns.
    /// In a dry run nothing is sent: the step is recorded as skipped and `None`
    /// comes back.
    pub async fn effect<T, F, Fut>(&self, step: &str, act: F) -> Result<Option<T>, StepError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, StepError>>,
    {
        let mut conn = self.runtime.pool.acquire().await?;
        if let Some(recorded) = store::effects::effect(&mut conn, self.run.id, self.client.id, step).await? {
            if recorded.dry_run {
                return Ok(None);
            }
            return serde_json::from_value(recorded.result)
                .map(Some)
                .map_err(|e| StepError::permanent(format!("recorded result of `{step}` is unreadable: {e}")));
        }
        drop(conn);
        if self.run.dry_run {
            let mut conn = self.runtime.pool.acquire().await?;
            store::effects::record_effect(
                &mut conn,
                self.run.id,
                self.client.id,
                step,
                &serde_json::json!({"skipped": "dry run"}),
                true,
            )
            .await?;
            return Ok(None);
        }
        let result = act().await?;
        let value = serde_json::to_value(&result).map_err(|e| StepError::permanent(e.to_string()))?;
        let mut conn = self.runtime.pool.acquire().await?;
        store::effects::record_effect(&mut conn, self.run.id, self.client.id, step, &value, false).await?;
        Ok(Some(result))
    }

    /// Who the audit log names for what this task changes: the workflow, under its run.
    pub fn actor(&self) -> Actor {
        Actor {
            token_id: None,
            name: format!("workflow:{}", self.run.workflow),
            request_id: Some(self.run.id.to_string()),
        }
    }

    /// Parameters as the workflow's typed struct (they were validated when the run was created).
    pub fn params<P: DeserializeOwned + Serialize>(&self) -> Result<P, StepError> {
        super::parse_params::<P>(&self.run.params)
            .map(|(p, _)| p)
            .map_err(|e| StepError::permanent(format!("invalid parameters: {e:?}")))
    }
}
