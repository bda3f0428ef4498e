//! ClickUp API v2: lists and tasks for client onboarding and report follow-ups.
//!
//! Auth is a personal token sent as `Authorization: pk_…` (no `Bearer`). ClickUp
//! limits per token (100 requests/min on Free/Unlimited/Business plans), so every
//! call goes through the account key [`TOKEN_ACCOUNT`], which lets the
//! `X-RateLimit-*` headers pause all calls of the token until the window resets.

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use chrono::NaiveDate;
use reqwest::{StatusCode, header::HeaderMap};
use serde::{Deserialize, Deserializer, Serialize};

use super::{
    PlatformInfo, SecretString,
    calls::CallCounter,
    error::{ErrorKind, PlatformError},
    expose,
    http::{Call, Dialect, HttpSettings, PlatformHttp, Verdict, retry_after},
};

pub const INFO: PlatformInfo =
    PlatformInfo { key: "clickup", title: "ClickUp", env_prefix: "CLICKUP_", sim_prefix: "/clickup", ads: false };

/// The limiter/pause key of every call: ClickUp limits per token, and one connector has one token.
pub const TOKEN_ACCOUNT: &str = "token";

/// ClickUp's per-token limit on Free Forever / Unlimited / Business plans
/// (Business Plus 1,000, Enterprise 10,000) — developer.clickup.com/docs/rate-limits.
pub const PLAN_REQUESTS_PER_MINUTE: f64 = 100.0;
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
    /// Sustained requests per second; the default keeps any 60 s window under 100 calls.
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

    /// Limiter and retry policy: burst + rate × 60 s never exceeds the plan's 100/min.
    pub fn http_settings(&self) -> HttpSettings {
        let burst = self.burst.unwrap_or(DEFAULT_BURST);
        let rate = self.rate_per_second.unwrap_or((PLAN_REQUESTS_PER_MINUTE - f64::from(DEFAULT_BURST)) / 60.0);
        HttpSettings::new(rate, burst)
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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    #[serde(default)]
    pub status: String,
    /// `open`, `custom`, `done` or `closed`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tag {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub status: Option<TaskStatus>,
    #[serde(default)]
    pub description: Option<String>,
    /// Unix ms (ClickUp sends it as a string).
    #[serde(default, deserialize_with = "opt_millis")]
    pub due_date: Option<i64>,
    #[serde(default, deserialize_with = "opt_millis")]
    pub date_created: Option<i64>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub list: Option<Ref>,
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Lists {
    lists: Vec<List>,
}

#[derive(Debug, Deserialize)]
struct TaskPage {
    tasks: Vec<Task>,
    #[serde(default)]
    last_page: Option<bool>,
}

/// A task to create (`POST /list/{id}/task`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct NewTask {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// 1 urgent, 2 high, 3 normal, 4 low.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// Unix ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_date: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_date_time: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub assignees: Vec<i64>,
}

/// One task of a checklist; JSON-friendly so checklists can be configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskTemplate {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Due this many days after the start date.
    #[serde(default)]
    pub due_in_days: Option<i64>,
    #[serde(default)]
    pub priority: Option<u8>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// What [`ClickUp::ensure_tasks`] found and did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnsuredTasks {
    /// One id per distinct template name, in template order (existing or new).
    pub task_ids: Vec<String>,
    pub created: usize,
}

