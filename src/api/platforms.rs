//! `/v1/platforms`: what each platform is, whether it is configured, its limits and
//! last error; and the platform actions a Make scenario can call directly.

use axum::extract::{Path, State};
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
    #[schema(example = "meta")]
    pub key: String,
    #[schema(example = "Meta Ads")]
    pub title: String,
    pub mode: Mode,
    /// Whether every setting a live connection needs is present (always true in sandbox).
    pub configured: bool,
    /// Names of the missing settings — never their values.
    #[schema(example = json!(["META_ACCESS_TOKEN"]))]
    pub missing_settings: Vec<String>,
    /// Reports ad metrics (synced with `POST /v1/clients/{client}/metrics/sync`).
    pub ads: bool,
    /// The limiter's settings and current state, and the last error seen.
    pub limits: HttpStatus,
}

fn view(state: &AppState, info: &platforms::PlatformInfo, http: &platforms::http::PlatformHttp) -> PlatformView {
    let missing: Vec<String> = state.platforms.missing(info.key).into_iter().map(String::from).collect();
    PlatformView {
        key: info.key.to_string(),
        title: info.title.to_string(),
        mode: state.platforms.mode,
        configured: missing.is_empty(),
        missing_settings: missing,
        ads: info.ads,
        limits: http.status(),
    }
}

/// List platforms
///
/// Every platform Switchboard talks to, in live or sandbox mode, with what is missing
/// to configure it, its rate limits and its last error. Needs any valid token.
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
#[utoipa::path(
    get, path = "/v1/platforms/{platform}", operation_id = "getPlatform", tag = TAG,
    params(("platform" = String, Path, description = "Platform key: meta, google_ads, google_drive, clickup, whatsapp, llm")),
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
