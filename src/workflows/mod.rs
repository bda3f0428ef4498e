//! Workflows (docs/WORKFLOWS.md): named, versioned units with a parameter schema, a
//! default schedule and a per-client step function. A run fans out one task per
//! client; the engine (`engine.rs`) executes tasks concurrently on any replica.
//! Adding a workflow: one module with a type implementing [`Workflow`] and one
//! line in [`Registry::builtin`] (and its section in docs/WORKFLOWS.md).

pub mod client_onboarding;
pub mod commands;
pub mod context;
pub mod daily_monitoring;
pub mod engine;
pub mod metrics_sync;
pub mod runs;
pub mod runtime;
pub mod scheduler;
pub mod weekly_report;

use std::{collections::BTreeMap, sync::Arc};

use futures::future::BoxFuture;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use utoipa::ToSchema;

pub use context::{StepError, TaskContext};
pub use runtime::Runtime;

use crate::domain::validation::FieldError;

/// What the registry and the API know about a workflow.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkflowInfo {
    #[schema(value_type = WorkflowKey, example = "daily-monitoring")]
    pub key: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub version: u32,
    /// Cron expression of the default schedule (seeded disabled).
    #[schema(example = "0 7 * * *")]
    pub default_cron: &'static str,
    #[schema(example = "UTC")]
    pub default_timezone: &'static str,
    /// How many times a client's task is tried before it fails.
    pub max_attempts: u32,
}

/// A workflow: its description, parameters and what it does for one client.
pub trait Workflow: Send + Sync + 'static {
    fn info(&self) -> WorkflowInfo;

    /// JSON schema of the parameters (for `GET /v1/workflows/{key}`).
    fn params_schema(&self) -> Value;

    /// Validates parameters, returning them normalised (defaults filled in), or the
    /// fields at fault.
    fn check_params(&self, params: &Value) -> Result<Value, Vec<FieldError>>;

    /// Does the work for one client. External effects go through
    /// [`TaskContext::effect`] so a retried task never repeats one.
    fn run<'a>(&'a self, ctx: &'a TaskContext) -> BoxFuture<'a, Result<Value, StepError>>;
}

/// Deserialises parameters strictly, naming the field at fault.
pub fn parse_params<P: DeserializeOwned + Serialize>(params: &Value) -> Result<(P, Value), Vec<FieldError>> {
    let params = if params.is_null() { Value::Object(Default::default()) } else { params.clone() };
    let parsed: P = serde_path_to_error::deserialize(params).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.inner().to_string();
        let field = match (msg.strip_prefix("unknown field `"), msg.strip_prefix("missing field `")) {
            (Some(rest), _) | (_, Some(rest)) => {
                let name = rest.split('`').next().unwrap_or_default();
                if path == "." || path.ends_with(name) {
                    format!("params.{name}")
                } else {
                    format!("params.{path}.{name}")
                }
            }
            _ => format!("params.{path}"),
        };
        vec![FieldError::new(field.replace("params..", "params."), msg)]
    })?;
    let normalised = serde_json::to_value(&parsed).unwrap_or_default();
    Ok((parsed, normalised))
}

/// JSON schema of a `ToSchema` type, inline.
pub fn schema_of<T: utoipa::PartialSchema>() -> Value {
    serde_json::to_value(T::schema()).unwrap_or_default()
}

/// A workflow's key, as the spec describes it (the keys of [`Registry::builtin`]).
pub struct WorkflowKey;

crate::domain::names::names_schema!(
    WorkflowKey,
    "WorkflowKey",
    "A workflow's key (`GET /v1/workflows` lists them).",
    Registry::builtin().keys()
);

/// Every workflow this build knows, by key.
#[derive(Clone)]
pub struct Registry {
    workflows: BTreeMap<&'static str, Arc<dyn Workflow>>,
}

impl Registry {
    pub fn new(workflows: Vec<Arc<dyn Workflow>>) -> Self {
        Self { workflows: workflows.into_iter().map(|w| (w.info().key, w)).collect() }
    }

    /// The agency's workflows.
    pub fn builtin() -> Self {
        Self::new(vec![
            Arc::new(daily_monitoring::DailyMonitoring),
            Arc::new(client_onboarding::ClientOnboarding),
            Arc::new(weekly_report::WeeklyReport),
            Arc::new(metrics_sync::MetricsSync),
        ])
    }

    pub fn get(&self, key: &str) -> Option<&Arc<dyn Workflow>> {
        self.workflows.get(key)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Workflow>> {
        self.workflows.values()
    }

    pub fn keys(&self) -> Vec<&'static str> {
        self.workflows.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/WORKFLOWS.md has a section for every registered workflow.
    #[test]
    fn every_workflow_is_documented() {
        let doc = include_str!("../../docs/WORKFLOWS.md");
        for key in Registry::builtin().keys() {
            assert!(doc.contains(&format!("## `{key}`")), "docs/WORKFLOWS.md has no section for `{key}`");
        }
    }

    #[test]
    fn params_errors_name_the_field() {
        #[derive(serde::Deserialize, serde::Serialize)]
        #[serde(deny_unknown_fields)]
        struct P {
            #[serde(default)]
            threshold: f64,
        }
        let err = parse_params::<P>(&serde_json::json!({"treshold": 1})).err().unwrap();
        assert_eq!(err[0].field, "params.treshold");
        let err = parse_params::<P>(&serde_json::json!({"threshold": "high"})).err().unwrap();
        assert_eq!(err[0].field, "params.threshold");
        assert!(parse_params::<P>(&serde_json::Value::Null).is_ok());
    }
}
