//! Google Ads API (REST): daily account totals through `googleAds:searchStream`
//! and a per-campaign daily report through `googleAds:search` (paged with
//! `nextPageToken`). Auth is the agency user's refresh token (see `google_auth`)
//! plus the developer token and, when acting through a manager account, the
//! `login-customer-id` header.

use std::{collections::BTreeMap, fmt, sync::Arc};

use chrono::NaiveDate;
use reqwest::{StatusCode, header::HeaderMap};
use serde::{Deserialize, Deserializer, Serialize, de::Error as _};

use super::{
    PlatformInfo, SecretString,
    calls::CallCounter,
    error::{ErrorKind, PlatformError},
    google_auth::{RefreshTokenSource, TOKEN_URL, non_empty, non_empty_secret, parse_duration},
    http::{Call, Dialect, HttpSettings, Overrides, PlatformHttp, Reply, Verdict},
};
use crate::domain::metrics::DailyMetrics;

pub const INFO: PlatformInfo = PlatformInfo {
    key: "google_ads",
    title: "Google Ads",
    env_prefix: "GOOGLE_ADS_",
    sim_prefix: "/google-ads",
    ads: true,
};

/// Google publishes no QPS for the Ads API (only daily operation quotas per developer
/// token: Explorer 2,880/day, Basic 15,000/day), so these are conservative: 10/s
/// overall and 2/s per customer keeps a nightly sync of many accounts fast without
/// tripping `RESOURCE_TEMPORARILY_EXHAUSTED`.
const DEFAULT_RATE_PER_SECOND: f64 = 10.0;
const DEFAULT_BURST: u32 = 10;
const DEFAULT_CUSTOMER_RATE_PER_SECOND: f64 = 2.0;
/// Guards against a platform that keeps handing out page tokens (10,000 rows a page).
const MAX_PAGES: usize = 1000;

#[derive(Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub developer_token: Option<SecretString>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub refresh_token: Option<SecretString>,
    /// Manager (MCC) account to act through, digits (dashes are dropped).
    pub login_customer_id: Option<String>,
    pub api_version: String,
    pub base_url: String,
    pub token_url: String,
    pub rate_per_second: Option<f64>,
    pub burst: Option<u32>,
    pub account_rate_per_second: Option<f64>,
    pub max_attempts: Option<u32>,
    pub retry_base_ms: Option<u64>,
    /// Longest we keep retrying one call (a `retryDelay` beyond it fails at once).
    pub max_wait_secs: Option<f64>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            developer_token: None,
            client_id: None,
            client_secret: None,
            refresh_token: None,
            login_customer_id: None,
            // Versions move quarterly (platforms.md §2.1); override with GOOGLE_ADS_API_VERSION.
            api_version: "v23".into(),
            base_url: "https://googleads.googleapis.com".into(),
            token_url: TOKEN_URL.into(),
            rate_per_second: None,
            burst: None,
            account_rate_per_second: None,
            max_attempts: None,
            retry_base_ms: None,
            max_wait_secs: None,
        }
    }
}

/// Secrets are shown as set/unset only.
impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |v: &Option<SecretString>| if non_empty_secret(v).is_some() { "[set]" } else { "[unset]" };
        f.debug_struct("Settings")
            .field("developer_token", &set(&self.developer_token))
            .field("client_id", &self.client_id)
            .field("client_secret", &set(&self.client_secret))
            .field("refresh_token", &set(&self.refresh_token))
            .field("login_customer_id", &self.login_customer_id)
            .field("api_version", &self.api_version)
            .field("base_url", &self.base_url)
            .field("token_url", &self.token_url)
            .finish_non_exhaustive()
    }
}

