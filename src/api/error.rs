//! The one error type of the HTTP boundary, rendered as RFC 9457 problem details
//! with a stable machine `code`. Internal causes are logged, never returned.

use axum::{
    http::{HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    auth::AuthError,
    domain::validation::FieldError,
    operations::Refusal,
    platforms::{ErrorKind, PlatformError},
};

/// Problem details (RFC 9457). `instance` and `request_id` are filled in by the
/// problem middleware, which knows the request.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:switchboard:problem:validation_failed",
    "title": "Unprocessable Content",
    "status": 422,
    "detail": "The request has invalid fields.",
    "instance": "/v1/clients",
    "code": "validation_failed",
    "request_id": "0b9f6f1e-1d47-4b8e-9a53-8f4f1f7d2c11",
    "errors": [{"field": "accounts.meta", "message": "Meta ad account id must be digits, optionally prefixed with act_ (e.g. act_1234567890)"}]
}))]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub instance: Option<String>,
    /// Stable machine-readable code, e.g. `validation_failed`, `not_found`, `slug_taken`.
    pub code: String,
    pub request_id: Option<String>,
    pub errors: Vec<FieldError>,
    /// For `code = platform_error`: what the platform said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<PlatformProblem>,
}

pub use crate::platforms::PlatformProblem;

/// Marks a response as a problem so the middleware can complete and type it.
#[derive(Clone, Copy)]
pub struct ProblemMarker;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Logged, never shown.
    pub source: Option<anyhow::Error>,
    /// Boxed: rare, and it would make every `ApiResult` larger.
    pub platform: Option<Box<PlatformProblem>>,
}

pub type ApiResult<T> = Result<T, ApiError>;

/// `Retry-After` of a `database_timeout` answer.
const DATABASE_RETRY_AFTER_SECS: u64 = 2;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self { status, code, detail: detail.into(), errors: vec![], headers: vec![], source: None, platform: None }
    }

    pub fn with_field(mut self, field: impl Into<String>, message: impl Into<String>) -> Self {
        self.errors.push(FieldError::new(field, message));
        self
    }

    pub fn with_header(mut self, name: HeaderName, value: impl TryInto<HeaderValue>) -> Self {
        if let Ok(v) = value.try_into() {
            self.headers.push((name, v));
        }
        self
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            _ => format!("The request has {} invalid fields.", errors.len()),
        };
        Self { errors, ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", detail) }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, detail)
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"switchboard\""))
    }

    pub fn forbidden_scope(scope: crate::domain::scope::Scope) -> Self {
        Self::new(StatusCode::FORBIDDEN, "missing_scope", format!("This token lacks the `{scope}` scope."))
    }

    pub fn internal(source: impl Into<anyhow::Error>) -> Self {
        Self {
            source: Some(source.into()),
            ..Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "An internal error occurred; it has been logged.",
            )
        }
    }

    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("urn:switchboard:problem:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error").to_string(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            instance: None,
            code: self.code.to_string(),
            request_id: None,
            errors: self.errors.clone(),
            platform: self.platform.as_deref().cloned(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self.source {
            Some(source) => tracing::error!(error = ?source, code = self.code, "request failed"),
            None => tracing::debug!(code = self.code, detail = %self.detail, "request rejected"),
        }
        let mut response = (self.status, axum::Json(self.problem())).into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response.extensions_mut().insert(ProblemMarker);
        response
    }
}

impl From<sqlx::Error> for ApiError {
    /// 409 for unique and foreign-key violations, as `store::constraints` maps each
    /// constraint; 503 with `Retry-After` when a statement hit
    /// `statement_timeout` (a lock or an overloaded database; trying again can help).
    fn from(e: sqlx::Error) -> Self {
        if crate::store::query_canceled(&e) {
            tracing::warn!(error = %e, "a database statement timed out");
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_timeout",
                "The database did not answer in time; try again shortly.",
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from(DATABASE_RETRY_AFTER_SECS));
        }
        if let Some(answer) = crate::store::constraints::answer(&e) {
            let conflict = ApiError::conflict(answer.code, answer.detail);
            return match answer.field {
                Some((field, message)) => conflict.with_field(field, message),
                None => conflict,
            };
        }
        ApiError::internal(e)
    }
}

impl From<Refusal> for ApiError {
    fn from(e: Refusal) -> Self {
        match e {
            Refusal::NotFound(what) => ApiError::not_found(what),
            Refusal::Invalid(errors) => ApiError::invalid(errors),
            Refusal::Database(e) => e.into(),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        match e.downcast::<sqlx::Error>() {
            Ok(db) => db.into(),
            Err(e) => ApiError::internal(e),
        }
    }
}

impl From<PlatformError> for ApiError {
    /// 429 when the platform throttled us, 503 when it is down or not configured, or
    /// when it asked for a pause longer than a request may wait (a deferred call: answered
    /// at once instead of holding the request), 502 for everything else it refused;
    /// `Retry-After` when waiting can help (the platform's remaining pause when it said).
    fn from(e: PlatformError) -> Self {
        let status = match e.kind {
            _ if e.deferred => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Throttled => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::Transport | ErrorKind::NotConfigured => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::BAD_GATEWAY,
        };
        let mut err = ApiError::new(status, "platform_error", e.to_string());
        if e.retryable {
            let secs = e.retry_after.map(|d| d.as_secs_f64().ceil() as u64).unwrap_or(5).max(1);
            err = err.with_header(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        err.platform = Some(Box::new(PlatformProblem::from(&e)));
        err
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let code = match &e {
            AuthError::Invalid => "invalid_token",
            AuthError::Expired => "token_expired",
            AuthError::WrongAudience => "invalid_audience",
            AuthError::Revoked => "token_revoked",
            AuthError::Unknown => "unknown_token",
            AuthError::Database(_) => return ApiError::internal(e),
        };
        ApiError::unauthorized(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_cause() {
        let e = ApiError::internal(anyhow::anyhow!("password=hunter2 in SQL"));
        let p = e.problem();
        assert_eq!(p.status, 500);
        assert!(!p.detail.contains("hunter2"));
    }

    #[test]
    fn a_deferred_platform_call_answers_503_with_the_remaining_pause() {
        let paused = PlatformError::new("meta", ErrorKind::Throttled, "act_1 is paused")
            .deferred(std::time::Duration::from_secs_f64(1799.2));
        let e = ApiError::from(paused);
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(e.headers.contains(&(header::RETRY_AFTER, HeaderValue::from(1800u64))), "{:?}", e.headers);
        assert_eq!(e.platform.as_ref().map(|p| p.kind), Some(ErrorKind::Throttled));
        // A throttle the layer retried until it gave up stays a 429.
        let throttled = PlatformError::new("meta", ErrorKind::Throttled, "slow down");
        assert_eq!(ApiError::from(throttled).status, StatusCode::TOO_MANY_REQUESTS);
    }

    #[test]
    fn one_invalid_field_is_named_in_the_detail() {
        let e = ApiError::invalid(vec![FieldError::new("name", "must not be empty")]);
        assert_eq!(e.problem().detail, "name: must not be empty");
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}
