//! ClickUp API v2: lists and tasks for client onboarding and report follow-ups.
//!
//! Auth is a personal token sent as `Authorization: pk_…` (no `Bearer`). ClickUp
//! limits per token by the workspace's plan (100 requests/min on Free Forever,
//! Unlimited and Business; developer.clickup.com/docs/rate-limits), so the limiter
//! keeps every minute under the plan limit, and every call goes through the account
//! key [`TOKEN_ACCOUNT`], so a 429's `X-RateLimit-Reset` pauses all calls of the token
//! until the window resets. Tasks live in [`tasks`].

mod tasks;

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use reqwest::{StatusCode, header::HeaderMap};
use serde::{Deserialize, Deserializer, Serialize};

use super::{
    PlatformInfo, SecretString,
    calls::CallCounter,
    error::{ErrorKind, PlatformError},
    expose,
    http::{Call, Dialect, HttpSettings, PlatformHttp, Verdict, retry_after},
};
use crate::domain::limits::LimitStore;

pub const INFO: PlatformInfo =
    PlatformInfo { key: "clickup", title: "ClickUp", env_prefix: "CLICKUP_", sim_prefix: "/clickup", ads: false };

/// The limiter/pause key of every call: ClickUp limits per token, and one connector has one token.
pub const TOKEN_ACCOUNT: &str = "token";

pub use tasks::{EnsuredTasks, NewTask, Tag, Task, TaskStatus, TaskTemplate, default_onboarding_template};

/// ClickUp's per-token limit on Free Forever / Unlimited / Business plans
/// (Business Plus 1,000, Enterprise 10,000) — developer.clickup.com/docs/rate-limits.
pub const PLAN_REQUESTS_PER_MINUTE: u32 = 100;
const DEFAULT_BURST: u32 = 10;

/// Settings from `CLICKUP_*` variables.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Personal API token (`pk_…`). `CLICKUP_TOKEN`.
    pub token: Option<SecretString>,
    /// Workspace (team) id, for workspace-wide calls.
    pub team_id: Option<String>,
    /// Default space for new (folderless) lists.
    pub space_id: Option<String>,
    /// When set, new lists go into this folder instead of the space.
    pub folder_id: Option<String>,
    /// Without `/api/v2`.
    pub base_url: String,
    /// The workspace plan's requests per minute per token (100; Business Plus 1,000,
    /// Enterprise 10,000). `CLICKUP_PLAN_LIMIT_PER_MINUTE`.
    pub plan_limit_per_minute: Option<u32>,
    /// Sustained requests per second; by default the plan limit less the burst, per 60 s.
    pub rate_per_second: Option<f64>,
    pub burst: Option<u32>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            token: None,
            team_id: None,
            space_id: None,
            folder_id: None,
            base_url: "https://api.clickup.com".into(),
            plan_limit_per_minute: None,
            rate_per_second: None,
            burst: None,
        }
    }
}

impl Settings {
    pub fn missing(&self) -> Vec<&'static str> {
        let mut missing = vec![];
        if expose(&self.token).is_none_or(|t| t.trim().is_empty()) {
            missing.push("CLICKUP_TOKEN");
        }
        missing
    }

    pub fn sandboxed(&self, base: &str) -> Self {
        Self {
            base_url: base.trim_end_matches('/').to_string(),
            token: Some("pk_sandbox_token".into()),
            space_id: Some(self.space_id.clone().unwrap_or_else(|| "90120000001".into())),
            ..self.clone()
        }
    }

    /// The plan's requests per minute per token (100 unless configured).
    pub fn plan_limit(&self) -> u32 {
        self.plan_limit_per_minute.filter(|n| *n > 0).unwrap_or(PLAN_REQUESTS_PER_MINUTE)
    }

    /// Limiter and retry policy. By default burst + rate × 60 s equals the plan limit, so no
    /// minute (ClickUp counts a fixed window per token) ever holds more calls than the plan allows.
    pub fn http_settings(&self) -> HttpSettings {
        let plan = self.plan_limit();
        // A tenth of the minute at most, so the steady rate keeps most of the budget.
        let burst = self.burst.filter(|b| *b > 0).unwrap_or(DEFAULT_BURST.min(plan / 10)).clamp(1, plan);
        let rate = self.rate_per_second.filter(|r| *r > 0.0).unwrap_or(f64::from(plan - burst) / 60.0);
        HttpSettings::new(rate.max(0.001), burst)
    }

    /// Where new lists go: the folder when configured, else the space.
    pub fn default_location(&self) -> Option<ListLocation> {
        match (&self.folder_id, &self.space_id) {
            (Some(folder), _) if !folder.is_empty() => Some(ListLocation::Folder(folder.clone())),
            (_, Some(space)) if !space.is_empty() => Some(ListLocation::Space(space.clone())),
            _ => None,
        }
    }
}

