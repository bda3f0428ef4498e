//! `/v1/inbound/whatsapp`: the WhatsApp Cloud API webhook. Meta calls it, so it
//! sits outside token auth; the subscription handshake checks the verify token and
//! every delivery is checked against `X-Hub-Signature-256` over the raw body
//! before anything is read. Messages from allow-listed numbers are commands
//! (`workflows::commands`), answered by WhatsApp; each message id is processed once.

use std::time::Duration;

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    error::{ApiError, ApiResult, Problem},
    extract::ApiQuery,
};
use chrono::{DateTime, Utc};

use crate::{
    api::AppState,
    domain::{client::e164, message::MessageStatus},
    operations::messages::{self, Content, Origin},
    platforms::whatsapp::{verify_signature, verify_subscription},
    store,
    workflows::commands::{self, Command},
};

pub const TAG: &str = "inbound";
/// How long a delivery waits for its commands to be answered before it is
/// acknowledged anyway (the work goes on in the background). Meta retries
/// deliveries that are not acknowledged within a few seconds.
const ANSWER_WAIT: Duration = Duration::from_secs(5);
/// How long a status for a message not yet in the log waits before it is tried again.
const LATE_STATUS_WAIT: Duration = Duration::from_millis(500);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(verify, receive))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    /// Always `subscribe`.
    #[serde(rename = "hub.mode")]
    #[param(example = "subscribe")]
    mode: Option<String>,
    /// The token configured in the Meta app; must equal `WHATSAPP_VERIFY_TOKEN`.
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    /// Echoed back on success.
    #[serde(rename = "hub.challenge")]
    #[param(example = "1158201444")]
    challenge: Option<String>,
}

/// WhatsApp webhook verification
///
/// The subscription handshake Meta performs when the webhook is configured:
/// answers the raw `hub.challenge` when `hub.mode` is `subscribe` and
/// `hub.verify_token` matches `WHATSAPP_VERIFY_TOKEN`. Called by Meta; needs no token.
#[utoipa::path(
    get, path = "/v1/inbound/whatsapp", operation_id = "verifyWhatsappWebhook", tag = TAG, security(()),
    params(VerifyQuery),
    responses(
        (status = 200, description = "The challenge, verbatim", body = String, content_type = "text/plain", example = "1158201444"),
        (status = 403, description = "Wrong mode or verify token (or none configured)", body = Problem, extensions(("x-problem-codes" = json!(["verification_failed"])))),
        (status = 500, description = "Internal error (logged with the request id)", body = Problem),
    )
)]
async fn verify(State(state): State<AppState>, ApiQuery(q): ApiQuery<VerifyQuery>) -> ApiResult<impl IntoResponse> {
    let expected =
        crate::platforms::expose(&state.platforms.whatsapp.settings().verify_token).unwrap_or_default().to_string();
    let (mode, token, challenge) =
        (q.mode.unwrap_or_default(), q.verify_token.unwrap_or_default(), q.challenge.unwrap_or_default());
    match verify_subscription(&mode, &token, &challenge, &expected) {
        Some(challenge) => Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], challenge)),
        None => {
            tracing::warn!(mode = %mode, "WhatsApp webhook verification refused");
            Err(ApiError::new(StatusCode::FORBIDDEN, "verification_failed", "The verify token does not match."))
        }
    }
}

// What we read of a delivery (Meta, "messages webhook reference"): inbound
// `messages` and the `statuses` of the messages we sent. Each element is read on
// its own, so one we cannot use never makes the rest of the batch unreadable.
#[derive(Debug, Deserialize)]
struct Webhook {
    object: String,
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Debug, Deserialize)]
struct Change {
    #[serde(default)]
    value: ChangeValue,
}

#[derive(Debug, Default, Deserialize)]
struct ChangeValue {
    #[serde(default)]
    messages: Vec<serde_json::Value>,
    #[serde(default)]
    statuses: Vec<serde_json::Value>,
}

/// An inbound message. `from` (the number) is withheld for users who adopted a
/// username: then only the business-scoped user id (`from_user_id`) names the
/// sender (Meta, "Business-scoped user IDs").
#[derive(Debug, Deserialize)]
struct Message {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    from_user_id: Option<String>,
    id: String,
    /// Unix seconds, as a string.
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    text: Option<Text>,
}

#[derive(Debug, Deserialize)]
struct Text {
    body: String,
}

/// A status update of a message we sent (Meta, "Status messages webhook reference").
#[derive(Debug, Deserialize)]
struct Status {
    /// The `wamid.…` of our message.
    id: String,
    status: String,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    errors: Vec<StatusError>,
}

#[derive(Debug, Deserialize)]
struct StatusError {
    code: serde_json::Value,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Meta's `timestamp` (unix seconds as a string).
fn unix_time(raw: Option<&str>) -> Option<DateTime<Utc>> {
    raw.and_then(|t| t.trim().parse::<i64>().ok()).and_then(|secs| DateTime::from_timestamp(secs, 0))
}

/// The acknowledgement of a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboundAck {
    /// Messages in the delivery.
    pub messages: usize,
    /// Messages seen for the first time (the rest were duplicate deliveries).
    pub new: usize,
    /// New messages taken as commands (from allow-listed numbers).
    pub commands: usize,
    /// Status updates that moved one of our messages forward (`GET /v1/messages`).
    pub statuses: usize,
}

