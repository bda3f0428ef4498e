//! What the simulated Cloud API POSTs to the business's webhook: `messages` (a customer
//! wrote in) and `statuses` (what became of a sent message), in Meta's envelope, signed
//! with the app secret in `X-Hub-Signature-256`.
//!
//! Shapes: <https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages>
//! (text message), <https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages/status/>
//! (statuses), business-scoped user ids (`user_id`, `from_user_id`):
//! <https://developers.facebook.com/documentation/business-messaging/whatsapp/business-scoped-user-ids/>.

use std::{
    fmt,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// The simulated account's ids, as they appear in every webhook's `entry[].id` and `metadata`.
pub const WABA_ID: &str = "100000000000002";
pub const DISPLAY_PHONE_NUMBER: &str = "15550000001";
/// The phone number id an inbound message is addressed to (the sandbox's sending number).
pub const PHONE_NUMBER_ID: &str = "100000000000001";

/// Attempts per delivery before it is counted as failed (Meta retries for longer; a
/// simulator that never gives up would pile up tasks behind a dead receiver).
const ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const TIMEOUT: Duration = Duration::from_secs(10);

/// Where webhooks go and the key they are signed with.
#[derive(Clone)]
pub struct Target {
    pub url: String,
    pub app_secret: String,
}

// Hand-written: the secret never reaches a log line.
impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target").field("url", &self.url).field("app_secret", &"[set]").finish()
    }
}

/// `sha256=<hex HMAC-SHA256(app_secret, body)>`, the `X-Hub-Signature-256` value.
pub fn signature(app_secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Meta's envelope around one `messages`-field change.
fn envelope(phone_number_id: &str, mut value: Value) -> Value {
    value["messaging_product"] = json!("whatsapp");
    value["metadata"] = json!({"display_phone_number": DISPLAY_PHONE_NUMBER, "phone_number_id": phone_number_id});
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": [{"field": "messages", "value": value}]}],
    })
}

/// One status of a sent message; `failed` carries 131026 (Message undeliverable).
pub fn status(phone_number_id: &str, message_id: &str, recipient: &str, status: &str, at: DateTime<Utc>) -> Value {
    let mut entry = json!({
        "id": message_id,
        "status": status,
        "timestamp": at.timestamp().to_string(),
        "recipient_id": recipient,
    });
    if status == "failed" {
        entry["errors"] = json!([{
            "code": 131026,
            "title": "Message undeliverable",
            "message": "Message undeliverable",
            "error_data": {"details": "Message failed to send because the recipient's phone number is not a WhatsApp number, \
                                       or the recipient has not accepted the latest Terms of Service, or uses an outdated client."},
        }]);
    }
    envelope(phone_number_id, json!({"statuses": [entry]}))
}

/// A customer's text. With `username_only` the sender is known by business-scoped user id
/// alone: no `from` and no `wa_id`.
pub struct Inbound<'a> {
    pub message_id: &'a str,
    /// Digits, no `+`.
    pub from: &'a str,
    pub user_id: &'a str,
    pub name: &'a str,
    pub text: &'a str,
    pub at: DateTime<Utc>,
    pub username_only: bool,
}

pub fn message(m: &Inbound<'_>) -> Value {
    let mut contact = json!({"profile": {"name": m.name}, "user_id": m.user_id});
    let mut message = json!({
        "id": m.message_id,
        "timestamp": m.at.timestamp().to_string(),
        "type": "text",
        "text": {"body": m.text},
        "from_user_id": m.user_id,
    });
    if !m.username_only {
        contact["wa_id"] = json!(m.from);
        message["from"] = json!(m.from);
    }
    envelope(PHONE_NUMBER_ID, json!({"contacts": [contact], "messages": [message]}))
}