/// Where a list lives: directly in a space ("folderless") or in a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListLocation {
    Space(String),
    Folder(String),
}

impl ListLocation {
    fn path(&self) -> String {
        match self {
            Self::Space(id) => format!("space/{id}/list"),
            Self::Folder(id) => format!("folder/{id}/list"),
        }
    }
}

/// `{"id": "…"}` references inside lists and tasks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ref {
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct List {
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub folder: Option<Ref>,
    #[serde(default)]
    pub space: Option<Ref>,
    #[serde(default)]
    pub archived: bool,
}

#[derive(Debug, Deserialize)]
struct Lists {
    lists: Vec<List>,
}

/// ClickUp's error body `{"err": "...", "ECODE": "..."}` and rate-limit headers.
struct Speech;

impl Dialect for Speech {
    fn classify(&self, platform: &'static str, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
        if status.is_success() {
            return Verdict::Success;
        }
        #[derive(Deserialize, Default)]
        struct Body {
            err: Option<String>,
            #[serde(rename = "ECODE")]
            ecode: Option<String>,
        }
        let parsed: Body = serde_json::from_slice(body).unwrap_or_default();
        let message = parsed
            .err
            .unwrap_or_else(|| format!("HTTP {status}: {}", String::from_utf8_lossy(&body[..body.len().min(300)])));
        let code = status.as_u16();
        let ecode = parsed.ecode.unwrap_or_default();
        let mut error = if code == 401 || ecode.starts_with("OAUTH_") {
            PlatformError::new(platform, ErrorKind::Auth, message).status(code)
        } else if code == 429 {
            let wait = reset_wait(headers).or_else(|| retry_after(headers));
            PlatformError::new(platform, ErrorKind::Throttled, message).status(code).retry_after(wait)
        } else {
            PlatformError::from_status(platform, code, message).retry_after(retry_after(headers))
        };
        if !ecode.is_empty() {
            error = error.code(ecode);
        }
        if error.retryable { Verdict::Retry(error) } else { Verdict::Fail(error) }
    }

    /// The token's budget for this minute is spent: wait for the reset instead of earning a 429.
    /// ClickUp documents the headers only on the 429 itself; should a success carry them, they
    /// are honoured too.
    fn pause_for(&self, headers: &HeaderMap) -> Option<Duration> {
        let remaining: u64 = headers.get("x-ratelimit-remaining")?.to_str().ok()?.trim().parse().ok()?;
        if remaining > 0 {
            return None;
        }
        reset_wait(headers).filter(|d| !d.is_zero())
    }
}

/// Time until `X-RateLimit-Reset` (Unix seconds; milliseconds tolerated), capped so
/// a skewed clock cannot stall us past ClickUp's one-minute window.
fn reset_wait(headers: &HeaderMap) -> Option<Duration> {
    let raw: f64 = headers.get("x-ratelimit-reset")?.to_str().ok()?.trim().parse().ok()?;
    if !raw.is_finite() || raw <= 0.0 {
        return None;
    }
    let reset_secs = if raw > 1e11 { raw / 1000.0 } else { raw };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
    Some(Duration::from_secs_f64((reset_secs - now).clamp(0.0, 65.0)))
}

pub struct ClickUp {
    http: PlatformHttp,
    settings: Settings,
}

impl super::Platform for ClickUp {
    const INFO: PlatformInfo = INFO;
    type Settings = Settings;
    type Sim = crate::sim::clickup::State;

