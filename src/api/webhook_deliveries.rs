//! `/v1/webhook-endpoints/{id}/deliveries` and `/v1/deliveries/{id}/retry`: an
//! endpoint's delivery log (every attempt, what it answered) and manual redelivery.
//! Both need `webhooks:write`; a redelivery is audited.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    auth::Caller,
    error::{ApiError, ApiResult, Problem},
    extract::{ApiQuery, NoQuery},
    pagination::{self, Page},
    webhooks::{TAG, load, parse_id},
};
use crate::{
    api::AppState,
    domain::{
        events::{DeliveryState, DeliveryStatus},
        scope::Scope,
    },
    store::{
        self,
        deliveries::{self, DeliveryRow},
        webhook_endpoints as endpoints,
    },
};

const DELIVERY_CURSOR: &str = "deliveries";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_deliveries)).routes(routes!(retry_delivery))
}

/// One attempt of a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    #[serde(with = "crate::domain::timestamp")]
    #[schema(value_type = String)]
    pub attempted_at: DateTime<Utc>,
    /// The HTTP status answered (`null`: no answer, see `error`).
    pub status: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
    /// The first 500 characters of the answer.
    pub response_excerpt: Option<String>,
}

/// One event's delivery to one endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub event_id: Uuid,
    #[schema(value_type = crate::api::openapi::EventTypeName, example = "alert.created")]
    pub event_type: String,
    /// `pending` (waiting for its next attempt), `delivering` (an attempt in flight),
    /// `succeeded` or `failed` (out of attempts, or the endpoint was disabled).
    pub status: DeliveryState,
    /// Attempts made so far.
    pub attempts: i32,
    /// When it is tried next (`pending` only).
    #[serde(with = "crate::domain::timestamp::option")]
    #[schema(value_type = Option<String>)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    #[serde(with = "crate::domain::timestamp")]
    #[schema(value_type = String)]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::domain::timestamp::option")]
    #[schema(value_type = Option<String>)]
    pub delivered_at: Option<DateTime<Utc>>,
    /// Every attempt, oldest first.
    pub attempt_log: Vec<AttemptView>,
}

async fn views(conn: &mut sqlx::PgConnection, rows: Vec<DeliveryRow>) -> ApiResult<Vec<DeliveryView>> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut attempts = deliveries::attempts(conn, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let log = attempts
                .extract_if(.., |a| a.delivery_id == r.id)
                .map(|a| AttemptView {
                    attempted_at: a.attempted_at,
                    status: a.status,
                    latency_ms: a.latency_ms,
                    error: a.error,
                    response_excerpt: a.response_excerpt,
                })
                .collect();
            let state = DeliveryState::of(r.status, r.locked_until.is_some());
            DeliveryView {
                id: r.id,
                endpoint_id: r.endpoint_id,
                event_id: r.event_id,
                event_type: r.event_type,
                status: state,
                attempts: r.attempts,
                next_attempt_at: (state == DeliveryState::Pending).then_some(r.next_attempt_at),
                last_status: r.last_status,
                last_error: r.last_error,
                created_at: r.created_at,
                delivered_at: r.delivered_at,
                attempt_log: log,
            }
        })
        .collect())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// `pending` (in flight or waiting), `succeeded` or `failed`.
    status: Option<DeliveryStatus>,
    /// Page size, 1–500 (default 50).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// An endpoint's deliveries
///
/// Newest event first: status, attempts, the last answer and every attempt (status,
/// latency, the start of the answer).
#[utoipa::path(
    get, path = "/v1/webhook-endpoints/{id}/deliveries", operation_id = "listWebhookDeliveries", tag = TAG,
    params(("id" = Uuid, Path, description = "Endpoint id"), DeliveriesQuery),
    responses(
        (status = 200, description = "A page of deliveries", body = Page<DeliveryView>),
        (status = 400, description = "Bad query parameter (status, limit, cursor)", body = Problem),
        (status = 403, description = "Missing scope `webhooks:write`", body = Problem),
        (status = 404, description = "No such endpoint", body = Problem),
    )
)]
async fn list_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> ApiResult<axum::Json<Page<DeliveryView>>> {
    caller.require(Scope::WebhooksWrite)?;
    let limit = pagination::limit(q.limit)?;
    let before = pagination::decode_uuid(DELIVERY_CURSOR, q.cursor.as_deref())?;
    let mut conn = state.pool.acquire().await?;
    let endpoint = load(&mut conn, &id, false).await?;
    let rows = deliveries::list(&mut conn, endpoint.id, q.status, before, i64::from(limit) + 1).await?;
    let page = pagination::page(rows, limit, DELIVERY_CURSOR, |d| d.event_id);
    Ok(axum::Json(Page::new(views(&mut conn, page.data).await?, page.next_cursor)))
}

/// Redeliver now
///
/// Puts the delivery back in the queue for an attempt right away, whatever its status
/// (also to send a succeeded one again). If that attempt fails, the delivery goes on
/// with the rest of its retry schedule, or fails when it had used it all. 409 while an
/// attempt is in flight or when the endpoint is disabled (enable it first).
#[utoipa::path(
    post, path = "/v1/deliveries/{id}/retry", operation_id = "retryWebhookDelivery", tag = TAG,
    params(("id" = Uuid, Path, description = "Delivery id")),
    responses(
        (status = 202, description = "Queued", body = DeliveryView),
        (status = 403, description = "Missing scope `webhooks:write`", body = Problem),
        (status = 404, description = "No such delivery", body = Problem),
        (status = 409, description = "An attempt is in flight, or the endpoint is disabled", body = Problem, extensions(("x-problem-codes" = json!(["delivery_in_flight", "endpoint_disabled"])))),
    )
)]
async fn retry_delivery(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    _: ApiQuery<NoQuery>,
) -> ApiResult<Response> {
    caller.require(Scope::WebhooksWrite)?;
    let id = parse_id(&id, "delivery")?;
    let mut tx = state.pool.begin().await?;
    let delivery = deliveries::find_for_update(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No delivery `{id}`.")))?;
    if DeliveryState::of(delivery.status, delivery.locked_until.is_some()) == DeliveryState::Delivering {
        return Err(ApiError::conflict(
            "delivery_in_flight",
            "An attempt of this delivery is in flight; wait for its outcome.",
        ));
    }
    let endpoint = endpoints::find(&mut tx, delivery.endpoint_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No delivery `{id}`.")))?;
    if !endpoint.enabled {
        return Err(ApiError::conflict(
            "endpoint_disabled",
            "The endpoint is disabled; enable it (PATCH enabled: true) first.",
        ));
    }
    deliveries::requeue(&mut tx, id).await?;
    store::audit::record(
        &mut tx,
        &caller.actor(),
        "delivery.retry",
        "delivery",
        &id.to_string(),
        None::<&()>,
        Some(&json!({"event_id": delivery.event_id, "endpoint_id": delivery.endpoint_id})),
    )
    .await?;
    let row =
        deliveries::find(&mut tx, id).await?.ok_or_else(|| ApiError::not_found(format!("No delivery `{id}`.")))?;
    let view =
        views(&mut tx, vec![row]).await?.pop().ok_or_else(|| ApiError::not_found(format!("No delivery `{id}`.")))?;
    tx.commit().await?;
    Ok((StatusCode::ACCEPTED, axum::Json(view)).into_response())
}
