//! WhatsApp Business Cloud API connector (Graph API): sending text and template
//! messages, and verifying inbound webhooks (subscription handshake and
//! `X-Hub-Signature-256`). See docs/PLATFORMS.md (WhatsApp).
//!
//! Sends are not idempotent on Meta's side: a retried send after a timeout can
//! deliver twice, which is why callers record sends in the side-effect ledger.

use std::{fmt, sync::Arc, time::Duration};

use hmac::{Hmac, Mac};
use reqwest::{StatusCode, header::HeaderMap};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;
use utoipa::ToSchema;

use super::{
    ErrorKind, PlatformError, PlatformInfo, SecretString,
    calls::CallCounter,
    expose,
    http::{Call, Dialect, HttpSettings, Overrides, PlatformHttp, Verdict, default_classify, retry_after},
    meta::GraphError,
};
use crate::domain::limits::LimitStore;
use crate::domain::message::template_param;

pub const INFO: PlatformInfo = PlatformInfo {
    key: "whatsapp",
    title: "WhatsApp Cloud API",
    env_prefix: "WHATSAPP_",
    sim_prefix: "/whatsapp",
    ads: false,
};

/// `WHATSAPP_*` settings.
#[derive(Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// System user token with `whatsapp_business_messaging`.
    pub access_token: Option<SecretString>,
    /// The sending business number's id (not the phone number itself).
    pub phone_number_id: Option<String>,
    /// App secret: key of the inbound `X-Hub-Signature-256`.
    pub app_secret: Option<SecretString>,
    /// Token Meta echoes in the webhook subscription handshake.
    pub verify_token: Option<SecretString>,
    pub api_version: String,
    pub base_url: String,
    /// Messages per second from the number (published default throughput: 80/s).
    pub rate_per_second: Option<f64>,
    pub burst: Option<u32>,
    /// First retry backoff in milliseconds (doubles per attempt, with jitter).
    pub retry_base_ms: Option<u64>,
    /// Approved template of the daily-monitoring digest (outside the 24 h window).
    pub digest_template: String,
    pub digest_language: String,
    /// Its body parameters `{{1}}`, `{{2}}`… in order, by name (`client`, `date`, `alerts`, `critical`, `summary`).
    pub digest_params: String,
    /// Approved template of the weekly-report delivery.
    pub report_template: String,
    pub report_language: String,
    /// Its body parameters in order, by name (`client`, `period`, `link`, `summary`, `report_id`);
    /// `link` is the PDF in the client's Drive, else its `pdf_url`.
    pub report_params: String,
}

/// The proactive templates a send may use: name, language and parameter mapping.
#[derive(Debug, Clone, Copy)]
pub struct TemplateSetting<'a> {
    pub name: &'a str,
    pub language: &'a str,
    pub params: &'a str,
    /// The variable that holds the mapping, named in errors.
    pub params_var: &'static str,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            access_token: None,
            phone_number_id: None,
            app_secret: None,
            verify_token: None,
            api_version: "v25.0".into(),
            base_url: "https://graph.facebook.com".into(),
            rate_per_second: None,
            burst: None,
            retry_base_ms: None,
            digest_template: "switchboard_daily_digest".into(),
            digest_language: "en_US".into(),
            digest_params: "client,alerts,summary".into(),
            report_template: "switchboard_weekly_report".into(),
            report_language: "en_US".into(),
            report_params: "client,period,link".into(),
        }
    }
}

// Hand-written so the token and secrets never reach a log line.
impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |v: &Option<SecretString>| v.as_ref().map(|_| "[set]");
        f.debug_struct("Settings")
            .field("access_token", &set(&self.access_token))
            .field("phone_number_id", &self.phone_number_id)
            .field("app_secret", &set(&self.app_secret))
            .field("verify_token", &set(&self.verify_token))
            .field("api_version", &self.api_version)
            .field("base_url", &self.base_url)
            .field("rate_per_second", &self.rate_per_second)
            .field("burst", &self.burst)
            .field("retry_base_ms", &self.retry_base_ms)
            .field("digest_template", &self.digest_template)
            .field("report_template", &self.report_template)
            .finish()
    }
}

/// Cloud API throughput per business number: 80 messages/s by default (§5.7).
const DEFAULT_RATE: f64 = 80.0;
const DEFAULT_BURST: u32 = 80;
/// 131056 (too many messages to one user): Meta gives no wait; space them ~6 s apart.
const PAIR_LIMIT_WAIT: Duration = Duration::from_secs(6);

