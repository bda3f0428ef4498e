//! `/v1/webhook-endpoints`: where Switchboard pushes its events (Make custom
//! webhooks); the delivery log and redelivery are in `webhook_deliveries`. Every
//! operation needs `webhooks:write` and every change is audited. The signing
//! secret is shown only by create and rotate-secret.

use axum::{
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    auth::Caller,
    error::{ApiError, ApiResult, Problem},
    extract::{ApiJson, ApiQuery, NoQuery},
    pagination::{self, Page},
    webhook_deliveries, webhook_test,
};
use crate::{
    api::AppState,
    domain::{
        events,
        scope::Scope,
        validation::FieldError,
        webhook_headers::{self, CustomHeader, MaskedHeader},
    },
    events::{secret, signing, ssrf},
    store::{
        self,
        webhook_endpoints::{self as endpoints, EndpointFields, EndpointRow},
    },
};

pub const TAG: &str = "webhooks";
const CURSOR: &str = "webhook_endpoints";
const MAX_PATTERNS: usize = 20;
const MAX_DESCRIPTION: usize = 500;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_endpoint, list_endpoints))
        .routes(routes!(get_endpoint, update_endpoint, delete_endpoint))
        .routes(routes!(rotate_secret))
        .merge(webhook_test::router())
        .merge(webhook_deliveries::router())
}

/// A webhook endpoint (without its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointView {
    pub id: Uuid,
    #[schema(example = "https://hook.eu1.make.com/abc123")]
    pub url: String,
    pub description: String,
    /// Event types sent here; wildcards like `run.*`, `*` for all.
    #[schema(example = json!(["run.*", "alert.created"]))]
    pub events: Vec<String>,
    pub enabled: bool,
    /// Custom headers sent on every delivery, with their values masked.
    #[schema(example = json!([{"name": "x-make-apikey", "value": "••••6d5e"}]))]
    pub headers: Vec<MaskedHeader>,
    /// Why it is disabled: `410 Gone`, failing for over a day, or disabled through the API.
    pub disabled_reason: Option<String>,
    /// Since when every delivery has failed (`null` while deliveries succeed).
    #[serde(with = "crate::domain::timestamp::option")]
    #[schema(value_type = Option<String>)]
    pub failing_since: Option<DateTime<Utc>>,
    #[serde(with = "crate::domain::timestamp")]
    #[schema(value_type = String)]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::domain::timestamp")]
    #[schema(value_type = String)]
    pub updated_at: DateTime<Utc>,
}

impl EndpointView {
    /// The endpoint as answers show it: its headers opened only to be masked.
    pub fn of(state: &AppState, r: &EndpointRow) -> ApiResult<Self> {
        let headers = secret::open_headers(&state.keys, r.id, r.headers.as_deref())
            .map_err(|e| ApiError::internal(anyhow::anyhow!("webhook endpoint {}: custom headers: {e}", r.id)))?;
        Ok(EndpointView {
            id: r.id,
            url: r.url.clone(),
            description: r.description.clone(),
            events: r.events.clone(),
            enabled: r.enabled,
            headers: headers.iter().map(MaskedHeader::from).collect(),
            disabled_reason: r.disabled_reason.clone(),
            failing_since: r.failing_since,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// A webhook endpoint with its signing secret (answered only by create and rotate-secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointWithSecret {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// Standard Webhooks key: verify `webhook-signature` (`v1,<base64 HMAC-SHA256 of
    /// "{webhook-id}.{webhook-timestamp}.{body}">`) with the base64-decoded part after `whsec_`.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://hook.eu1.make.com/abc123", "events": ["alert.created"], "description": "Make: alerts receiver",
    "headers": [{"name": "x-make-apikey", "value": "mk_live_4f9a8b7c6d5e"}]}))]
pub struct CreateEndpoint {
    /// `https` URL that must not resolve to a private, loopback or link-local address.
    pub url: String,
    /// Event types to send; wildcards like `run.*`; default `["*"]` (all).
    #[serde(default)]
    pub events: Option<Vec<String>>,
    #[serde(default)]
    pub description: Option<String>,
    /// Default `true`.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Up to 5 headers sent on every delivery, e.g. Make's webhook API key `x-make-apikey`.
    /// Values are secrets: sealed at rest, shown back masked.
    #[serde(default)]
    pub headers: Option<Vec<CustomHeader>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"enabled": true}))]
pub struct UpdateEndpoint {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub events: Option<Vec<String>>,
    #[serde(default)]
    pub description: Option<String>,
    /// `true` re-enables a disabled endpoint (clearing its reason and failure streak).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Replaces every custom header (`[]` removes them); absent keeps them.
    #[serde(default)]
    pub headers: Option<Vec<CustomHeader>>,
}