impl Settings {
    pub fn missing(&self) -> Vec<&'static str> {
        [
            ("GOOGLE_ADS_DEVELOPER_TOKEN", non_empty_secret(&self.developer_token)),
            ("GOOGLE_ADS_CLIENT_ID", non_empty(&self.client_id)),
            ("GOOGLE_ADS_CLIENT_SECRET", non_empty_secret(&self.client_secret)),
            ("GOOGLE_ADS_REFRESH_TOKEN", non_empty_secret(&self.refresh_token)),
        ]
        .into_iter()
        .filter(|(_, v)| v.is_none())
        .map(|(name, _)| name)
        .collect()
    }

    pub fn sandboxed(&self, base: &str) -> Self {
        let base = base.trim_end_matches('/');
        Self {
            developer_token: Some("sandbox-developer-token".into()),
            client_id: Some("sandbox-client.apps.googleusercontent.com".into()),
            client_secret: Some("sandbox-client-secret".into()),
            refresh_token: Some("sandbox-refresh-token".into()),
            base_url: base.to_string(),
            token_url: format!("{base}/token"),
            ..self.clone()
        }
    }

    fn http_settings(&self) -> HttpSettings {
        let defaults =
            HttpSettings::new(DEFAULT_RATE_PER_SECOND, DEFAULT_BURST).per_account(DEFAULT_CUSTOMER_RATE_PER_SECOND);
        Overrides {
            rate_per_second: self.rate_per_second,
            burst: self.burst,
            account_rate_per_second: self.account_rate_per_second,
            max_attempts: self.max_attempts,
            retry_base_ms: self.retry_base_ms,
            max_wait_secs: self.max_wait_secs,
        }
        .apply(defaults)
    }
}

/// One campaign's delivery on one day, in the account's currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignRow {
    pub campaign_id: String,
    pub campaign_name: String,
    /// `ENABLED`, `PAUSED`, `REMOVED`.
    pub status: String,
    pub date: NaiveDate,
    pub spend: f64,
    pub impressions: i64,
    pub clicks: i64,
    pub conversions: f64,
    pub conversion_value: f64,
    pub currency: String,
}

// ---- responses (proto3 JSON: camelCase, int64 as strings, defaults omitted) ----

