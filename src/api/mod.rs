//! The HTTP layer: one module per resource, each with its `router()`, plus the
//! cross-cutting pieces (errors, auth, pagination, idempotency, OpenAPI).

pub mod alerts;
pub mod audit;
pub mod auth;
pub mod clients;
pub mod costs;
pub mod error;
pub mod events;
pub mod extract;
pub mod health;
pub mod idempotency;
pub mod inbound;
pub mod knowledge;
pub mod messages;
pub mod metrics;
pub mod middleware;
pub mod negotiate;
pub mod openapi;
mod openapi_examples;
pub mod openapi_rules;
pub mod openapi_webhooks;
pub mod pagination;
pub mod platform_actions;
pub mod platforms;
pub mod prompt_templates;
pub mod rate_limit;
pub mod reports;
pub mod runs;
pub mod schedules;
pub mod state;
pub mod tokens;
pub mod webhook_deliveries;
pub mod webhook_test;
pub mod webhooks;

pub use state::AppState;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{HeaderName, HeaderValue, Method, Request, StatusCode, header},
    middleware::{from_fn, from_fn_with_state},
};
use tower_http::{
    compression::CompressionLayer,
    cors::{AllowOrigin, Any, CorsLayer},
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    set_header::SetResponseHeaderLayer,
    timeout::TimeoutLayer,
    trace::TraceLayer,
};
use utoipa_swagger_ui::SwaggerUi;

/// The complete application: API, docs, health and every middleware.
pub fn app(state: AppState) -> Router {
    let (v1, _) = openapi::routes()
        .route_layer(from_fn_with_state(state.clone(), idempotency::idempotency))
        .route_layer(from_fn_with_state(state.clone(), auth::authenticate))
        .split_for_parts();
    let (system, _) = health::router().split_for_parts();
    // Meta calls the webhook: no token auth (the signature is checked instead).
    let (webhooks, _) = inbound::router().split_for_parts();
    let request_id = HeaderName::from_static("x-request-id");
    let config = state.config.clone();

    let mut router = Router::new()
        .merge(v1)
        .merge(system)
        .merge(webhooks)
        .merge(SwaggerUi::new("/docs").external_url_unchecked("/openapi.json", openapi::document()))
        .fallback(middleware::not_found)
        .with_state(state)
        .layer(DefaultBodyLimit::max(config.body_limit_bytes))
        .layer(from_fn(middleware::metrics))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, config.request_timeout()))
        .layer(from_fn(middleware::problems))
        .layer(CompressionLayer::new().gzip(true));
    if let Some(cors) = cors(&config.cors_origins()) {
        router = router.layer(cors);
    }
    // Outside everything that answers (CORS preflights included): no browser sniffs a JSON body into HTML.
    router = router
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")));
    router
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(from_fn(middleware::request_id_guard))
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
            .allow_headers(Any)
            .expose_headers(Any),
    )
}
