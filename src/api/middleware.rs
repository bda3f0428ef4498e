//! Cross-cutting HTTP middleware: completing problem bodies, and request metrics.

use std::time::Instant;

use axum::{
    body::Body,
    extract::{MatchedPath, Request},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::error::{ApiError, ProblemMarker};

/// Fills `instance` and `request_id` into problem bodies, turns bare framework
/// errors (405, 408, 413...) into problems, and picks the content type:
/// `application/problem+json` only when the client asks for it (Make parses only
/// `application/json`).
pub async fn problems(req: Request, next: Next) -> Response {
    let wants_problem_json = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/problem+json"));
    let path = req.uri().path().to_string();
    let request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(String::from);
    let response = next.run(req).await;

    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let mut problem = if parts.extensions.get::<ProblemMarker>().is_some() {
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
        serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or_default()
    } else {
        serde_json::to_value(bare_error(status).problem()).unwrap_or_default()
    };
    if let Some(obj) = problem.as_object_mut() {
        obj.insert("instance".into(), path.into());
        obj.insert("request_id".into(), request_id.into());
    }
    let content_type = if wants_problem_json { "application/problem+json" } else { "application/json" };
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(serde_json::to_vec(&problem).unwrap_or_default()))
}

fn bare_error(status: StatusCode) -> ApiError {
    match status {
        StatusCode::NOT_FOUND => ApiError::not_found("No such route."),
        StatusCode::METHOD_NOT_ALLOWED => {
            ApiError::new(status, "method_not_allowed", "This route does not accept this method.")
        }
        StatusCode::REQUEST_TIMEOUT => ApiError::new(status, "timeout", "The request took too long and was stopped."),
        StatusCode::PAYLOAD_TOO_LARGE => super::extract::too_large(),
        s if s.is_server_error() => ApiError::new(s, "internal", "An internal error occurred; it has been logged."),
        s => ApiError::new(s, "error", s.canonical_reason().unwrap_or("Error")),
    }
}

/// Counts requests and records latency by route template and status.
pub async fn metrics(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    // Route templates and status codes come from the router, not the caller.
    let labels = [("method", method.to_string()), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    response
}

/// Longest `X-Request-Id` taken from a caller.
pub const MAX_REQUEST_ID: usize = 128;

/// Drops a caller's `X-Request-Id` that is too long or holds anything but letters,
/// digits and `-_.:/+=`, so a fresh one is generated instead: the id is written to
/// logs and audit rows, which must not take arbitrary text from a caller.
pub async fn request_id_guard(mut req: Request, next: Next) -> Response {
    let acceptable = |v: &HeaderValue| {
        let b = v.as_bytes();
        !b.is_empty()
            && b.len() <= MAX_REQUEST_ID
            && b.iter().all(|c| c.is_ascii_alphanumeric() || b"-_.:/+=".contains(c))
    };
    if req.headers().get_all("x-request-id").iter().count() > 1
        || req.headers().get("x-request-id").is_some_and(|v| !acceptable(v))
    {
        req.headers_mut().remove("x-request-id");
    }
    next.run(req).await
}

/// A fixed set of method labels: any other method (HTTP allows custom tokens)
/// would otherwise create a new series per spelling, kept forever.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Fallback for unknown routes.
pub async fn not_found() -> impl IntoResponse {
    ApiError::not_found("No such route. The API lives under /v1; see /docs.")
}