/// An endpoint's fields once checked.
struct Checked {
    url: String,
    events: Vec<String>,
    description: String,
    /// `None`: keep the stored headers (an update without `headers`).
    headers: Option<Vec<CustomHeader>>,
}

/// Validates and normalises an endpoint's fields; 422 naming each bad one.
/// 403 naming `events` when the caller may not read a type they select.
async fn checked(
    state: &AppState,
    caller: &Caller,
    url: &str,
    events: Vec<String>,
    description: String,
    headers: Option<Vec<CustomHeader>>,
) -> ApiResult<Checked> {
    let mut errors = vec![];
    let headers = match headers.map(|h| webhook_headers::check(&h)) {
        Some(Ok(h)) => Some(h),
        Some(Err(bad)) => {
            errors.extend(bad);
            None
        }
        None => None,
    };
    let url = match ssrf::check(url, crate::events::ssrf::Policy::from_config(&state.config)).await {
        Ok(u) => u.to_string(),
        Err(e) => {
            errors.push(FieldError::new("url", e));
            String::new()
        }
    };
    let mut patterns: Vec<String> = vec![];
    if events.is_empty() {
        errors.push(FieldError::new("events", "must name at least one event type (`*` for all)"));
    } else if events.len() > MAX_PATTERNS {
        errors.push(FieldError::new("events", format!("at most {MAX_PATTERNS} patterns")));
    }
    for (i, p) in events.iter().enumerate() {
        let p = p.trim();
        match events::check_pattern(p) {
            Ok(()) if !patterns.iter().any(|q| q == p) => patterns.push(p.to_string()),
            Ok(()) => {}
            Err(e) => errors.push(FieldError::new(format!("events[{i}]"), e)),
        }
    }
    let description = description.trim().to_string();
    if description.chars().count() > MAX_DESCRIPTION {
        errors.push(FieldError::new("description", format!("at most {MAX_DESCRIPTION} characters")));
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    may_subscribe(caller, &patterns)?;
    Ok(Checked { url, events: patterns, description, headers })
}

/// An endpoint pushes what it subscribes to anywhere its URL points, so subscribing
/// needs the scope that reads each selected type (`client.*`: `clients:read`).
fn may_subscribe(caller: &Caller, patterns: &[String]) -> ApiResult<()> {
    match events::expand(patterns).into_iter().find(|t| !caller.principal.has(t.read_scope())) {
        Some(denied) => {
            let scope = denied.read_scope();
            Err(ApiError::forbidden_scope(scope)
                .with_field("events", format!("`{denied}` events need the `{scope}` scope to subscribe to")))
        }
        None => Ok(()),
    }
}

pub(super) fn parse_id(raw: &str, what: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found(format!("No {what} `{raw}`.")))
}

pub(super) async fn load(conn: &mut sqlx::PgConnection, raw: &str, for_update: bool) -> ApiResult<EndpointRow> {
    let id = parse_id(raw, "webhook endpoint")?;
    let found =
        if for_update { endpoints::find_for_update(conn, id).await? } else { endpoints::find(conn, id).await? };
    found.ok_or_else(|| ApiError::not_found(format!("No webhook endpoint `{raw}`.")))
}

