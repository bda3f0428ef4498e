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
    domain::{report::ReportLinks, scope::Scope},
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
    "created_at": "2026-06-08T08:00:03.000Z",
    "pdf_url": "https://switchboard.example.com/v1/reports/0190f3a2-7c1e-7000-8000-000000000001?format=pdf",
    "html_url": "https://switchboard.example.com/v1/reports/0190f3a2-7c1e-7000-8000-000000000001?format=html",
    "drive_file_id": "1Zx9bQ3kT0pLmN4oR7sU2vW5yA8cE6gI",
    "drive_url": "https://drive.google.com/file/d/1Zx9bQ3kT0pLmN4oR7sU2vW5yA8cE6gI/view?usp=drivesdk",
    "drive_skipped": null
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
    /// This report as a PDF (`?format=pdf`), an absolute URL under `PUBLIC_BASE_URL`; left out when
    /// that is not set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pdf_url: Option<String>,
    /// This report as an HTML page (`?format=html`); left out without `PUBLIC_BASE_URL`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html_url: Option<String>,
    /// The PDF's file in the client's Drive (`Reports/`), once uploaded.
    pub drive_file_id: Option<String>,
    /// The Drive link people open; `null` until uploaded or when skipped.
    pub drive_url: Option<String>,
    /// Why the PDF was not uploaded (e.g. the client has no Drive folder).
    pub drive_skipped: Option<String>,
}

impl Report {
    fn new(r: ReportRow, links: &ReportLinks) -> Self {
        Report {
            pdf_url: links.pdf(r.id),
            html_url: links.html(r.id),
            drive_file_id: r.drive_file_id,
            drive_url: r.drive_url,
            drive_skipped: r.drive_skipped,
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
    let reports = page.data.into_iter().map(|r| Report::new(r, &state.report_links)).collect();
    Ok(axum::Json(Page::new(reports, page.next_cursor)))
}

/// How the spec describes a file answer (a PDF or a PNG): a string of bytes, not a JSON array.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct FileBytes(#[allow(dead_code)] Vec<u8>);

/// The media types `GET /v1/reports/{id}` serves, the default first.
pub const MEDIA_TYPES: [&str; 3] = ["application/json", "text/html", "application/pdf"];

/// A rendered form chosen by the URL alone (a link in an event, an email or a chat has no `Accept`).
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    Json,
    Html,
    Pdf,
}

impl ReportFormat {
    fn media_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Html => "text/html",
            Self::Pdf => "application/pdf",
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GetReportQuery {
    /// `json`, `html` or `pdf`: the form to answer with, whatever `Accept` says (so a URL alone
    /// selects it, as in `report.ready`'s `pdf_url`/`html_url`).
    format: Option<ReportFormat>,
}

/// Get a report
///
/// Content negotiation by `Accept`: `application/json` (the default: the stored report),
/// `text/html` (a self-contained printable page with inline SVG charts) or `application/pdf`
/// (A4, the same content). `?format=json|html|pdf` picks the form in the URL itself and wins over
/// `Accept`. Charts as PNG: `GET /v1/reports/{id}/charts/{chart}`.
#[utoipa::path(
    get, path = "/v1/reports/{id}", operation_id = "getReport", tag = TAG,
    params(
        ("id" = Uuid, Path, description = "Report id"),
        GetReportQuery,
        ("Accept" = Option<String>, Header, description = "`application/json` (default), `text/html` or `application/pdf`; ignored when `format` is given"),
    ),
    responses(
        (status = 200, description = "The report, as JSON, an HTML page or a PDF", content(
            (Report = "application/json"),
            (String = "text/html"),
            (FileBytes = "application/pdf"),
        )),
        (status = 400, description = "`format` is not one of `json`, `html`, `pdf`", body = Problem),
        (status = 403, description = "Missing scope `clients:read`", body = Problem),
        (status = 404, description = "No such report", body = Problem),
        (status = 406, description = "`Accept` names none of `application/json`, `text/html`, `application/pdf`", body = Problem, extensions(("x-problem-codes" = json!(["not_acceptable"])))),
    )
)]
async fn get_report(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<GetReportQuery>,
) -> ApiResult<Response> {
    caller.require(Scope::ClientsRead)?;
    let accept = headers.get(header::ACCEPT).map(|v| v.to_str().unwrap_or("?"));
    let media = match q.format {
        Some(format) => format.media_type(),
        None => negotiate::pick(accept, &MEDIA_TYPES).ok_or_else(|| {
            let message = format!("must accept one of {}", MEDIA_TYPES.join(", "));
            ApiError::new(StatusCode::NOT_ACCEPTABLE, "not_acceptable", format!("Accept: {message}."))
                .with_field("Accept", message)
        })?,
    };
    let missing = || ApiError::not_found(format!("No report `{id}`."));
    let uuid = Uuid::parse_str(&id).map_err(|_| missing())?;
    let mut conn = state.pool.acquire().await?;
    let vary = [(header::VARY, HeaderValue::from_static("Accept"))];
    if media == "application/json" {
        let row = store::reports::find(&mut conn, uuid).await?.ok_or_else(missing)?;
        return Ok((vary, axum::Json(Report::new(row, &state.report_links))).into_response());
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