    fn connect(settings: &Settings, calls: &Arc<CallCounter>, limits: &Arc<dyn LimitStore>) -> Self {
        let mut client = Self::new(settings);
        client.http.count_into(calls);
        client.http.share_limits(limits);
        client
    }
    fn http(&self) -> &PlatformHttp {
        &self.http
    }
    fn missing(settings: &Settings) -> Vec<&'static str> {
        settings.missing()
    }
    fn sandboxed(settings: &Settings, base: &str) -> Settings {
        settings.sandboxed(base)
    }
    fn api_version(_settings: &Settings) -> Option<String> {
        Some("v2".into())
    }
}

impl ClickUp {
    pub fn new(settings: &Settings) -> Self {
        Self::with_http(settings, settings.http_settings())
    }

    /// With an explicit limiter/retry policy (tests use short backoffs).
    pub fn with_http(settings: &Settings, http: HttpSettings) -> Self {
        let secrets = expose(&settings.token).map(String::from).into_iter().collect();
        Self { http: PlatformHttp::new(INFO.key, http, Arc::new(Speech), secrets), settings: settings.clone() }
    }

    pub fn http(&self) -> &PlatformHttp {
        &self.http
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v2/{path}", self.settings.base_url.trim_end_matches('/'))
    }

    fn token(&self) -> Result<&str, PlatformError> {
        match expose(&self.settings.token) {
            Some(t) if !t.trim().is_empty() => Ok(t.trim()),
            _ => Err(PlatformError::not_configured(INFO.key, &self.settings.missing())),
        }
    }

    fn call(endpoint: &'static str) -> Call<'static> {
        Call::new(endpoint).account(TOKEN_ACCOUNT)
    }

    /// The lists directly in a space (folderless) or in a folder, archived ones excluded.
    pub async fn lists(&self, location: &ListLocation) -> Result<Vec<List>, PlatformError> {
        let token = self.token()?;
        let url = self.url(&location.path());
        let reply = self
            .http
            .send(Self::call("get_lists"), |c| {
                c.get(&url).header("Authorization", token).query(&[("archived", "false")])
            })
            .await?;
        Ok(reply.json::<Lists>()?.lists)
    }

    pub async fn create_list(&self, name: &str, location: &ListLocation) -> Result<List, PlatformError> {
        let token = self.token()?;
        let url = self.url(&location.path());
        let body = serde_json::json!({ "name": name });
        let reply = self
            .http
            .send(Self::call("create_list"), |c| c.post(&url).header("Authorization", token).json(&body))
            .await?;
        reply.json()
    }

    /// The list called exactly `name` at `location`, created when there is none.
    pub async fn find_or_create_list(&self, name: &str, location: ListLocation) -> Result<(List, bool), PlatformError> {
        if let Some(list) = self.lists(&location).await?.into_iter().find(|l| l.name == name) {
            return Ok((list, false));
        }
        Ok((self.create_list(name, &location).await?, true))
    }
}

/// Ids arrive as strings, sometimes as numbers.
fn id_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!("expected an id, got {other}"))),
    }
}

