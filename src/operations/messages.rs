//! Sending a WhatsApp message, written once for every caller (workflows, the
//! platform-action API, command replies): the send, then its row in the message
//! log (`GET /v1/messages`) that status webhooks move forward. Proactive sends go
//! as approved templates unless the recipient's 24 h customer-service window is
//! open (Meta: "Template messages are the only type of message that can be sent
//! to WhatsApp users outside of a customer service window"; a text outside it
//! fails with 131047).

use chrono::Utc;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    domain::{
        client::e164,
        message::{self, MessageKind},
    },
    platforms::{
        PlatformError,
        calls::for_maybe_client,
        whatsapp::{TemplateSetting, WhatsApp},
    },
    store::{self, messages::NewMessage},
};

/// Meta's "Re-engagement message" error: a text outside the customer-service window.
const OUTSIDE_WINDOW: &str = "131047";

/// Who is sending: recorded on the message so its fate shows where it came from.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin {
    pub client_id: Option<Uuid>,
    pub run_id: Option<Uuid>,
    pub task_id: Option<Uuid>,
    pub report_id: Option<Uuid>,
}

/// What to send.
#[derive(Debug, Clone, Copy)]
pub enum Content<'a> {
    Text(&'a str),
    Template { name: &'a str, language: &'a str, params: &'a [String] },
}

/// A message the Cloud API accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// `wamid.…`
    pub wamid: String,
    /// The recipient as Meta normalised it (digits).
    pub to: String,
    pub kind: MessageKind,
    /// The template's name (`kind` template).
    pub template: Option<String>,
    /// The message log row; `None` only if recording failed after the send (logged:
    /// the message went out, and a retry must not send it again).
    pub log_id: Option<Uuid>,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// A free-form text to a recipient whose customer-service window is closed: nothing was sent.
    #[error(
        "{recipient} has not written to the business in the last 24 hours: a free-form text would be refused \
         (WhatsApp 131047); send an approved template instead"
    )]
    WindowClosed { recipient: String },
    /// A template setting names a parameter that does not exist.
    #[error("{0}")]
    Setting(String),
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// How a recipient is keyed in `engine.inbound_messages.sender`: E.164 for numbers
/// (`+5511…`, `5511…`), the id itself otherwise (a business-scoped user id).
pub fn sender_key(recipient: &str) -> String {
    let trimmed = recipient.trim();
    e164(trimmed).or_else(|| e164(&format!("+{trimmed}"))).unwrap_or_else(|| trimmed.to_string())
}

/// Whether `recipient` wrote to the business recently enough that a free-form text
/// is delivered ([`message::window_open`]).
pub async fn window_open(pool: &PgPool, recipient: &str) -> Result<bool, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let last = store::messages::last_inbound(&mut conn, &sender_key(recipient)).await?;
    Ok(message::window_open(last, Utc::now()))
}

/// Sends a text only while the recipient's window is open; otherwise refuses
/// ([`SendError::WindowClosed`]) without calling WhatsApp.
pub async fn send_in_window(
    pool: &PgPool,
    whatsapp: &WhatsApp,
    to: &str,
    text: &str,
    origin: &Origin,
) -> Result<Sent, SendError> {
    if !window_open(pool, to).await? {
        return Err(SendError::WindowClosed { recipient: to.to_string() });
    }
    send(pool, whatsapp, to, Content::Text(text), origin).await
}

/// A proactive message (digest, report delivery): the free-form `text` while the
/// recipient's window is open, else the approved template with its parameters
/// mapped from `values` by the setting.
pub async fn send_proactive(
    pool: &PgPool,
    whatsapp: &WhatsApp,
    to: &str,
    text: &str,
    template: TemplateSetting<'_>,
    values: &[(&str, String)],
    origin: &Origin,
) -> Result<Sent, SendError> {
    let params = message::map_params(template.params_var, template.params, values).map_err(SendError::Setting)?;
    if window_open(pool, to).await? {
        match send(pool, whatsapp, to, Content::Text(text), origin).await {
            // WhatsApp saw the window closed after all (our record and Meta's clock
            // disagree): the template still goes.
            // The code may carry Meta's subcode after a slash.
            Err(SendError::Platform(e))
                if e.code.as_deref().and_then(|c| c.split('/').next()) == Some(OUTSIDE_WINDOW) =>
            {
                tracing::warn!(to = %to, "WhatsApp refused a text inside the window we tracked; sending the template");
            }
            other => return other,
        }
    }
    let content = Content::Template { name: template.name, language: template.language, params: &params };
    send(pool, whatsapp, to, content, origin).await
}

/// Sends as given (the caller has decided the window question: a command reply
/// answers a message just received) and records the accepted message.
pub async fn send(
    pool: &PgPool,
    whatsapp: &WhatsApp,
    to: &str,
    content: Content<'_>,
    origin: &Origin,
) -> Result<Sent, SendError> {
    let (kind, template) = match content {
        Content::Text(_) => (MessageKind::Text, None),
        Content::Template { name, .. } => (MessageKind::Template, Some(name.to_string())),
    };
    let sent = for_maybe_client(origin.client_id, async {
        match content {
            Content::Text(body) => whatsapp.send_text(to, body).await,
            Content::Template { name, language, params } => whatsapp.send_template(to, name, language, params).await,
        }
    })
    .await?;
    let new = NewMessage {
        wamid: &sent.id,
        client_id: origin.client_id,
        recipient: &sent.to,
        kind,
        template: template.as_deref(),
        run_id: origin.run_id,
        task_id: origin.task_id,
        report_id: origin.report_id,
    };
    let logged = match pool.acquire().await {
        Ok(mut conn) => store::messages::record(&mut conn, &new).await.map(|m| m.id),
        Err(e) => Err(e),
    };
    let log_id = logged
        .inspect_err(|e| tracing::warn!(wamid = %sent.id, error = %e, "WhatsApp message sent but not logged"))
        .ok();
    Ok(Sent { wamid: sent.id, to: sent.to, kind, template, log_id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_keyed_like_inbound_senders() {
        assert_eq!(sender_key("5511999990000"), "+5511999990000");
        assert_eq!(sender_key("+55 11 99999-0000"), "+5511999990000");
        assert_eq!(sender_key("US.13491208655302741918"), "US.13491208655302741918");
    }
}