/// Create a webhook endpoint
///
/// Switchboard POSTs every matching event here (`{id, type, created_at, data}`), signed
/// with the returned `secret` the Standard Webhooks way (`webhook-id`, `webhook-timestamp`,
/// `webhook-signature`), retrying non-2xx answers for about a day (immediately, 5 s,
/// 5 min, 30 min, 2 h, 5 h, 10 h, 10 h); `410 Gone`, or a day without a success, disables
/// it. Events from now on are sent. Keep the secret: it is shown only here and by
/// rotate-secret.
#[utoipa::path(
    post, path = "/v1/webhook-endpoints", operation_id = "createWebhookEndpoint", tag = TAG,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first response instead of creating again.")),
    request_body(content = CreateEndpoint, content_type = "application/json"),
    responses(
        (status = 201, description = "Created, with its secret", body = EndpointWithSecret, headers(("Location" = String, description = "URL of the endpoint"))),
        (status = 400, description = "Malformed JSON", body = Problem),
        (status = 403, description = "Missing scope `webhooks:write`, or the read scope of a subscribed event type (`client.*`: `clients:read`; others: `workflows:read`)", body = Problem),
        (status = 415, description = "Not JSON", body = Problem),
        (status = 422, description = "Invalid fields: `url` not https or resolving to an internal address, unknown event type", body = Problem),
    )
)]
async fn create_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    _: ApiQuery<NoQuery>,
    ApiJson(input): ApiJson<CreateEndpoint>,
) -> ApiResult<Response> {
    caller.require(Scope::WebhooksWrite)?;
    let events = input.events.unwrap_or_else(|| vec!["*".into()]);
    let description = input.description.unwrap_or_default();
    let c = checked(&state, &caller, &input.url, events, description, Some(input.headers.unwrap_or_default())).await?;
    let id = Uuid::now_v7();
    let sealed_headers = secret::seal_headers(&state.keys, id, c.headers.as_deref().unwrap_or_default());
    let fields = EndpointFields {
        url: &c.url,
        description: &c.description,
        events: &c.events,
        enabled: input.enabled.unwrap_or(true),
        sealed_headers: sealed_headers.as_deref(),
    };
    let secret = signing::new_secret();
    let mut tx = state.pool.begin().await?;
    let row = endpoints::insert(
        &mut tx,
        id,
        &fields,
        &secret::seal(&state.keys, id, &secret),
        Some(caller.principal.token_id),
    )
    .await?;
    let view = EndpointView::of(&state, &row)?;
    store::audit::record(
        &mut tx,
        &caller.actor(),
        "webhook_endpoint.create",
        "webhook_endpoint",
        &row.id.to_string(),
        None::<&()>,
        Some(&view),
    )
    .await?;
    tx.commit().await?;
    let mut response = (StatusCode::CREATED, axum::Json(EndpointWithSecret { endpoint: view, secret })).into_response();
    if let Ok(location) = format!("/v1/webhook-endpoints/{}", row.id).parse() {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    Ok(response)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size, 1–500 (default 50).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// List webhook endpoints
///
/// In creation order. Secrets are not shown.
#[utoipa::path(
    get, path = "/v1/webhook-endpoints", operation_id = "listWebhookEndpoints", tag = TAG,
    params(ListQuery),
    responses(
        (status = 200, description = "A page of endpoints", body = Page<EndpointView>),
        (status = 400, description = "Bad query parameter (limit, cursor)", body = Problem),
        (status = 403, description = "Missing scope `webhooks:write`", body = Problem),
    )
)]
async fn list_endpoints(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<axum::Json<Page<EndpointView>>> {
    caller.require(Scope::WebhooksWrite)?;
    let limit = pagination::limit(q.limit)?;
    let after = pagination::decode_uuid(CURSOR, q.cursor.as_deref())?;
    let mut conn = state.pool.acquire().await?;
    let rows = endpoints::list(&mut conn, after, i64::from(limit) + 1).await?;
    let page = pagination::page(rows, limit, CURSOR, |r| r.id);
    let views = page.data.iter().map(|r| EndpointView::of(&state, r)).collect::<ApiResult<Vec<_>>>()?;
    Ok(axum::Json(Page::new(views, page.next_cursor)))
}

/// Get a webhook endpoint
///
/// The endpoint's URL, subscribed event types, whether it is enabled (or why it was disabled, and
/// since when it fails) and its custom headers with their values masked. The signing secret is never shown again
/// after creation (`POST …/rotate-secret` issues a new one).
#[utoipa::path(
    get, path = "/v1/webhook-endpoints/{id}", operation_id = "getWebhookEndpoint", tag = TAG,
    params(("id" = Uuid, Path, description = "Endpoint id")),
    responses(
        (status = 200, description = "The endpoint (without its secret)", body = EndpointView),
        (status = 403, description = "Missing scope `webhooks:write`", body = Problem),
        (status = 404, description = "No such endpoint", body = Problem),
    )
)]
async fn get_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    _: ApiQuery<NoQuery>,
) -> ApiResult<axum::Json<EndpointView>> {
    caller.require(Scope::WebhooksWrite)?;
    let mut conn = state.pool.acquire().await?;
    Ok(axum::Json(EndpointView::of(&state, &load(&mut conn, &id, false).await?)?))
}

