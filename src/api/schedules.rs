//! `/v1/schedules`: when workflows run on their own. Each slot fires exactly once
//! across all scheduler replicas (see `workflows::scheduler`).

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgConnection;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    auth::Caller,
    error::{ApiError, ApiResult, Problem},
    extract::{self, ApiJson, ApiQuery, NoQuery, from_value},
    pagination::{self, Page},
};
use crate::{
    api::AppState,
    domain::{scope::Scope, validation::FieldError},
    store::{
        self,
        schedules::{ScheduleFields, ScheduleRow},
    },
    workflows::scheduler,
};

pub const TAG: &str = "schedules";
const CURSOR: &str = "schedules";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_schedule, list_schedules)).routes(routes!(
        get_schedule,
        update_schedule,
        delete_schedule
    ))
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScheduleView {
    pub id: Uuid,
    #[schema(example = "daily-monitoring")]
    pub workflow: String,
    #[schema(example = "0 7 * * *")]
    pub cron: String,
    #[schema(example = "America/Sao_Paulo")]
    pub timezone: String,
    #[schema(value_type = Object)]
    pub params: Value,
    pub enabled: bool,
    #[serde(with = "crate::domain::timestamp::option")]
    #[schema(value_type = Option<String>)]
    pub next_fire_at: Option<DateTime<Utc>>,
    #[serde(with = "crate::domain::timestamp::option")]
    #[schema(value_type = Option<String>)]
    pub last_fired_at: Option<DateTime<Utc>>,
    #[serde(with = "crate::domain::timestamp")]
    #[schema(value_type = String)]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::domain::timestamp")]
    #[schema(value_type = String)]
    pub updated_at: DateTime<Utc>,
}

impl From<ScheduleRow> for ScheduleView {
    fn from(r: ScheduleRow) -> Self {
        ScheduleView {
            id: r.id,
            workflow: r.workflow,
            cron: r.cron,
            timezone: r.timezone,
            params: r.params,
            enabled: r.enabled,
            next_fire_at: r.next_fire_at,
            last_fired_at: r.last_fired_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Writable fields (create body; merge-patch target).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"workflow": "daily-monitoring", "cron": "0 7 * * *", "timezone": "America/Sao_Paulo", "enabled": true}))]
pub struct ScheduleInput {
    pub workflow: String,
    /// Cron expression (5 fields, or 6 with seconds) that fires at most once every 5 minutes.
    pub cron: String,
    /// IANA time zone the expression is read in; default `UTC`.
    #[serde(default = "utc")]
    pub timezone: String,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub params: Option<Value>,
    #[serde(default)]
    pub enabled: bool,
}

fn utc() -> String {
    "UTC".into()
}

struct Valid {
    input: ScheduleInput,
    params: Value,
    next: Option<DateTime<Utc>>,
}

impl Valid {
    fn fields(&self) -> ScheduleFields<'_> {
        ScheduleFields {
            workflow: &self.input.workflow,
            cron: self.input.cron.trim(),
            timezone: &self.input.timezone,
            params: &self.params,
            enabled: self.input.enabled,
            next_fire_at: self.next,
        }
    }
}

