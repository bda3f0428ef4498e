//! The Insights rules the simulated Meta enforces, and `POST /_sim/meta/config` to change
//! them (`GET` reads them). Defaults are on: the simulator is strict unless told otherwise.
//!
//! Meta publishes no day count at which a sync insights request times out: it depends on
//! the rows and data points asked for (developers.facebook.com/docs/marketing-api/insights/
//! best-practices). The defaults take a daily breakdown as the load: a quarter (90 days)
//! at account level, half that at campaign level where each day is one row per campaign.
//! Answers as Meta's Insights error-code table has them
//! (developers.facebook.com/documentation/ads-commerce/marketing-api/insights/error-codes):
//! `100/1504018` and `2/1504038`, "Request Timed Out", both "Sync".

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{State as Shared, rejection::JsonRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{State, graph_error};

/// The rules in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Longest range, in days, a sync account-level insights request serves; longer
    /// answers `100/1504018` (default 90).
    pub sync_max_days: u32,
    /// Longest range a sync campaign-level request serves; longer answers `2/1504038`
    /// (default 45).
    pub campaign_sync_max_days: u32,
    /// Status polls an async report job takes to reach `Job Completed` (default 3).
    pub async_polls: u32,
    /// `estimated_time_to_regain_access` (minutes) of the throttle answer (default 1).
    pub regain_minutes: u32,
    /// The next this many Graph calls answer the throttle (a spent Business Use Case quota).
    pub throttle_next: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self { sync_max_days: 90, campaign_sync_max_days: 45, async_polls: 3, regain_minutes: 1, throttle_next: 0 }
    }
}

/// What `POST /_sim/meta/config` may change; absent fields keep their value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Patch {
    sync_max_days: Option<u32>,
    campaign_sync_max_days: Option<u32>,
    async_polls: Option<u32>,
    regain_minutes: Option<u32>,
    throttle_next: Option<u32>,
}

pub(super) fn router() -> Router<Arc<State>> {
    Router::new().route("/config", get(read).post(change))
}

async fn read(Shared(state): Shared<Arc<State>>) -> Json<Config> {
    Json(state.config())
}

async fn change(Shared(state): Shared<Arc<State>>, body: Result<Json<Patch>, JsonRejection>) -> Response {
    let Json(patch) = match body {
        Ok(patch) => patch,
        Err(e) => return (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({"error": e.body_text()}))).into_response(),
    };
    if patch.sync_max_days == Some(0) || patch.campaign_sync_max_days == Some(0) || patch.async_polls == Some(0) {
        let error = "sync_max_days, campaign_sync_max_days and async_polls must be at least 1";
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({"error": error}))).into_response();
    }
    let mut config = state.config();
    config.sync_max_days = patch.sync_max_days.unwrap_or(config.sync_max_days);
    config.campaign_sync_max_days = patch.campaign_sync_max_days.unwrap_or(config.campaign_sync_max_days);
    config.async_polls = patch.async_polls.unwrap_or(config.async_polls);
    config.regain_minutes = patch.regain_minutes.unwrap_or(config.regain_minutes);
    config.throttle_next = patch.throttle_next.unwrap_or(config.throttle_next);
    state.set_config(config.clone());
    Json(config).into_response()
}

/// Meta's sync timeout for a request over `days` at `level`, when the rules say it times out.
pub(super) fn timed_out(config: &Config, level: &str, days: i64) -> Option<Response> {
    const ADVICE: &str = "Your request timed out. Try a smaller date range, fetch less data, or use async jobs.";
    if level == "campaign" && days > i64::from(config.campaign_sync_max_days) {
        // Code 2 is Meta's service-error family: transient in general, but this subcode
        // says the same request will time out again.
        return Some(graph_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"message": "(#2) Request Timed Out", "type": "OAuthException", "code": 2, "error_subcode": 1504038,
                   "is_transient": true, "error_user_title": "Request Timed Out", "error_user_msg": ADVICE}),
        ));
    }
    if days > i64::from(config.sync_max_days) {
        return Some(graph_error(
            StatusCode::BAD_REQUEST,
            json!({"message": "(#100) Request Timed Out", "type": "OAuthException", "code": 100, "error_subcode": 1504018,
                   "is_transient": false, "error_user_title": "Request Timed Out", "error_user_msg": ADVICE}),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_ranges_time_out_as_meta_answers() {
        let config = Config::default();
        assert!(timed_out(&config, "account", 90).is_none());
        assert_eq!(timed_out(&config, "account", 91).unwrap().status(), StatusCode::BAD_REQUEST);
        assert!(timed_out(&config, "campaign", 45).is_none());
        assert_eq!(timed_out(&config, "campaign", 46).unwrap().status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
