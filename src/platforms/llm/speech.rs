//! How each provider speaks when something is wrong: its error bodies, its retry hints
//! and its rate-limit headers.
//!
//! Anthropic (platform.claude.com/docs/en/api/errors): `{"type":"error","error":{"type",
//! "message","details"?},"request_id"}`. A spend limit the organisation or workspace set
//! answers **400** `invalid_request_error` ("You have reached your specified API usage
//! limits…", access resumes at a stated date); a depleted prepaid balance answers 400 "Your
//! credit balance is too low…"; the usage tier's monthly cap answers 429 `rate_limit_error`
//! with `details.error_code = "enforced_spend_limit_reached"` and no `retry-after`
//! (platform.claude.com/docs/api/rate-limits). None of them clears by retrying, so they are
//! `Rejected` with a code naming them. 529 `overloaded_error` and 5xx are retried, and so
//! are 408/409/429, as the official SDKs do, unless the `x-should-retry` header says
//! otherwise (anthropics/anthropic-sdk-python `_base_client.py` `_should_retry`).
//!
//! OpenAI (developers.openai.com/api/docs/guides/error-codes): `{"error":{"message","type",
//! "param","code"}}`; 429 `insufficient_quota` (out of credit) is `Rejected`, other 429s wait.

use std::time::Duration;

use reqwest::{StatusCode, header::HeaderMap};
use serde_json::Value;

use super::Provider;
use crate::platforms::{
    error::{ErrorKind, PlatformError},
    http::{Dialect, Verdict, retry_after},
};

/// Our code for Anthropic's 400 on a spend limit the organisation or workspace set
/// (the vendor sends only `invalid_request_error`, told apart by its message).
pub const SPEND_LIMIT_REACHED: &str = "spend_limit_reached";
/// Our code for Anthropic's 400 on a depleted prepaid credit balance.
pub const CREDIT_BALANCE_TOO_LOW: &str = "credit_balance_too_low";

/// Each provider's error body and rate-limit headers.
pub(super) struct Speech(pub(super) Provider);

impl Dialect for Speech {
    fn classify(&self, platform: &'static str, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
        if status.is_success() {
            return Verdict::Success;
        }
        let error = match self.0 {
            Provider::Anthropic => anthropic_error(platform, status.as_u16(), body),
            Provider::OpenAi => openai_error(platform, status.as_u16(), body),
        };
        // A billing stop never clears by retrying, whatever a header says.
        let billing = error.kind == ErrorKind::Rejected;
        let error = match should_retry(headers) {
            Some(retry) if !billing => error.retryable(retry),
            _ => error,
        };
        let error = if error.retryable { error.retry_after(wait_hint(headers)) } else { error };
        if error.retryable { Verdict::Retry(error) } else { Verdict::Fail(error) }
    }

    /// A spent request or token budget: wait for its reset rather than earn a 429.
    fn pause_for(&self, headers: &HeaderMap) -> Option<Duration> {
        let header = |name: String| headers.get(name.as_str()).and_then(|v| v.to_str().ok()).map(str::trim);
        let (kinds, prefix): (&[&str], &str) = match self.0 {
            Provider::Anthropic => (&["requests", "tokens", "input-tokens", "output-tokens"], "anthropic-ratelimit-"),
            Provider::OpenAi => (&["requests", "tokens"], "x-ratelimit-"),
        };
        kinds
            .iter()
            .filter_map(|kind| {
                let (remaining, reset) = match self.0 {
                    Provider::Anthropic => {
                        (header(format!("{prefix}{kind}-remaining"))?, header(format!("{prefix}{kind}-reset"))?)
                    }
                    Provider::OpenAi => {
                        (header(format!("{prefix}remaining-{kind}"))?, header(format!("{prefix}reset-{kind}"))?)
                    }
                };
                if remaining != "0" {
                    return None;
                }
                match self.0 {
                    Provider::Anthropic => until_rfc3339(reset),
                    Provider::OpenAi => go_duration(reset),
                }
            })
            .max()
            .map(|d| d.min(Duration::from_secs(60)))
    }
}

/// `x-should-retry: true|false`, the server's own verdict, which the SDKs obey first.
fn should_retry(headers: &HeaderMap) -> Option<bool> {
    match headers.get("x-should-retry")?.to_str().ok()?.trim() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// `retry-after-ms` (the SDKs read it first), else `retry-after` in seconds.
fn wait_hint(headers: &HeaderMap) -> Option<Duration> {
    let ms = headers.get("retry-after-ms").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<f64>().ok());
    match ms {
        Some(ms) if ms.is_finite() && ms >= 0.0 => Some(Duration::from_secs_f64(ms / 1000.0)),
        _ => retry_after(headers),
    }
}

fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(300)]).to_string()
}

