//! The simulator's WhatsApp controls, under `/_sim/whatsapp/` (what Meta's API has no call
//! for): a customer writing in, the approved templates, numbers that fail, where webhooks go.
//! Bad input answers 400 naming the field, and changes nothing.

use std::sync::{Arc, atomic::Ordering};

use axum::{
    Json, Router,
    body::Bytes,
    extract::State as Shared,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::json;

use super::{State, Target, Template, digits, webhook};

pub(super) fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/state", get(summary))
        .route("/inbound", post(inbound))
        .route("/templates", get(list_templates).post(add_template))
        .route("/failing", get(list_failing).post(set_failing))
        .route("/webhook", post(connect))
}

/// 400 naming the field.
fn bad(field: &str, detail: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"status": 400, "code": "invalid_field", "field": field, "detail": detail})))
        .into_response()
}

/// The body as `T`, or why not: the field that does not fit (`body` for the whole) and what is wrong.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, (String, String)> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." { "body".to_string() } else { field };
        (field, e.into_inner().to_string())
    })
}

/// A customer writing in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundRequest {
    /// The customer's number, `+` optional.
    pub from: String,
    pub text: String,
    /// When they wrote (default: now); in the past to play an old conversation.
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
    /// The sender is known by business-scoped user id alone (no `from`, no `wa_id`).
    #[serde(default)]
    pub username_only: bool,
    /// Profile name (default `Customer`).
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InboundReceipt {
    pub message_id: String,
    /// The business-scoped user id the webhook carried.
    pub user_id: String,
    /// Whether the webhook was connected and answered 2xx.
    pub delivered: bool,
}

impl State {
    /// Plays a customer writing in: opens their window from `at`, then POSTs the signed
    /// `messages` webhook (when one is connected) and waits for its answer.
    pub async fn play_inbound(&self, req: &InboundRequest) -> Result<InboundReceipt, (&'static str, String)> {
        let from = digits(&req.from).ok_or(("from", "a phone number: 7 to 15 digits, `+` optional".to_string()))?;
        if req.text.trim().is_empty() {
            return Err(("text", "must not be empty".into()));
        }
        let now = Utc::now();
        let at = req.at.unwrap_or(now);
        // A little slack for clocks; a customer cannot write from the future.
        if at > now + TimeDelta::minutes(1) {
            return Err(("at", "must not be in the future".into()));
        }
        self.open_window(&from, at);
        self.inbound.fetch_add(1, Ordering::Relaxed);
        let message_id = format!("wamid.{}", URL_SAFE_NO_PAD.encode(crate::sim::new_id(&format!("in:{from}:"))));
        let user_id = webhook::user_id(&from);
        let body = webhook::message(&webhook::Inbound {
            message_id: &message_id,
            from: &from,
            user_id: &user_id,
            name: req.name.as_deref().unwrap_or("Customer"),
            text: &req.text,
            at,
            username_only: req.username_only,
        });
        let delivered = match self.webhook() {
            Some(target) => webhook::deliver(self.client(), &target, &body, &self.deliveries).await,
            None => false,
        };
        Ok(InboundReceipt { message_id, user_id, delivered })
    }
}

async fn inbound(Shared(state): Shared<Arc<State>>, body: Bytes) -> Response {
    let req: InboundRequest = match parse(&body) {
        Ok(r) => r,
        Err((field, detail)) => return bad(&field, &detail),
    };
    match state.play_inbound(&req).await {
        Ok(receipt) => (StatusCode::ACCEPTED, Json(receipt)).into_response(),
        Err((field, detail)) => bad(field, &detail),
    }
}

async fn list_templates(Shared(state): Shared<Arc<State>>) -> Json<Vec<Template>> {
    Json(state.templates())
}

async fn add_template(Shared(state): Shared<Arc<State>>, body: Bytes) -> Response {
    let template: Template = match parse(&body) {
        Ok(t) => t,
        Err((field, detail)) => return bad(&field, &detail),
    };
    if let Some((field, detail)) = template.invalid_field() {
        return bad(field, &detail);
    }
    state.add_template(template);
    (StatusCode::CREATED, Json(state.templates())).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Failing {
    numbers: Vec<String>,
}

#[derive(Debug, Serialize)]
struct FailingAnswer {
    /// Configured numbers (digits); numbers ending in `26` fail regardless.
    numbers: Vec<String>,
    default_rule: &'static str,
}

const DEFAULT_RULE: &str = "numbers ending in 26";

async fn list_failing(Shared(state): Shared<Arc<State>>) -> Json<FailingAnswer> {
    Json(FailingAnswer { numbers: state.failing(), default_rule: DEFAULT_RULE })
}

/// Replaces the configured failing numbers.
async fn set_failing(Shared(state): Shared<Arc<State>>, body: Bytes) -> Response {
    let req: Failing = match parse(&body) {
        Ok(r) => r,
        Err((field, detail)) => return bad(&field, &detail),
    };
    let mut numbers = vec![];
    for (i, n) in req.numbers.iter().enumerate() {
        match digits(n) {
            Some(d) => numbers.push(d),
            None => return bad(&format!("numbers[{i}]"), "a phone number: 7 to 15 digits, `+` optional"),
        }
    }
    state.set_failing(numbers);
    Json(FailingAnswer { numbers: state.failing(), default_rule: DEFAULT_RULE }).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Connect {
    /// `null` disconnects.
    url: Option<String>,
    #[serde(default)]
    app_secret: Option<String>,
}

/// Where webhooks go and what they are signed with (as `switchboard sim --webhook-url
/// --whatsapp-app-secret` sets at start).
async fn connect(Shared(state): Shared<Arc<State>>, body: Bytes) -> Response {
    let req: Connect = match parse(&body) {
        Ok(r) => r,
        Err((field, detail)) => return bad(&field, &detail),
    };
    let target = match req.url {
        None => None,
        Some(url) => {
            if !(url.starts_with("http://") || url.starts_with("https://")) || reqwest::Url::parse(&url).is_err() {
                return bad("url", "an http(s) URL");
            }
            match req.app_secret.filter(|s| !s.is_empty()) {
                Some(app_secret) => Some(Target { url, app_secret }),
                None => return bad("app_secret", "required with a url: webhooks are always signed"),
            }
        }
    };
    state.connect_webhook(target);
    summary(Shared(state)).await.into_response()
}

/// What the simulated account looks like now (never the app secret).
async fn summary(Shared(state): Shared<Arc<State>>) -> Json<serde_json::Value> {
    let (delivered, failed) = state.webhook_deliveries();
    let windows: Vec<_> = {
        let now = Utc::now();
        let windows = state.windows.lock().expect("whatsapp sim");
        windows
            .iter()
            .map(|(number, last)| json!({"number": number, "last_inbound": last, "open": now - *last < super::WINDOW}))
            .collect()
    };
    Json(json!({
        "webhook": {"url": state.webhook().map(|t| t.url), "delivered": delivered, "failed": failed},
        "inbound": state.inbound.load(Ordering::Relaxed),
        "windows": windows,
        "templates": state.templates(),
        "failing": {"numbers": state.failing(), "default_rule": DEFAULT_RULE},
    }))
}
