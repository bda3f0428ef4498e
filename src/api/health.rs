//! `/healthz`, `/readyz` and `/metrics`: for load balancers, orchestrators and Prometheus.

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::error::{ApiError, Problem};
use crate::{api::AppState, store};

pub const TAG: &str = "system";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz)).routes(routes!(metrics))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
    #[schema(example = "0.1.0")]
    pub version: &'static str,
}

/// Liveness
///
/// The process is up. Does not touch the database.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = TAG, security(()),
    responses((status = 200, description = "Up", body = Health)))]
async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok", version: env!("CARGO_PKG_VERSION") })
}

/// Readiness
///
/// The database answers and every migration this build knows is applied.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = TAG, security(()),
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Database unreachable or migrations missing", body = Problem, extensions(("x-problem-codes" = json!(["not_ready"])))),
    ))]
async fn readyz(State(state): State<AppState>) -> Result<axum::Json<Health>, ApiError> {
    let not_ready = |why: &str| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", why.to_string());
    let applied = store::applied_migrations(&state.pool)
        .await
        .map_err(|_| not_ready("The database is unreachable or not migrated."))?;
    if store::MIGRATOR.iter().any(|m| !applied.contains(&m.version)) {
        return Err(not_ready("Migrations are pending; run `switchboard migrate`."));
    }
    Ok(axum::Json(Health { status: "ready", version: env!("CARGO_PKG_VERSION") }))
}

/// Prometheus metrics
///
/// Request counts and latency histograms by route and status, in the Prometheus text format.
/// When `METRICS_TOKEN` is set, send it as `Authorization: Bearer <METRICS_TOKEN>` (an API
/// token does not work here); otherwise the endpoint is open.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = TAG, security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
        (status = 401, description = "METRICS_TOKEN is set and the request lacks it", body = Problem, extensions(("x-problem-codes" = json!(["invalid_metrics_token"])))),
    ))]
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<impl IntoResponse, ApiError> {
    if let Some(expected) = &state.config.metrics_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !same_secret(given, secrecy::ExposeSecret::expose_secret(expected)) {
            return Err(ApiError::unauthorized(
                "invalid_metrics_token",
                "This endpoint needs `Authorization: Bearer <METRICS_TOKEN>`.",
            ));
        }
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()))
}

/// Constant-time comparison; hashing first makes the time independent of the lengths too.
fn same_secret(given: &str, expected: &str) -> bool {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    Sha256::digest(given.as_bytes()).ct_eq(&Sha256::digest(expected.as_bytes())).into()
}
