//! Meta Marketing API (Graph API) connector: ad account insights, normalised into
//! [`DailyMetrics`], and campaigns. See docs/PLATFORMS.md (Meta).
//!
//! Auth is the `access_token` query parameter (plus `appsecret_proof` when the app
//! secret is configured), as Meta's own SDKs send it. Meta limits per ad account
//! (business use case quotas), so every call names its account: the shared HTTP layer
//! keeps a limiter per account and pauses an account when its usage headers say so.

mod graph;
mod report_job;
mod shapes;

use std::{collections::BTreeMap, fmt, sync::Arc};

use chrono::NaiveDate;
use reqwest::Url;
use serde::{Deserialize, de::DeserializeOwned};

use graph::Graph;
pub(crate) use graph::GraphError;
pub use graph::appsecret_proof;
pub use shapes::{AdAccount, Campaign, InsightsLevel, InsightsRow};
use shapes::{CAMPAIGN_FIELDS, Page, RawRow};

use super::{
    ErrorKind, PlatformError, PlatformInfo, SecretString,
    calls::CallCounter,
    expose,
    http::{Call, HttpSettings, Overrides, PlatformHttp},
};
use crate::domain::limits::LimitStore;
use crate::domain::metrics::DailyMetrics;

pub const INFO: PlatformInfo =
    PlatformInfo { key: "meta", title: "Meta Ads", env_prefix: "META_", sim_prefix: "/meta", ads: true };

/// `META_*` settings.
#[derive(Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// System user (or long-lived user) token with `ads_read`.
    pub access_token: Option<SecretString>,
    /// When set, every request carries `appsecret_proof` (required by apps that enforce it).
    pub app_secret: Option<SecretString>,
    pub api_version: String,
    pub base_url: String,
    /// Requests per second to Meta as a whole.
    pub rate_per_second: Option<f64>,
    pub burst: Option<u32>,
    /// Requests per second to one ad account.
    pub account_rate_per_second: Option<f64>,
    /// First retry backoff in milliseconds (doubles per attempt, with jitter).
    pub retry_base_ms: Option<u64>,
    /// Longest throttle pause (Meta's `estimated_time_to_regain_access`) a call sleeps
    /// through, in seconds; a longer one fails the call at once (default 5).
    pub max_pause_secs: Option<f64>,
    /// Insights over more days than this go through an async report job (default 45).
    pub async_after_days: Option<u32>,
    /// First wait between polls of an async report job, in ms (doubles, up to 15 s; default 1000).
    pub async_poll_ms: Option<u64>,
    /// Longest an async report job is waited for, in seconds (default 300).
    pub async_max_wait_secs: Option<u64>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            access_token: None,
            app_secret: None,
            api_version: "v25.0".into(),
            base_url: "https://graph.facebook.com".into(),
            rate_per_second: None,
            burst: None,
            account_rate_per_second: None,
            retry_base_ms: None,
            max_pause_secs: None,
            async_after_days: None,
            async_poll_ms: None,
            async_max_wait_secs: None,
        }
    }
}

// Hand-written so the token and secret never reach a log line.
impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |v: &Option<SecretString>| v.as_ref().map(|_| "[set]");
        f.debug_struct("Settings")
            .field("access_token", &set(&self.access_token))
            .field("app_secret", &set(&self.app_secret))
            .field("api_version", &self.api_version)
            .field("base_url", &self.base_url)
            .field("rate_per_second", &self.rate_per_second)
            .field("burst", &self.burst)
            .field("account_rate_per_second", &self.account_rate_per_second)
            .field("retry_base_ms", &self.retry_base_ms)
            .field("max_pause_secs", &self.max_pause_secs)
            .field("async_after_days", &self.async_after_days)
            .field("async_poll_ms", &self.async_poll_ms)
            .field("async_max_wait_secs", &self.async_max_wait_secs)
            .finish()
    }
}

/// Platform-wide default: Meta publishes no per-second app limit for the Marketing API
/// (quotas are per ad account and hour), so this only smooths bursts.
const DEFAULT_RATE: f64 = 10.0;
const DEFAULT_BURST: u32 = 10;
/// Ads Insights quota is `600 + 400 × active ads` calls per hour per ad account (Limited
/// access); 1/s (3,600/h) suits an account with ~8 active ads. Usage headers pause earlier.
const DEFAULT_ACCOUNT_RATE: f64 = 1.0;
const PAGE_SIZE: u32 = 100;
const DEFAULT_ASYNC_AFTER_DAYS: u32 = 45;
/// Guards against a platform that keeps answering with a `next` link.
const MAX_PAGES: usize = 1_000;

