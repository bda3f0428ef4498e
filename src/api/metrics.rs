//! Ad metrics of a client: sync from the platforms, read back, and budget pacing.

use std::{collections::BTreeMap, time::Duration};

use axum::{
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    auth::Caller,
    clients,
    error::{ApiError, ApiResult, Problem},
    extract::{self, ApiJson, ApiQuery, NoQuery},
    runs,
};
use crate::{
    api::AppState,
    domain::{pacing as figures, scope::Scope},
    operations::{
        metrics, metrics_sync,
        pacing::{self, PacingError, PacingView},
    },
    store::{self, run_view::RunView, runs::RunTrigger},
    workflows,
};

pub const TAG: &str = "metrics";
pub use crate::operations::metrics_sync::{MAX_DAYS, PlatformSync, SyncResult, SyncStatus};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(sync_metrics)).routes(routes!(get_metrics)).routes(routes!(get_pacing))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"from": "2026-06-01", "to": "2026-06-07", "platforms": ["meta", "google_ads"]}))]
pub struct SyncRequest {
    #[schema(value_type = NaiveDate, example = "2026-06-01")]
    pub from: NaiveDate,
    #[schema(value_type = NaiveDate, example = "2026-06-07")]
    pub to: NaiveDate,
    /// Only these ad platforms (default: every linked one).
    #[serde(default)]
    #[schema(value_type = Option<Vec<crate::operations::metrics::AdPlatform>>)]
    pub platforms: Option<Vec<String>>,
}

fn check_range(from: NaiveDate, to: NaiveDate) -> Result<(), ApiError> {
    metrics_sync::check_range(from, to).map_err(|e| ApiError::invalid(vec![e]))
}

/// Whether the request says `Prefer: respond-async` (RFC 7240 §4.1), among any other preferences.
fn prefers_async(headers: &HeaderMap) -> bool {
    headers.get_all("prefer").iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|p| {
        let name = p.split(';').next().unwrap_or_default().trim();
        name.eq_ignore_ascii_case("respond-async")
    })
}

/// How long an inline sync waits for the platforms before it hands the work to a run:
/// long enough for a normal sync, short enough that storing and answering still fit in
/// the request timeout (30 s → 25 s), and so in Make's 40 s module timeout.
fn inline_budget(request_timeout_secs: u64) -> Duration {
    Duration::from_secs(request_timeout_secs.saturating_sub(5).max(1))
}