/// `{"type":"error","error":{"type","message","details"?}}`.
fn anthropic_error(platform: &'static str, status: u16, body: &[u8]) -> PlatformError {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error = &parsed["error"];
    let kind = error["type"].as_str().unwrap_or_default().to_string();
    let message =
        error["message"].as_str().map(str::to_string).unwrap_or_else(|| format!("HTTP {status}: {}", snippet(body)));
    let detail = error["details"]["error_code"].as_str();
    let rejected =
        |code: &str| PlatformError::new(platform, ErrorKind::Rejected, message.clone()).status(status).code(code);
    let mut e = match (status, detail) {
        // The tier's monthly cap: no retry-after, and it holds until the next month.
        (429, Some(code @ "enforced_spend_limit_reached")) => rejected(code),
        (400, _) if is_spend_limit(&message) => rejected(SPEND_LIMIT_REACHED),
        (400, _) if message.starts_with("Your credit balance is too low") => rejected(CREDIT_BALANCE_TOO_LOW),
        (402, _) => rejected("billing_error"),
        // 409 conflict_error: the SDKs retry it (the resource was busy).
        (409, _) => PlatformError::new(platform, ErrorKind::Unavailable, message.clone()).status(status),
        // 529 overloaded_error, 500 api_error, 504 timeout_error: from_status makes them retryable.
        _ => PlatformError::from_status(platform, status, message.clone()),
    };
    if e.code.is_none() && !kind.is_empty() {
        e = e.code(kind);
    }
    e
}

/// The organisation's ("You have reached your specified API usage limits") or a workspace's
/// ("… specified workspace API usage limits") own spend limit.
fn is_spend_limit(message: &str) -> bool {
    message.starts_with("You have reached your specified") && message.contains("API usage limits")
}

/// `{"error":{"message","type","param","code"}}`.
fn openai_error(platform: &'static str, status: u16, body: &[u8]) -> PlatformError {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error = &parsed["error"];
    let message =
        error["message"].as_str().map(str::to_string).unwrap_or_else(|| format!("HTTP {status}: {}", snippet(body)));
    let code = error["code"].as_str().or_else(|| error["type"].as_str()).map(str::to_string);
    let quota =
        error["code"].as_str() == Some("insufficient_quota") || error["type"].as_str() == Some("insufficient_quota");
    let e = if status == 429 && quota {
        // Out of credit: retrying only burns attempts.
        PlatformError::new(platform, ErrorKind::Rejected, message).status(status)
    } else {
        PlatformError::from_status(platform, status, message)
    };
    match code {
        Some(code) => e.code(code),
        None => e,
    }
}

/// Time until an RFC 3339 instant (Anthropic's `*-reset` headers).
fn until_rfc3339(value: &str) -> Option<Duration> {
    let at = chrono::DateTime::parse_from_rfc3339(value).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().ok()
}

