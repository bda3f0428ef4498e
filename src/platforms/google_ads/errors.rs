//! Google's error envelope (`google.rpc.Status` with a `GoogleAdsFailure` detail) and
//! what each error means for a retry.

use std::collections::BTreeMap;

use reqwest::{StatusCode, header::HeaderMap};
use serde::Deserialize;

use crate::platforms::{
    error::{ErrorKind, PlatformError},
    google_auth::parse_duration,
    http::{Dialect, Verdict},
};

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

pub(super) struct Speech;

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
            None => crate::platforms::http::default_classify(platform, status, headers, body),
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
        .or_else(|| crate::platforms::http::retry_after(headers));
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
}
