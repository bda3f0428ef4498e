//! `/v1/workflows` and `/v1/runs`: start runs, follow them, cancel and retry.

use std::time::{Duration, Instant};

use axum::{
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    auth::Caller,
    clients,
    error::{ApiError, ApiResult, Problem},
    extract::{self, ApiJson, ApiQuery, NoQuery},
    pagination::{self, Page},
};
use crate::{
    api::AppState,
    domain::{scope::Scope, validation::FieldError},
    store::{
        self,
        run_view::to_view,
        runs::{RunFilter, RunStatus, RunTrigger, TaskStatus},
    },
    workflows::{WorkflowInfo, runs, scheduler},
};

pub use crate::store::run_view::{RunLinks, RunView};

pub const TAG: &str = "workflows";
const CURSOR: &str = "runs";
const TASK_CURSOR: &str = "tasks";
/// Longest `Prefer: wait=N` honoured (Make's HTTP module times out at 40 s).
pub const MAX_WAIT_SECS: u64 = 30;
/// Most clients one run may name in `client_ids` (decision 0013); omit it for every active client.
pub const MAX_RUN_CLIENTS: usize = 1_000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_workflows))
        .routes(routes!(get_workflow))
        .routes(routes!(start_run))
        .routes(routes!(list_runs))
        .routes(routes!(get_run))
        .routes(routes!(list_run_tasks))
        .routes(routes!(cancel_run))
        .routes(routes!(retry_run))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowView {
    #[serde(flatten)]
    pub info: WorkflowInfo,
    /// JSON schema of `params`.
    #[schema(value_type = Object)]
    pub params_schema: Value,
    /// When the default schedule would fire next (it is seeded disabled).
    #[serde(with = "crate::domain::timestamp::option")]
    #[schema(value_type = Option<String>)]
    pub default_next_fire_at: Option<DateTime<Utc>>,
}

fn workflow_view(state: &AppState, key: &str) -> Option<WorkflowView> {
    let w = state.workflows.get(key)?;
    let info = w.info();
    let next = scheduler::next_after(info.default_cron, info.default_timezone, Utc::now()).ok();
    Some(WorkflowView { params_schema: w.params_schema(), default_next_fire_at: next, info })
}

/// List workflows
///
/// Every workflow this build knows: its key (for `POST /v1/workflows/{key}/runs` and
/// schedules), title, version, default schedule and attempts per client.
#[utoipa::path(get, path = "/v1/workflows", operation_id = "listWorkflows", tag = TAG,
    responses(
        (status = 200, description = "Every workflow", body = [WorkflowView]),
        (status = 403, description = "Missing scope `workflows:read`", body = Problem),
    ))]
async fn list_workflows(
    State(state): State<AppState>,
    caller: Caller,
    _: ApiQuery<NoQuery>,
) -> ApiResult<axum::Json<Vec<WorkflowView>>> {
    caller.require(Scope::WorkflowsRead)?;
    Ok(axum::Json(state.workflows.keys().into_iter().filter_map(|k| workflow_view(&state, k)).collect()))
}

/// Get a workflow
///
/// With its parameter schema and default schedule.
#[utoipa::path(get, path = "/v1/workflows/{key}", operation_id = "getWorkflow", tag = TAG,
    params(("key" = crate::workflows::WorkflowKey, Path, description = "Workflow key, e.g. daily-monitoring")),
    responses(
        (status = 200, description = "The workflow", body = WorkflowView),
        (status = 403, description = "Missing scope `workflows:read`", body = Problem),
        (status = 404, description = "No such workflow", body = Problem),
    ))]
async fn get_workflow(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    _: ApiQuery<NoQuery>,
) -> ApiResult<axum::Json<WorkflowView>> {
    caller.require(Scope::WorkflowsRead)?;
    workflow_view(&state, &key).map(axum::Json).ok_or_else(|| unknown_workflow(&state, &key))
}

fn unknown_workflow(state: &AppState, key: &str) -> ApiError {
    ApiError::not_found(format!("No workflow `{key}` (known: {}).", state.workflows.keys().join(", ")))
}

/// The run as the API shows it (also what `callback_url` receives).
pub async fn run_view(state: &AppState, id: Uuid) -> ApiResult<RunView> {
    let mut conn = state.pool.acquire().await?;
    store::run_view::find(&mut conn, id).await?.ok_or_else(|| ApiError::not_found(format!("No run `{id}`.")))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"client_ids": ["acme-coffee"], "params": {}, "dry_run": false}))]
pub struct StartRunRequest {
    /// Only these clients (ids or slugs, at most 1000); default: every `active` client.
    #[serde(default)]
    pub client_ids: Option<Vec<String>>,
    /// The workflow's parameters (see its `params_schema`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub params: Option<Value>,
    /// Compute and record everything, send nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// POSTed the finished run (the same JSON as `GET /v1/runs/{id}`).
    #[serde(default)]
    pub callback_url: Option<String>,
}