/// Sync ad metrics
///
/// Pulls daily metrics from every linked ad platform (or the named ones), normalises
/// them (spend, impressions, clicks, conversions, conversion value, currency) and
/// stores them, replacing days already stored. Platforms are called concurrently and
/// one failing does not lose the others' data: each platform's outcome is reported.
///
/// A platform may be retried for minutes, longer than a request (or Make's 40 s module
/// timeout) lasts, so the answer never waits for it: with `Prefer: respond-async` the
/// sync runs on a worker at once and the answer is 202 with the run of workflow
/// `metrics-sync` (`Location` is the run; its task's `output` is the outcome below).
/// Without it the sync runs inline and answers 200, unless the platforms have not
/// answered within the request timeout less 5 s (25 s by default): then it is handed
/// to a run the same way and the answer is 202.
#[utoipa::path(
    post, path = "/v1/clients/{client}/metrics/sync", operation_id = "syncClientMetrics", tag = TAG,
    params(
        ("client" = String, Path, description = "Client id (UUID) or slug"),
        ("Prefer" = Option<String>, Header, description = "`respond-async`: answer 202 with a run at once instead of syncing inline", example = "respond-async"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first response instead of syncing again."),
    ),
    request_body(content = SyncRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Synced inline: the per-platform outcome", body = SyncResult),
        (status = 202, description = "Running asynchronously (asked for, or the platforms were slow): the run; its task's `output` will be the per-platform outcome", body = RunView,
            headers(("Location" = String, description = "URL of the run"), ("Preference-Applied" = String, description = "`respond-async` when asked for"))),
        (status = 400, description = "Malformed JSON", body = Problem),
        (status = 403, description = "Missing scope `platforms:act`", body = Problem),
        (status = 404, description = "No such client", body = Problem),
        (status = 409, description = "`client_deleted`: the client was deleted while the sync ran", body = Problem, extensions(("x-problem-codes" = json!(["client_deleted"])))),
        (status = 415, description = "Not JSON", body = Problem),
        (status = 422, description = "Bad dates, unknown or unlinked platform", body = Problem),
    )
)]
async fn sync_metrics(
    State(state): State<AppState>,
    caller: Caller,
    Path(client): Path<String>,
    headers: HeaderMap,
    _: ApiQuery<NoQuery>,
    ApiJson(req): ApiJson<SyncRequest>,
) -> ApiResult<Response> {
    caller.require(Scope::PlatformsAct)?;
    check_range(req.from, req.to)?;
    let mut conn = state.pool.acquire().await?;
    let client = clients::load(&mut conn, &client, false).await?;
    drop(conn);
    let wanted = metrics_sync::pick(&client, req.platforms.as_deref()).map_err(|e| ApiError::invalid(vec![e]))?;

    let asked = prefers_async(&headers);
    if !asked {
        let pull = metrics::pull(&state.platforms, client.id, &wanted, req.from, req.to);
        // Only platform reads happen before the budget ends; dropping them stores nothing.
        if let Ok(pulled) = tokio::time::timeout(inline_budget(state.config.request_timeout_secs), pull).await {
            let actor = caller.actor();
            let result = metrics_sync::store(&state.pool, &actor, client.id, &wanted, pulled, req.from, req.to).await?;
            return Ok(axum::Json(result).into_response());
        }
        tracing::info!(client = %client.id, "metrics sync: the platforms were slow, continuing in a run");
    }
    let params = serde_json::json!({"from": req.from, "to": req.to, "platforms": req.platforms});
    let workflow = state
        .workflows
        .get(workflows::metrics_sync::KEY)
        .cloned()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("the metrics-sync workflow is not registered")))?;
    let params = workflow.check_params(&params).map_err(ApiError::invalid)?;
    let start = workflows::runs::Start {
        workflow: workflow.as_ref(),
        params: &params,
        trigger: RunTrigger::Api,
        dry_run: false,
        callback_url: None,
        schedule_id: None,
        client_ids: Some(&[client.id]),
    };
    let mut tx = state.pool.begin().await?;
    let run = workflows::runs::start(&mut tx, &caller.actor(), &start).await?;
    tx.commit().await?;
    let view = runs::run_view(&state, run.id).await?;
    let mut response = (StatusCode::ACCEPTED, axum::Json(&view)).into_response();
    if let Ok(location) = HeaderValue::from_str(&view.links.self_) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if asked {
        response.headers_mut().insert("preference-applied", HeaderValue::from_static("respond-async"));
    }
    Ok(response)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    #[default]
    Day,
    Total,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MetricsQuery {
    /// First day (YYYY-MM-DD).
    #[param(value_type = NaiveDate, example = "2026-06-01")]
    from: Option<NaiveDate>,
    /// Last day, inclusive (YYYY-MM-DD).
    #[param(value_type = NaiveDate, example = "2026-06-30")]
    to: Option<NaiveDate>,
    /// Only this platform.
    #[param(value_type = Option<crate::operations::metrics::AdPlatform>)]
    platform: Option<String>,
    /// `day` (a row per platform and day, the default) or `total` (a row per platform and one for all).
    granularity: Option<Granularity>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MetricsRowView {
    /// A platform key, or `total` when granularity is `total`.
    #[schema(example = "meta")]
    pub platform: String,
    /// The day; `null` for totals.
    #[schema(value_type = Option<NaiveDate>, example = "2026-06-01")]
    pub date: Option<NaiveDate>,
    pub spend: f64,
    pub impressions: i64,
    /// All clicks (Meta counts likes, expands and profile taps too).
    pub clicks: i64,
    /// Clicks on the ad's links: Meta `inline_link_clicks`, Google Ads clicks (all of which
    /// are). `null` for Meta days synced before link clicks were stored (sync again).
    pub link_clicks: Option<i64>,
    /// Link click-through rate in percent: link clicks / impressions × 100 (Meta's "CTR (link
    /// click-through rate)"); `null` without impressions or link clicks known.
    pub ctr: Option<f64>,
    /// Cost per link click; `null` without link clicks.
    pub cpc: Option<f64>,
    pub conversions: f64,
    pub conversion_value: f64,
    /// Cost per conversion; `null` without conversions.
    pub cpa: Option<f64>,
    /// Conversion value / spend; `null` without spend.
    pub roas: Option<f64>,
    #[schema(example = "USD")]
    pub currency: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MetricsView {
    pub client_id: uuid::Uuid,
    #[schema(value_type = NaiveDate)]
    pub from: NaiveDate,
    #[schema(value_type = NaiveDate)]
    pub to: NaiveDate,
    pub data: Vec<MetricsRowView>,
}

fn view(platform: String, date: Option<NaiveDate>, rows: &[&store::metrics::MetricsRow]) -> MetricsRowView {
    let spend: f64 = rows.iter().map(|r| r.spend).sum();
    let conversions: f64 = rows.iter().map(|r| r.conversions).sum();
    let value: f64 = rows.iter().map(|r| r.conversion_value).sum();
    let impressions: i64 = rows.iter().map(|r| r.impressions).sum();
    // Unknown on any day makes the sum unknown: a partial count would understate CTR.
    let link_clicks: Option<i64> = rows.iter().map(|r| r.link_clicks).sum();
    MetricsRowView {
        platform,
        date,
        spend: figures::round2(spend),
        impressions,
        clicks: rows.iter().map(|r| r.clicks).sum(),
        link_clicks,
        ctr: link_clicks.filter(|_| impressions > 0).map(|l| figures::round2(l as f64 * 100.0 / impressions as f64)),
        cpc: link_clicks.filter(|l| *l > 0).map(|l| figures::round2(spend / l as f64)),
        conversions,
        conversion_value: figures::round2(value),
        cpa: (conversions > 0.0).then(|| figures::round2(spend / conversions)),
        roas: (spend > 0.0).then(|| (value / spend * 100.0).round() / 100.0),
        currency: rows.first().map(|r| r.currency.clone()).unwrap_or_default(),
    }
}

/// Read stored metrics
///
/// What the last syncs stored, per platform and day, or totals.
#[utoipa::path(
    get, path = "/v1/clients/{client}/metrics", operation_id = "getClientMetrics", tag = TAG,
    params(("client" = String, Path, description = "Client id (UUID) or slug"), MetricsQuery),
    responses(
        (status = 200, description = "Stored metrics", body = MetricsView),
        (status = 400, description = "Missing or bad from/to/granularity", body = Problem),
        (status = 403, description = "Missing scope `clients:read`", body = Problem),
        (status = 404, description = "No such client", body = Problem),
    )
)]
async fn get_metrics(
    State(state): State<AppState>,
    caller: Caller,
    Path(client): Path<String>,
    ApiQuery(q): ApiQuery<MetricsQuery>,
) -> ApiResult<axum::Json<MetricsView>> {
    caller.require(Scope::ClientsRead)?;
    let required = |field: &str| {
        ApiError::bad_request("invalid_query", format!("{field}: is required (YYYY-MM-DD)"))
            .with_field(field, "is required (YYYY-MM-DD)")
    };
    let from = q.from.ok_or_else(|| required("from"))?;
    let to = q.to.ok_or_else(|| required("to"))?;
    check_range(from, to).map_err(|e| ApiError {
        status: axum::http::StatusCode::BAD_REQUEST,
        code: "invalid_query",
        ..e
    })?;
    let ad_platforms: Vec<&str> = crate::operations::metrics::AdPlatform::keys().collect();
    let platform = extract::one_of("platform", q.platform, &ad_platforms)?;
    let mut conn = state.pool.acquire().await?;
    let client = clients::load(&mut conn, &client, false).await?;
    let rows = store::metrics::days(&mut conn, client.id, from, to, platform.as_deref()).await?;
    let data = match q.granularity.unwrap_or_default() {
        Granularity::Day => rows.iter().map(|r| view(r.platform.clone(), Some(r.date), &[r])).collect(),
        Granularity::Total => {
            let mut by_platform: BTreeMap<&str, Vec<&store::metrics::MetricsRow>> = BTreeMap::new();
            for r in &rows {
                by_platform.entry(r.platform.as_str()).or_default().push(r);
            }
            let mut data: Vec<MetricsRowView> =
                by_platform.iter().map(|(p, rs)| view(p.to_string(), None, rs)).collect();
            let all: Vec<&store::metrics::MetricsRow> = rows.iter().collect();
            data.push(view("total".into(), None, &all));
            data
        }
    };
    Ok(axum::Json(MetricsView { client_id: client.id, from, to, data }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PacingQuery {
    /// `YYYY-MM`; defaults to the current month in the client's time zone.
    #[param(example = "2026-06")]
    month: Option<String>,
}

/// Budget pacing
///
/// Month-to-date spend per platform against the monthly budget: expected spend to
/// date (even spread), projected month end at the current daily rate, and status
/// `on_track` (projection within ±10 % of budget), `under` or `over`.
#[utoipa::path(
    get, path = "/v1/clients/{client}/pacing", operation_id = "getClientPacing", tag = TAG,
    params(("client" = String, Path, description = "Client id (UUID) or slug"), PacingQuery),
    responses(
        (status = 200, description = "Pacing per platform and in total", body = PacingView),
        (status = 400, description = "Bad month (YYYY-MM, not in the future)", body = Problem),
        (status = 403, description = "Missing scope `clients:read`", body = Problem),
        (status = 404, description = "No such client", body = Problem),
    )
)]
async fn get_pacing(
    State(state): State<AppState>,
    caller: Caller,
    Path(client): Path<String>,
    ApiQuery(q): ApiQuery<PacingQuery>,
) -> ApiResult<axum::Json<PacingView>> {
    caller.require(Scope::ClientsRead)?;
    let mut conn = state.pool.acquire().await?;
    let client = clients::load(&mut conn, &client, false).await?;
    match pacing::month(&mut conn, &client, q.month.as_deref()).await {
        Ok(view) => Ok(axum::Json(view)),
        Err(PacingError::BadMonth) => {
            let why = "must be YYYY-MM, not in the future";
            Err(ApiError::bad_request("invalid_query", format!("month: {why}")).with_field("month", why))
        }
        Err(PacingError::Database(e)) => Err(e.into()),
    }
}
