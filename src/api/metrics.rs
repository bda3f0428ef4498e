//! Ad metrics of a client: sync from the platforms, read back, and budget pacing.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    auth::Caller,
    clients,
    error::{ApiError, ApiResult, PlatformProblem, Problem},
    extract::{ApiJson, ApiQuery, NoQuery},
};
use crate::{
    api::AppState,
    domain::{pacing as figures, scope::Scope},
    operations::{
        metrics::{self, AdAccount, AdPlatform, linked_ad_accounts},
        pacing::{self, PacingError, PacingView},
    },
    store,
};

pub const TAG: &str = "metrics";
/// Longest range one sync or read may cover.
pub const MAX_DAYS: i64 = 366;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(sync_metrics)).routes(routes!(get_metrics)).routes(routes!(get_pacing))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"from": "2026-06-01", "to": "2026-06-07", "platforms": ["meta", "google_ads"]}))]
pub struct SyncRequest {
    #[schema(value_type = String, example = "2026-06-01")]
    pub from: NaiveDate,
    #[schema(value_type = String, example = "2026-06-07")]
    pub to: NaiveDate,
    /// Only these ad platforms (default: every linked one).
    #[serde(default)]
    pub platforms: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncStatus {
    Ok,
    /// Some platforms failed; the others' data is stored.
    Partial,
    Failed,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlatformSync {
    #[schema(example = "meta")]
    pub platform: String,
    #[schema(example = "act_1234567890")]
    pub account: String,
    /// Days written (inserted or replaced).
    pub days: u64,
    /// All clicks over the days pulled (Meta `clicks`: likes, expands, profile taps included).
    pub clicks: i64,
    /// Link clicks over the days pulled (Meta `inline_link_clicks`; Google Ads: its clicks).
    pub link_clicks: i64,
    pub error: Option<PlatformProblemWithMessage>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlatformProblemWithMessage {
    pub message: String,
    #[serde(flatten)]
    pub problem: PlatformProblem,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SyncResult {
    pub client_id: uuid::Uuid,
    #[schema(value_type = String)]
    pub from: NaiveDate,
    #[schema(value_type = String)]
    pub to: NaiveDate,
    pub status: SyncStatus,
    pub platforms: Vec<PlatformSync>,
}

fn check_range(from: NaiveDate, to: NaiveDate) -> Result<(), ApiError> {
    if from > to {
        return Err(ApiError::invalid(vec![]).with_field("to", "must not be before `from`"));
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(ApiError::invalid(vec![]).with_field("to", format!("the range may cover at most {MAX_DAYS} days")));
    }
    Ok(())
}

/// Sync ad metrics
///
/// Pulls daily metrics from every linked ad platform (or the named ones), normalises
/// them (spend, impressions, clicks, conversions, conversion value, currency) and
/// stores them, replacing days already stored. Platforms are called concurrently and
/// one failing does not lose the others' data: each platform's outcome is reported.
#[utoipa::path(
    post, path = "/v1/clients/{client}/metrics/sync", operation_id = "syncClientMetrics", tag = TAG,
    params(
        ("client" = String, Path, description = "Client id (UUID) or slug"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first response instead of syncing again."),
    ),
    request_body(content = SyncRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Per-platform outcome", body = SyncResult),
        (status = 400, description = "Malformed JSON", body = Problem),
        (status = 403, description = "Missing scope `platforms:act`", body = Problem),
        (status = 404, description = "No such client", body = Problem),
        (status = 415, description = "Not JSON", body = Problem),
        (status = 422, description = "Bad dates, unknown or unlinked platform", body = Problem),
    )
)]
async fn sync_metrics(
    State(state): State<AppState>,
    caller: Caller,
    Path(client): Path<String>,
    _: ApiQuery<NoQuery>,
    ApiJson(req): ApiJson<SyncRequest>,
) -> ApiResult<axum::Json<SyncResult>> {
    caller.require(Scope::PlatformsAct)?;
    check_range(req.from, req.to)?;
    let mut conn = state.pool.acquire().await?;
    let client = clients::load(&mut conn, &client, false).await?;
    drop(conn);
    let linked = linked_ad_accounts(&client);
    let wanted: Vec<AdAccount> = match &req.platforms {
        None => linked,
        Some(names) => {
            let mut picked = vec![];
            for (i, name) in names.iter().enumerate() {
                if names[..i].contains(name) {
                    return Err(ApiError::invalid(vec![]).with_field(format!("platforms[{i}]"), "is listed twice"));
                }
                let Some(platform) = AdPlatform::from_key(name) else {
                    let why = "is not an ad platform with metrics (meta, google_ads)";
                    return Err(ApiError::invalid(vec![]).with_field(format!("platforms[{i}]"), why));
                };
                match linked.iter().find(|a| a.platform == platform) {
                    Some(found) => picked.push(found.clone()),
                    None => {
                        let why = "is not linked to this client (set its account under `accounts`)";
                        return Err(ApiError::invalid(vec![]).with_field(format!("platforms[{i}]"), why));
                    }
                }
            }
            picked
        }
    };
    if wanted.is_empty() {
        return Err(ApiError::invalid(vec![]).with_field(
            "platforms",
            "the client has no ad account linked (set accounts.meta or accounts.google_ads)",
        ));
    }

    let results = metrics::pull(&state.platforms, client.id, &wanted, req.from, req.to).await;
    let mut outcomes = vec![];
    let mut tx = state.pool.begin().await?;
    for (account, result) in wanted.iter().zip(results) {
        let (platform, account_id) = (account.platform.key().to_string(), account.account.clone());
        let outcome = match result {
            Ok(days) => {
                let written = metrics::store_days(&mut tx, client.id, account, &days).await?;
                let clicks = days.iter().map(|d| d.clicks).sum();
                let link_clicks = days.iter().map(|d| d.link_clicks).sum();
                PlatformSync { platform, account: account_id, days: written, clicks, link_clicks, error: None }
            }
            Err(e) => {
                let message = e.to_string();
                let problem = *ApiError::from(e).platform.expect("platform problem");
                let error = Some(PlatformProblemWithMessage { message, problem });
                PlatformSync { platform, account: account_id, days: 0, clicks: 0, link_clicks: 0, error }
            }
        };
        outcomes.push(outcome);
    }
    let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
    let status = match failed {
        0 => SyncStatus::Ok,
        n if n == outcomes.len() => SyncStatus::Failed,
        _ => SyncStatus::Partial,
    };
    let result = SyncResult { client_id: client.id, from: req.from, to: req.to, status, platforms: outcomes };
    store::audit::record(
        &mut tx,
        &caller.actor(),
        "metrics.sync",
        "client",
        &client.id.to_string(),
        None::<&()>,
        Some(&result),
    )
    .await?;
    tx.commit().await?;
    Ok(axum::Json(result))
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
    #[param(value_type = String, example = "2026-06-01")]
    from: Option<NaiveDate>,
    /// Last day, inclusive (YYYY-MM-DD).
    #[param(value_type = String, example = "2026-06-30")]
    to: Option<NaiveDate>,
    /// Only this platform.
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
    #[schema(value_type = Option<String>, example = "2026-06-01")]
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
    #[schema(value_type = String)]
    pub from: NaiveDate,
    #[schema(value_type = String)]
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
    let mut conn = state.pool.acquire().await?;
    let client = clients::load(&mut conn, &client, false).await?;
    let rows = store::metrics::days(&mut conn, client.id, from, to, q.platform.as_deref()).await?;
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
