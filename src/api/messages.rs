//! WhatsApp messages: sending one (`POST /v1/platforms/whatsapp/messages`, a
//! platform action) and the log of every outbound message with the status Meta's
//! webhooks reported (`GET /v1/messages`). Reading the log needs `clients:read`,
//! like alerts: it holds the clients' numbers.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    auth::Caller,
    clients,
    error::{ApiError, ApiResult, Problem},
    extract::{ApiJson, ApiQuery, NoQuery},
    pagination::{self, Page},
};
use crate::{
    api::AppState,
    domain::{
        client::{Client, e164},
        scope::Scope,
    },
    operations::messages::{self, Content, Origin, SendError},
    store::{
        self,
        messages::{Message, MessageFilter, MessageStatus},
    },
};

pub const TAG: &str = "messages";
const CURSOR: &str = "messages";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_messages)).routes(routes!(whatsapp_message))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListMessagesQuery {
    /// Only this client's messages (id or slug).
    client: Option<String>,
    /// `accepted`, `sent`, `delivered`, `read` or `failed`.
    status: Option<MessageStatus>,
    /// Sent at or after this time (inclusive, RFC 3339).
    from: Option<DateTime<Utc>>,
    /// Sent before this time (exclusive, RFC 3339).
    to: Option<DateTime<Utc>>,
    /// Only messages sent by this workflow run.
    run: Option<Uuid>,
    /// Only messages that delivered this report.
    report: Option<Uuid>,
    /// Page size, 1–500 (default 50).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// List WhatsApp messages
///
/// Every outbound WhatsApp message the Cloud API accepted, newest first, with its
/// status as Meta's status webhooks report it: `accepted` → `sent` → `delivered` →
/// `read`, or `failed` with the vendor's error code and title (a failure also emits
/// `message.failed`). A status never moves backwards. Each message names the run and
/// task (and report) that sent it.
#[utoipa::path(
    get, path = "/v1/messages", operation_id = "listMessages", tag = TAG,
    params(ListMessagesQuery),
    responses(
        (status = 200, description = "A page of messages", body = Page<Message>),
        (status = 400, description = "Bad query parameter", body = Problem),
        (status = 403, description = "Missing scope `clients:read`", body = Problem),
        (status = 404, description = "No such client", body = Problem),
    )
)]
async fn list_messages(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListMessagesQuery>,
) -> ApiResult<axum::Json<Page<Message>>> {
    caller.require(Scope::ClientsRead)?;
    let limit = pagination::limit(q.limit)?;
    let before = pagination::decode_uuid(CURSOR, q.cursor.as_deref())?;
    if let (Some(from), Some(to)) = (q.from, q.to)
        && to < from
    {
        return Err(ApiError::bad_request("invalid_query", "to: must not be before `from`")
            .with_field("to", "must not be before `from`"));
    }
    let mut conn = state.pool.acquire().await?;
    let client_id = match q.client.as_deref() {
        Some(raw) => Some(clients::load(&mut conn, raw, false).await?.id),
        None => None,
    };
    let filter =
        MessageFilter { client_id, status: q.status, from: q.from, to: q.to, run_id: q.run, report_id: q.report };
    let rows = store::messages::list(&mut conn, &filter, before, i64::from(limit) + 1).await?;
    Ok(axum::Json(pagination::page(rows, limit, CURSOR, |m| m.id)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateMessage {
    /// An approved template's name.
    #[schema(example = "switchboard_weekly_report")]
    pub name: String,
    #[serde(default = "default_language")]
    #[schema(example = "en_US")]
    pub language: String,
    /// Body parameters, in order. Made single-line (no tabs, no runs of more than four
    /// spaces) and cut to 300 characters, as WhatsApp requires.
    #[serde(default)]
    pub params: Vec<String>,
}

fn default_language() -> String {
    "en_US".into()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"client": "acme-coffee", "template": {"name": "switchboard_weekly_report", "language": "en_US",
    "params": ["Acme Coffee", "2026-06-01 – 2026-06-07", "Spend up 12% at a steady CPA"]}}))]