/// `Prefer: wait=N` → N seconds (capped at 30).
fn preferred_wait(headers: &HeaderMap) -> Option<u64> {
    let prefer = headers.get("prefer")?.to_str().ok()?;
    prefer
        .split(',')
        .find_map(|p| p.trim().strip_prefix("wait=")?.trim().parse::<u64>().ok())
        .map(|n| n.min(MAX_WAIT_SECS))
}

/// Start a run
///
/// Creates the run with one task per client and answers 202 with it; the tasks run
/// concurrently on the workers. With `Prefer: wait=N` (N ≤ 30) the answer waits up to
/// N seconds and is 200 with the finished run if it ends by then. Send
/// `Idempotency-Key` so a retry does not start a second run.
#[utoipa::path(
    post, path = "/v1/workflows/{key}/runs", operation_id = "startRun", tag = TAG,
    params(
        ("key" = crate::workflows::WorkflowKey, Path, description = "Workflow key, e.g. daily-monitoring"),
        ("Prefer" = Option<String>, Header, description = "`wait=N` (N ≤ 30): answer when the run ends, or after N seconds"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first response instead of starting again."),
    ),
    request_body(content = StartRunRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Finished within the preferred wait", body = RunView),
        (status = 202, description = "Started", body = RunView, headers(("Location" = String, description = "URL of the run"))),
        (status = 400, description = "Malformed JSON", body = Problem),
        (status = 403, description = "Missing scope `workflows:run`", body = Problem),
        (status = 404, description = "No such workflow", body = Problem),
        (status = 415, description = "Not JSON", body = Problem),
        (status = 422, description = "Invalid params (field named), unknown client, bad callback_url", body = Problem),
    )
)]
async fn start_run(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    headers: HeaderMap,
    _: ApiQuery<NoQuery>,
    ApiJson(req): ApiJson<StartRunRequest>,
) -> ApiResult<Response> {
    caller.require(Scope::WorkflowsRun)?;
    let workflow = state.workflows.get(&key).cloned().ok_or_else(|| unknown_workflow(&state, &key))?;
    let mut errors: Vec<FieldError> = vec![];
    let params = match workflow.check_params(req.params.as_ref().unwrap_or(&Value::Null)) {
        Ok(p) => p,
        Err(e) => {
            errors.extend(e);
            Value::Null
        }
    };
    // The same guard as webhook endpoints: https only (unless allowed), no internal addresses.
    if let Some(url) = &req.callback_url
        && let Err(why) = crate::events::ssrf::check(url, crate::events::ssrf::Policy::from_config(&state.config)).await
    {
        errors.push(FieldError::new("callback_url", why));
    }
    let mut tx = state.pool.begin().await?;
    let mut client_ids = None;
    if let Some(raw) = &req.client_ids {
        if raw.is_empty() {
            errors
                .push(FieldError::new("client_ids", "must name at least one client (omit it for every active client)"));
        }
        // Bounded before any lookup: one query per id.
        let raw = match raw.len() > MAX_RUN_CLIENTS {
            true => {
                errors.push(FieldError::new(
                    "client_ids",
                    format!("must name at most {MAX_RUN_CLIENTS} clients (omit it for every active client)"),
                ));
                &raw[..0]
            }
            false => &raw[..],
        };
        let mut ids = vec![];
        for (i, c) in raw.iter().enumerate() {
            match clients::load(&mut tx, c, false).await {
                Ok(client) => ids.push(client.id),
                Err(_) => errors.push(FieldError::new(format!("client_ids[{i}]"), "is not a known client id or slug")),
            }
        }
        ids.sort();
        ids.dedup();
        client_ids = Some(ids);
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let start = runs::Start {
        workflow: workflow.as_ref(),
        params: &params,
        trigger: RunTrigger::Api,
        dry_run: req.dry_run,
        callback_url: req.callback_url.as_deref(),
        schedule_id: None,
        client_ids: client_ids.as_deref(),
    };
    let run = runs::start(&mut tx, &caller.actor(), &start).await?;
    tx.commit().await?;

    let mut view = run_view(&state, run.id).await?;
    // The answer must leave before the request timeout (a 408 would hide the run), so
    // the wait ends a second before it.
    let budget = state.config.request_timeout_secs.saturating_sub(1);
    let wait = preferred_wait(&headers).map(|secs| secs.min(budget));
    if let Some(secs) = wait {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !view.is_finished() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            view = run_view(&state, run.id).await?;
        }
    }
    let status = if view.is_finished() && wait.is_some() { StatusCode::OK } else { StatusCode::ACCEPTED };
    let location = view.links.self_.clone();
    let mut response = (status, axum::Json(view)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    if let Some(secs) = wait
        && let Ok(v) = HeaderValue::from_str(&format!("wait={secs}"))
    {
        response.headers_mut().insert("preference-applied", v);
    }
    Ok(response)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListRunsQuery {
    /// Workflow key.
    workflow: Option<String>,
    /// Only runs with this status.
    #[param(value_type = Option<RunStatus>)]
    status: Option<String>,
    /// Runs that include this client (id or slug).
    client: Option<String>,
    /// Created at or after (RFC 3339).
    from: Option<DateTime<Utc>>,
    /// Created before (RFC 3339).
    to: Option<DateTime<Utc>>,
    /// Page size, 1–500 (default 50).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// List runs
///
/// Newest first.
#[utoipa::path(get, path = "/v1/runs", operation_id = "listRuns", tag = TAG,
    params(ListRunsQuery),
    responses(
        (status = 200, description = "A page of runs", body = Page<RunView>),
        (status = 400, description = "Bad query parameter", body = Problem),
        (status = 403, description = "Missing scope `workflows:read`", body = Problem),
        (status = 404, description = "No such client", body = Problem),
    ))]
async fn list_runs(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListRunsQuery>,
) -> ApiResult<axum::Json<Page<RunView>>> {
    caller.require(Scope::WorkflowsRead)?;
    let status = q.status.as_deref().map(str::parse::<RunStatus>).transpose().map_err(|e| {
        let one_of = format!("one of {}", e.expected.join(", "));
        ApiError::bad_request("invalid_query", format!("status: {one_of}")).with_field("status", one_of)
    })?;
    let workflow = extract::one_of("workflow", q.workflow, &state.workflows.keys())?;
    let limit = pagination::limit(q.limit)?;
    let before = pagination::decode_uuid(CURSOR, q.cursor.as_deref())?;
    let mut conn = state.pool.acquire().await?;
    let client_id = match q.client.as_deref() {
        Some(raw) => Some(clients::load(&mut conn, raw, false).await?.id),
        None => None,
    };
    let filter = RunFilter { workflow, status, client_id, from: q.from, to: q.to };
    let rows = store::runs::list(&mut conn, &filter, before, i64::from(limit) + 1).await?;
    let page = pagination::page(rows, limit, CURSOR, |r| r.id);
    let mut data = Vec::with_capacity(page.data.len());
    for run in page.data {
        let counts = store::runs::counts(&mut conn, run.id).await?;
        data.push(to_view(run, counts));
    }
    Ok(axum::Json(Page::new(data, page.next_cursor)))
}

fn parse_run_id(raw: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found(format!("No run `{raw}`.")))
}