/// Update a webhook endpoint
///
/// Fields present replace; absent ones stay. `enabled: true` re-enables an endpoint
/// Switchboard disabled (after a 410, or a day of failures). The URL is checked again.
#[utoipa::path(
    patch, path = "/v1/webhook-endpoints/{id}", operation_id = "updateWebhookEndpoint", tag = TAG,
    params(("id" = Uuid, Path, description = "Endpoint id")),
    request_body(content = UpdateEndpoint, content_type = "application/json"),
    responses(
        (status = 200, description = "The updated endpoint", body = EndpointView),
        (status = 400, description = "Malformed JSON", body = Problem),
        (status = 403, description = "Missing scope `webhooks:write`, or the read scope of a subscribed event type (`client.*`: `clients:read`; others: `workflows:read`)", body = Problem),
        (status = 404, description = "No such endpoint", body = Problem),
        (status = 415, description = "Not JSON", body = Problem),
        (status = 422, description = "Invalid fields (`url`, `events`, `description`)", body = Problem),
    )
)]
async fn update_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    _: ApiQuery<NoQuery>,
    ApiJson(patch): ApiJson<UpdateEndpoint>,
) -> ApiResult<axum::Json<EndpointView>> {
    caller.require(Scope::WebhooksWrite)?;
    let mut conn = state.pool.acquire().await?;
    let current = load(&mut conn, &id, false).await?;
    drop(conn);
    // Resolving the host may take a moment: done before the row is locked.
    let url = patch.url.unwrap_or_else(|| current.url.clone());
    let events = patch.events.unwrap_or_else(|| current.events.clone());
    let description = patch.description.unwrap_or_else(|| current.description.clone());
    let c = checked(&state, &caller, &url, events, description, patch.headers).await?;
    let mut tx = state.pool.begin().await?;
    let before = load(&mut tx, &id, true).await?;
    let sealed_headers = match &c.headers {
        Some(headers) => secret::seal_headers(&state.keys, before.id, headers),
        None => before.headers.clone(),
    };
    let fields = EndpointFields {
        url: &c.url,
        description: &c.description,
        events: &c.events,
        enabled: patch.enabled.unwrap_or(before.enabled),
        sealed_headers: sealed_headers.as_deref(),
    };
    let after = endpoints::update(&mut tx, before.id, &fields).await?;
    let view = EndpointView::of(&state, &after)?;
    store::audit::record(
        &mut tx,
        &caller.actor(),
        "webhook_endpoint.update",
        "webhook_endpoint",
        &after.id.to_string(),
        Some(&EndpointView::of(&state, &before)?),
        Some(&view),
    )
    .await?;
    tx.commit().await?;
    Ok(axum::Json(view))
}

/// Delete a webhook endpoint
///
/// With its delivery log. Nothing more is sent to it.
#[utoipa::path(
    delete, path = "/v1/webhook-endpoints/{id}", operation_id = "deleteWebhookEndpoint", tag = TAG,
    params(("id" = Uuid, Path, description = "Endpoint id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Missing scope `webhooks:write`", body = Problem),
        (status = 404, description = "No such endpoint", body = Problem),
    )
)]
async fn delete_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    _: ApiQuery<NoQuery>,
) -> ApiResult<StatusCode> {
    caller.require(Scope::WebhooksWrite)?;
    let mut tx = state.pool.begin().await?;
    let before = load(&mut tx, &id, true).await?;
    endpoints::delete(&mut tx, before.id).await?;
    store::audit::record(
        &mut tx,
        &caller.actor(),
        "webhook_endpoint.delete",
        "webhook_endpoint",
        &before.id.to_string(),
        Some(&EndpointView::of(&state, &before)?),
        None::<&()>,
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Rotate an endpoint's secret
///
/// Answers the endpoint with its new secret; deliveries from now on are signed with it.
#[utoipa::path(
    post, path = "/v1/webhook-endpoints/{id}/rotate-secret", operation_id = "rotateWebhookSecret", tag = TAG,
    params(("id" = Uuid, Path, description = "Endpoint id")),
    responses(
        (status = 200, description = "The endpoint with its new secret", body = EndpointWithSecret),
        (status = 403, description = "Missing scope `webhooks:write`", body = Problem),
        (status = 404, description = "No such endpoint", body = Problem),
    )
)]
async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    _: ApiQuery<NoQuery>,
) -> ApiResult<Response> {
    caller.require(Scope::WebhooksWrite)?;
    let mut tx = state.pool.begin().await?;
    let before = load(&mut tx, &id, true).await?;
    let secret = signing::new_secret();
    let after = endpoints::set_secret(&mut tx, before.id, &secret::seal(&state.keys, before.id, &secret)).await?;
    store::audit::record(
        &mut tx,
        &caller.actor(),
        "webhook_endpoint.rotate_secret",
        "webhook_endpoint",
        &after.id.to_string(),
        None::<&()>,
        None::<&()>,
    )
    .await?;
    tx.commit().await?;
    let no_store = [(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"))];
    let endpoint = EndpointView::of(&state, &after)?;
    Ok((no_store, axum::Json(EndpointWithSecret { endpoint, secret })).into_response())
}
