//! The OpenAPI document: collected from the handlers' `#[utoipa::path]`s, then
//! completed here with what every `/v1` operation shares (security, 400/401/429/500).
//! The committed `openapi/openapi.json` must equal [`document`]; a test checks it.

use utoipa::{
    OpenApi,
    openapi::{
        self, RefOr,
        path::Operation,
        security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme},
    },
};

use crate::domain::events::EventType;

use super::{
    alerts, audit, clients, costs, error::Problem, events, health, inbound, knowledge, messages, metrics, platforms,
    prompt_templates, reports, runs, schedules, tokens, webhooks,
};

/// An event type, as the spec describes it (the names of [`EventType::ALL`]).
pub struct EventTypeName;

crate::domain::names::names_schema!(
    EventTypeName,
    "EventType",
    "An event type (the feed's `type`, what webhook endpoints subscribe to).",
    EventType::ALL.map(EventType::as_str)
);

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchboard API",
        description = "Automation backend for a marketing agency: the client knowledge base, platform actions and \
durable workflows, driven by Make.com HTTP modules, scripts and people.\n\n\
Authenticate with `Authorization: Bearer <token>` or `X-API-Key: <token>` (click **Authorize**). \
Create tokens with `switchboard token create` or `POST /v1/tokens`.\n\n\
Conventions: JSON with snake_case fields; timestamps RFC 3339 UTC with milliseconds; lists take `limit` \
(1-500, default 50) and `cursor` and answer `{\"data\": [...], \"next_cursor\": ...}`; errors are RFC 9457 \
problem details with a stable `code` and the fields at fault in `errors`; every POST accepts `Idempotency-Key`.",
    ),
    tags(
        (name = "clients", description = "The client knowledge base"),
        (name = "knowledge", description = "Knowledge entries per client and full-text search"),
        (name = "metrics", description = "Ad metrics per client: sync from the platforms, read, budget pacing"),
        (name = "platforms", description = "Platform status and actions (Meta, Google Ads, Drive, ClickUp, WhatsApp, LLM)"),
        (name = "workflows", description = "Workflows and their runs: start, follow, cancel, retry"),
        (name = "schedules", description = "When workflows run on their own"),
        (name = "alerts", description = "Alerts raised by the monitoring: list, acknowledge, resolve"),
        (name = "reports", description = "Reports the workflows wrote (weekly report), with figures and token usage"),
        (name = "messages", description = "Every outbound WhatsApp message and its delivery status (from Meta's status webhooks)"),
        (name = "prompt-templates", description = "Versioned minijinja prompt templates the workflows and LLM actions render"),
        (name = "costs", description = "LLM token usage and platform calls per client and day"),
        (name = "events", description = "The event feed: what happened, oldest first, for polling triggers"),
        (name = "webhooks", description = "Webhook endpoints that receive the events, signed (Standard Webhooks), with their delivery log"),
        (name = "inbound", description = "Webhooks the platforms call (WhatsApp commands); signed, no token"),
        (name = "tokens", description = "API tokens"),
        (name = "audit", description = "The audit log of every change"),
        (name = "system", description = "Health, readiness and metrics"),
    ),
    // Schemas only parameters or the rules refer to (utoipa registers those of bodies and answers).
    components(schemas(
        Problem,
        metrics::Granularity,
        events::FeedOrder,
        EventTypeName,
        crate::domain::events::DeliveryStatus,
        crate::domain::alert::AlertKind,
        crate::domain::run::RunStatus,
        crate::operations::metrics::AdPlatform,
        crate::platforms::PlatformKey,
        crate::workflows::WorkflowKey,
        crate::api::reports::ReportFormat,
    ))
)]
struct ApiDoc;

/// The routes that make up the document (and, with state and layers, the API).
pub fn routes() -> utoipa_axum::router::OpenApiRouter<crate::api::AppState> {
    utoipa_axum::router::OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(clients::router())
        .merge(knowledge::router())
        .merge(metrics::router())
        .merge(platforms::router())
        .merge(runs::router())
        .merge(schedules::router())
        .merge(tokens::router())
        .merge(audit::router())
        .merge(costs::router())
        .merge(alerts::router())
        .merge(prompt_templates::router())
        .merge(reports::router())
        .merge(messages::router())
        .merge(events::router())
        .merge(webhooks::router())
}