/// `timing_changed`: the cron or time zone is new, so the firing floor is checked
/// (a schedule stored before the floor can still be patched, e.g. disabled).
fn validate(state: &AppState, input: ScheduleInput, timing_changed: bool) -> ApiResult<Valid> {
    let mut errors = vec![];
    let mut params = Value::Object(Default::default());
    match state.workflows.get(&input.workflow) {
        None => errors.push(FieldError::new(
            "workflow",
            format!("unknown workflow (known: {})", state.workflows.keys().join(", ")),
        )),
        Some(w) => match w.check_params(input.params.as_ref().unwrap_or(&Value::Null)) {
            Ok(p) => params = p,
            Err(e) => errors.extend(e),
        },
    }
    let cron = scheduler::parse_cron(&input.cron).map_err(|e| errors.push(FieldError::new("cron", e)));
    let timezone = scheduler::parse_timezone(&input.timezone).map_err(|e| errors.push(FieldError::new("timezone", e)));
    if cron.is_ok()
        && timezone.is_ok()
        && timing_changed
        && let Err(e) = scheduler::check_interval(&input.cron, &input.timezone, Utc::now())
    {
        errors.push(FieldError::new("cron", e));
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let next = scheduler::next_after(&input.cron, &input.timezone, Utc::now()).ok();
    Ok(Valid { input, params, next })
}

async fn load(conn: &mut PgConnection, raw: &str) -> ApiResult<ScheduleView> {
    let missing = || ApiError::not_found(format!("No schedule `{raw}`."));
    let id = Uuid::parse_str(raw).map_err(|_| missing())?;
    find(conn, id).await?.ok_or_else(missing)
}

async fn find(conn: &mut PgConnection, id: Uuid) -> Result<Option<ScheduleView>, sqlx::Error> {
    Ok(store::schedules::find(conn, id).await?.map(ScheduleView::from))
}

/// Create a schedule
///
/// Runs the workflow on its own whenever the cron expression fires in the given time zone
/// (at most once every 5 minutes); `params` are checked against the workflow's schema.
#[utoipa::path(post, path = "/v1/schedules", operation_id = "createSchedule", tag = TAG,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first response instead of creating again.")),
    request_body(content = ScheduleInput, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = ScheduleView),
        (status = 400, description = "Malformed JSON", body = Problem),
        (status = 403, description = "Missing scope `schedules:write`", body = Problem),
        (status = 415, description = "Not JSON", body = Problem),
        (status = 422, description = "Unknown workflow, bad cron (or one firing more often than every 5 minutes), time zone or params", body = Problem),
    ))]
async fn create_schedule(
    State(state): State<AppState>,
    caller: Caller,
    _: ApiQuery<NoQuery>,
    ApiJson(input): ApiJson<ScheduleInput>,
) -> ApiResult<Response> {
    caller.require(Scope::SchedulesWrite)?;
    let v = validate(&state, input, true)?;
    let mut tx = state.pool.begin().await?;
    let id = Uuid::now_v7();
    store::schedules::insert(&mut tx, id, &v.fields()).await?;
    let created = find(&mut tx, id).await?.expect("just created");
    store::audit::record(
        &mut tx,
        &caller.actor(),
        "schedule.create",
        "schedule",
        &id.to_string(),
        None::<&()>,
        Some(&created),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListSchedulesQuery {
    workflow: Option<String>,
    enabled: Option<bool>,
    /// Page size, 1–500 (default 50).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// List schedules
///
/// In creation order, cursor-paginated; filter by `workflow` or `enabled`. Each shows when
/// it fires next and when it last fired.
#[utoipa::path(get, path = "/v1/schedules", operation_id = "listSchedules", tag = TAG,
    params(ListSchedulesQuery),
    responses(
        (status = 200, description = "A page of schedules", body = Page<ScheduleView>),
        (status = 400, description = "Bad query parameter", body = Problem),
        (status = 403, description = "Missing scope `workflows:read`", body = Problem),
    ))]
async fn list_schedules(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListSchedulesQuery>,
) -> ApiResult<axum::Json<Page<ScheduleView>>> {
    caller.require(Scope::WorkflowsRead)?;
    let workflow = extract::one_of("workflow", q.workflow, &state.workflows.keys())?;
    let limit = pagination::limit(q.limit)?;
    let after = pagination::decode_uuid(CURSOR, q.cursor.as_deref())?;
    let mut conn = state.pool.acquire().await?;
    let rows = store::schedules::list(&mut conn, workflow.as_deref(), q.enabled, after, i64::from(limit) + 1).await?;
    let rows: Vec<ScheduleView> = rows.into_iter().map(ScheduleView::from).collect();
    Ok(axum::Json(pagination::page(rows, limit, CURSOR, |s| s.id)))
}

/// Get a schedule
///
/// The schedule with its next and last firing times.
#[utoipa::path(get, path = "/v1/schedules/{id}", operation_id = "getSchedule", tag = TAG,
    params(("id" = Uuid, Path, description = "Schedule id")),
    responses(
        (status = 200, description = "The schedule", body = ScheduleView),
        (status = 403, description = "Missing scope `workflows:read`", body = Problem),
        (status = 404, description = "No such schedule", body = Problem),
    ))]
