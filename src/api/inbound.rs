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
use crate::{
    api::AppState,
    domain::client::e164,
    platforms::whatsapp::{verify_signature, verify_subscription},
    store,
    workflows::commands::{self, Command},
};

pub const TAG: &str = "inbound";
/// How long a delivery waits for its commands to be answered before it is
/// acknowledged anyway (the work goes on in the background). Meta retries
/// deliveries that are not acknowledged within a few seconds.
const ANSWER_WAIT: Duration = Duration::from_secs(5);

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
        (status = 403, description = "Wrong mode or verify token (or none configured)", body = Problem),
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

// What we read of a delivery; everything else Meta sends (statuses, contacts,
// metadata, errors) is ignored.
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
    messages: Vec<Message>,
}

#[derive(Debug, Deserialize)]
struct Message {
    from: String,
    id: String,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    text: Option<Text>,
}

#[derive(Debug, Deserialize)]
struct Text {
    body: String,
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
/// processed once (Meta redelivers). Text messages from numbers in
/// `WHATSAPP_COMMAND_SENDERS` are commands: `help`, `status <client>`,
/// `run <workflow> [client]`, `report <client>`, answered by WhatsApp; messages
/// from other numbers are recorded and ignored. Status updates are ignored.
/// Called by Meta; needs no token.
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
                          "type": "text", "text": {"body": "status acme-coffee"}}]
        }}]}]
    })),
    responses(
        (status = 200, description = "Acknowledged (also for duplicates and ignored senders)", body = InboundAck),
        (status = 401, description = "Missing or bad signature; nothing was processed", body = Problem),
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
    let hook: Webhook = match serde_json::from_slice(&body) {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "WhatsApp delivery not understood; acknowledged and ignored");
            return Ok(axum::Json(InboundAck { messages: 0, new: 0, commands: 0 }));
        }
    };
    if hook.object != "whatsapp_business_account" {
        return Ok(axum::Json(InboundAck { messages: 0, new: 0, commands: 0 }));
    }
    let messages: Vec<Message> =
        hook.entry.into_iter().flat_map(|e| e.changes).flat_map(|c| c.value.messages).collect();
    let allowed = state.config.command_senders();
    let mut ack = InboundAck { messages: messages.len(), new: 0, commands: 0 };
    let mut pending = vec![];
    let mut conn = state.pool.acquire().await?;
    for m in messages {
        // Meta sends the number as digits; we keep and compare E.164.
        let sender = e164(&format!("+{}", m.from)).unwrap_or_else(|| m.from.clone());
        let text = match (&m.kind[..], &m.text) {
            ("text", Some(t)) => Some(t.body.clone()),
            _ => None,
        };
        let body = text.clone().unwrap_or_else(|| format!("[{}]", if m.kind.is_empty() { "unknown" } else { &m.kind }));
        let command =
            allowed.contains(&sender).then(|| text.as_deref().map(commands::parse).unwrap_or(Command::Unknown));
        if !store::inbound::record(&mut conn, &m.id, &sender, &body, command.as_ref().map(Command::name)).await? {
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

/// Carries out each command and sends its reply to the sender, keeping the reply text.
async fn answer_all(state: AppState, pending: Vec<Pending>) {
    for p in pending {
        let reply = commands::answer(&state, &p.sender, &p.command).await;
        if let Err(e) = state.platforms.whatsapp.send_text(&p.sender, &reply).await {
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
