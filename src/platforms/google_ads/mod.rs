//! Google Ads API (REST): daily account totals through `googleAds:searchStream`
//! and a per-campaign daily report through `googleAds:search` (paged with
//! `nextPageToken`). Auth is the agency user's refresh token (see `google_auth`)
//! plus the developer token and, when acting through a manager account, the
//! `login-customer-id` header.
//!
//! Split by job: [`versions`] (which API versions exist and when they sunset),
//! [`report`] (reading rows), [`errors`] (Google's error envelope).

mod errors;
mod report;
pub mod versions;

use std::{fmt, sync::Arc};

use chrono::{NaiveDate, Utc};
use serde::Deserialize;

pub use self::report::CampaignRow;
use self::{
    errors::Speech,
    report::{SearchPage, StreamBatch},
};
use super::{
    PlatformInfo, SecretString,
    calls::CallCounter,
    error::{ErrorKind, PlatformError},
    google_auth::{RefreshTokenSource, TOKEN_URL, non_empty, non_empty_secret},
    http::{Call, HttpSettings, Overrides, PlatformHttp, Reply},
};
use crate::domain::limits::LimitStore;
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
            // Majors come quarterly and last about a year (see `versions`); override with GOOGLE_ADS_API_VERSION.
            api_version: versions::DEFAULT_VERSION.into(),
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

    fn connect(settings: &Settings, calls: &Arc<CallCounter>, limits: &Arc<dyn LimitStore>) -> Self {
        let mut client = Self::new(settings);
        client.http.count_into(calls);
        client.http.share_limits(limits);
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
    fn api_version(settings: &Settings) -> Option<String> {
        Some(settings.api_version.trim_matches('/').to_string())
    }
    fn sunset_on(settings: &Settings) -> Option<NaiveDate> {
        match versions::lookup(settings.api_version.trim_matches('/')) {
            versions::Known::Listed(v) => Some(v.sunset),
            _ => None,
        }
    }
    fn not_ready(settings: &Settings, today: NaiveDate) -> Vec<String> {
        versions::refusal(settings.api_version.trim_matches('/'), today).into_iter().collect()
    }
    fn warnings(settings: &Settings, today: NaiveDate) -> Vec<String> {
        versions::sunset_warning(settings.api_version.trim_matches('/'), today).into_iter().collect()
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

    /// Account totals per day (days without delivery are absent), via `searchStream`,
    /// through the configured manager account (`GOOGLE_ADS_LOGIN_CUSTOMER_ID`), if any.
    pub async fn daily_metrics(
        &self,
        customer_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DailyMetrics>, PlatformError> {
        self.daily_metrics_via(None, customer_id, from, to).await
    }

    /// [`Self::daily_metrics`] acting through `manager` (the client's own manager account,
    /// sent as `login-customer-id`); `None` falls back to `GOOGLE_ADS_LOGIN_CUSTOMER_ID`.
    pub async fn daily_metrics_via(
        &self,
        manager: Option<&str>,
        customer_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DailyMetrics>, PlatformError> {
        let target = self.check(manager, customer_id, from, to)?;
        let query = format!(
            "SELECT customer.currency_code, segments.date, metrics.cost_micros, metrics.impressions, metrics.clicks, \
             metrics.conversions, metrics.conversions_value FROM customer WHERE segments.date BETWEEN '{from}' AND '{to}'"
        );
        let reply = self.post("search_stream", &target, "searchStream", &serde_json::json!({ "query": query })).await?;
        let batches: Vec<StreamBatch> = reply.json()?;
        report::daily_totals(batches)
    }

    /// One row per campaign and day, via `search`, following `nextPageToken`.
    pub async fn campaign_report(
        &self,
        customer_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<CampaignRow>, PlatformError> {
        self.campaign_report_via(None, customer_id, from, to).await
    }

    /// [`Self::campaign_report`] acting through `manager` (see [`Self::daily_metrics_via`]).
    pub async fn campaign_report_via(
        &self,
        manager: Option<&str>,
        customer_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<CampaignRow>, PlatformError> {
        let target = self.check(manager, customer_id, from, to)?;
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
            let page: SearchPage = self.post("search", &target, "search", &body).await?.json()?;
            rows.extend(page.results);
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(next) if Some(&next) == page_token.as_ref() => {
                    return Err(PlatformError::malformed(INFO.key, "search returned the same nextPageToken twice"));
                }
                Some(next) => page_token = Some(next),
                None => return report::campaign_rows(&rows),
            }
        }
        Err(PlatformError::malformed(INFO.key, format!("search did not end after {MAX_PAGES} pages")))
    }

    /// The settings are usable, the API version is not sunset, the ids are customer ids
    /// and the range is a range. Nothing is sent when any of these fails.
    fn check(
        &self,
        manager: Option<&str>,
        customer_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Target, PlatformError> {
        if let Some(e) = &self.unusable {
            return Err(e.clone());
        }
        if let Some(why) = versions::refusal(&self.api_version, Utc::now().date_naive()) {
            return Err(PlatformError::new(INFO.key, ErrorKind::NotConfigured, why));
        }
        let customer = crate::domain::client::google_ads_customer(customer_id.trim()).ok_or_else(|| {
            PlatformError::new(
                INFO.key,
                ErrorKind::Invalid,
                format!("customer id `{customer_id}` is not 10 digits (123-456-7890 or 1234567890)"),
            )
        })?;
        let login = match manager.map(str::trim).filter(|m| !m.is_empty()) {
            None => self.login_customer_id.clone(),
            Some(m) => Some(crate::domain::client::google_ads_customer(m).ok_or_else(|| {
                PlatformError::new(
                    INFO.key,
                    ErrorKind::Invalid,
                    format!("manager account id `{m}` is not 10 digits (123-456-7890 or 1234567890)"),
                )
            })?),
        };
        if from > to {
            return Err(PlatformError::new(
                INFO.key,
                ErrorKind::Invalid,
                format!("date range {from}..{to} ends before it starts"),
            ));
        }
        Ok(Target { customer, login })
    }

    /// POSTs a GAQL request; a 401 on a cached token (revoked or expired early) refreshes once.
    async fn post(
        &self,
        endpoint: &'static str,
        target: &Target,
        method: &str,
        body: &serde_json::Value,
    ) -> Result<Reply, PlatformError> {
        let url = format!("{}/{}/customers/{}/googleAds:{method}", self.base_url, self.api_version, target.customer);
        let mut refreshed = false;
        loop {
            let (token, fresh) = self.auth.token().await?;
            let result = self
                .http
                .send(Call::new(endpoint).account(&target.customer), |c| {
                    let request =
                        c.post(&url).bearer_auth(&token).header("developer-token", &self.developer_token).json(body);
                    match &target.login {
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

/// Who a call is about (`customers/{customer}`) and which manager it acts through.
struct Target {
    customer: String,
    login: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_lists_unset_credentials_by_name() {
        let s = Settings { developer_token: Some("t".into()), client_id: Some(" ".into()), ..Settings::default() };
        assert_eq!(s.missing(), ["GOOGLE_ADS_CLIENT_ID", "GOOGLE_ADS_CLIENT_SECRET", "GOOGLE_ADS_REFRESH_TOKEN"]);
        assert!(s.sandboxed("http://sim/google-ads").missing().is_empty());
        assert!(!format!("{:?}", Settings { refresh_token: Some("1//secret".into()), ..s }).contains("1//secret"));
    }
}