impl Settings {
    pub fn missing(&self) -> Vec<&'static str> {
        let unset = |v: Option<&str>| v.is_none_or(|s| s.trim().is_empty());
        let mut missing = vec![];
        if unset(expose(&self.access_token)) {
            missing.push("WHATSAPP_ACCESS_TOKEN");
        }
        if unset(self.phone_number_id.as_deref()) {
            missing.push("WHATSAPP_PHONE_NUMBER_ID");
        }
        missing
    }

    pub fn sandboxed(&self, base: &str) -> Self {
        Self {
            base_url: base.to_string(),
            access_token: Some("sandbox-token".into()),
            phone_number_id: Some("100000000000001".into()),
            // No fixed webhook secrets: a known one would let anyone forge inbound
            // webhooks. The service generates them per installation (`server::platforms`).
            ..self.clone()
        }
    }

    /// The daily digest's template (`WHATSAPP_DIGEST_*`).
    pub fn digest(&self) -> TemplateSetting<'_> {
        TemplateSetting {
            name: &self.digest_template,
            language: &self.digest_language,
            params: &self.digest_params,
            params_var: "WHATSAPP_DIGEST_PARAMS",
        }
    }

    /// The weekly report's template (`WHATSAPP_REPORT_*`).
    pub fn report(&self) -> TemplateSetting<'_> {
        TemplateSetting {
            name: &self.report_template,
            language: &self.report_language,
            params: &self.report_params,
            params_var: "WHATSAPP_REPORT_PARAMS",
        }
    }

    fn http(&self) -> HttpSettings {
        Overrides {
            rate_per_second: self.rate_per_second,
            burst: self.burst,
            account_rate_per_second: None,
            max_attempts: None,
            retry_base_ms: self.retry_base_ms,
            max_wait_secs: None,
        }
        .apply(HttpSettings::new(DEFAULT_RATE, DEFAULT_BURST))
    }
}

// ---------------------------------------------------------------------------------------
// Inbound verification (pure)

/// The webhook subscription handshake (`GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`):
/// the challenge to echo back when the mode is `subscribe` and the token matches, else `None` (answer 403).
pub fn verify_subscription(mode: &str, token: &str, challenge: &str, expected_token: &str) -> Option<String> {
    let matches = !expected_token.is_empty() && constant_time_eq(token.as_bytes(), expected_token.as_bytes());
    (mode == "subscribe" && matches).then(|| challenge.to_string())
}