pub struct MessageRequest {
    /// Send to this client's `accounts.whatsapp`...
    #[serde(default)]
    pub client: Option<String>,
    /// ...or to this E.164 number.
    #[serde(default)]
    pub to: Option<String>,
    /// A free-form text: only while the recipient's 24 h customer-service window is
    /// open (they wrote to the business in the last 24 h), else 409 `whatsapp_window_closed`...
    #[serde(default)]
    pub text: Option<String>,
    /// ...or an approved template (allowed any time).
    #[serde(default)]
    pub template: Option<TemplateMessage>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageResponse {
    /// The `wamid.…` message id.
    pub message_id: String,
    pub to: String,
    /// The message log entry (`GET /v1/messages`), where its delivery status shows.
    pub log_id: Option<Uuid>,
}

/// Send a WhatsApp message
///
/// A text or template message to a client's WhatsApp recipient or to a number. A
/// text goes only while the recipient's 24 h customer-service window is open (a
/// message from them in the last 24 h, as received by `/v1/inbound/whatsapp`);
/// outside it nothing is sent and the answer is 409 `whatsapp_window_closed`: send
/// a `template` instead. A 200 means WhatsApp *accepted* the message; delivery is
/// reported later in `GET /v1/messages`.
#[utoipa::path(
    post, path = "/v1/platforms/whatsapp/messages", operation_id = "sendWhatsappMessage", tag = super::platform_actions::TAG,
    request_body(content = MessageRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Accepted by WhatsApp", body = MessageResponse),
        (status = 403, description = "Missing scope `platforms:act`", body = Problem),
        (status = 404, description = "No such client", body = Problem),
        (status = 409, description = "`text` outside the recipient's 24 h window (`whatsapp_window_closed`): send a `template`", body = Problem, extensions(("x-problem-codes" = json!(["whatsapp_window_closed"])))),
        (status = 422, description = "Neither or both of client/to, text/template; bad number", body = Problem),
        (status = 429, description = "WhatsApp throttled (platform_error, Retry-After)", body = Problem, extensions(("x-problem-codes" = json!(["platform_error"])))),
        (status = 502, description = "WhatsApp refused (platform_error)", body = Problem, extensions(("x-problem-codes" = json!(["platform_error"])))),
        (status = 503, description = "WhatsApp unavailable or not configured (platform_error)", body = Problem, extensions(("x-problem-codes" = json!(["platform_error"])))),
    )
)]
async fn whatsapp_message(
    State(state): State<AppState>,
    caller: Caller,
    _: ApiQuery<NoQuery>,
    ApiJson(req): ApiJson<MessageRequest>,
) -> ApiResult<axum::Json<MessageResponse>> {
    caller.require(Scope::PlatformsAct)?;
    let (client, to) = match (req.client.as_deref(), req.to.as_deref()) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(ApiError::invalid(vec![]).with_field("to", "give either client or to"));
        }
        (None, Some(to)) => (
            None,
            e164(to).ok_or_else(|| {
                ApiError::invalid(vec![]).with_field("to", "must be an E.164 number (e.g. +5511999990000)")
            })?,
        ),
        (Some(raw), None) => {
            let mut conn = state.pool.acquire().await?;
            let client: Client = clients::load(&mut conn, raw, false).await?;
            let to = client.accounts.whatsapp.clone().ok_or_else(|| {
                ApiError::invalid(vec![])
                    .with_field("client", "has no WhatsApp account (set `accounts.whatsapp` on the client)")
            })?;
            (Some(client), to)
        }
    };
    match (&req.text, &req.template) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(ApiError::invalid(vec![]).with_field("text", "give either text or template"));
        }
        (Some(text), None) if text.trim().is_empty() || text.chars().count() > 4096 => {
            return Err(ApiError::invalid(vec![]).with_field("text", "must be 1-4096 characters"));
        }
        (None, Some(t)) if t.name.trim().is_empty() => {
            return Err(ApiError::invalid(vec![]).with_field("template.name", "must not be empty"));
        }
        _ => {}
    }
    state.platforms.ensure_configured("whatsapp")?;
    let whatsapp = &state.platforms.whatsapp;
    let origin = Origin { client_id: client.as_ref().map(|c| c.id), ..Origin::default() };
    let sent = match (&req.text, &req.template) {
        (Some(text), _) => messages::send_in_window(&state.pool, whatsapp, &to, text, &origin).await,
        (_, Some(t)) => {
            let content = Content::Template { name: &t.name, language: &t.language, params: &t.params };
            messages::send(&state.pool, whatsapp, &to, content, &origin).await
        }
        _ => unreachable!("checked above"),
    }
    .map_err(send_problem)?;
    let response = MessageResponse { message_id: sent.wamid, to: sent.to, log_id: sent.log_id };
    let mut tx = state.pool.begin().await?;
    let id = client.as_ref().map(|c| c.id.to_string()).unwrap_or_else(|| "-".into());
    let what = json!({"message_id": response.message_id, "to": response.to, "template": req.template.as_ref().map(|t| &t.name)});
    store::audit::record(
        &mut tx,
        &caller.actor(),
        "platform.whatsapp.message",
        "platform_action",
        &id,
        None::<&()>,
        Some(&what),
    )
    .await?;
    tx.commit().await?;
    Ok(axum::Json(response))
}

fn send_problem(e: SendError) -> ApiError {
    match e {
        SendError::WindowClosed { .. } => ApiError::conflict(
            "whatsapp_window_closed",
            "The recipient has not written to the business in the last 24 hours, so WhatsApp would refuse a \
             free-form text (131047). Nothing was sent: send an approved `template` instead.",
        )
        .with_field("text", "outside the recipient's 24 h customer-service window; use `template`"),
        SendError::Platform(e) => e.into(),
        SendError::Database(e) => e.into(),
        SendError::Setting(m) => ApiError::internal(anyhow::anyhow!(m)),
    }
}
