//! Alerts raised by the monitoring: list, read, acknowledge, resolve.

use axum::extract::{Path, State};
use serde::Deserialize;
use sqlx::PgConnection;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    auth::Caller,
    clients,
    error::{ApiError, ApiResult, Problem},
    extract::{ApiQuery, NoQuery},
    pagination::{self, Page},
};
use crate::{
    api::AppState,
    domain::scope::Scope,
    store::{
        self,
        alerts::{Alert, AlertFilter, AlertKind, AlertStatus, Severity},
    },
};

pub const TAG: &str = "alerts";
const CURSOR: &str = "alerts";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_alerts))
        .routes(routes!(get_alert))
        .routes(routes!(acknowledge_alert))
        .routes(routes!(resolve_alert))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("No alert `{id}`."))
}

/// A malformed id names no alert: 404, like an unknown one.
fn parse_id(id: &str) -> Option<Uuid> {
    Uuid::parse_str(id).ok()
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListAlertsQuery {
    /// Only this client's alerts (id or slug).
    client: Option<String>,
    /// `open`, `acknowledged` or `resolved`.
    status: Option<AlertStatus>,
    /// Only alerts of this kind.
    kind: Option<AlertKind>,
    /// `info`, `warning` or `critical`.
    severity: Option<Severity>,
    /// Only alerts first raised by this run.
    run: Option<Uuid>,
    /// Page size, 1–500 (default 50).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// List alerts
///
/// Newest first. The monitoring raises one alert per (client, kind, subject, day):
/// running it again for the same day updates the figures but never duplicates an
/// alert or resets its status.
#[utoipa::path(
    get, path = "/v1/alerts", operation_id = "listAlerts", tag = TAG,
    params(ListAlertsQuery),
    responses(
        (status = 200, description = "A page of alerts", body = Page<Alert>),
        (status = 400, description = "Bad query parameter", body = Problem),
        (status = 403, description = "Missing scope `clients:read`", body = Problem),
        (status = 404, description = "No such client", body = Problem),
    )
)]
async fn list_alerts(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListAlertsQuery>,
) -> ApiResult<axum::Json<Page<Alert>>> {
    caller.require(Scope::ClientsRead)?;
    let limit = pagination::limit(q.limit)?;
    let before = pagination::decode_uuid(CURSOR, q.cursor.as_deref())?;
    let mut conn = state.pool.acquire().await?;
    let client_id = match q.client.as_deref() {
        Some(raw) => Some(clients::load(&mut conn, raw, false).await?.id),
        None => None,
    };
    let filter = AlertFilter {
        client_id,
        status: q.status,
        kind: q.kind.map(|k| k.as_str().to_string()),
        severity: q.severity,
        run_id: q.run,
    };
    let rows = store::alerts::list(&mut conn, &filter, before, i64::from(limit) + 1).await?;
    Ok(axum::Json(pagination::page(rows, limit, CURSOR, |a| a.id)))
}

/// Get an alert
///
/// The alert with its figures (`data`) and where it is in its life (`status`,
/// `acknowledged_at`, `resolved_at`).
#[utoipa::path(
    get, path = "/v1/alerts/{id}", operation_id = "getAlert", tag = TAG,
    params(("id" = Uuid, Path, description = "Alert id")),
    responses(
        (status = 200, description = "The alert", body = Alert),
        (status = 403, description = "Missing scope `clients:read`", body = Problem),
        (status = 404, description = "No such alert", body = Problem),
    )
)]
async fn get_alert(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    _: ApiQuery<NoQuery>,
) -> ApiResult<axum::Json<Alert>> {
    caller.require(Scope::ClientsRead)?;
    let uuid = parse_id(&id).ok_or_else(|| not_found(&id))?;
    let mut conn = state.pool.acquire().await?;
    store::alerts::find(&mut conn, uuid).await?.map(axum::Json).ok_or_else(|| not_found(&id))
}

/// Applies a status change: a no-op (200, nothing audited) when the alert is already
/// there; `invalid_transition` (409) when it cannot go there from where it is.
async fn transition(conn: &mut PgConnection, caller: &Caller, id: &str, to: AlertStatus) -> ApiResult<Alert> {
    let uuid = parse_id(id).ok_or_else(|| not_found(id))?;
    let before = store::alerts::find_for_update(conn, uuid).await?.ok_or_else(|| not_found(id))?;
    if before.status == to {
        return Ok(before);
    }
    let allowed = matches!(
        (before.status, to),
        (AlertStatus::Open, AlertStatus::Acknowledged)
            | (AlertStatus::Open | AlertStatus::Acknowledged, AlertStatus::Resolved)
    );
    if !allowed {
        return Err(ApiError::conflict(
            "invalid_transition",
            format!("The alert is {}; it cannot become {}.", before.status.as_str(), to.as_str()),
        ));
    }
    let after = store::alerts::set_status(conn, uuid, to).await?;
    let action = match to {
        AlertStatus::Acknowledged => "alert.acknowledge",
        AlertStatus::Resolved => "alert.resolve",
        AlertStatus::Open => "alert.reopen",
    };
    store::audit::record(conn, &caller.actor(), action, "alert", &uuid.to_string(), Some(&before), Some(&after))
        .await?;
    Ok(after)
}

/// Acknowledge an alert
///
/// `open` → `acknowledged`. Acknowledging an acknowledged alert changes nothing
/// (200); a resolved alert cannot be acknowledged (409 `invalid_transition`).
#[utoipa::path(
    post, path = "/v1/alerts/{id}/acknowledge", operation_id = "acknowledgeAlert", tag = TAG,
    params(
        ("id" = Uuid, Path, description = "Alert id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first response."),
    ),
    responses(
        (status = 200, description = "The acknowledged alert", body = Alert),
        (status = 403, description = "Missing scope `clients:write`", body = Problem),
        (status = 404, description = "No such alert", body = Problem),
        (status = 409, description = "The alert is resolved (`invalid_transition`)", body = Problem, extensions(("x-problem-codes" = json!(["invalid_transition"])))),
    )
)]
async fn acknowledge_alert(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    _: ApiQuery<NoQuery>,
) -> ApiResult<axum::Json<Alert>> {
    caller.require(Scope::ClientsWrite)?;
    let mut tx = state.pool.begin().await?;
    let alert = transition(&mut tx, &caller, &id, AlertStatus::Acknowledged).await?;
    tx.commit().await?;
    Ok(axum::Json(alert))
}

/// Resolve an alert
///
/// `open` or `acknowledged` → `resolved`. Resolving a resolved alert changes nothing (200).
#[utoipa::path(
    post, path = "/v1/alerts/{id}/resolve", operation_id = "resolveAlert", tag = TAG,
    params(
        ("id" = Uuid, Path, description = "Alert id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first response."),
    ),
    responses(
        (status = 200, description = "The resolved alert", body = Alert),
        (status = 403, description = "Missing scope `clients:write`", body = Problem),
        (status = 404, description = "No such alert", body = Problem),
    )
)]
async fn resolve_alert(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    _: ApiQuery<NoQuery>,
) -> ApiResult<axum::Json<Alert>> {
    caller.require(Scope::ClientsWrite)?;
    let mut tx = state.pool.begin().await?;
    let alert = transition(&mut tx, &caller, &id, AlertStatus::Resolved).await?;
    tx.commit().await?;
    Ok(axum::Json(alert))
}