impl Settings {
    pub fn missing(&self) -> Vec<&'static str> {
        let unset = |v: &Option<SecretString>| expose(v).is_none_or(|s| s.trim().is_empty());
        if unset(&self.access_token) { vec!["META_ACCESS_TOKEN"] } else { vec![] }
    }

    pub fn sandboxed(&self, base: &str) -> Self {
        Self {
            base_url: base.to_string(),
            access_token: Some("sandbox-token".into()),
            app_secret: Some("sandbox-app-secret".into()),
            ..self.clone()
        }
    }

    fn http(&self) -> HttpSettings {
        Overrides {
            rate_per_second: self.rate_per_second,
            burst: self.burst,
            account_rate_per_second: self.account_rate_per_second,
            max_attempts: None,
            retry_base_ms: self.retry_base_ms,
            max_wait_secs: None,
        }
        .apply(HttpSettings::new(DEFAULT_RATE, DEFAULT_BURST).per_account(DEFAULT_ACCOUNT_RATE))
        .max_pause_secs(self.max_pause_secs)
    }

    /// Ranges longer than this go async: a daily breakdown over months is what Meta's sync
    /// insights time out on (100/1504018, 2/1504038), and async jobs are Meta's advice.
    fn async_after_days(&self) -> i64 {
        i64::from(self.async_after_days.unwrap_or(DEFAULT_ASYNC_AFTER_DAYS))
    }
}

// ---------------------------------------------------------------------------------------
// Client

pub struct Meta {
    http: PlatformHttp,
    settings: Settings,
    proof: Option<String>,
}

impl super::Platform for Meta {
    const INFO: PlatformInfo = INFO;
    type Settings = Settings;
    type Sim = crate::sim::meta::State;

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
    fn api_version(settings: &Settings) -> Option<String> {
        Some(settings.api_version.clone())
    }
    fn sunset_on(settings: &Settings) -> Option<chrono::NaiveDate> {
        super::graph_sunset(&settings.api_version)
    }
}

impl Meta {
    pub fn new(settings: &Settings) -> Self {
        let token = expose(&settings.access_token).unwrap_or_default();
        let proof = expose(&settings.app_secret).filter(|s| !s.is_empty()).map(|secret| appsecret_proof(secret, token));
        let secrets = [expose(&settings.access_token), expose(&settings.app_secret), proof.as_deref()]
            .into_iter()
            .flatten()
            .map(String::from)
            .collect();
        Self {
            http: PlatformHttp::new(INFO.key, settings.http(), Arc::new(Graph), secrets),
            settings: settings.clone(),
            proof,
        }
    }

    pub fn http(&self) -> &PlatformHttp {
        &self.http
    }

