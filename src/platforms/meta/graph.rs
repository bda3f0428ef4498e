//! What every Graph API answer shares (Meta Marketing and WhatsApp Cloud alike): the
//! `{"error": {...}}` envelope, the usage headers (§1.6–1.7) and `appsecret_proof`.

use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::{StatusCode, header::HeaderMap};
use serde::Deserialize;
use sha2::Sha256;

use crate::platforms::{
    ErrorKind, PlatformError,
    http::{Dialect, Verdict, default_classify, retry_after},
};

/// `hex(HMAC-SHA256(key = app_secret, msg = access_token))`.
pub fn appsecret_proof(app_secret: &str, access_token: &str) -> String {
    hex::encode(hmac_sha256(app_secret.as_bytes(), access_token.as_bytes()))
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

// ---------------------------------------------------------------------------------------
// Error envelope and usage headers

/// `{"error": {...}}` as Graph answers it.
#[derive(Debug, Deserialize)]
pub(crate) struct GraphErrorBody {
    pub error: GraphError,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct GraphError {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub code: i64,
    pub error_subcode: Option<i64>,
    pub error_user_msg: Option<String>,
    pub fbtrace_id: Option<String>,
    pub is_transient: bool,
    /// WhatsApp: `{messaging_product, details}`; kept loose because other Graph APIs vary.
    pub error_data: Option<serde_json::Value>,
}

impl GraphError {
    pub fn parse(body: &[u8]) -> Option<Self> {
        serde_json::from_slice::<GraphErrorBody>(body).ok().map(|b| b.error)
    }

    /// `code/subcode`, or `code` alone.
    pub fn code_string(&self) -> String {
        match self.error_subcode {
            Some(sub) => format!("{}/{sub}", self.code),
            None => self.code.to_string(),
        }
    }

    pub fn describe(&self) -> String {
        let mut text = self.message.clone();
        if let Some(details) = self.error_data.as_ref().and_then(|d| d.get("details")).and_then(|d| d.as_str()) {
            text.push_str(&format!(": {details}"));
        }
        if let Some(user) = self.error_user_msg.as_deref().filter(|m| !m.is_empty()) {
            text.push_str(&format!(" — {user}"));
        }
        if !self.kind.is_empty() {
            text.push_str(&format!(" [{}]", self.kind));
        }
        if let Some(trace) = &self.fbtrace_id {
            text.push_str(&format!(" (fbtrace_id {trace})"));
        }
        text
    }

    pub fn into_error(self, platform: &'static str, kind: ErrorKind, status: StatusCode) -> PlatformError {
        PlatformError::new(platform, kind, self.describe()).status(status.as_u16()).code(self.code_string())
    }
}

/// What Meta's usage headers say (§1.7): utilisation in percent, waits in minutes/seconds.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Usage {
    /// Highest utilisation of any counter in any usage header.
    pub max_pct: f64,
    /// `X-Business-Use-Case-Usage.estimated_time_to_regain_access`, minutes.
    pub regain_minutes: f64,
    /// `X-Ad-Account-Usage.reset_time_duration`, seconds.
    pub reset_seconds: f64,
}

/// Meta asks to stop before 100 %: calls made while throttled extend the block.
const PAUSE_AT_PCT: f64 = 95.0;
const DEFAULT_PAUSE: Duration = Duration::from_secs(60);

impl Usage {
    pub fn read(headers: &HeaderMap) -> Self {
        let json =
            |name: &str| -> Option<serde_json::Value> { serde_json::from_str(headers.get(name)?.to_str().ok()?).ok() };
        let num = |v: &serde_json::Value, key: &str| -> f64 {
            match v.get(key) {
                Some(serde_json::Value::Number(n)) => n.as_f64().unwrap_or(0.0),
                Some(serde_json::Value::String(s)) => s.trim().parse().unwrap_or(0.0),
                _ => 0.0,
            }
        };
        let (mut regain_minutes, mut reset_seconds, mut max_pct) = (0.0f64, 0.0f64, 0.0f64);
        let mut pct = |v: f64| max_pct = max_pct.max(v);
        // Keyed by business object id, each an array of per-use-case counters.
        if let Some(serde_json::Value::Object(objects)) = json("x-business-use-case-usage") {
            for entry in objects.values().filter_map(|v| v.as_array()).flatten() {
                ["call_count", "total_cputime", "total_time"].iter().for_each(|k| pct(num(entry, k)));
                regain_minutes = regain_minutes.max(num(entry, "estimated_time_to_regain_access"));
            }
        }
        if let Some(account) = json("x-ad-account-usage") {
            pct(num(&account, "acc_id_util_pct"));
            reset_seconds = reset_seconds.max(num(&account, "reset_time_duration"));
        }
        if let Some(insights) = json("x-fb-ads-insights-throttle") {
            pct(num(&insights, "app_id_util_pct"));
            pct(num(&insights, "acc_id_util_pct"));
        }
        if let Some(app) = json("x-app-usage") {
            ["call_count", "total_cputime", "total_time"].iter().for_each(|k| pct(num(&app, k)));
        }
        Usage { max_pct, regain_minutes, reset_seconds }
    }

    /// How long to leave the account alone: the platform's regain estimate, else (near the
    /// limit) until the account's usage resets, else a minute.
    pub fn pause(&self) -> Option<Duration> {
        if self.regain_minutes > 0.0 {
            return Some(Duration::from_secs_f64(self.regain_minutes * 60.0));
        }
        if self.max_pct >= PAUSE_AT_PCT {
            return Some(if self.reset_seconds > 0.0 {
                Duration::from_secs_f64(self.reset_seconds)
            } else {
                DEFAULT_PAUSE
            });
        }
        None
    }
}

/// Insights `100/1504018` "Request Timed Out" (sync): try a smaller range or an async job.
pub(crate) const SYNC_TIMED_OUT: i64 = 1504018;
/// Insights `2/1504038` "Request Timed Out" (sync), the same advice.
pub(crate) const SYNC_TIMED_OUT_2: i64 = 1504038;

/// How Meta Marketing API errors read (§1.6): keyed on `error.code`, not the HTTP status.
pub(crate) struct Graph;

impl Dialect for Graph {
    fn classify(&self, platform: &'static str, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
        if status.is_success() {
            return Verdict::Success;
        }
        let Some(error) = GraphError::parse(body) else {
            return default_classify(platform, status, headers, body);
        };
        // Insights (developers.facebook.com/documentation/ads-commerce/marketing-api/insights/error-codes):
        // a sync timeout must not be sent again unchanged (the connector switches to an async
        // report job), and invalid breakdowns / custom metrics never succeed on a retry.
        match (error.code, error.error_subcode) {
            (100, Some(SYNC_TIMED_OUT)) | (2, Some(SYNC_TIMED_OUT_2)) => {
                return Verdict::Fail(error.into_error(platform, ErrorKind::Timeout, status).retryable(false));
            }
            (2, Some(1504041 | 1504042)) => {
                return Verdict::Fail(error.into_error(platform, ErrorKind::Invalid, status).retryable(false));
            }
            _ => {}
        }
        let kind = match error.code {
            4 | 17 | 32 | 613 | 80000..=80014 => ErrorKind::Throttled,
            1 | 2 => ErrorKind::Unavailable,
            190 | 102 | 10 | 200..=299 => ErrorKind::Auth,
            100 => ErrorKind::Invalid,
            // Temporarily blocked for policy reasons: retrying only extends the block.
            368 => ErrorKind::Rejected,
            803 => ErrorKind::NotFound,
            _ if error.is_transient || status.is_server_error() => ErrorKind::Unavailable,
            _ => PlatformError::from_status(platform, status.as_u16(), "").kind,
        };
        let wait = retry_after(headers).or_else(|| Usage::read(headers).pause());
        let error = error.into_error(platform, kind, status);
        match kind {
            ErrorKind::Throttled => Verdict::Retry(error.retry_after(wait)),
            ErrorKind::Unavailable | ErrorKind::Timeout => Verdict::Retry(error),
            _ => Verdict::Fail(error.retryable(false)),
        }
    }

    fn pause_for(&self, headers: &HeaderMap) -> Option<Duration> {
        Usage::read(headers).pause()
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (reqwest::header::HeaderName::from_static(k), HeaderValue::from_str(v).unwrap()))
            .collect()
    }

    fn verdict(status: u16, body: &str, h: &HeaderMap) -> Verdict {
        Graph.classify("meta", StatusCode::from_u16(status).unwrap(), h, body.as_bytes())
    }

    fn error(code: i64, subcode: Option<i64>) -> String {
        serde_json::json!({"error": {"message": "m", "type": "OAuthException", "code": code, "error_subcode": subcode, "fbtrace_id": "T"}})
            .to_string()
    }

    #[test]
    fn appsecret_proof_matches_the_reference_vector() {
        assert_eq!(
            appsecret_proof("app_secret_123", "EAAB_test_token"),
            "e2ccb2c8515532f9e3afd5eebab2e34890322b05e55e903a8ae8a555beeeefad"
        );
    }

    #[test]
    fn classifies_graph_error_codes() {
        let none = HeaderMap::new();
        for code in [4, 17, 32, 613, 80000, 80004, 80014] {
            match verdict(400, &error(code, Some(2446079)), &none) {
                Verdict::Retry(e) => assert_eq!(e.kind, ErrorKind::Throttled, "{code}"),
                _ => panic!("{code} should be retried"),
            }
        }
        for (status, code) in [(500, 1), (503, 2), (500, 999)] {
            assert!(
                matches!(verdict(status, &error(code, None), &none), Verdict::Retry(e) if e.kind == ErrorKind::Unavailable)
            );
        }
        for code in [190, 102, 10, 200, 299] {
            assert!(
                matches!(verdict(400, &error(code, Some(463)), &none), Verdict::Fail(e) if e.kind == ErrorKind::Auth && !e.retryable)
            );
        }
        match verdict(400, &error(100, Some(33)), &none) {
            Verdict::Fail(e) => {
                assert_eq!(e.kind, ErrorKind::Invalid);
                assert_eq!(e.code.as_deref(), Some("100/33"));
                assert!(e.message.contains("fbtrace_id T"), "{}", e.message);
            }
            _ => panic!("100 must fail"),
        }
        // Not a Graph body: the HTTP status decides.
        assert!(matches!(verdict(502, "<html>", &none), Verdict::Retry(_)));
    }

    /// The Insights error-code table (developers.facebook.com/documentation/ads-commerce/marketing-api/
    /// insights/error-codes): sync timeouts and invalid breakdowns/metrics are never retried unchanged;
    /// the intermittent error and the async "Report Failed" are.
    #[test]
    fn insights_error_codes_follow_metas_table() {
        let none = HeaderMap::new();
        for (status, code, sub) in [(400, 100, 1504018), (500, 2, 1504038)] {
            match verdict(status, &error(code, Some(sub)), &none) {
                Verdict::Fail(e) => {
                    assert_eq!((e.kind, e.retryable), (ErrorKind::Timeout, false));
                    assert_eq!(e.code, Some(format!("{code}/{sub}")));
                }
                _ => panic!("{code}/{sub} must not be retried unchanged"),
            }
        }
        for sub in [1504041, 1504042] {
            assert!(
                matches!(verdict(500, &error(2, Some(sub)), &none), Verdict::Fail(e) if e.kind == ErrorKind::Invalid && !e.retryable)
            );
        }
        for (code, sub) in [(2, 1504043), (-2, 2490547)] {
            assert!(matches!(verdict(500, &error(code, Some(sub)), &none), Verdict::Retry(_)), "{code}/{sub}");
        }
    }

    #[test]
    fn throttle_waits_as_long_as_the_usage_headers_say() {
        let buc = headers(&[(
            "x-business-use-case-usage",
            r#"{"1":[{"type":"ads_insights","call_count":100,"estimated_time_to_regain_access":2}]}"#,
        )]);
        match verdict(400, &error(80000, Some(2446079)), &buc) {
            Verdict::Retry(e) => assert_eq!(e.retry_after, Some(Duration::from_secs(120))),
            _ => panic!("throttle must retry"),
        }
        match verdict(400, &error(17, None), &HeaderMap::new()) {
            Verdict::Retry(e) => assert_eq!(e.retry_after, None),
            _ => panic!("throttle must retry"),
        }
    }

    #[test]
    fn usage_headers_pause_near_the_limit() {
        let calm = headers(&[
            (
                "x-business-use-case-usage",
                r#"{"10153848260347724":[{"type":"ads_insights","call_count":97,"total_cputime":23,"total_time":23,"estimated_time_to_regain_access":0}]}"#,
            ),
            ("x-ad-account-usage", r#"{"acc_id_util_pct":9.67,"reset_time_duration":100}"#),
        ]);
        assert_eq!(Usage::read(&calm).max_pct, 97.0);
        assert_eq!(Graph.pause_for(&calm), Some(Duration::from_secs(100)));
        let low = headers(&[("x-ad-account-usage", r#"{"acc_id_util_pct":9.67,"reset_time_duration":100}"#)]);
        assert_eq!(Graph.pause_for(&low), None);
        let regain = headers(&[(
            "x-business-use-case-usage",
            r#"{"1":[{"type":"ads_insights","call_count":3,"estimated_time_to_regain_access":5}]}"#,
        )]);
        assert_eq!(Graph.pause_for(&regain), Some(Duration::from_secs(300)));
        let app = headers(&[("x-app-usage", r#"{"call_count":99,"total_time":1,"total_cputime":1}"#)]);
        assert_eq!(Graph.pause_for(&app), Some(DEFAULT_PAUSE));
        assert_eq!(Graph.pause_for(&headers(&[("x-ad-account-usage", "not json")])), None);
    }
}
