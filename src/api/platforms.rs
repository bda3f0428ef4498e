//! `/v1/platforms`: what each platform is, whether it is configured, its limits and
//! last error; and the platform actions a Make scenario can call directly.

use axum::extract::{Path, State};
use chrono::{NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    auth::Caller,
    error::{ApiError, ApiResult, Problem},
    extract::{ApiQuery, NoQuery},
    platform_actions,
};
use crate::{
    api::AppState,
    platforms::{self, Mode, http::HttpStatus},
};

pub const TAG: &str = "platforms";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_platforms)).routes(routes!(get_platform)).merge(platform_actions::router())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlatformView {
    #[schema(value_type = crate::platforms::PlatformKey, example = "meta")]
    pub key: String,
    #[schema(example = "Meta Ads")]
    pub title: String,
    pub mode: Mode,
    /// Whether every setting a live connection needs is present (always true in sandbox).
    pub configured: bool,
    /// Names of the missing settings — never their values.
    #[schema(example = json!(["META_ACCESS_TOKEN"]))]
    pub missing_settings: Vec<String>,
    /// Whether calls can be made: configured, and nothing in `not_ready`.
    pub ready: bool,
    /// Why a configured platform still cannot work (e.g. its API version is sunset, or Drive
    /// has neither a Shared Drive nor a user to act as); empty when ready.
    #[schema(example = json!([]))]
    pub not_ready: Vec<String>,
    /// What will soon stop it working (e.g. its API version sunsets within 60 days).
    #[schema(example = json!(["Google Ads API v23 sunsets on 2027-01-28 (estimated: release + 12 months), in 58 days; move to v26"]))]
    pub warnings: Vec<String>,
    /// The vendor API version called (`v26`, `v25.0`, ...), where the vendor versions its API.
    #[schema(example = "v26")]
    pub api_version: Option<String>,
    /// The end of that version, where the vendor publishes one: Google Ads' sunset date (requests
    /// fail from it; dates not yet published are estimated at release + 12 months), Meta Graph's
    /// "available until".
    #[schema(example = "2027-10-14")]
    pub sunset_on: Option<NaiveDate>,
    /// Reports ad metrics (synced with `POST /v1/clients/{client}/metrics/sync`).
    pub ads: bool,
    /// The limiter's settings and current state, and the last error seen.
    pub limits: HttpStatus,
}

fn view(state: &AppState, info: &platforms::PlatformInfo, http: &platforms::http::PlatformHttp) -> PlatformView {
    let missing: Vec<String> = state.platforms.missing(info.key).into_iter().map(String::from).collect();
    let readiness = state.platforms.settings.readiness(info.key, Utc::now().date_naive());
    PlatformView {
        key: info.key.to_string(),
        title: info.title.to_string(),
        mode: state.platforms.mode,
        configured: missing.is_empty(),
        ready: missing.is_empty() && readiness.not_ready.is_empty(),
        not_ready: readiness.not_ready,
        warnings: readiness.warnings,
        api_version: readiness.api_version,
        sunset_on: readiness.sunset_on,
        missing_settings: missing,
        ads: info.ads,
        limits: http.status(),
    }
}

/// List platforms
///
/// Every platform Switchboard talks to, in live or sandbox mode, with what is missing
/// to configure it, whether it is ready, its API version and that version's sunset, its
/// rate limits and its last error. Needs any valid token.
#[utoipa::path(
    get, path = "/v1/platforms", operation_id = "listPlatforms", tag = TAG,
    responses(
        (status = 200, description = "Every platform", body = [PlatformView]),
        (status = 400, description = "Unknown query parameter", body = Problem),
    )
)]
async fn list_platforms(
    State(state): State<AppState>,
    _caller: Caller,
    _: ApiQuery<NoQuery>,
) -> axum::Json<Vec<PlatformView>> {
    axum::Json(state.platforms.each().into_iter().map(|(info, http)| view(&state, info, http)).collect())
}

/// Get a platform
///
/// One platform's mode, configuration, readiness, API version and limiter state
/// (as `GET /v1/platforms` lists them).
#[utoipa::path(
    get, path = "/v1/platforms/{platform}", operation_id = "getPlatform", tag = TAG,
    params(("platform" = crate::platforms::PlatformKey, Path, description = "Platform key")),
    responses(
        (status = 200, description = "The platform", body = PlatformView),
        (status = 404, description = "No such platform", body = Problem),
    )
)]
async fn get_platform(
    State(state): State<AppState>,
    _caller: Caller,
    Path(platform): Path<String>,
    _: ApiQuery<NoQuery>,
) -> ApiResult<axum::Json<PlatformView>> {
    let (info, http) = state
        .platforms
        .each()
        .into_iter()
        .find(|(p, _)| p.key == platform || p.key.replace('_', "-") == platform)
        .ok_or_else(|| ApiError::not_found(format!("No platform `{platform}`; see GET /v1/platforms.")))?;
    Ok(axum::Json(view(&state, info, http)))
}
