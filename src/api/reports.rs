//! `/v1/reports`: reports the workflows wrote (the weekly report), with the
//! figures they were built from and the model's token usage.

use axum::extract::{Path, State};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    auth::Caller,
    clients,
    error::{ApiError, ApiResult, Problem},
    extract::{ApiQuery, NoQuery},
    pagination::{self, Page},
};
use crate::{
    api::AppState,
    domain::scope::Scope,
    store::{
        self,
        reports::{ReportFilter, ReportRow},
    },
};

pub const TAG: &str = "reports";
const CURSOR: &str = "reports";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_reports)).routes(routes!(get_report))
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0190f3a2-7c1e-7000-8000-000000000001", "client_id": "0190f3a2-7c1e-7000-8000-000000000002",
    "run_id": "0190f3a2-7c1e-7000-8000-000000000003", "kind": "weekly-report",
    "period_start": "2026-06-01", "period_end": "2026-06-07",
    "body": "# Acme Coffee: week of 2026-06-01\n\n- Spend up 12% at a steady CPA...",
    "figures": {"platforms": [{"platform": "meta", "currency": "BRL", "this_week": {"spend": 1200.5}}]},
    "model": "claude-sonnet-4-6", "input_tokens": 812, "output_tokens": 240,
    "created_at": "2026-06-08T08:00:03.000Z"
}))]
pub struct Report {
    pub id: Uuid,
    pub client_id: Uuid,
    /// The workflow run that wrote it.
    pub run_id: Option<Uuid>,
    /// The workflow that wrote it, e.g. `weekly-report`.
    pub kind: String,
    #[schema(value_type = String, example = "2026-06-01")]
    pub period_start: NaiveDate,
    #[schema(value_type = String, example = "2026-06-07")]
    pub period_end: NaiveDate,
    /// Markdown. In a dry run (no model called) the rendered prompt, marked as such.
    pub body: String,
    /// The figures the report was built from.
    #[schema(value_type = Object)]
    pub figures: Value,
    /// The model that wrote it; `null` when no model was called (dry run).
    pub model: Option<String>,
    pub input_tokens: Option<i32>,
    pub output_tokens: Option<i32>,
    #[serde(with = "crate::domain::timestamp")]
    #[schema(value_type = String, example = "2026-06-08T08:00:03.000Z")]
    pub created_at: DateTime<Utc>,
}

impl From<ReportRow> for Report {
    fn from(r: ReportRow) -> Self {
        Report {
            id: r.id,
            client_id: r.client_id,
            run_id: r.run_id,
            kind: r.kind,
            period_start: r.period_start,
            period_end: r.period_end,
            body: r.body,
            figures: r.figures,
            model: r.model,
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListReportsQuery {
    /// Only this client's reports (id or slug).
    client: Option<String>,
    /// Only this kind, e.g. `weekly-report`.
    kind: Option<String>,
    /// Only reports whose period ends on or after this day (YYYY-MM-DD).
    #[param(value_type = Option<String>, example = "2026-06-01")]
    from: Option<NaiveDate>,
    /// Only reports whose period starts on or before this day (YYYY-MM-DD).
    #[param(value_type = Option<String>, example = "2026-06-30")]
    to: Option<NaiveDate>,
    /// Page size, 1–500 (default 50).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// List reports
///
/// Newest first, cursor-paginated. `from`/`to` select reports whose period overlaps the range.
#[utoipa::path(
    get, path = "/v1/reports", operation_id = "listReports", tag = TAG,
    params(ListReportsQuery),
    responses(
        (status = 200, description = "A page of reports", body = Page<Report>),
        (status = 400, description = "Bad query parameter (dates, limit, cursor, `to` before `from`)", body = Problem),
        (status = 403, description = "Missing scope `clients:read`", body = Problem),
        (status = 404, description = "No such client", body = Problem),
    )
)]
async fn list_reports(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListReportsQuery>,
) -> ApiResult<axum::Json<Page<Report>>> {
    caller.require(Scope::ClientsRead)?;
    let limit = pagination::limit(q.limit)?;
    let before = pagination::decode_uuid(CURSOR, q.cursor.as_deref())?;
    if let (Some(from), Some(to)) = (q.from, q.to)
        && to < from
    {
        return Err(ApiError::bad_request("invalid_query", "to: must not be before `from`")
            .with_field("to", "must not be before `from`"));
    }
    let mut conn = state.pool.acquire().await?;
    let client_id = match q.client.as_deref() {
        Some(raw) => Some(clients::load(&mut conn, raw, false).await?.id),
        None => None,
    };
    let filter = ReportFilter { client_id, kind: q.kind.filter(|k| !k.trim().is_empty()), from: q.from, to: q.to };
    let rows = store::reports::list(&mut conn, &filter, before, i64::from(limit) + 1).await?;
    let page = pagination::page(rows, limit, CURSOR, |r| r.id);
    Ok(axum::Json(Page::new(page.data.into_iter().map(Report::from).collect(), page.next_cursor)))
}

/// Get a report
#[utoipa::path(
    get, path = "/v1/reports/{id}", operation_id = "getReport", tag = TAG,
    params(("id" = Uuid, Path, description = "Report id")),
    responses(
        (status = 200, description = "The report", body = Report),
        (status = 403, description = "Missing scope `clients:read`", body = Problem),
        (status = 404, description = "No such report", body = Problem),
    )
)]
async fn get_report(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    _: ApiQuery<NoQuery>,
) -> ApiResult<axum::Json<Report>> {
    caller.require(Scope::ClientsRead)?;
    let missing = || ApiError::not_found(format!("No report `{id}`."));
    let uuid = Uuid::parse_str(&id).map_err(|_| missing())?;
    let mut conn = state.pool.acquire().await?;
    let row = store::reports::find(&mut conn, uuid).await?.ok_or_else(missing)?;
    Ok(axum::Json(row.into()))
}