    /// One [`DailyMetrics`] per day from `from` to `to` (inclusive) for an ad account
    /// (`act_<digits>` or the bare digits). Days Meta has no row for (no delivery) are zero.
    pub async fn daily_insights(
        &self,
        account: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DailyMetrics>, PlatformError> {
        let rows = self.insights_report(account, from, to, InsightsLevel::Account).await?;
        let currency = match rows.iter().find(|r| !r.currency.is_empty()) {
            Some(row) => row.currency.clone(),
            None => self.account(account).await?.currency,
        };
        let mut days: BTreeMap<NaiveDate, DailyMetrics> = from
            .iter_days()
            .take_while(|d| *d <= to)
            .map(|date| {
                let zero = DailyMetrics {
                    date,
                    spend: 0.0,
                    impressions: 0,
                    clicks: 0,
                    link_clicks: 0,
                    conversions: 0.0,
                    conversion_value: 0.0,
                    currency: currency.clone(),
                };
                (date, zero)
            })
            .collect();
        for row in rows {
            if let Some(day) = days.get_mut(&row.date) {
                day.spend += row.spend;
                day.impressions += row.impressions;
                day.clicks += row.clicks;
                day.link_clicks += row.link_clicks;
                day.conversions += row.conversions;
                day.conversion_value += row.conversion_value;
            }
        }
        Ok(days.into_values().collect())
    }

    /// Daily insights rows (`time_increment=1`) at `level`, every page. Ranges longer than
    /// `META_ASYNC_AFTER_DAYS` go through an async report job; a sync request that Meta
    /// answers with a timeout (100/1504018, 2/1504038) is never sent again unchanged but
    /// asked again as an async job (Meta's advice on its Insights error-codes page).
    pub async fn insights_report(
        &self,
        account: &str,
        from: NaiveDate,
        to: NaiveDate,
        level: InsightsLevel,
    ) -> Result<Vec<InsightsRow>, PlatformError> {
        let node = account_node(account)?;
        if from > to {
            return Err(PlatformError::new(INFO.key, ErrorKind::Invalid, format!("empty date range {from}..{to}")));
        }
        let mut fields = String::from(
            "spend,impressions,clicks,inline_link_clicks,actions,action_values,purchase_roas,account_currency",
        );
        if level == InsightsLevel::Campaign {
            fields.insert_str(0, "campaign_id,campaign_name,");
        }
        let time_range = serde_json::json!({"since": from.to_string(), "until": to.to_string()}).to_string();
        let query = [
            ("level", level.as_str().to_string()),
            ("fields", fields),
            ("time_range", time_range),
            ("time_increment", "1".into()),
        ];
        let days = (to - from).num_days() + 1;
        let rows: Vec<RawRow> = if days > self.settings.async_after_days() {
            self.report_job(&node, &query).await?
        } else {
            let mut params = query.to_vec();
            params.push(("limit", PAGE_SIZE.to_string()));
            match self.collect::<RawRow>("insights", &node, &format!("{node}/insights"), &params).await {
                Err(e) if report_job::sync_timed_out(&e) => {
                    tracing::warn!(account = %node, days, error = %e, "sync insights timed out; asking for an async report job");
                    self.report_job(&node, &query).await?
                }
                other => other?,
            }
        };
        Ok(rows.into_iter().map(InsightsRow::from).collect())
    }

    /// Every campaign of the ad account, every page.
    pub async fn campaigns(&self, account: &str) -> Result<Vec<Campaign>, PlatformError> {
        let node = account_node(account)?;
        let params = [("fields", CAMPAIGN_FIELDS.to_string()), ("limit", PAGE_SIZE.to_string())];
        self.collect("campaigns", &node, &format!("{node}/campaigns"), &params).await
    }

    /// The ad account's name, currency and time zone.
    pub async fn account(&self, account: &str) -> Result<AdAccount, PlatformError> {
        let node = account_node(account)?;
        let url = self.url(&node, &[("fields", "id,name,currency,timezone_name".to_string())])?;
        self.http.send(Call::new("ad_account").account(&node), |c| c.get(url.clone())).await?.json()
    }

    /// Follows `paging.next` until it is absent (Meta's only end-of-list signal).
    async fn collect<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        node: &str,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<Vec<T>, PlatformError> {
        let mut url = self.url(path, params)?;
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let reply = self.http.send(Call::new(endpoint).account(node), |c| c.get(url.clone())).await?;
            let page: Page<T> = reply.json()?;
            out.extend(page.data);
            match page.paging.and_then(|p| p.next) {
                Some(next) => url = self.next_url(&next)?,
                None => return Ok(out),
            }
        }
        Err(PlatformError::malformed(INFO.key, format!("more than {MAX_PAGES} pages from {endpoint}")))
    }

    fn token(&self) -> Result<&str, PlatformError> {
        match expose(&self.settings.access_token) {
            Some(token) if !token.trim().is_empty() => Ok(token),
            _ => Err(PlatformError::not_configured(INFO.key, &self.settings.missing())),
        }
    }

    fn url(&self, path: &str, params: &[(&str, String)]) -> Result<Url, PlatformError> {
        let raw = format!("{}/{}/{path}", self.settings.base_url.trim_end_matches('/'), self.settings.api_version);
        let mut url = Url::parse(&raw)
            .map_err(|e| PlatformError::new(INFO.key, ErrorKind::NotConfigured, format!("META_BASE_URL: {e}")))?;
        url.query_pairs_mut().extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
        self.authorize(&mut url)?;
        Ok(url)
    }

    /// `paging.next` already holds every parameter; we only make sure the credentials
    /// in it are ours, and refuse to send them to another host.
    fn next_url(&self, next: &str) -> Result<Url, PlatformError> {
        let mut url = Url::parse(next).map_err(|e| PlatformError::malformed(INFO.key, format!("paging.next {e}")))?;
        let base = Url::parse(&self.settings.base_url)
            .map_err(|e| PlatformError::new(INFO.key, ErrorKind::NotConfigured, e.to_string()))?;
        if url.origin() != base.origin() {
            return Err(PlatformError::malformed(
                INFO.key,
                format!("paging.next points at another host ({})", url.origin().ascii_serialization()),
            ));
        }
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "access_token" && k != "appsecret_proof")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.query_pairs_mut().clear().extend_pairs(kept);
        self.authorize(&mut url)?;
        Ok(url)
    }

    fn authorize(&self, url: &mut Url) -> Result<(), PlatformError> {
        let token = self.token()?;
        let mut query = url.query_pairs_mut();
        query.append_pair("access_token", token);
        if let Some(proof) = &self.proof {
            query.append_pair("appsecret_proof", proof);
        }
        Ok(())
    }
}

