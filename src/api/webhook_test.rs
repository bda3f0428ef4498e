//! `POST /v1/webhook-endpoints/{id}/test`: sends a realistic sample event of a chosen
//! type (built from the payload types, `events::catalogue`), flagged `"test": true`,
//! so a receiver such as a Make custom webhook learns the structure real events have.

use axum::extract::{Path, State};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    auth::Caller,
    error::{ApiError, ApiResult, Problem},
    extract::{ApiQuery, NoQuery, OptionalJson},
    webhooks::{TAG, load},
};
use crate::{
    api::AppState,
    domain::{
        events::{self, EventType},
        scope::Scope,
    },
    events::{
        catalogue,
        delivery::{self, DeliverySettings},
        secret,
    },
    store,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(test_endpoint))
}

/// What to send (the body is optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"event_type": "alert.created"}))]
pub struct TestRequest {
    /// The type of the sample: one of `client.created`, `client.updated`, `run.started`,
    /// `run.succeeded`, `run.failed`, `run.partially_failed`, `alert.created`, `report.ready`,
    /// `message.failed`. Default: the first of these the endpoint subscribes to.
    #[serde(default)]
    #[schema(value_type = Option<EventType>, example = "alert.created")]
    pub event_type: Option<String>,
}

/// What a test delivery saw.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestResult {
    /// The `webhook-id` of the test event.
    pub event_id: Uuid,
    /// The type of the sample sent.
    #[schema(value_type = EventType, example = "alert.created")]
    pub event_type: String,
    /// The endpoint answered 2xx.
    pub succeeded: bool,
    /// The HTTP status the endpoint answered (`null` when it did not answer).
    pub status: Option<u16>,
    pub latency_ms: i32,
    /// The first 500 characters of the answer.
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
}

/// The type to send: the one asked for (422 naming `event_type` when unknown), else the
/// first type the endpoint subscribes to.
fn chosen_type(asked: Option<&str>, subscribed: &[String]) -> ApiResult<EventType> {
    match asked {
        Some(raw) => raw.trim().parse::<EventType>().map_err(|why| {
            let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
            let message = format!("{why} (known: {})", known.join(", "));
            ApiError::invalid(vec![crate::domain::validation::FieldError::new("event_type", message)])
        }),
        None => Ok(events::expand(subscribed).first().copied().unwrap_or(EventType::ALL[0])),
    }
}

/// Send a test event
///
/// Sends a realistic sample event of `event_type` now: the same shape a real event of that
/// type has (`{id, type, timestamp, created_at, data}`, `data` as in the `Event` schema for
/// that type), with `"test": true` at the top level, signed and with the endpoint's custom
/// headers, whatever the endpoint's event filter and even when it is disabled. Use it to let a
/// Make custom webhook learn the structure ("Redetermine data structure", then send). Answers
/// what the endpoint said. The sample is not stored as an event or a delivery.
#[utoipa::path(
    post, path = "/v1/webhook-endpoints/{id}/test", operation_id = "testWebhookEndpoint", tag = TAG,
    params(("id" = Uuid, Path, description = "Endpoint id")),
    request_body(content = Option<TestRequest>, content_type = "application/json",
        description = "Optional: without a body, the sample is of the first type the endpoint subscribes to.",
        example = json!({"event_type": "alert.created"})),
    responses(
        (status = 200, description = "The attempt (also when the endpoint refused it: see `succeeded`)", body = TestResult,
            example = json!({"event_id": "0192f0c4-5d7e-7c1a-9f4e-2b8d6a1c3e5f", "event_type": "alert.created", "succeeded": true,
                "status": 200, "latency_ms": 182, "response_excerpt": "Accepted", "error": null})),
        (status = 400, description = "Malformed JSON", body = Problem),
        (status = 403, description = "Missing scope `webhooks:write`", body = Problem),
        (status = 404, description = "No such endpoint", body = Problem),
        (status = 415, description = "A body that is not JSON", body = Problem),
        (status = 422, description = "Unknown `event_type`", body = Problem),
    )
)]
async fn test_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    _: ApiQuery<NoQuery>,
    OptionalJson(input): OptionalJson<TestRequest>,
) -> ApiResult<axum::Json<TestResult>> {
    caller.require(Scope::WebhooksWrite)?;
    let mut conn = state.pool.acquire().await?;
    let endpoint = load(&mut conn, &id, false).await?;
    drop(conn);
    let event_type = chosen_type(input.event_type.as_deref(), &endpoint.events)?;
    let event = catalogue::sample(event_type);
    let settings = DeliverySettings::from_config(&state.config);
    let internal = |what: &str, e: crate::crypto::CryptoError| {
        ApiError::internal(anyhow::anyhow!("webhook endpoint {}: {what}: {e}", endpoint.id))
    };
    let key = secret::open(&state.keys, endpoint.id, &endpoint.secret).map_err(|e| internal("signing secret", e))?;
    let headers = secret::open_headers(&state.keys, endpoint.id, endpoint.headers.as_deref())
        .map_err(|e| internal("custom headers", e))?;
    let client = delivery::http_client(&settings);
    let attempt =
        delivery::send(&client, &endpoint.url, key.expose_secret(), &headers, &event, true, settings.policy).await;
    let result = TestResult {
        event_id: event.id,
        event_type: event_type.as_str().to_string(),
        succeeded: attempt.succeeded(),
        status: attempt.status,
        latency_ms: attempt.latency_ms,
        response_excerpt: attempt.response_excerpt,
        error: attempt.error,
    };
    let mut tx = state.pool.begin().await?;
    store::audit::record(
        &mut tx,
        &caller.actor(),
        "webhook_endpoint.test",
        "webhook_endpoint",
        &endpoint.id.to_string(),
        None::<&()>,
        Some(&result),
    )
    .await?;
    tx.commit().await?;
    Ok(axum::Json(result))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_sample_is_the_first_subscribed_type() {
        assert_eq!(chosen_type(None, &["report.ready".into(), "run.*".into()]).unwrap(), EventType::RunStarted);
        assert_eq!(chosen_type(None, &["*".into()]).unwrap(), EventType::ClientCreated);
        assert_eq!(chosen_type(Some("alert.created"), &["run.*".into()]).unwrap(), EventType::AlertCreated);
        assert!(chosen_type(Some("webhook.test"), &["*".into()]).is_err());
    }
}