async fn get_schedule(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    _: ApiQuery<NoQuery>,
) -> ApiResult<axum::Json<ScheduleView>> {
    caller.require(Scope::WorkflowsRead)?;
    let mut conn = state.pool.acquire().await?;
    Ok(axum::Json(load(&mut conn, &id).await?))
}

/// Update a schedule (JSON merge patch)
///
/// E.g. `{"enabled": true}` or `{"cron": "30 6 * * 1-5", "timezone": "Europe/Lisbon"}`;
/// `next_fire_at` is recomputed.
#[utoipa::path(patch, path = "/v1/schedules/{id}", operation_id = "updateSchedule", tag = TAG,
    params(("id" = Uuid, Path, description = "Schedule id")),
    request_body(content = ScheduleInput, content_type = "application/merge-patch+json", example = json!({"enabled": true})),
    responses(
        (status = 200, description = "The updated schedule", body = ScheduleView),
        (status = 400, description = "Malformed JSON", body = Problem),
        (status = 403, description = "Missing scope `schedules:write`", body = Problem),
        (status = 404, description = "No such schedule", body = Problem),
        (status = 415, description = "Not JSON", body = Problem),
        (status = 422, description = "Bad cron (or one firing more often than every 5 minutes), time zone, workflow or params", body = Problem),
    ))]
async fn update_schedule(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    _: ApiQuery<NoQuery>,
    ApiJson(patch): ApiJson<Value>,
) -> ApiResult<axum::Json<ScheduleView>> {
    caller.require(Scope::SchedulesWrite)?;
    if !patch.is_object() {
        return Err(ApiError::invalid(vec![]).with_field("body", "must be a JSON object (a merge patch)"));
    }
    let mut tx = state.pool.begin().await?;
    let before = load(&mut tx, &id).await?;
    let mut doc = serde_json::to_value(ScheduleInput {
        workflow: before.workflow.clone(),
        cron: before.cron.clone(),
        timezone: before.timezone.clone(),
        params: Some(before.params.clone()),
        enabled: before.enabled,
    })
    .map_err(ApiError::internal)?;
    json_patch::merge(&mut doc, &patch);
    let input: ScheduleInput = from_value(doc)?;
    let timing_changed = input.cron.trim() != before.cron || input.timezone != before.timezone;
    let v = validate(&state, input, timing_changed)?;
    store::schedules::update(&mut tx, before.id, &v.fields()).await?;
    let after = find(&mut tx, before.id).await?.expect("exists");
    store::audit::record(&mut tx, &caller.actor(), "schedule.update", "schedule", &id, Some(&before), Some(&after))
        .await?;
    tx.commit().await?;
    Ok(axum::Json(after))
}

/// Delete a schedule
///
/// It fires no more; runs it already started are not touched.
#[utoipa::path(delete, path = "/v1/schedules/{id}", operation_id = "deleteSchedule", tag = TAG,
    params(("id" = Uuid, Path, description = "Schedule id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Missing scope `schedules:write`", body = Problem),
        (status = 404, description = "No such schedule", body = Problem),
    ))]
async fn delete_schedule(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    _: ApiQuery<NoQuery>,
) -> ApiResult<StatusCode> {
    caller.require(Scope::SchedulesWrite)?;
    let mut tx = state.pool.begin().await?;
    let before = load(&mut tx, &id).await?;
    store::schedules::delete(&mut tx, before.id).await?;
    store::audit::record(&mut tx, &caller.actor(), "schedule.delete", "schedule", &id, Some(&before), None::<&()>)
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