/// `act_<digits>` from `act_<digits>` or `<digits>`.
fn account_node(account: &str) -> Result<String, PlatformError> {
    let account = account.trim();
    let digits = account.strip_prefix("act_").unwrap_or(account);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PlatformError::new(
            INFO.key,
            ErrorKind::Invalid,
            format!("`{account}` is not an ad account id (act_<digits>)"),
        ));
    }
    Ok(format!("act_{digits}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_parse_strings_and_pick_one_purchase_family() {
        let row: RawRow = serde_json::from_value(serde_json::json!({
            "campaign_id": "1", "campaign_name": "Summer", "spend": "100.50", "impressions": "10000", "clicks": 250,
            "inline_link_clicks": "230",
            "actions": [{"action_type": "link_click", "value": "230"}, {"action_type": "purchase", "value": "20"},
                        {"action_type": "omni_purchase", "value": "21"}, {"action_type": "offsite_conversion.fb_pixel_purchase", "value": "19"}],
            "action_values": [{"action_type": "purchase", "value": "1500.00"}],
            "purchase_roas": [{"action_type": "omni_purchase", "value": "14.925373"}],
            "account_currency": "EUR", "date_start": "2026-06-01", "date_stop": "2026-06-01"
        }))
        .unwrap();
        let row = InsightsRow::from(row);
        assert_eq!((row.spend, row.impressions, row.clicks, row.link_clicks), (100.5, 10000, 250, 230));
        assert_eq!(row.conversions, 21.0, "omni_purchase only, never the sum");
        assert_eq!(row.conversion_value, 1500.0);
        assert_eq!(row.purchase_roas, Some(14.925373));
        assert_eq!((row.currency.as_str(), row.campaign_id.as_deref()), ("EUR", Some("1")));
        let bare: RawRow =
            serde_json::from_value(serde_json::json!({"date_start": "2026-06-02", "spend": "0"})).unwrap();
        assert_eq!(InsightsRow::from(bare).conversions, 0.0);
        assert!(
            serde_json::from_value::<RawRow>(serde_json::json!({"date_start": "2026-06-02", "spend": "lots"})).is_err()
        );
    }

    #[test]
    fn account_ids_are_normalised() {
        assert_eq!(account_node("act_123").unwrap(), "act_123");
        assert_eq!(account_node(" 123 ").unwrap(), "act_123");
        assert_eq!(account_node("act_12a").unwrap_err().kind, ErrorKind::Invalid);
        assert!(account_node("").is_err());
    }

    #[test]
    fn next_links_carry_our_credentials_and_stay_on_the_host() {
        let settings = Settings {
            access_token: Some("tok".into()),
            app_secret: Some("sec".into()),
            base_url: "http://127.0.0.1:9/meta".into(),
            ..Settings::default()
        };
        let meta = Meta::new(&settings);
        let next =
            meta.next_url("http://127.0.0.1:9/meta/v25.0/act_1/insights?limit=2&access_token=old&after=QQ").unwrap();
        let pairs: Vec<(String, String)> = next.query_pairs().into_owned().collect();
        assert!(pairs.contains(&("after".into(), "QQ".into())));
        assert_eq!(pairs.iter().filter(|(k, _)| k == "access_token").count(), 1);
        assert!(pairs.contains(&("access_token".into(), "tok".into())));
        assert!(pairs.contains(&("appsecret_proof".into(), appsecret_proof("sec", "tok"))));
        let err = meta.next_url("https://evil.example/v25.0/act_1/insights").unwrap_err();
        assert_eq!(err.kind, ErrorKind::MalformedResponse);
    }

    #[test]
    fn settings_name_missing_credentials_and_hide_them() {
        assert_eq!(Settings::default().missing(), vec!["META_ACCESS_TOKEN"]);
        let set = Settings { access_token: Some("EAAsecret".into()), ..Settings::default() };
        assert!(set.missing().is_empty());
        assert!(!format!("{set:?}").contains("EAAsecret"));
        let vars = [
            ("META_ACCESS_TOKEN".to_string(), "t".to_string()),
            ("META_ACCOUNT_RATE_PER_SECOND".to_string(), "2.5".to_string()),
        ];
        let parsed: Settings = envy::prefixed("META_").from_iter(vars).unwrap();
        assert_eq!((parsed.account_rate_per_second, parsed.api_version.as_str()), (Some(2.5), "v25.0"));
    }
}