/// Go-style durations as OpenAI sends them: `12ms`, `6s`, `1m0s`, `1h2m3.5s`.
fn go_duration(value: &str) -> Option<Duration> {
    let mut total = 0.0;
    let mut rest = value.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let factor = match &rest[..unit_end] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += number * factor;
        rest = &rest[unit_end..];
    }
    Some(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(provider: Provider, status: u16, headers: &HeaderMap, body: &str) -> Verdict {
        Speech(provider).classify("llm", StatusCode::from_u16(status).unwrap(), headers, body.as_bytes())
    }

    fn with(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (reqwest::header::HeaderName::from_static(k), v.parse().unwrap())).collect()
    }

    #[test]
    fn anthropic_errors() {
        let h = with(&[("retry-after", "7")]);
        let rate = r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of requests has exceeded your rate limit"}}"#;
        assert!(matches!(classify(Provider::Anthropic, 429, &h, rate),
            Verdict::Retry(e) if e.kind == ErrorKind::Throttled && e.retry_after == Some(Duration::from_secs(7)) && e.code.as_deref() == Some("rate_limit_error")));
        // platform.claude.com/docs/api/rate-limits: the tier's monthly spend cap.
        let cap = r#"{"type":"error","error":{"type":"rate_limit_error","message":"You have reached your API usage limits: your organization has crossed its monthly API usage threshold, set based on your organization's API tier. You will regain access on 2026-09-01 at 00:00 UTC.","details":{"error_code":"enforced_spend_limit_reached"}},"request_id":"req_018EeWyXxfu5pfWkrYcMdjWG"}"#;
        assert!(matches!(classify(Provider::Anthropic, 429, &HeaderMap::new(), cap),
            Verdict::Fail(e) if e.kind == ErrorKind::Rejected && e.code.as_deref() == Some("enforced_spend_limit_reached")));
        let overloaded = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert!(
            matches!(classify(Provider::Anthropic, 529, &HeaderMap::new(), overloaded), Verdict::Retry(e) if e.kind == ErrorKind::Unavailable)
        );
        assert!(
            matches!(classify(Provider::Anthropic, 403, &HeaderMap::new(), "{}"), Verdict::Fail(e) if e.kind == ErrorKind::Auth)
        );
        assert!(
            matches!(classify(Provider::Anthropic, 413, &HeaderMap::new(), "<html>too large</html>"), Verdict::Fail(e) if e.kind == ErrorKind::Invalid)
        );
    }

    /// platform.claude.com/docs/en/api/errors: a spend limit you set answers 400; so does an empty balance.
    #[test]
    fn anthropic_billing_400s_are_named_and_never_retried() {
        let spend = r#"{"type":"error","error":{"type":"invalid_request_error","message":"You have reached your specified API usage limits. You will regain access on 2026-12-01 at 00:00 UTC."},"request_id":"req_011CYwZjVSiJTexyaHTWcaqh"}"#;
        // Even a server saying "retry" does not make a billing stop worth another attempt.
        let told = with(&[("x-should-retry", "true")]);
        assert!(matches!(classify(Provider::Anthropic, 400, &told, spend),
            Verdict::Fail(e) if e.kind == ErrorKind::Rejected && e.code.as_deref() == Some(SPEND_LIMIT_REACHED) && e.message.contains("regain access")));
        let workspace = r#"{"type":"error","error":{"type":"invalid_request_error","message":"You have reached your specified workspace API usage limits. You will regain access on 2026-12-01 at 00:00 UTC."}}"#;
        assert!(matches!(classify(Provider::Anthropic, 400, &HeaderMap::new(), workspace),
            Verdict::Fail(e) if e.code.as_deref() == Some(SPEND_LIMIT_REACHED)));
        let credit = r#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."}}"#;
        assert!(matches!(classify(Provider::Anthropic, 400, &HeaderMap::new(), credit),
            Verdict::Fail(e) if e.kind == ErrorKind::Rejected && e.code.as_deref() == Some(CREDIT_BALANCE_TOO_LOW)));
        let plain =
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"}}"#;
        assert!(matches!(classify(Provider::Anthropic, 400, &HeaderMap::new(), plain),
            Verdict::Fail(e) if e.kind == ErrorKind::Invalid && e.code.as_deref() == Some("invalid_request_error")));
    }

    /// The SDKs retry 409 and obey `x-should-retry`, and read `retry-after-ms` first.
    #[test]
    fn conflicts_and_the_servers_retry_verdict() {
        let conflict = r#"{"type":"error","error":{"type":"conflict_error","message":"conflict"}}"#;
        assert!(matches!(classify(Provider::Anthropic, 409, &HeaderMap::new(), conflict),
            Verdict::Retry(e) if e.code.as_deref() == Some("conflict_error")));
        let overloaded = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert!(matches!(
            classify(Provider::Anthropic, 529, &with(&[("x-should-retry", "false")]), overloaded),
            Verdict::Fail(_)
        ));
        let bad = r#"{"type":"error","error":{"type":"invalid_request_error","message":"try again"}}"#;
        let retry = with(&[("x-should-retry", "true"), ("retry-after-ms", "250"), ("retry-after", "9")]);
        assert!(matches!(classify(Provider::Anthropic, 400, &retry, bad),
            Verdict::Retry(e) if e.retry_after == Some(Duration::from_millis(250))));
    }

    #[test]
    fn openai_errors() {
        let quota = r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
        assert!(
            matches!(classify(Provider::OpenAi, 429, &HeaderMap::new(), quota), Verdict::Fail(e) if e.kind == ErrorKind::Rejected && !e.retryable)
        );
        let rate = r#"{"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
        assert!(
            matches!(classify(Provider::OpenAi, 429, &HeaderMap::new(), rate), Verdict::Retry(e) if e.code.as_deref() == Some("rate_limit_exceeded"))
        );
        let key = r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
        assert!(
            matches!(classify(Provider::OpenAi, 401, &HeaderMap::new(), key), Verdict::Fail(e) if e.kind == ErrorKind::Auth)
        );
        assert!(matches!(classify(Provider::OpenAi, 503, &HeaderMap::new(), ""), Verdict::Retry(_)));
    }

    #[test]
    fn pauses_when_a_budget_is_spent() {
        let h = with(&[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "1m0s"),
            ("x-ratelimit-remaining-tokens", "150000"),
            ("x-ratelimit-reset-tokens", "6s"),
        ]);
        assert_eq!(Speech(Provider::OpenAi).pause_for(&h), Some(Duration::from_secs(60)));
        let reset = (chrono::Utc::now() + chrono::Duration::seconds(20)).to_rfc3339();
        let a = with(&[
            ("anthropic-ratelimit-tokens-remaining", "0"),
            ("anthropic-ratelimit-tokens-reset", &reset),
            ("anthropic-ratelimit-requests-remaining", "10"),
        ]);
        let pause = Speech(Provider::Anthropic).pause_for(&a).unwrap();
        assert!(pause > Duration::from_secs(15) && pause <= Duration::from_secs(20), "{pause:?}");
        assert_eq!(Speech(Provider::Anthropic).pause_for(&HeaderMap::new()), None);
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("12ms"), Some(Duration::from_millis(12)));
        assert_eq!(go_duration("1m30.5s"), Some(Duration::from_millis(90_500)));
        assert_eq!(go_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(go_duration("soon"), None);
        assert_eq!(go_duration(""), None);
    }
}