/// Get a run
///
/// Where the run stands: its status, task counts by status and progress; poll it (or pass
/// `callback_url` when starting) to learn when it finishes.
#[utoipa::path(get, path = "/v1/runs/{id}", operation_id = "getRun", tag = TAG,
    params(("id" = Uuid, Path, description = "Run id")),
    responses(
        (status = 200, description = "The run", body = RunView),
        (status = 403, description = "Missing scope `workflows:read`", body = Problem),
        (status = 404, description = "No such run", body = Problem),
    ))]
async fn get_run(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    _: ApiQuery<NoQuery>,
) -> ApiResult<axum::Json<RunView>> {
    caller.require(Scope::WorkflowsRead)?;
    Ok(axum::Json(run_view(&state, parse_run_id(&id)?).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TaskView {
    pub id: Uuid,
    pub client_id: Uuid,
    pub status: TaskStatus,
    pub attempt: i32,
    pub max_attempts: i32,
    /// What the workflow reported for this client.
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    pub error: Option<String>,
    #[serde(with = "crate::domain::timestamp::option")]
    #[schema(value_type = Option<String>)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(with = "crate::domain::timestamp::option")]
    #[schema(value_type = Option<String>)]
    pub finished_at: Option<DateTime<Utc>>,
    /// The WhatsApp messages this task sent, with their delivery status as Meta's
    /// webhooks report it (a `failed` one carries the vendor's error code).
    pub messages: Vec<crate::store::messages::Message>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TasksQuery {
    /// Page size, 1–500 (default 50).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A run's tasks
///
/// One per client: status, attempts, the result summary or the error, and the
/// WhatsApp messages it sent with their delivery status.
#[utoipa::path(get, path = "/v1/runs/{id}/tasks", operation_id = "listRunTasks", tag = TAG,
    params(("id" = Uuid, Path, description = "Run id"), TasksQuery),
    responses(
        (status = 200, description = "A page of tasks", body = Page<TaskView>),
        (status = 400, description = "Bad query parameter", body = Problem),
        (status = 403, description = "Missing scope `workflows:read`", body = Problem),
        (status = 404, description = "No such run", body = Problem),
    ))]
async fn list_run_tasks(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<TasksQuery>,
) -> ApiResult<axum::Json<Page<TaskView>>> {
    caller.require(Scope::WorkflowsRead)?;
    let id = parse_run_id(&id)?;
    let limit = pagination::limit(q.limit)?;
    let after = pagination::decode_uuid(TASK_CURSOR, q.cursor.as_deref())?;
    let mut conn = state.pool.acquire().await?;
    store::runs::find(&mut conn, id).await?.ok_or_else(|| ApiError::not_found(format!("No run `{id}`.")))?;
    let rows = store::runs::tasks(&mut conn, id, after, i64::from(limit) + 1).await?;
    let page = pagination::page(rows, limit, TASK_CURSOR, |t| t.id);
    let task_ids: Vec<Uuid> = page.data.iter().map(|t| t.id).collect();
    let mut sent = store::messages::for_tasks(&mut conn, &task_ids).await?;
    let data = page
        .data
        .into_iter()
        .map(|t| TaskView {
            messages: sent.extract_if(.., |m| m.task_id == Some(t.id)).collect(),
            id: t.id,
            client_id: t.client_id,
            status: t.status,
            attempt: t.attempt,
            max_attempts: t.max_attempts,
            result: t.result,
            error: t.error,
            started_at: t.started_at,
            finished_at: t.finished_at,
        })
        .collect();
    Ok(axum::Json(Page::new(data, page.next_cursor)))
}

/// Cancel a run
///
/// Queued tasks are canceled at once; running ones stop at their next heartbeat.
/// Canceling a finished run is a 409.
#[utoipa::path(post, path = "/v1/runs/{id}/cancel", operation_id = "cancelRun", tag = TAG,
    params(("id" = Uuid, Path, description = "Run id")),
    responses(
        (status = 200, description = "Canceled", body = RunView),
        (status = 403, description = "Missing scope `workflows:run`", body = Problem),
        (status = 404, description = "No such run", body = Problem),
        (status = 409, description = "The run already finished", body = Problem, extensions(("x-problem-codes" = json!(["run_finished"])))),
    ))]
async fn cancel_run(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    _: ApiQuery<NoQuery>,
) -> ApiResult<axum::Json<RunView>> {
    caller.require(Scope::WorkflowsRun)?;
    let id = parse_run_id(&id)?;
    let mut tx = state.pool.begin().await?;
    store::runs::find(&mut tx, id).await?.ok_or_else(|| ApiError::not_found(format!("No run `{id}`.")))?;
    if !store::runs::cancel(&mut tx, id).await? {
        return Err(ApiError::conflict("run_finished", "The run already finished; nothing to cancel."));
    }
    store::audit::record(&mut tx, &caller.actor(), "run.cancel", "run", &id.to_string(), None::<&()>, None::<&()>)
        .await?;
    tx.commit().await?;
    Ok(axum::Json(run_view(&state, id).await?))
}

/// Retry a run's failed tasks
///
/// Puts the failed tasks back in the queue as a new attempt of the same run (the
/// side-effect ledger keeps effects already done from repeating). 409 when the run
/// is still running or has no failed task.
#[utoipa::path(post, path = "/v1/runs/{id}/retry", operation_id = "retryRun", tag = TAG,
    params(("id" = Uuid, Path, description = "Run id")),
    responses(
        (status = 202, description = "Failed tasks requeued", body = RunView),
        (status = 403, description = "Missing scope `workflows:run`", body = Problem),
        (status = 404, description = "No such run", body = Problem),
        (status = 409, description = "Still running, or nothing failed", body = Problem, extensions(("x-problem-codes" = json!(["run_active", "run_canceled", "nothing_to_retry"])))),
    ))]
async fn retry_run(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    _: ApiQuery<NoQuery>,
) -> ApiResult<Response> {
    caller.require(Scope::WorkflowsRun)?;
    let id = parse_run_id(&id)?;
    let mut tx = state.pool.begin().await?;
    let run = store::runs::find(&mut tx, id).await?.ok_or_else(|| ApiError::not_found(format!("No run `{id}`.")))?;
    if run.status.is_open() {
        return Err(ApiError::conflict("run_active", "The run is still running; retry it when it has finished."));
    }
    if run.status == RunStatus::Canceled {
        return Err(ApiError::conflict("run_canceled", "The run was canceled; start a new run instead."));
    }
    let requeued = store::runs::retry_failed(&mut tx, id).await?;
    if requeued == 0 {
        return Err(ApiError::conflict("nothing_to_retry", "The run has no failed task."));
    }
    store::audit::record(
        &mut tx,
        &caller.actor(),
        "run.retry",
        "run",
        &id.to_string(),
        None::<&()>,
        Some(&serde_json::json!({"requeued": requeued})),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::ACCEPTED, axum::Json(run_view(&state, id).await?)).into_response())
}
