//! Ad metrics of a client: sync from the platforms, read back, and budget pacing.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use chrono::{Datelike, NaiveDate, Utc};
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
    app::AppState,
    domain::{
        client::Client,
        metrics::DailyMetrics,
        pacing::{self, Pacing},
        scope::Scope,
    },
    platforms::{self, PlatformError},
    store,
};

pub const TAG: &str = "metrics";
/// Longest range one sync or read may cover.
pub const MAX_DAYS: i64 = 366;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(sync_metrics)).routes(routes!(get_metrics)).routes(routes!(get_pacing))
}

/// Ad platforms with a metrics connector, and the client account field each reads.
pub fn linked_ad_accounts(client: &Client) -> Vec<(&'static str, String)> {
    let mut linked = vec![];
    if let Some(id) = &client.accounts.meta {
        linked.push((platforms::meta::INFO.key, id.clone()));
    }
    if let Some(id) = &client.accounts.google_ads {
        linked.push((platforms::google_ads::INFO.key, id.clone()));
    }
    linked
}

/// Pulls one platform's days for one account.
pub async fn fetch(
    state: &AppState,
    platform: &str,
    account: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<DailyMetrics>, PlatformError> {
    state.platforms.ensure_configured(platform)?;
    match platform {
        "meta" => state.platforms.meta.daily_insights(account, from, to).await,
        "google_ads" => state.platforms.google_ads.daily_metrics(account, from, to).await,
        other => Err(PlatformError::new(
            platforms::meta::INFO.key,
            platforms::ErrorKind::NotConfigured,
            format!("{other} has no metrics connector"),
        )),
    }
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
    let wanted: Vec<(&'static str, String)> = match &req.platforms {
        None => linked,
        Some(names) => {
            let mut picked = vec![];
            for (i, name) in names.iter().enumerate() {
                if names[..i].contains(name) {
                    return Err(ApiError::invalid(vec![]).with_field(format!("platforms[{i}]"), "is listed twice"));
                }
                match linked.iter().find(|(key, _)| key == name) {
                    Some(found) => picked.push(found.clone()),
                    None => {
                        let why = if platforms::info(name).is_some_and(|p| p.ads) {
                            "is not linked to this client (set its account under `accounts`)"
                        } else {
                            "is not an ad platform with metrics (meta, google_ads)"
                        };
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

    let fetches = wanted.iter().map(|(platform, account)| fetch(&state, platform, account, req.from, req.to));
    let results = crate::costs::for_client(client.id, futures::future::join_all(fetches)).await;

    let mut outcomes = vec![];
    let mut tx = state.pool.begin().await?;
    for ((platform, account), result) in wanted.iter().zip(results) {
        let outcome = match result {
            Ok(days) => {
                let written = store::metrics::upsert_days(&mut tx, client.id, platform, account, &days).await?;
                PlatformSync { platform: platform.to_string(), account: account.clone(), days: written, error: None }
            }
            Err(e) => {
                let message = e.to_string();
                let problem = *ApiError::from(e).platform.expect("platform problem");
                PlatformSync {
                    platform: platform.to_string(),
                    account: account.clone(),
                    days: 0,
                    error: Some(PlatformProblemWithMessage { message, problem }),
                }
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
    pub clicks: i64,
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
    MetricsRowView {
        platform,
        date,
        spend: pacing::round2(spend),
        impressions: rows.iter().map(|r| r.impressions).sum(),
        clicks: rows.iter().map(|r| r.clicks).sum(),
        conversions,
        conversion_value: pacing::round2(value),
        cpa: (conversions > 0.0).then(|| pacing::round2(spend / conversions)),
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

#[derive(Debug, Serialize, ToSchema)]
pub struct PacingView {
    pub client_id: uuid::Uuid,
    #[schema(example = "2026-06")]
    pub month: String,
    /// Spend counted through this day (today in the client's time zone, or the month's last day).
    #[schema(value_type = String, example = "2026-06-15")]
    pub as_of: NaiveDate,
    #[schema(example = "USD")]
    pub currency: String,
    /// One entry per platform with a budget or spend, then `total`.
    pub platforms: Vec<Pacing>,
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
    drop(conn);
    pacing_for(&state, &client, q.month.as_deref()).await.map(axum::Json)
}

/// Pacing of `client` for `month` (`YYYY-MM`, default the current month in the
/// client's time zone): also what the WhatsApp `status` command reports.
pub async fn pacing_for(state: &AppState, client: &Client, month: Option<&str>) -> ApiResult<PacingView> {
    let mut conn = state.pool.acquire().await?;
    let tz: chrono_tz::Tz = client.timezone.parse().unwrap_or(chrono_tz::UTC);
    let today = Utc::now().with_timezone(&tz).date_naive();
    let bad_month = || {
        ApiError::bad_request("invalid_query", "month: must be YYYY-MM, not in the future")
            .with_field("month", "must be YYYY-MM, not in the future")
    };
    let first = match month {
        Some(m) => NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d").map_err(|_| bad_month())?,
        None => today.with_day(1).expect("day 1"),
    };
    if first > today {
        return Err(bad_month());
    }
    let last = first.with_day(pacing::days_in_month(first)).expect("last day");
    let as_of = last.min(today);
    let rows = store::metrics::days(&mut conn, client.id, first, as_of, None).await?;
    let mut spend: BTreeMap<String, f64> = client.budgets.keys().map(|k| (k.clone(), 0.0)).collect();
    for r in &rows {
        *spend.entry(r.platform.clone()).or_default() += r.spend;
    }
    let mut out: Vec<Pacing> = spend
        .iter()
        .map(|(platform, s)| pacing::pace(platform, client.budgets.get(platform).copied(), *s, as_of))
        .collect();
    let total_budget: f64 = client.budgets.values().sum();
    let total_spend: f64 = spend.values().sum();
    out.push(pacing::pace("total", (total_budget > 0.0).then_some(total_budget), total_spend, as_of));
    Ok(PacingView {
        client_id: client.id,
        month: first.format("%Y-%m").to_string(),
        as_of,
        currency: client.currency.clone(),
        platforms: out,
    })
}
