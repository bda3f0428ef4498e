//! `metrics-sync`: per client, the same sync as `POST /v1/clients/{client}/metrics/sync`
//! (pull the linked or named ad platforms' days, store them, audit), on a worker. The
//! endpoint starts a run of it when the caller prefers an asynchronous answer
//! (`Prefer: respond-async`) or when the platforms do not answer in time for an inline
//! one, so a long sync (platform retries may take minutes) never outlives its request.

use chrono::{Duration, NaiveDate, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{StepError, TaskContext, Workflow, WorkflowInfo, parse_params, schema_of};
use crate::{domain::validation::FieldError, operations::metrics_sync};

pub const KEY: &str = "metrics-sync";

pub struct MetricsSync;

/// Parameters of `metrics-sync`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// First day (`YYYY-MM-DD`); default: yesterday in the client's time zone (or `to`, if earlier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date, example = "2026-06-01")]
    pub from: Option<NaiveDate>,
    /// Last day, inclusive; default: `from` (or yesterday).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date, example = "2026-06-07")]
    pub to: Option<NaiveDate>,
    /// Only these ad platforms (default: every linked one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = json!(["meta", "google_ads"]))]
    pub platforms: Option<Vec<String>>,
}

impl Workflow for MetricsSync {
    fn info(&self) -> WorkflowInfo {
        WorkflowInfo {
            key: KEY,
            title: "Metrics sync",
            description: "Pulls daily metrics from each client's linked ad platforms (or the named ones) for a \
                range of days and stores them, replacing days already stored; one platform failing does not lose \
                the others' data. The task's output is the per-platform outcome.",
            version: 1,
            default_cron: "30 6 * * *",
            default_timezone: "UTC",
            max_attempts: 3,
        }
    }

    fn params_schema(&self) -> Value {
        schema_of::<Params>()
    }

    fn check_params(&self, params: &Value) -> Result<Value, Vec<FieldError>> {
        let (parsed, normalised) = parse_params::<Params>(params)?;
        let mut errors = vec![];
        if let (Some(from), Some(to)) = (parsed.from, parsed.to)
            && let Err(e) = metrics_sync::check_range(from, to)
        {
            errors.push(FieldError::new(format!("params.{}", e.field), e.message));
        }
        if let Some(names) = &parsed.platforms {
            for (i, name) in names.iter().enumerate() {
                if crate::operations::metrics::AdPlatform::from_key(name).is_none() {
                    let why = "is not an ad platform with metrics (meta, google_ads)";
                    errors.push(FieldError::new(format!("params.platforms[{i}]"), why));
                }
            }
        }
        if errors.is_empty() { Ok(normalised) } else { Err(errors) }
    }

    fn run<'a>(&'a self, ctx: &'a TaskContext) -> BoxFuture<'a, Result<Value, StepError>> {
        Box::pin(sync(ctx))
    }
}

async fn sync(ctx: &TaskContext) -> Result<Value, StepError> {
    let params: Params = ctx.params()?;
    let tz: chrono_tz::Tz = ctx.client.timezone.parse().unwrap_or(chrono_tz::UTC);
    let yesterday = Utc::now().with_timezone(&tz).date_naive() - Duration::days(1);
    let from = params.from.unwrap_or(params.to.map_or(yesterday, |to| to.min(yesterday)));
    let to = params.to.unwrap_or(from);
    metrics_sync::check_range(from, to).map_err(|e| StepError::permanent(format!("{}: {}", e.field, e.message)))?;
    // A platform named here but unlinked since the run started (or a client without
    // any account) cannot be fixed by trying again.
    let wanted = metrics_sync::pick(&ctx.client, params.platforms.as_deref())
        .map_err(|e| StepError::permanent(format!("{}: {}", e.field, e.message)))?;
    let (rt, client) = (&ctx.runtime, &ctx.client);
    let result = metrics_sync::sync(&rt.pool, &rt.platforms, &ctx.actor(), client.id, &wanted, from, to).await?;
    serde_json::to_value(&result).map_err(|e| StepError::permanent(e.to_string()))
}