/// Completes the collected document.
pub fn finish(mut doc: openapi::OpenApi) -> openapi::OpenApi {
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(Http::builder().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
    );
    components.add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))));
    for (path, item) in doc.paths.paths.iter_mut() {
        if !path.starts_with("/v1/") {
            continue;
        }
        // Operations that declare their own security (the webhooks: `security(())`) are not token-authenticated.
        for op in [&mut item.get, &mut item.post, &mut item.patch, &mut item.put, &mut item.delete]
            .into_iter()
            .flatten()
            .filter(|op| op.security.is_none())
        {
            complete_operation(op);
        }
    }
    doc
}

/// The whole document, as served at `/openapi.json` and committed (JSON: the rules of
/// `openapi_rules` add what utoipa's types do not model, e.g. `x-problem-codes`).
pub fn document() -> serde_json::Value {
    let mut doc = routes().into_openapi();
    doc.merge(health::router().into_openapi());
    doc.merge(inbound::router().into_openapi());
    let mut value = serde_json::to_value(finish(doc)).expect("the document is JSON");
    super::openapi_rules::apply(&mut value);
    super::openapi_examples::answers(&mut value);
    value["webhooks"] = super::openapi_webhooks::section();
    value
}

/// The scopes an operation needs, as its 403 response names them: "Missing scope `x`..."
/// (one), or "Missing scope: `x` or `y`, ..." (any one of them). Written into the
/// security requirements (one per scheme and scope: alternatives), so tools and the
/// auth-matrix test can read them.
fn required_scopes(op: &Operation) -> Vec<String> {
    let Some(RefOr::T(forbidden)) = op.responses.responses.get("403") else { return vec![] };
    let description = forbidden.description.as_str();
    let named = |text: &str| text.split('`').skip(1).step_by(2).map(String::from).collect::<Vec<_>>();
    if let Some(rest) = description.strip_prefix("Missing scope `") {
        rest.split_once('`').map(|(scope, _)| vec![scope.to_string()]).unwrap_or_default()
    } else if let Some(rest) = description.strip_prefix("Missing scope: ") {
        named(rest.split(',').next().unwrap_or_default())
    } else {
        vec![]
    }
}

fn complete_operation(op: &mut Operation) {
    let scopes = required_scopes(op);
    op.security = Some(if scopes.is_empty() {
        vec![
            SecurityRequirement::new("bearer", Vec::<String>::new()),
            SecurityRequirement::new("api_key", Vec::<String>::new()),
        ]
    } else {
        ["bearer", "api_key"]
            .into_iter()
            .flat_map(|scheme| scopes.iter().map(move |s| SecurityRequirement::new(scheme, [s.clone()])))
            .collect()
    });
    // The shared answers (400 invalid_query, 401, 429, 500, ...) are added with their codes by `openapi_rules`.
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::scope::Scope;

    /// Every scope written into the document is one the service knows, and every
    /// operation whose 403 talks about a scope has it in its security requirement.
    #[test]
    fn security_requirements_name_known_scopes() {
        let doc = document();
        let mut scoped = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let Some(requirements) = op["security"].as_array() else { continue };
                let forbidden = op["responses"]["403"]["description"].as_str().unwrap_or("");
                for req in requirements.iter().filter_map(|r| r.as_object()).filter(|r| !r.is_empty()) {
                    for scopes in req.values() {
                        let scopes: Vec<&str> =
                            scopes.as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
                        for scope in &scopes {
                            scope.parse::<Scope>().unwrap_or_else(|e| panic!("{method} {path}: {e}"));
                        }
                        assert_eq!(
                            scopes.is_empty(),
                            !forbidden.contains("scope"),
                            "{method} {path}: 403 says {forbidden:?}, security {scopes:?}"
                        );
                        scoped += usize::from(!scopes.is_empty());
                    }
                }
            }
        }
        assert!(scoped > 100, "only {scoped} scoped requirements");
    }
}
