//! One error type for every platform call, keeping what the platform said.

use std::time::Duration;

/// What went wrong, in terms a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Credentials missing, invalid or expired (re-authenticate; do not retry).
    Auth,
    /// The platform throttled us (retry later).
    Throttled,
    /// The request was refused as invalid (fix it; do not retry).
    Invalid,
    NotFound,
    /// The platform failed or is unavailable (5xx; retry).
    Unavailable,
    Timeout,
    /// Could not connect or the connection broke.
    Transport,
    /// The platform answered something we cannot parse.
    MalformedResponse,
    /// The platform refused for a business reason (e.g. WhatsApp 131047, outside the 24 h window).
    Rejected,
    /// The platform is not configured here.
    NotConfigured,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{platform}: {message}{}", code.as_deref().map(|c| format!(" (code {c})")).unwrap_or_default())]
pub struct PlatformError {
    pub platform: &'static str,
    pub kind: ErrorKind,
    /// HTTP status the platform answered, if it answered.
    pub status: Option<u16>,
    /// The platform's own error code (e.g. Meta `80000/2446079`, ClickUp `OAUTH_025`).
    pub code: Option<String>,
    pub message: String,
    /// Whether trying again later can succeed.
    pub retryable: bool,
    /// How long the platform asked us to wait, when it said.
    pub retry_after: Option<Duration>,
    /// The platform asked for a pause longer than a call may wait (`HttpSettings::max_pause`),
    /// so the call failed at once instead of sleeping: try again after `retry_after`. A workflow
    /// task goes back to the queue for that long; an API request answers 503 with `Retry-After`.
    pub deferred: bool,
}

/// A platform's failure, as told to a caller (an API problem's `platform`, a sync's
/// per-platform `error`): what the platform said, without our own message.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PlatformProblem {
    #[schema(value_type = super::PlatformKey, example = "meta")]
    pub name: String,
    /// What kind of failure.
    #[schema(example = "throttled")]
    pub kind: ErrorKind,
    /// The HTTP status the platform answered, if it answered.
    pub status: Option<u16>,
    /// The platform's own error code.
    #[schema(example = "80000/2446079")]
    pub code: Option<String>,
    /// Whether trying again later can help.
    pub retryable: bool,
}

impl From<&PlatformError> for PlatformProblem {
    fn from(e: &PlatformError) -> Self {
        Self {
            name: e.platform.to_string(),
            kind: e.kind,
            status: e.status,
            code: e.code.clone(),
            retryable: e.retryable,
        }
    }
}

impl PlatformError {
    pub fn new(platform: &'static str, kind: ErrorKind, message: impl Into<String>) -> Self {
        let retryable =
            matches!(kind, ErrorKind::Throttled | ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::Transport);
        Self {
            platform,
            kind,
            status: None,
            code: None,
            message: message.into(),
            retryable,
            retry_after: None,
            deferred: false,
        }
    }

    /// A call not made, or not retried, because the platform asked us to stay away for `wait`
    /// (longer than a call may wait): throttled, retryable after `wait`.
    pub fn deferred(self, wait: Duration) -> Self {
        Self { kind: ErrorKind::Throttled, retryable: true, retry_after: Some(wait), deferred: true, ..self }
    }

    pub fn status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub fn code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    pub fn retry_after(mut self, after: Option<Duration>) -> Self {
        self.retry_after = after;
        self
    }

    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// The usual meaning of an HTTP status when the body says nothing more precise.
    pub fn from_status(platform: &'static str, status: u16, message: impl Into<String>) -> Self {
        let kind = match status {
            401 | 403 => ErrorKind::Auth,
            404 => ErrorKind::NotFound,
            408 | 504 => ErrorKind::Timeout,
            429 => ErrorKind::Throttled,
            s if s >= 500 => ErrorKind::Unavailable,
            _ => ErrorKind::Invalid,
        };
        Self::new(platform, kind, message).status(status)
    }

    pub fn malformed(platform: &'static str, what: impl std::fmt::Display) -> Self {
        Self::new(platform, ErrorKind::MalformedResponse, format!("unexpected response: {what}"))
    }

    pub fn not_configured(platform: &'static str, missing: &[&str]) -> Self {
        Self::new(platform, ErrorKind::NotConfigured, format!("not configured: set {}", missing.join(", ")))
    }
}