/// A deterministic business-scoped user id for a number: ISO country, a dot, 20 digits
/// (e.g. `US.13491208655302741918`).
pub fn user_id(digits: &str) -> String {
    const COUNTRIES: [(&str, &str); 10] = [
        ("351", "PT"),
        ("55", "BR"),
        ("54", "AR"),
        ("52", "MX"),
        ("49", "DE"),
        ("44", "GB"),
        ("34", "ES"),
        ("33", "FR"),
        ("91", "IN"),
        ("1", "US"),
    ];
    let country = COUNTRIES.iter().find(|(code, _)| digits.starts_with(code)).map_or("US", |(_, c)| c);
    // 20 digits: 10^19 plus less than 8 * 10^18 stays below u64::MAX.
    let n = (crate::sim::unit(&["bsuid", digits]) * 8e18) as u64 + 10_000_000_000_000_000_000;
    format!("{country}.{n}")
}

/// Delivery counts, for the control summary.
#[derive(Default)]
pub struct Counters {
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
}

/// POSTs `body` signed to the target, retrying a few times; `true` once it is answered 2xx.
/// Failures are logged (never the secret) and counted.
pub async fn deliver(client: &reqwest::Client, target: &Target, body: &Value, counters: &Counters) -> bool {
    let raw = serde_json::to_vec(body).expect("JSON");
    let signature = signature(&target.app_secret, &raw);
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        let sent = client
            .post(&target.url)
            .header("content-type", "application/json")
            .header("x-hub-signature-256", &signature)
            .timeout(TIMEOUT)
            .body(raw.clone())
            .send()
            .await;
        match sent {
            Ok(res) if res.status().is_success() => {
                counters.delivered.fetch_add(1, Ordering::Relaxed);
                return true;
            }
            Ok(res) => {
                tracing::warn!(url = %target.url, status = %res.status(), attempt, "simulated WhatsApp webhook refused")
            }
            Err(e) => {
                tracing::warn!(url = %target.url, error = %e, attempt, "simulated WhatsApp webhook not delivered")
            }
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(backoff).await;
            backoff *= 4;
        }
    }
    counters.failed.fetch_add(1, Ordering::Relaxed);
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_the_raw_body() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_username_only_message_carries_the_user_id_and_no_number() {
        let at = DateTime::from_timestamp(1_749_416_383, 0).unwrap();
        let user_id = user_id("5511987654321");
        assert!(user_id.starts_with("BR.") && user_id.len() == 23, "{user_id}");
        assert_eq!(user_id, super::user_id("5511987654321"), "stable per number");
        let m = |username_only| Inbound {
            message_id: "wamid.1",
            from: "5511987654321",
            user_id: &user_id,
            name: "Ana",
            text: "oi",
            at,
            username_only,
        };
        let plain = message(&m(false));
        let value = &plain["entry"][0]["changes"][0]["value"];
        assert_eq!(value["messages"][0]["from"], "5511987654321");
        assert_eq!(value["messages"][0]["timestamp"], "1749416383");
        assert_eq!(value["contacts"][0]["wa_id"], "5511987654321");
        let bsuid = message(&m(true));
        let value = &bsuid["entry"][0]["changes"][0]["value"];
        assert!(value["messages"][0].get("from").is_none() && value["contacts"][0].get("wa_id").is_none());
        assert_eq!(value["messages"][0]["from_user_id"], user_id.as_str());
        assert_eq!(value["contacts"][0]["user_id"], user_id.as_str());
        assert_eq!(bsuid["object"], "whatsapp_business_account");
        assert_eq!(value["metadata"]["phone_number_id"], PHONE_NUMBER_ID);
    }

    #[test]
    fn only_a_failed_status_carries_errors() {
        let at = Utc::now();
        let delivered = status("1", "wamid.1", "5511", "delivered", at);
        assert!(delivered["entry"][0]["changes"][0]["value"]["statuses"][0].get("errors").is_none());
        let failed = status("1", "wamid.1", "5511", "failed", at);
        assert_eq!(failed["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"][0]["code"], 131026);
    }

    #[test]
    fn the_target_never_shows_its_secret() {
        let t = Target { url: "http://x".into(), app_secret: "s3cr3t-value".into() };
        assert!(!format!("{t:?}").contains("s3cr3t"));
    }
}