/// The agency's standard onboarding checklist for a new client.
pub fn default_onboarding_template() -> Vec<TaskTemplate> {
    let t = |name: &str, description: &str, days: i64, priority: u8, tags: &[&str]| TaskTemplate {
        name: name.into(),
        description: description.into(),
        due_in_days: Some(days),
        priority: Some(priority),
        tags: tags.iter().map(|t| t.to_string()).collect(),
    };
    vec![
        t(
            "Kick-off call",
            "Agree goals, KPIs (CPA/ROAS targets), budget and reporting cadence with the client.",
            1,
            2,
            &["onboarding"],
        ),
        t(
            "Collect brand assets",
            "Logos, fonts, brand guidelines, product photos and approved copy into the client's Drive folder.",
            3,
            3,
            &["onboarding", "creative"],
        ),
        t(
            "Get Meta ad account access",
            "Client adds the agency Business Manager as partner on the ad account, page and pixel.",
            3,
            2,
            &["onboarding", "meta"],
        ),
        t(
            "Get Google Ads account access",
            "Client accepts the manager-account (MCC) link request; confirm billing is set up.",
            3,
            2,
            &["onboarding", "google"],
        ),
        t(
            "Set up pixel and conversion tracking",
            "Meta pixel + Conversions API, Google Ads conversion tags / GA4 import; verify test events.",
            7,
            1,
            &["onboarding", "tracking"],
        ),
        t(
            "Campaign strategy",
            "Audiences, funnel structure, budget split per platform and test plan; client sign-off.",
            7,
            2,
            &["onboarding", "strategy"],
        ),
        t(
            "First creatives",
            "First round of ads (static + video) per platform, approved by the client.",
            10,
            3,
            &["onboarding", "creative"],
        ),
        t(
            "Launch campaigns",
            "Go live on Meta and Google; check delivery, spend pacing and tracking on day 1.",
            14,
            1,
            &["onboarding", "launch"],
        ),
        t(
            "Week-1 performance report",
            "First weekly report: spend, results, CPA/ROAS against targets and next steps.",
            21,
            3,
            &["onboarding", "report"],
        ),
    ]
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

    fn connect(settings: &Settings, calls: &Arc<CallCounter>) -> Self {
        let mut client = Self::new(settings);
        client.http.count_into(calls);
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

    /// Every task of the list (open and closed), following the 100-per-page paging.
    pub async fn list_tasks(&self, list_id: &str) -> Result<Vec<Task>, PlatformError> {
        // Far above any real list; stops a platform that never says `last_page`.
        const MAX_PAGES: u32 = 1000;
        let token = self.token()?;
        let url = self.url(&format!("list/{list_id}/task"));
        let mut tasks = Vec::new();
        for page in 0..MAX_PAGES {
            let page_str = page.to_string();
            let reply = self
                .http
                .send(Self::call("get_tasks"), |c| {
                    c.get(&url).header("Authorization", token).query(&[
                        ("page", page_str.as_str()),
                        ("archived", "false"),
                        ("include_closed", "true"),
                        ("subtasks", "true"),
                    ])
                })
                .await?;
            let body: TaskPage = reply.json()?;
            let empty = body.tasks.is_empty();
            tasks.extend(body.tasks);
            // Should `last_page` be missing, an empty page ends the list.
            if empty || body.last_page.unwrap_or(false) {
                return Ok(tasks);
            }
        }
        Err(PlatformError::malformed(INFO.key, format!("list {list_id}: more than {MAX_PAGES} pages of tasks")))
    }

    pub async fn create_task(&self, list_id: &str, task: &NewTask) -> Result<Task, PlatformError> {
        let token = self.token()?;
        let url = self.url(&format!("list/{list_id}/task"));
        let reply = self
            .http
            .send(Self::call("create_task"), |c| c.post(&url).header("Authorization", token).json(task))
            .await?;
        reply.json()
    }

    /// Creates the template's tasks that the list lacks (matched by name), so running
    /// it again creates nothing. Due dates are `start + due_in_days` (midnight UTC).
    pub async fn ensure_tasks(
        &self,
        list_id: &str,
        template: &[TaskTemplate],
        start: NaiveDate,
    ) -> Result<EnsuredTasks, PlatformError> {
        let mut known: Vec<(String, String)> =
            self.list_tasks(list_id).await?.into_iter().map(|t| (t.name.trim().to_string(), t.id)).collect();
        let mut result = EnsuredTasks { task_ids: vec![], created: 0 };
        let mut seen: Vec<&str> = vec![];
        for item in template {
            let name = item.name.trim();
            if seen.contains(&name) {
                continue;
            }
            seen.push(name);
            if let Some((_, id)) = known.iter().find(|(n, _)| n == name) {
                result.task_ids.push(id.clone());
                continue;
            }
            let task = self.create_task(list_id, &new_task(item, start)).await?;
            known.push((name.to_string(), task.id.clone()));
            result.task_ids.push(task.id);
            result.created += 1;
        }
        Ok(result)
    }
}

fn new_task(item: &TaskTemplate, start: NaiveDate) -> NewTask {
    let due_date = item
        .due_in_days
        .and_then(|days| start.checked_add_signed(chrono::Duration::days(days)))
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc().timestamp_millis());
    NewTask {
        name: item.name.trim().to_string(),
        description: (!item.description.is_empty()).then(|| item.description.clone()),
        priority: item.priority.filter(|p| (1..=4).contains(p)),
        due_date,
        due_date_time: due_date.map(|_| false),
        tags: item.tags.clone(),
        assignees: vec![],
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
    fn parses_tasks_with_string_dates_and_numeric_ids() {
        let page: TaskPage = serde_json::from_str(
            r#"{"tasks":[{"id":"9hx","name":"Kick-off call","status":{"status":"to do","type":"open"},
                "due_date":"1751328000000","date_created":"1567780450202","tags":[{"name":"onboarding"}],
                "list":{"id":901234567}},{"id":42,"name":"x","due_date":null}],"last_page":true}"#,
        )
        .unwrap();
        assert_eq!(page.tasks[0].due_date, Some(1_751_328_000_000));
        assert_eq!(page.tasks[0].list.as_ref().unwrap().id, "901234567");
        assert_eq!(page.tasks[1].id, "42");
        assert_eq!(page.tasks[1].due_date, None);
        assert!(serde_json::from_str::<TaskPage>(r#"{"tasks":[{"id":"1","name":"x","due_date":"soon"}]}"#).is_err());
    }

    #[test]
    fn due_dates_are_unix_ms_from_the_start_date() {
        let start = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        let item = TaskTemplate {
            name: " Launch ".into(),
            description: String::new(),
            due_in_days: Some(30),
            priority: Some(9),
            tags: vec![],
        };
        let task = new_task(&item, start);
        assert_eq!(task.name, "Launch");
        assert_eq!(task.due_date, Some(1_782_864_000_000)); // 2026-07-01T00:00:00Z
        assert_eq!(task.priority, None, "priorities outside 1..=4 are dropped");
        assert_eq!(task.description, None);
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
        assert!(http.rate_per_second * 60.0 + f64::from(http.burst) <= PLAN_REQUESTS_PER_MINUTE + 1e-9);
        let sandbox = s.sandboxed("http://127.0.0.1:9/clickup/");
        assert!(sandbox.missing().is_empty());
        assert_eq!(sandbox.base_url, "http://127.0.0.1:9/clickup");
        assert!(matches!(sandbox.default_location(), Some(ListLocation::Space(_))));
        let folder = Settings { folder_id: Some("456".into()), ..sandbox };
        assert_eq!(folder.default_location(), Some(ListLocation::Folder("456".into())));
    }

    #[test]
    fn onboarding_template_is_complete_and_unique() {
        let template = default_onboarding_template();
        assert!(template.len() >= 8);
        let mut names: Vec<_> = template.iter().map(|t| t.name.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), template.len());
        assert!(template.iter().all(|t| t.due_in_days.is_some() && t.priority.is_some_and(|p| (1..=4).contains(&p))));
    }
}
