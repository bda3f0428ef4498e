//! `/v1/reports`: reports the workflows wrote (the weekly report), with the
//! figures they were built from and the model's token usage.

use axum::{
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
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
    negotiate,
    pagination::{self, Page},
};
use crate::{
    api::AppState,
    domain::scope::Scope,
    operations, render,
    store::{
        self,
        reports::{ReportFilter, ReportRow},
    },
};

pub const TAG: &str = "reports";
const CURSOR: &str = "reports";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_reports)).routes(routes!(get_report)).routes(routes!(get_report_chart))
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
    #[schema(value_type = NaiveDate, example = "2026-06-01")]
    pub period_start: NaiveDate,
    #[schema(value_type = NaiveDate, example = "2026-06-07")]
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
    #[param(value_type = Option<NaiveDate>, example = "2026-06-01")]
    from: Option<NaiveDate>,
    /// Only reports whose period starts on or before this day (YYYY-MM-DD).
    #[param(value_type = Option<NaiveDate>, example = "2026-06-30")]
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

/// How the spec describes a file answer (a PDF or a PNG): a string of bytes, not a JSON array.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct FileBytes(#[allow(dead_code)] Vec<u8>);

/// The media types `GET /v1/reports/{id}` serves, the default first.
pub const MEDIA_TYPES: [&str; 3] = ["application/json", "text/html", "application/pdf"];

/// Get a report
///
/// Content negotiation by `Accept`: `application/json` (the default: the stored report),
/// `text/html` (a self-contained printable page with inline SVG charts) or `application/pdf`
/// (A4, the same content). Charts as PNG: `GET /v1/reports/{id}/charts/{chart}`.
#[utoipa::path(
    get, path = "/v1/reports/{id}", operation_id = "getReport", tag = TAG,
    params(
        ("id" = Uuid, Path, description = "Report id"),
        ("Accept" = Option<String>, Header, description = "`application/json` (default), `text/html` or `application/pdf`"),
    ),
    responses(
        (status = 200, description = "The report, as JSON, an HTML page or a PDF", content(
            (Report = "application/json"),
            (String = "text/html"),
            (FileBytes = "application/pdf"),
        )),
        (status = 403, description = "Missing scope `clients:read`", body = Problem),
        (status = 404, description = "No such report", body = Problem),
        (status = 406, description = "`Accept` names none of `application/json`, `text/html`, `application/pdf`", body = Problem),
    )
)]
async fn get_report(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    _: ApiQuery<NoQuery>,
) -> ApiResult<Response> {
    caller.require(Scope::ClientsRead)?;
    let accept = headers.get(header::ACCEPT).map(|v| v.to_str().unwrap_or("?"));
    let media = negotiate::pick(accept, &MEDIA_TYPES).ok_or_else(|| {
        let message = format!("must accept one of {}", MEDIA_TYPES.join(", "));
        ApiError::new(StatusCode::NOT_ACCEPTABLE, "not_acceptable", format!("Accept: {message}."))
            .with_field("Accept", message)
    })?;
    let missing = || ApiError::not_found(format!("No report `{id}`."));
    let uuid = Uuid::parse_str(&id).map_err(|_| missing())?;
    let mut conn = state.pool.acquire().await?;
    let vary = [(header::VARY, HeaderValue::from_static("Accept"))];
    if media == "application/json" {
        let row = store::reports::find(&mut conn, uuid).await?.ok_or_else(missing)?;
        return Ok((vary, axum::Json(Report::from(row))).into_response());
    }
    let (row, data) = operations::reports::load(&mut conn, uuid).await?.ok_or_else(missing)?;
    drop(conn);
    let body = tokio::task::spawn_blocking(move || match media {
        "text/html" => Ok(render::html(&data).into_bytes()),
        _ => render::pdf(&data),
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    let content_type = if media == "text/html" { "text/html; charset=utf-8" } else { "application/pdf" };
    let disposition = format!("inline; filename=\"{}\"", render::file_name(row.period_end, media));
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::VARY, HeaderValue::from_static("Accept")),
        (header::CONTENT_DISPOSITION, HeaderValue::from_str(&disposition).map_err(ApiError::internal)?),
    ];
    Ok((headers, body).into_response())
}

/// Get a report chart as PNG
///
/// One chart of the rendered report, 1600 × 720 px: `daily-spend.png` (spend per platform and
/// day with the budget pace), `conversions-cpa.png` (conversions and cost per result with the
/// target CPA) or `roas.png` (ROAS with the target ROAS).
#[utoipa::path(
    get, path = "/v1/reports/{id}/charts/{chart}", operation_id = "getReportChart", tag = TAG,
    params(
        ("id" = Uuid, Path, description = "Report id"),
        ("chart" = String, Path, description = "`daily-spend.png`, `conversions-cpa.png` or `roas.png`", example = "daily-spend.png"),
    ),
    responses(
        (status = 200, description = "The chart", content((FileBytes = "image/png"))),
        (status = 403, description = "Missing scope `clients:read`", body = Problem),
        (status = 404, description = "No such report, or no such chart (the problem names the chart)", body = Problem),
    )
)]
async fn get_report_chart(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, chart)): Path<(String, String)>,
    _: ApiQuery<NoQuery>,
) -> ApiResult<Response> {
    caller.require(Scope::ClientsRead)?;
    let name = chart.strip_suffix(".png").filter(|n| render::CHART_NAMES.contains(n)).ok_or_else(|| {
        let names: Vec<String> = render::CHART_NAMES.iter().map(|n| format!("`{n}.png`")).collect();
        ApiError::not_found(format!("No chart `{chart}`: a report has {}.", names.join(", ")))
            .with_field("chart", format!("no chart `{chart}`"))
    })?;
    let missing = || ApiError::not_found(format!("No report `{id}`."));
    let uuid = Uuid::parse_str(&id).map_err(|_| missing())?;
    let mut conn = state.pool.acquire().await?;
    let (_, data) = operations::reports::load(&mut conn, uuid).await?.ok_or_else(missing)?;
    drop(conn);
    let name = name.to_string();
    let png = tokio::task::spawn_blocking(move || render::chart_png(&data, &name))
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("a listed chart did not render")))?
        .map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("image/png"))], png).into_response())
}
