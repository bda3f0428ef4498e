//! Simulated WhatsApp Cloud API: `POST /{version}/{phone_number_id}/messages` for
//! `text` and `template` messages, with the real checks and Graph error bodies.
//!
//! Every accepted message is kept (see [`State::messages`]): the real API has no
//! idempotency, so sending the same message twice stores (and counts) two, which makes
//! duplicates visible. Reachable error cases:
//! - no/`bad…` Bearer token → 401, code 190 (`expired…` → 190/463);
//! - a free-form **text** to a number ending in `47` → 400, code 131047 (outside the
//!   24 h window; templates to the same number go through);
//! - missing `messaging_product`/`to`, bad number, other `type` → code 100;
//!   missing `text.body` / `template.name` / `template.language.code` → code 131008.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State as Shared},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use super::{Vendor, meta::graph_error, new_id};

/// A message the simulator accepted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentRecord {
    /// `wamid.…`
    pub id: String,
    pub phone_number_id: String,
    /// Digits only.
    pub to: String,
    /// `text` or `template`.
    pub kind: String,
    /// The text body, or the template name.
    pub body: String,
    /// Template language code.
    pub language: Option<String>,
    /// Template body parameters, in order.
    pub params: Vec<String>,
    pub at: DateTime<Utc>,
}

#[derive(Default)]
pub struct State {
    messages: Mutex<Vec<SentRecord>>,
}

impl State {
    pub fn created(&self) -> BTreeMap<String, u64> {
        BTreeMap::from([("messages".to_string(), self.messages.lock().expect("whatsapp sim").len() as u64)])
    }

    pub fn reset(&self) {
        self.messages.lock().expect("whatsapp sim").clear();
    }

    /// Every accepted message, oldest first.
    pub fn messages(&self) -> Vec<SentRecord> {
        self.messages.lock().expect("whatsapp sim").clone()
    }

    /// Accepted messages to `to` (with or without `+`).
    pub fn sent_to(&self, to: &str) -> Vec<SentRecord> {
        let to = to.trim_start_matches('+');
        self.messages().into_iter().filter(|m| m.to == to).collect()
    }
}

impl Vendor for State {
    fn routes(self: Arc<Self>) -> Router {
        router().with_state(self)
    }
    fn throttled(&self) -> Response {
        throttled()
    }
    fn fault(&self) -> Response {
        fault()
    }
    fn created(&self) -> BTreeMap<String, u64> {
        State::created(self)
    }
    fn reset(&self) {
        State::reset(self)
    }
    fn error_code(&self, body: &Value) -> Option<String> {
        super::graph_error_code(body)
    }
}

pub fn router() -> Router<Arc<State>> {
    Router::new().route("/{version}/{phone_number_id}/messages", post(send))
}

/// The real 130429 (Cloud API throughput reached).
pub fn throttled() -> Response {
    error(StatusCode::BAD_REQUEST, 130429, "(#130429) Rate limit hit", "Cloud API message throughput has been reached.")
}

pub fn fault() -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        131000,
        "(#131000) Something went wrong",
        "Something went wrong. Please try again later.",
    )
}

fn error(status: StatusCode, code: i64, message: &str, details: &str) -> Response {
    graph_error(
        status,
        json!({"message": message, "type": "OAuthException", "code": code,
               "error_data": {"messaging_product": "whatsapp", "details": details}}),
    )
}

fn invalid(details: &str) -> Response {
    error(StatusCode::BAD_REQUEST, 100, "(#100) Invalid parameter", details)
}

fn missing(details: &str) -> Response {
    error(StatusCode::BAD_REQUEST, 131008, "(#131008) Required parameter is missing", details)
}

async fn send(
    Shared(state): Shared<Arc<State>>,
    Path((_version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .trim();
    let oauth = |message: &str, subcode: Option<i64>| {
        let mut e = json!({"message": message, "type": "OAuthException", "code": 190});
        if let Some(sub) = subcode {
            e["error_subcode"] = json!(sub);
        }
        graph_error(StatusCode::UNAUTHORIZED, e)
    };
    if token.is_empty() || token.starts_with("bad") {
        return oauth("Invalid OAuth access token - Cannot parse access token", None);
    }
    if token.starts_with("expired") {
        return oauth(
            "Error validating access token: Session has expired on Sunday, 01-Jun-25 10:00:00 PDT.",
            Some(463),
        );
    }
    if phone_number_id.is_empty() || !phone_number_id.bytes().all(|b| b.is_ascii_digit()) {
        return graph_error(
            StatusCode::BAD_REQUEST,
            json!({"message": format!("Unsupported post request. Object with ID '{phone_number_id}' does not exist, cannot be loaded \
                                       due to missing permissions, or does not support this operation."),
                   "type": "GraphMethodException", "code": 100, "error_subcode": 33}),
        );
    }
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return invalid("The request body is not valid JSON.");
    };
    let str_at = |pointer: &str| req.pointer(pointer).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
    match str_at("/messaging_product") {
        Some("whatsapp") => {}
        Some(other) => {
            return invalid(&format!("Param messaging_product must be one of {{WHATSAPP}} - got \"{other}\"."));
        }
        None => return invalid("The parameter messaging_product is required."),
    }
    let Some(input) = str_at("/to") else {
        return invalid("The parameter to is required.");
    };
    let to = input.trim_start_matches('+').to_string();
    if !(7..=15).contains(&to.len()) || !to.bytes().all(|b| b.is_ascii_digit()) {
        return invalid(&format!("Invalid WhatsApp recipient \"{input}\"."));
    }
    let kind = str_at("/type").unwrap_or("text");
    let (text, language, params) = match kind {
        "text" => match str_at("/text/body") {
            Some(body) => (body.to_string(), None, vec![]),
            None => return missing("The parameter text['body'] is required."),
        },
        "template" => {
            let (Some(name), Some(language)) = (str_at("/template/name"), str_at("/template/language/code")) else {
                return missing("The parameters template['name'] and template['language']['code'] are required.");
            };
            let params = req
                .pointer("/template/components")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|c| c.get("type").and_then(Value::as_str) == Some("body"))
                .filter_map(|c| c.get("parameters").and_then(Value::as_array))
                .flatten()
                .filter_map(|p| p.get("text").and_then(Value::as_str).map(str::to_string))
                .collect();
            (name.to_string(), Some(language.to_string()), params)
        }
        other => {
            return invalid(&format!(
                "Param type must be one of {{TEXT, TEMPLATE}} in this simulator - got \"{other}\"."
            ));
        }
    };
    // The deterministic "customer last wrote more than 24 h ago" case.
    if kind == "text" && to.ends_with("47") {
        return error(
            StatusCode::BAD_REQUEST,
            131047,
            "(#131047) Re-engagement message",
            "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
        );
    }
    let record = {
        let mut messages = state.messages.lock().expect("whatsapp sim");
        let id = format!("wamid.{}", STANDARD.encode(format!("{to}:{}:{}", messages.len(), new_id(""))));
        let record = SentRecord {
            id,
            phone_number_id,
            to: to.clone(),
            kind: kind.to_string(),
            body: text,
            language,
            params,
            at: Utc::now(),
        };
        messages.push(record.clone());
        record
    };
    let mut message = json!({"id": record.id});
    if kind == "template" {
        message["message_status"] = json!("accepted");
    }
    Json(json!({"messaging_product": "whatsapp", "contacts": [{"input": input, "wa_id": to}], "messages": [message]}))
        .into_response()
}