/// A new command to answer.
struct Pending {
    message_id: String,
    sender: String,
    command: Command,
}

/// WhatsApp webhook delivery
///
/// Inbound messages from the WhatsApp Cloud API. The `X-Hub-Signature-256` header
/// must be the HMAC-SHA256 of the raw body with the app secret
/// (`WHATSAPP_APP_SECRET`); otherwise 401 and nothing is read. Each message id is
/// processed once (Meta redelivers); its `timestamp` opens the sender's 24 h
/// customer-service window (free-form texts to them are allowed until it closes).
/// A sender who withholds the number (`from_user_id` only, a business-scoped user id)
/// is recorded by that id. Text messages from numbers in
/// `WHATSAPP_COMMAND_SENDERS` are commands: `help`, `status <client>`,
/// `run <workflow> [client]`, `report <client>`, answered by WhatsApp; messages
/// from other senders are recorded and ignored. `statuses` move the messages we sent
/// forward (`sent`, `delivered`, `read`, `failed`; never backwards) in `GET /v1/messages`;
/// a failure emits `message.failed`. Called by Meta; needs no token.
#[utoipa::path(
    post, path = "/v1/inbound/whatsapp", operation_id = "receiveWhatsappWebhook", tag = TAG, security(()),
    params(("X-Hub-Signature-256" = String, Header, description = "`sha256=<hex HMAC-SHA256 of the raw body>`")),
    request_body(content = Object, content_type = "application/json", example = json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "contacts": [{"profile": {"name": "Ana"}, "wa_id": "5511999990000"}],
            "messages": [{"from": "5511999990000", "id": "wamid.HBgNNTUxMTk5OTk5MDAwMBUCABIYFjNFQjA", "timestamp": "1749416383",
                          "type": "text", "text": {"body": "status acme-coffee"}}],
            "statuses": [{"id": "wamid.HBgNNTUxMTk5OTk5MDAwMBUCABEYEjgxQkVF", "status": "failed", "timestamp": "1749416390",
                          "recipient_id": "5511999990001",
                          "errors": [{"code": 131026, "title": "Message undeliverable", "message": "Message undeliverable",
                                      "error_data": {"details": "Message Undeliverable."}}]}]
        }}]}]
    })),
    responses(
        (status = 200, description = "Acknowledged (also for duplicates and ignored senders)", body = InboundAck),
        (status = 401, description = "Missing or bad signature; nothing was processed", body = Problem, extensions(("x-problem-codes" = json!(["invalid_signature"])))),
        (status = 413, description = "Body too large", body = Problem),
        (status = 500, description = "Internal error (logged with the request id); Meta retries", body = Problem),
    )
)]
async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> ApiResult<axum::Json<InboundAck>> {
    let secret =
        crate::platforms::expose(&state.platforms.whatsapp.settings().app_secret).unwrap_or_default().to_string();
    let signature = headers.get("x-hub-signature-256").and_then(|v| v.to_str().ok()).unwrap_or("");
    if secret.is_empty() {
        tracing::warn!("WhatsApp delivery refused: WHATSAPP_APP_SECRET is not set, signatures cannot be checked");
    }
    if !verify_signature(secret.as_bytes(), &body, signature) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
            "X-Hub-Signature-256 is missing or does not match the body.",
        ));
    }
    // Signed by Meta from here on: a body we cannot use is acknowledged (a retry would not change it).
    let empty = InboundAck { messages: 0, new: 0, commands: 0, statuses: 0 };
    let hook: Webhook = match serde_json::from_slice(&body) {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "WhatsApp delivery not understood; acknowledged and ignored");
            return Ok(axum::Json(empty));
        }
    };
    if hook.object != "whatsapp_business_account" {
        return Ok(axum::Json(empty));
    }
    let values: Vec<ChangeValue> = hook.entry.into_iter().flat_map(|e| e.changes).map(|c| c.value).collect();
    let messages: Vec<serde_json::Value> = values.iter().flat_map(|v| v.messages.iter().cloned()).collect();
    let statuses: Vec<serde_json::Value> = values.iter().flat_map(|v| v.statuses.iter().cloned()).collect();
    let allowed = state.config.command_senders();
    let mut ack = InboundAck { messages: messages.len(), new: 0, commands: 0, statuses: 0 };
    let mut pending = vec![];
    let mut conn = state.pool.acquire().await?;
    for raw in messages {
        let m: Message = match serde_json::from_value(raw) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "a WhatsApp message of the delivery was not understood; skipped");
                continue;
            }
        };
        // Meta sends the number as digits; we keep and compare E.164. A user who
        // withholds the number is known by the business-scoped user id alone.
        let user_id = m.from_user_id.as_deref().map(str::trim).filter(|u| !u.is_empty());
        let sender = match (m.from.as_deref().map(str::trim).filter(|f| !f.is_empty()), user_id) {
            (Some(from), _) => e164(&format!("+{from}")).unwrap_or_else(|| from.to_string()),
            (None, Some(user)) => user.to_string(),
            (None, None) => {
                tracing::warn!(message_id = %m.id, "WhatsApp message with neither `from` nor `from_user_id`; skipped");
                continue;
            }
        };
        let text = match (&m.kind[..], &m.text) {
            ("text", Some(t)) => Some(t.body.clone()),
            _ => None,
        };
        let body = text.clone().unwrap_or_else(|| format!("[{}]", if m.kind.is_empty() { "unknown" } else { &m.kind }));
        let command =
            allowed.contains(&sender).then(|| text.as_deref().map(commands::parse).unwrap_or(Command::Unknown));
        let inbound = store::inbound::Inbound {
            message_id: &m.id,
            sender: &sender,
            user_id,
            body: &body,
            command: command.as_ref().map(Command::name),
            sent_at: unix_time(m.timestamp.as_deref()),
        };
        if !store::inbound::record(&mut conn, &inbound).await? {
            tracing::info!(message_id = %m.id, "duplicate WhatsApp delivery ignored");
            continue;
        }
        ack.new += 1;
        match command {
            Some(command) => pending.push(Pending { message_id: m.id, sender, command }),
            None => {
                tracing::warn!(message_id = %m.id, sender = %sender, "WhatsApp message from a number not in WHATSAPP_COMMAND_SENDERS ignored")
            }
        }
    }
    let mut early = vec![];
    for raw in statuses {
        let update: Status = match serde_json::from_value(raw) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "a WhatsApp status of the delivery was not understood; skipped");
                continue;
            }
        };
        // Statuses we do not track (e.g. `deleted`, `played`) change nothing.
        let Ok(status) = update.status.parse::<MessageStatus>() else { continue };
        let error = update.errors.first();
        let change = store::messages::StatusUpdate {
            status,
            at: unix_time(update.timestamp.as_deref()),
            error_code: error.map(|e| e.code.as_str().map(String::from).unwrap_or_else(|| e.code.to_string())),
            error_title: error.and_then(|e| e.title.clone().or_else(|| e.message.clone())),
            wamid: update.id,
        };
        match store::messages::apply_status(&mut conn, &change).await? {
            Some(_) => ack.statuses += 1,
            None if !store::messages::known(&mut conn, &change.wamid).await? => early.push(change),
            None => {}
        }
    }
    if !early.is_empty() {
        // A status can overtake the send's own answer (the message is logged once the
        // send returns): try those again shortly. Statuses of messages another system
        // sent from the number stay unknown and change nothing.
        tokio::spawn(apply_late(state.clone(), early));
    }
    drop(conn);
    ack.commands = pending.len();
    if !pending.is_empty() {
        // Answered in a task of its own so a slow platform cannot hold the
        // acknowledgement past Meta's timeout; usually it is done well within the wait.
        let work = tokio::spawn(answer_all(state.clone(), pending));
        let _ = tokio::time::timeout(ANSWER_WAIT, work).await;
    }
    Ok(axum::Json(ack))
}