/// Unix ms as a string, a number or null.
fn opt_millis<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(s) if s.trim().is_empty() => Ok(None),
        serde_json::Value::String(s) => s.trim().parse().map(Some).map_err(serde::de::Error::custom),
        serde_json::Value::Number(n) => {
            n.as_i64().map(Some).ok_or_else(|| serde::de::Error::custom("date out of range"))
        }
        other => Err(serde::de::Error::custom(format!("expected Unix ms, got {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (reqwest::header::HeaderName::from_static(k), v.parse().unwrap())).collect()
    }

    fn now_secs() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
    }

    #[test]
    fn classifies_clickup_errors() {
        let auth = Speech.classify(
            "clickup",
            StatusCode::UNAUTHORIZED,
            &HeaderMap::new(),
            br#"{"err":"Token invalid","ECODE":"OAUTH_025"}"#,
        );
        assert!(
            matches!(auth, Verdict::Fail(e) if e.kind == ErrorKind::Auth && e.code.as_deref() == Some("OAUTH_025"))
        );
        let team = Speech.classify(
            "clickup",
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            br#"{"err":"Team not authorized","ECODE":"OAUTH_027"}"#,
        );
        assert!(matches!(team, Verdict::Fail(e) if e.kind == ErrorKind::Auth));
        let bad = Speech.classify(
            "clickup",
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            br#"{"err":"Status not found","ECODE":"ITEM_064"}"#,
        );
        assert!(matches!(bad, Verdict::Fail(e) if e.kind == ErrorKind::Invalid && e.message == "Status not found"));
        let reset = headers(&[("x-ratelimit-reset", (now_secs() + 30).to_string()), ("retry-after", "1".into())]);
        let throttled = Speech.classify("clickup", StatusCode::TOO_MANY_REQUESTS, &reset, b"{}");
        assert!(matches!(throttled, Verdict::Retry(e) if e.retry_after.unwrap() > Duration::from_secs(25)));
        let only_retry_after =
            Speech.classify("clickup", StatusCode::TOO_MANY_REQUESTS, &headers(&[("retry-after", "2".into())]), b"");
        assert!(matches!(only_retry_after, Verdict::Retry(e) if e.retry_after == Some(Duration::from_secs(2))));
        let down = Speech.classify("clickup", StatusCode::BAD_GATEWAY, &HeaderMap::new(), b"<html>");
        assert!(matches!(down, Verdict::Retry(e) if e.kind == ErrorKind::Unavailable));
    }

    #[test]
    fn pauses_only_when_the_minute_is_spent() {
        let reset = (now_secs() + 20).to_string();
        assert!(
            Speech
                .pause_for(&headers(&[("x-ratelimit-remaining", "3".into()), ("x-ratelimit-reset", reset.clone())]))
                .is_none()
        );
        let pause =
            Speech.pause_for(&headers(&[("x-ratelimit-remaining", "0".into()), ("x-ratelimit-reset", reset)])).unwrap();
        assert!(pause > Duration::from_secs(15) && pause <= Duration::from_secs(20), "{pause:?}");
        // A reset far in the future (bad clock) is capped near ClickUp's one-minute window.
        let far =
            headers(&[("x-ratelimit-remaining", "0".into()), ("x-ratelimit-reset", (now_secs() + 3600).to_string())]);
        assert!(Speech.pause_for(&far).unwrap() <= Duration::from_secs(65));
    }

    #[test]
    fn settings_defaults_and_missing() {
        let s = Settings::default();
        assert_eq!(s.base_url, "https://api.clickup.com");
        assert_eq!(s.missing(), vec!["CLICKUP_TOKEN"]);
        let http = s.http_settings();
        // ClickUp counts a fixed minute: the burst plus a minute of the steady rate stays within 100.
        assert!(http.rate_per_second * 60.0 + f64::from(http.burst) <= f64::from(PLAN_REQUESTS_PER_MINUTE) + 1e-9);
        assert!(http.burst >= 1 && http.rate_per_second > 1.0, "{http:?}");
        let business_plus = Settings { plan_limit_per_minute: Some(1000), ..Settings::default() }.http_settings();
        assert!(business_plus.rate_per_second * 60.0 + f64::from(business_plus.burst) <= 1000.0 + 1e-9);
        assert!(business_plus.rate_per_second > 10.0, "{business_plus:?}");
        let tiny = Settings { plan_limit_per_minute: Some(5), ..Settings::default() }.http_settings();
        assert!(tiny.rate_per_second * 60.0 + f64::from(tiny.burst) <= 5.0 + 1e-9, "{tiny:?}");
        let sandbox = s.sandboxed("http://127.0.0.1:9/clickup/");
        assert!(sandbox.missing().is_empty());
        assert_eq!(sandbox.base_url, "http://127.0.0.1:9/clickup");
        assert!(matches!(sandbox.default_location(), Some(ListLocation::Space(_))));
        let folder = Settings { folder_id: Some("456".into()), ..sandbox };
        assert_eq!(folder.default_location(), Some(ListLocation::Folder("456".into())));
    }
}