/// Checks `X-Hub-Signature-256: sha256=<hex>` = HMAC-SHA256(app secret, raw body), in constant time.
/// Must see the raw bytes, before any JSON parsing.
pub fn verify_signature(app_secret: &[u8], raw_body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(signature) = hex::decode(hex_sig) else {
        return false;
    };
    if app_secret.is_empty() {
        return false;
    }
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(app_secret) else {
        return false;
    };
    mac.update(raw_body);
    mac.verify_slice(&signature).is_ok()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ---------------------------------------------------------------------------------------
// Errors

/// WhatsApp codes (§5.6) over the Graph envelope; keyed on `error.code`, not the HTTP status.
struct Cloud;

impl Dialect for Cloud {
    fn classify(&self, platform: &'static str, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
        if status.is_success() {
            return Verdict::Success;
        }
        let Some(error) = GraphError::parse(body) else {
            return default_classify(platform, status, headers, body);
        };
        let kind = match error.code {
            // Outside the 24 h window (send a template instead), undeliverable, per-user marketing cap.
            131047 | 131026 | 131049 => ErrorKind::Rejected,
            130429 | 131056 | 4 | 80007 | 80008 => ErrorKind::Throttled,
            131000 | 1 | 2 => ErrorKind::Unavailable,
            190 | 10 | 200..=299 => ErrorKind::Auth,
            // Missing parameter; template not found, wrong parameter count, bad parameter format.
            131008 | 100 | 132000 | 132001 | 132005 | 132007 | 132012 | 132015 | 132016 | 132018 => ErrorKind::Invalid,
            _ if error.is_transient || status.is_server_error() => ErrorKind::Unavailable,
            _ => PlatformError::from_status(platform, status.as_u16(), "").kind,
        };
        let wait = retry_after(headers).or((error.code == 131056).then_some(PAIR_LIMIT_WAIT));
        let error = error.into_error(platform, kind, status);
        match kind {
            ErrorKind::Throttled => Verdict::Retry(error.retry_after(wait)),
            ErrorKind::Unavailable => Verdict::Retry(error.retry_after(retry_after(headers))),
            _ => Verdict::Fail(error.retryable(false)),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Sending

/// A message the Cloud API accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SentMessage {
    /// `wamid.…`, the id status webhooks refer to.
    pub id: String,
    /// The recipient's WhatsApp id (digits, as the API normalised it).
    pub to: String,
}

#[derive(Debug, Deserialize)]
struct SendResponse {
    #[serde(default)]
    contacts: Vec<Contact>,
    messages: Vec<MessageId>,
}

#[derive(Debug, Deserialize)]
struct Contact {
    #[serde(default)]
    wa_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct MessageId {
    id: String,
}

pub struct WhatsApp {
    http: PlatformHttp,
    settings: Settings,
}

impl super::Platform for WhatsApp {
    const INFO: PlatformInfo = INFO;
    type Settings = Settings;
    type Sim = crate::sim::whatsapp::State;

    fn connect(settings: &Settings, calls: &Arc<CallCounter>, limits: &Arc<dyn LimitStore>) -> Self {
        let mut client = Self::new(settings);
        client.http.count_into(calls);
        client.http.share_limits(limits);
        client
    }
    fn http(&self) -> &PlatformHttp {
        &self.http
    }
    fn missing(settings: &Settings) -> Vec<&'static str> {
        settings.missing()
    }
    fn sandboxed(settings: &Settings, base: &str) -> Settings {
        settings.sandboxed(base)
    }
    fn api_version(settings: &Settings) -> Option<String> {
        Some(settings.api_version.clone())
    }
    fn sunset_on(settings: &Settings) -> Option<chrono::NaiveDate> {
        super::graph_sunset(&settings.api_version)
    }
}

impl WhatsApp {
    pub fn new(settings: &Settings) -> Self {
        let secrets = [expose(&settings.access_token), expose(&settings.app_secret), expose(&settings.verify_token)]
            .into_iter()
            .flatten()
            .map(String::from)
            .collect();
        Self {
            http: PlatformHttp::new(INFO.key, settings.http(), Arc::new(Cloud), secrets),
            settings: settings.clone(),
        }
    }

    pub fn http(&self) -> &PlatformHttp {
        &self.http
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// A free-form text; only delivered inside the 24 h customer-service window
    /// (otherwise `ErrorKind::Rejected`, code 131047: send a template).
    pub async fn send_text(&self, to: &str, body: &str) -> Result<SentMessage, PlatformError> {
        let to = recipient(to)?;
        let payload = json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "text",
            "text": {"preview_url": false, "body": body},
        });
        self.send(&to, &payload).await
    }

    /// An approved template, with its body `{{1}}`, `{{2}}`… parameters in order. Each
    /// parameter is made single-line, without tabs or runs of more than four spaces and
    /// within length ([`template_param`]): Meta refuses others (132018).
    pub async fn send_template(
        &self,
        to: &str,
        name: &str,
        language: &str,
        body_params: &[String],
    ) -> Result<SentMessage, PlatformError> {
        let to = recipient(to)?;
        let mut template = json!({"name": name, "language": {"code": language}});
        if !body_params.is_empty() {
            let parameters: Vec<_> =
                body_params.iter().map(|p| json!({"type": "text", "text": template_param(p)})).collect();
            template["components"] = json!([{"type": "body", "parameters": parameters}]);
        }
        let payload = json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": "template", "template": template});
        self.send(&to, &payload).await
    }

    async fn send(&self, to: &str, payload: &serde_json::Value) -> Result<SentMessage, PlatformError> {
        let missing = self.settings.missing();
        let (Some(token), Some(phone), true) =
            (expose(&self.settings.access_token), &self.settings.phone_number_id, missing.is_empty())
        else {
            return Err(PlatformError::not_configured(INFO.key, &missing));
        };
        let url = format!(
            "{}/{}/{}/messages",
            self.settings.base_url.trim_end_matches('/'),
            self.settings.api_version,
            phone.trim()
        );
        // Throughput (130429) is per business number, so a throttle pauses the number.
        let call = Call::new("send_message").account(phone.trim());
        let reply = self.http.send(call, |c| c.post(&url).bearer_auth(token).json(payload)).await?;
        let parsed: SendResponse = reply.json()?;
        let id = parsed
            .messages
            .into_iter()
            .next()
            .map(|m| m.id)
            .ok_or_else(|| PlatformError::malformed(INFO.key, "no message id in the send response"))?;
        let to = parsed.contacts.into_iter().find_map(|c| c.wa_id).unwrap_or_else(|| to.to_string());
        Ok(SentMessage { id, to })
    }
}

/// The API wants digits only: `+1 (650) 555-1234` → `16505551234`. E.164 allows up to 15 digits.
fn recipient(to: &str) -> Result<String, PlatformError> {
    let cleaned: String =
        to.trim().trim_start_matches('+').chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.')).collect();
    if (7..=15).contains(&cleaned.len()) && cleaned.bytes().all(|b| b.is_ascii_digit()) {
        Ok(cleaned)
    } else {
        Err(PlatformError::new(
            INFO.key,
            ErrorKind::Invalid,
            format!("`{to}` is not a phone number in international format"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(status: u16, code: i64) -> Verdict {
        let body = json!({"error": {"message": "m", "type": "OAuthException", "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": "why"}, "fbtrace_id": "T"}});
        Cloud.classify(
            "whatsapp",
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            body.to_string().as_bytes(),
        )
    }

    #[test]
    fn signature_matches_the_reference_vector() {
        let good = "sha256=0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914";
        assert!(verify_signature(b"secret", b"test", good));
        assert!(!verify_signature(b"secret", b"test2", good));
        assert!(!verify_signature(b"other", b"test", good));
        assert!(!verify_signature(b"secret", b"test", &good.replace("sha256=", "sha1=")));
        assert!(!verify_signature(b"secret", b"test", "sha256=zz"));
        assert!(!verify_signature(b"secret", b"test", "sha256=0329a06b"));
        assert!(!verify_signature(b"", b"test", good));
    }

    #[test]
    fn subscription_needs_subscribe_and_the_token() {
        assert_eq!(verify_subscription("subscribe", "tok", "1158201444", "tok").as_deref(), Some("1158201444"));
        assert_eq!(verify_subscription("subscribe", "nope", "1", "tok"), None);
        assert_eq!(verify_subscription("unsubscribe", "tok", "1", "tok"), None);
        assert_eq!(verify_subscription("subscribe", "", "1", ""), None);
    }

    #[test]
    fn classifies_cloud_api_codes() {
        match verdict(400, 131047) {
            Verdict::Fail(e) => {
                assert_eq!((e.kind, e.retryable, e.code.as_deref()), (ErrorKind::Rejected, false, Some("131047")));
                assert!(e.message.contains("why"), "details are kept: {}", e.message);
            }
            _ => panic!("131047 must not be retried"),
        }
        assert!(
            matches!(verdict(400, 130429), Verdict::Retry(e) if e.kind == ErrorKind::Throttled && e.retry_after.is_none())
        );
        assert!(matches!(verdict(400, 131056), Verdict::Retry(e) if e.retry_after == Some(PAIR_LIMIT_WAIT)));
        assert!(matches!(verdict(500, 131000), Verdict::Retry(e) if e.kind == ErrorKind::Unavailable));
        assert!(matches!(verdict(401, 190), Verdict::Fail(e) if e.kind == ErrorKind::Auth));
        for code in [131008, 100, 132000, 132001, 132018] {
            assert!(matches!(verdict(400, code), Verdict::Fail(e) if e.kind == ErrorKind::Invalid));
        }
        assert!(matches!(verdict(400, 131026), Verdict::Fail(e) if e.kind == ErrorKind::Rejected));
    }

    #[test]
    fn recipients_are_sent_as_digits() {
        assert_eq!(recipient("+1 (650) 555-1234").unwrap(), "16505551234");
        assert_eq!(recipient("5511987654321").unwrap(), "5511987654321");
        assert_eq!(recipient("+12").unwrap_err().kind, ErrorKind::Invalid);
        assert!(recipient("+1650555abcd").is_err());
    }

    #[test]
    fn settings_name_missing_credentials() {
        assert_eq!(Settings::default().missing(), vec!["WHATSAPP_ACCESS_TOKEN", "WHATSAPP_PHONE_NUMBER_ID"]);
        let s =
            Settings { access_token: Some("EAAtok".into()), phone_number_id: Some("1".into()), ..Settings::default() };
        assert!(s.missing().is_empty());
        assert!(!format!("{s:?}").contains("EAAtok"));
        assert!(Settings::default().sandboxed("http://x/whatsapp").missing().is_empty());
    }
}