#[derive(Deserialize)]
struct StreamBatch {
    #[serde(default)]
    results: Vec<Row>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchPage {
    #[serde(default)]
    results: Vec<Row>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Row {
    customer: Option<CustomerPart>,
    campaign: Option<CampaignPart>,
    metrics: Option<MetricsPart>,
    segments: Option<SegmentsPart>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct CustomerPart {
    currency_code: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CampaignPart {
    #[serde(deserialize_with = "int")]
    id: i64,
    name: Option<String>,
    status: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct MetricsPart {
    #[serde(deserialize_with = "int")]
    cost_micros: i64,
    #[serde(deserialize_with = "int")]
    impressions: i64,
    #[serde(deserialize_with = "int")]
    clicks: i64,
    #[serde(deserialize_with = "float")]
    conversions: f64,
    #[serde(deserialize_with = "float")]
    conversions_value: f64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SegmentsPart {
    date: Option<NaiveDate>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Number {
    Int(i64),
    Float(f64),
    Text(String),
}

/// int64 arrives as a string, sometimes as a number; null/absent is 0.
fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match Option::<Number>::deserialize(d)? {
        None => Ok(0),
        Some(Number::Int(i)) => Ok(i),
        Some(Number::Float(f)) => Ok(f.round() as i64),
        Some(Number::Text(s)) => s.trim().parse().map_err(|_| D::Error::custom(format!("not an integer: {s:?}"))),
    }
}

fn float<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    match Option::<Number>::deserialize(d)? {
        None => Ok(0.0),
        Some(Number::Int(i)) => Ok(i as f64),
        Some(Number::Float(f)) => Ok(f),
        Some(Number::Text(s)) => s.trim().parse().map_err(|_| D::Error::custom(format!("not a number: {s:?}"))),
    }
}

impl Row {
    fn date(&self, platform: &'static str) -> Result<NaiveDate, PlatformError> {
        self.segments
            .as_ref()
            .and_then(|s| s.date)
            .ok_or_else(|| PlatformError::malformed(platform, "row without segments.date"))
    }

    fn currency(&self) -> Option<&str> {
        self.customer.as_ref().and_then(|c| c.currency_code.as_deref()).filter(|c| !c.is_empty())
    }
}

// ---- errors ----

#[derive(Deserialize, Default)]
#[serde(default)]
struct GoogleStatus {
    code: Option<u16>,
    message: String,
    status: String,
    details: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Envelope {
    error: GoogleStatus,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct AdsFailure {
    errors: Vec<AdsError>,
    request_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct AdsError {
    error_code: BTreeMap<String, serde_json::Value>,
    message: String,
    details: serde_json::Value,
}

/// The error of an error body: `{"error":…}`, or the first `{"error":…}` of a stream array.
fn error_of(body: &[u8]) -> Option<GoogleStatus> {
    // Parsed as a Value first: serde would happily read a struct from an array positionally.
    let error = match serde_json::from_slice::<serde_json::Value>(body).ok()? {
        serde_json::Value::Array(items) => items.into_iter().find_map(|item| item.get("error").cloned())?,
        object @ serde_json::Value::Object(_) => {
            return serde_json::from_value::<Envelope>(object).ok().map(|e| e.error);
        }
        _ => return None,
    };
    serde_json::from_value(error).ok()
}

struct Speech;

impl Dialect for Speech {
    fn classify(&self, platform: &'static str, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
        if status.is_success() {
            // A stream can fail after it started: HTTP 200 with an error element in the array.
            let streamed_error = body.first() == Some(&b'[') && body.windows(8).any(|w| w == b"\"error\":");
            match streamed_error.then(|| error_of(body)).flatten() {
                Some(error) => {
                    let code = error.code.unwrap_or(500);
                    return classify_error(platform, code, error, headers);
                }
                None => return Verdict::Success,
            }
        }
        match error_of(body) {
            Some(error) => classify_error(platform, status.as_u16(), error, headers),
            None => super::http::default_classify(platform, status, headers, body),
        }
    }
}

fn classify_error(platform: &'static str, http_status: u16, error: GoogleStatus, headers: &HeaderMap) -> Verdict {
    let failure: AdsFailure = error
        .details
        .iter()
        .find(|d| d.get("@type").and_then(|t| t.as_str()).is_some_and(|t| t.ends_with("GoogleAdsFailure")))
        .and_then(|d| serde_json::from_value(d.clone()).ok())
        .unwrap_or_default();
    let first = failure.errors.first();
    let (family, reason) = first
        .and_then(|e| e.error_code.iter().next())
        .map(|(family, value)| (family.clone(), value.as_str().unwrap_or_default().to_string()))
        .unwrap_or_default();
    // Ads puts the wait in quotaErrorDetails; generic Google errors in a RetryInfo detail.
    let retry_delay = first
        .and_then(|e| e.details.pointer("/quotaErrorDetails/retryDelay"))
        .or_else(|| {
            error.details.iter().find_map(|d| {
                let info = d.get("@type").and_then(|t| t.as_str()).is_some_and(|t| t.ends_with("google.rpc.RetryInfo"));
                info.then(|| d.get("retryDelay")).flatten()
            })
        })
        .and_then(|v| v.as_str())
        .and_then(parse_duration)
        .or_else(|| super::http::retry_after(headers));
    let mut message = first.map(|e| e.message.clone()).filter(|m| !m.is_empty()).unwrap_or(error.message);
    if let Some(id) =
        failure.request_id.or_else(|| headers.get("request-id").and_then(|v| v.to_str().ok()).map(str::to_string))
    {
        message = format!("{message} [request-id {id}]");
    }
    let kind = match (family.as_str(), reason.as_str()) {
        ("quotaError", "ACCESS_PROHIBITED") => ErrorKind::Rejected,
        ("quotaError", _) => ErrorKind::Throttled,
        ("authenticationError" | "authorizationError", _) => ErrorKind::Auth,
        (_, r) if r.contains("DEVELOPER_TOKEN") => ErrorKind::Auth,
        ("internalError", _) => ErrorKind::Unavailable,
        _ => match (error.status.as_str(), http_status) {
            ("RESOURCE_EXHAUSTED", _) | (_, 429) => ErrorKind::Throttled,
            ("UNAVAILABLE" | "INTERNAL" | "UNKNOWN", _) => ErrorKind::Unavailable,
            ("DEADLINE_EXCEEDED", _) | (_, 504) => ErrorKind::Timeout,
            ("UNAUTHENTICATED" | "PERMISSION_DENIED", _) | (_, 401 | 403) => ErrorKind::Auth,
            ("NOT_FOUND", _) | (_, 404) => ErrorKind::NotFound,
            (_, s) if s >= 500 => ErrorKind::Unavailable,
            _ => ErrorKind::Invalid,
        },
    };
    let code = if family.is_empty() { error.status.clone() } else { format!("{family}.{reason}") };
    let mut e = PlatformError::new(platform, kind, message).status(http_status).retry_after(retry_delay);
    if !code.is_empty() {
        e = e.code(code);
    }
    if e.retryable { Verdict::Retry(e) } else { Verdict::Fail(e) }
}

// ---- client ----

pub struct GoogleAds {
    http: PlatformHttp,
    auth: RefreshTokenSource,
    base_url: String,
    api_version: String,
    developer_token: String,
    login_customer_id: Option<String>,
    /// Why calls cannot be made (missing or unusable settings), checked before each call.
    unusable: Option<PlatformError>,
}

impl super::Platform for GoogleAds {
    const INFO: PlatformInfo = INFO;
    type Settings = Settings;
    type Sim = crate::sim::google_ads::State;

    fn connect(settings: &Settings, calls: &Arc<CallCounter>) -> Self {
        let mut client = Self::new(settings);
        client.http.count_into(calls);
        client.auth.count_into(calls);
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
}

impl GoogleAds {
    pub fn new(settings: &Settings) -> Self {
        let http_settings = settings.http_settings();
        let value = |v: &Option<SecretString>| non_empty_secret(v).unwrap_or_default().to_string();
        let (developer_token, client_secret, refresh_token) =
            (value(&settings.developer_token), value(&settings.client_secret), value(&settings.refresh_token));
        let secrets = vec![developer_token.clone(), client_secret.clone(), refresh_token.clone()];
        let login = non_empty(&settings.login_customer_id).map(|l| l.replace('-', ""));
        let missing = settings.missing();
        let unusable = if !missing.is_empty() {
            Some(PlatformError::not_configured(INFO.key, &missing))
        } else if login.as_deref().is_some_and(|l| !l.bytes().all(|b| b.is_ascii_digit())) {
            Some(PlatformError::new(
                INFO.key,
                ErrorKind::NotConfigured,
                "GOOGLE_ADS_LOGIN_CUSTOMER_ID must be digits (e.g. 1234567890)",
            ))
        } else if reqwest::header::HeaderValue::from_str(&developer_token).is_err() {
            Some(PlatformError::new(
                INFO.key,
                ErrorKind::NotConfigured,
                "GOOGLE_ADS_DEVELOPER_TOKEN contains characters not allowed in a header",
            ))
        } else {
            None
        };
        Self {
            auth: RefreshTokenSource::new(
                INFO.key,
                &http_settings,
                non_empty(&settings.client_id).unwrap_or_default(),
                &client_secret,
                &refresh_token,
                &settings.token_url,
            ),
            http: PlatformHttp::new(INFO.key, http_settings, Arc::new(Speech), secrets),
            base_url: settings.base_url.trim_end_matches('/').to_string(),
            api_version: settings.api_version.trim_matches('/').to_string(),
            developer_token,
            login_customer_id: login,
            unusable,
        }
    }

    pub fn http(&self) -> &PlatformHttp {
        &self.http
    }

    /// Account totals per day (days without delivery are absent), via `searchStream`.
    pub async fn daily_metrics(
        &self,
        customer_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DailyMetrics>, PlatformError> {
        let customer = self.check(customer_id, from, to)?;
        let query = format!(
            "SELECT customer.currency_code, segments.date, metrics.cost_micros, metrics.impressions, metrics.clicks, \
             metrics.conversions, metrics.conversions_value FROM customer WHERE segments.date BETWEEN '{from}' AND '{to}'"
        );
        let reply =
            self.post("search_stream", &customer, "searchStream", &serde_json::json!({ "query": query })).await?;
        let batches: Vec<StreamBatch> = reply.json()?;
        let rows: Vec<Row> = batches.into_iter().flat_map(|b| b.results).collect();
        let currency = rows.iter().find_map(Row::currency).unwrap_or_default().to_string();
        let mut days: BTreeMap<NaiveDate, (i64, DailyMetrics)> = BTreeMap::new();
        for row in &rows {
            let date = row.date(INFO.key)?;
            let (micros, day) = days.entry(date).or_insert_with(|| (0, empty_day(date, &currency)));
            if let Some(m) = &row.metrics {
                *micros += m.cost_micros;
                day.impressions += m.impressions;
                day.clicks += m.clicks;
                // Google's clicks are the ad's own clicks (headline, sitelink...), which is what
                // Meta calls link clicks; there is no separate "all clicks" to subtract.
                day.link_clicks += m.clicks;
                day.conversions += m.conversions;
                day.conversion_value += m.conversions_value;
            }
        }
        if !days.is_empty() && currency.is_empty() {
            return Err(PlatformError::malformed(INFO.key, "rows without customer.currencyCode"));
        }
        Ok(days.into_values().map(|(micros, day)| DailyMetrics { spend: micros as f64 / 1e6, ..day }).collect())
    }

    /// One row per campaign and day, via `search`, following `nextPageToken`.
    pub async fn campaign_report(
        &self,
        customer_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<CampaignRow>, PlatformError> {
        let customer = self.check(customer_id, from, to)?;
        let query = format!(
            "SELECT customer.currency_code, campaign.id, campaign.name, campaign.status, segments.date, metrics.cost_micros, \
             metrics.impressions, metrics.clicks, metrics.conversions, metrics.conversions_value FROM campaign \
             WHERE segments.date BETWEEN '{from}' AND '{to}' ORDER BY segments.date, campaign.id"
        );
        let mut rows = Vec::new();
        let mut page_token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut body = serde_json::json!({ "query": query });
            if let Some(token) = &page_token {
                body["pageToken"] = token.clone().into();
            }
            let page: SearchPage = self.post("search", &customer, "search", &body).await?.json()?;
            rows.extend(page.results);
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(next) if Some(&next) == page_token.as_ref() => {
                    return Err(PlatformError::malformed(INFO.key, "search returned the same nextPageToken twice"));
                }
                Some(next) => page_token = Some(next),
                None => {
                    let currency = rows.iter().find_map(Row::currency).unwrap_or_default().to_string();
                    return rows.iter().map(|row| campaign_row(row, &currency)).collect();
                }
            }
        }
        Err(PlatformError::malformed(INFO.key, format!("search did not end after {MAX_PAGES} pages")))
    }

    /// The settings are usable, the id is a customer id and the range is a range.
    fn check(&self, customer_id: &str, from: NaiveDate, to: NaiveDate) -> Result<String, PlatformError> {
        if let Some(e) = &self.unusable {
            return Err(e.clone());
        }
        let customer = crate::domain::client::google_ads_customer(customer_id.trim()).ok_or_else(|| {
            PlatformError::new(
                INFO.key,
                ErrorKind::Invalid,
                format!("customer id `{customer_id}` is not 10 digits (123-456-7890 or 1234567890)"),
            )
        })?;
        if from > to {
            return Err(PlatformError::new(
                INFO.key,
                ErrorKind::Invalid,
                format!("date range {from}..{to} ends before it starts"),
            ));
        }
        Ok(customer)
    }

    /// POSTs a GAQL request; a 401 on a cached token (revoked or expired early) refreshes once.
    async fn post(
        &self,
        endpoint: &'static str,
        customer: &str,
        method: &str,
        body: &serde_json::Value,
    ) -> Result<Reply, PlatformError> {
        let url = format!("{}/{}/customers/{customer}/googleAds:{method}", self.base_url, self.api_version);
        let mut refreshed = false;
        loop {
            let (token, fresh) = self.auth.token().await?;
            let result = self
                .http
                .send(Call::new(endpoint).account(customer), |c| {
                    let request =
                        c.post(&url).bearer_auth(&token).header("developer-token", &self.developer_token).json(body);
                    match &self.login_customer_id {
                        Some(login) => request.header("login-customer-id", login),
                        None => request,
                    }
                })
                .await;
            match result {
                Err(e) if e.status == Some(401) && !fresh && !refreshed => {
                    self.auth.invalidate(&token).await;
                    refreshed = true;
                }
                other => return other,
            }
        }
    }
}

fn empty_day(date: NaiveDate, currency: &str) -> DailyMetrics {
    DailyMetrics {
        date,
        spend: 0.0,
        impressions: 0,
        clicks: 0,
        link_clicks: 0,
        conversions: 0.0,
        conversion_value: 0.0,
        currency: currency.to_string(),
    }
}

fn campaign_row(row: &Row, currency: &str) -> Result<CampaignRow, PlatformError> {
    let campaign = row.campaign.as_ref().ok_or_else(|| PlatformError::malformed(INFO.key, "row without campaign"))?;
    let m = row.metrics.as_ref();
    Ok(CampaignRow {
        campaign_id: campaign.id.to_string(),
        campaign_name: campaign.name.clone().unwrap_or_default(),
        status: campaign.status.clone().unwrap_or_else(|| "UNSPECIFIED".into()),
        date: row.date(INFO.key)?,
        spend: m.map_or(0, |m| m.cost_micros) as f64 / 1e6,
        impressions: m.map_or(0, |m| m.impressions),
        clicks: m.map_or(0, |m| m.clicks),
        conversions: m.map_or(0.0, |m| m.conversions),
        conversion_value: m.map_or(0.0, |m| m.conversions_value),
        currency: row.currency().unwrap_or(currency).to_string(),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn classify(status: u16, body: &str) -> Verdict {
        Speech.classify("google_ads", StatusCode::from_u16(status).unwrap(), &HeaderMap::new(), body.as_bytes())
    }

    fn ads_error(code: u16, status: &str, family: &str, reason: &str, details: &str) -> String {
        format!(
            r#"{{"error":{{"code":{code},"message":"m","status":"{status}","details":[{{"@type":"type.googleapis.com/google.ads.googleads.v23.errors.GoogleAdsFailure","errors":[{{"errorCode":{{"{family}":"{reason}"}},"message":"detail message"{details}}}],"requestId":"rq1"}}]}}}}"#
        )
    }

    #[test]
    fn quota_errors_retry_after_the_retry_delay() {
        let body = ads_error(
            429,
            "RESOURCE_EXHAUSTED",
            "quotaError",
            "RESOURCE_EXHAUSTED",
            r#","details":{"quotaErrorDetails":{"rateScope":"DEVELOPER","retryDelay":"8962s"}}"#,
        );
        let Verdict::Retry(e) = classify(429, &body) else { panic!("quota must retry") };
        assert_eq!(e.kind, ErrorKind::Throttled);
        assert_eq!(e.code.as_deref(), Some("quotaError.RESOURCE_EXHAUSTED"));
        assert_eq!(e.retry_after, Some(Duration::from_secs(8962)));
        assert!(e.message.contains("detail message") && e.message.contains("rq1"), "{}", e.message);
        // The same error wrapped in a stream array.
        let Verdict::Retry(e) = classify(429, &format!("[{body}]")) else { panic!("array-wrapped quota must retry") };
        assert_eq!(e.retry_after, Some(Duration::from_secs(8962)));
    }

    #[test]
    fn auth_and_validation_errors_fail_and_outages_retry() {
        let denied = ads_error(403, "PERMISSION_DENIED", "authorizationError", "USER_PERMISSION_DENIED", "");
        assert!(
            matches!(classify(403, &denied), Verdict::Fail(e) if e.kind == ErrorKind::Auth && e.code.as_deref() == Some("authorizationError.USER_PERMISSION_DENIED"))
        );
        let missing_token = ads_error(400, "INVALID_ARGUMENT", "requestError", "DEVELOPER_TOKEN_PARAMETER_MISSING", "");
        assert!(matches!(classify(400, &missing_token), Verdict::Fail(e) if e.kind == ErrorKind::Auth));
        let bad_query = ads_error(400, "INVALID_ARGUMENT", "queryError", "UNRECOGNIZED_FIELD", "");
        assert!(matches!(classify(400, &bad_query), Verdict::Fail(e) if e.kind == ErrorKind::Invalid));
        let temporary = ads_error(429, "RESOURCE_EXHAUSTED", "quotaError", "RESOURCE_TEMPORARILY_EXHAUSTED", "");
        assert!(matches!(classify(429, &temporary), Verdict::Retry(e) if e.retry_after.is_none()));
        let internal = r#"{"error":{"code":500,"message":"Internal error encountered.","status":"INTERNAL"}}"#;
        assert!(matches!(classify(500, internal), Verdict::Retry(e) if e.kind == ErrorKind::Unavailable));
        assert!(matches!(classify(503, "not json"), Verdict::Retry(_)));
        let unauthenticated = r#"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}"#;
        assert!(matches!(classify(401, unauthenticated), Verdict::Fail(e) if e.kind == ErrorKind::Auth));
    }

    #[test]
    fn an_error_inside_a_200_stream_is_an_error() {
        let body =
            format!(r#"[{{"results":[]}},{}]"#, ads_error(500, "INTERNAL", "internalError", "INTERNAL_ERROR", ""));
        assert!(matches!(classify(200, &body), Verdict::Retry(e) if e.kind == ErrorKind::Unavailable));
        assert!(matches!(
            classify(200, r#"[{"results":[{"campaign":{"name":"\"error\": in a name"}}]}]"#),
            Verdict::Success
        ));
    }

    #[test]
    fn rows_parse_int64_strings_and_omitted_defaults() {
        let row: Row = serde_json::from_str(
            r#"{"customer":{"currencyCode":"EUR"},"metrics":{"costMicros":"25000000","impressions":"82000","conversions":18.5},"segments":{"date":"2026-06-01"}}"#,
        )
        .unwrap();
        let m = row.metrics.as_ref().unwrap();
        assert_eq!((m.cost_micros, m.impressions, m.clicks), (25_000_000, 82_000, 0));
        assert_eq!((m.conversions, m.conversions_value), (18.5, 0.0));
        assert!(serde_json::from_str::<Row>(r#"{"metrics":{"clicks":"many"}}"#).is_err());
    }

    #[test]
    fn missing_lists_unset_credentials_by_name() {
        let s = Settings { developer_token: Some("t".into()), client_id: Some(" ".into()), ..Settings::default() };
        assert_eq!(s.missing(), ["GOOGLE_ADS_CLIENT_ID", "GOOGLE_ADS_CLIENT_SECRET", "GOOGLE_ADS_REFRESH_TOKEN"]);
        assert!(s.sandboxed("http://sim/google-ads").missing().is_empty());
        assert!(!format!("{:?}", Settings { refresh_token: Some("1//secret".into()), ..s }).contains("1//secret"));
    }
}
