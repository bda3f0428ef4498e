//! `POST /{version}/{phone_number_id}/messages`: checks a send as the Cloud API does and
//! keeps what it accepts.

use std::sync::Arc;

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State as Shared},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::Utc;
use serde_json::{Value, json};

use super::{SentRecord, State, error, templates};
use crate::sim::{meta::graph_error, new_id};

fn invalid(details: &str) -> Response {
    error(StatusCode::BAD_REQUEST, 100, "(#100) Invalid parameter", details)
}

fn missing(details: &str) -> Response {
    error(StatusCode::BAD_REQUEST, 131008, "(#131008) Required parameter is missing", details)
}

/// 131047: a free-form message outside the customer-service window (Meta's error-codes page:
/// "Re-engagement message"; send a template instead).
fn re_engagement() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        131047,
        "(#131047) Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
    )
}

fn refused(r: &templates::Refusal) -> Response {
    error(StatusCode::BAD_REQUEST, r.code, &format!("(#{}) {}", r.code, r.title), &r.details)
}

pub(super) async fn send(
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
    let Some(to) = super::digits(input) else {
        return invalid(&format!("Invalid WhatsApp recipient \"{input}\"."));
    };
    let kind = str_at("/type").unwrap_or("text");
    let now = Utc::now();
    let (text, language, params) = match kind {
        "text" => match str_at("/text/body") {
            Some(body) => (body.to_string(), None, vec![]),
            None => return missing("The parameter text['body'] is required."),
        },
        "template" => {
            let (Some(name), Some(language)) = (str_at("/template/name"), str_at("/template/language/code")) else {
                return missing("The parameters template['name'] and template['language']['code'] are required.");
            };
            // Parameters kept as sent (untrimmed): their whitespace is what 132018 is about.
            let params: Vec<String> = req
                .pointer("/template/components")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|c| c.get("type").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case("body")))
                .filter_map(|c| c.get("parameters").and_then(Value::as_array))
                .flatten()
                .filter_map(|p| p.get("text").and_then(Value::as_str).map(str::to_string))
                .collect();
            if let Err(refusal) = templates::check(&state.templates(), name, language, &params) {
                return refused(&refusal);
            }
            (name.to_string(), Some(language.to_string()), params)
        }
        other => {
            return invalid(&format!(
                "Param type must be one of {{TEXT, TEMPLATE}} in this simulator - got \"{other}\"."
            ));
        }
    };
    // Free-form messages only inside the customer-service window; templates go any time.
    if kind == "text" && !state.window_open(&to, now) {
        return re_engagement();
    }
    let status = if state.fails(&to) { "failed" } else { "delivered" };
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
            at: now,
            status: status.to_string(),
        };
        messages.push(record.clone());
        record
    };
    state.post_statuses(&record);
    let mut message = json!({"id": record.id});
    if kind == "template" {
        message["message_status"] = json!("accepted");
    }
    Json(json!({"messaging_product": "whatsapp", "contacts": [{"input": input, "wa_id": to}], "messages": [message]}))
        .into_response()
}