/// Statuses that arrived before their message was logged, applied again after the
/// send has had time to record it.
async fn apply_late(state: AppState, updates: Vec<store::messages::StatusUpdate>) {
    for wait in [LATE_STATUS_WAIT, LATE_STATUS_WAIT * 4] {
        tokio::time::sleep(wait).await;
        let Ok(mut conn) = state.pool.acquire().await else { continue };
        let mut missing = false;
        for u in &updates {
            match store::messages::known(&mut conn, &u.wamid).await {
                Ok(true) => {
                    if let Err(e) = store::messages::apply_status(&mut conn, u).await {
                        tracing::warn!(wamid = %u.wamid, error = %e, "applying a WhatsApp status failed");
                    }
                }
                Ok(false) => missing = true,
                Err(e) => tracing::warn!(wamid = %u.wamid, error = %e, "applying a WhatsApp status failed"),
            }
        }
        if !missing {
            return;
        }
    }
}

/// Carries out each command and sends its reply to the sender, keeping the reply text.
async fn answer_all(state: AppState, pending: Vec<Pending>) {
    for p in pending {
        let reply = commands::answer(&state, &p.sender, &p.command).await;
        // A reply answers the message just received: its window is open (Meta decides).
        let content = Content::Text(&reply);
        let origin = Origin::default();
        if let Err(e) = messages::send(&state.pool, &state.platforms.whatsapp, &p.sender, content, &origin).await {
            tracing::warn!(message_id = %p.message_id, error = %e, "sending the WhatsApp command reply failed");
        }
        match state.pool.acquire().await {
            Ok(mut conn) => {
                if let Err(e) = store::inbound::set_reply(&mut conn, &p.message_id, &reply).await {
                    tracing::warn!(message_id = %p.message_id, error = %e, "recording the WhatsApp reply failed");
                }
            }
            Err(e) => tracing::warn!(message_id = %p.message_id, error = %e, "recording the WhatsApp reply failed"),
        }
    }
}
