//! Simulated WhatsApp Cloud API: `POST /{version}/{phone_number_id}/messages` for `text`
//! and `template` messages, with Meta's rules and Graph error bodies (codes:
//! <https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes/>).
//!
//! Every accepted message is kept (see [`State::messages`]): the real API has no
//! idempotency, so sending the same message twice stores (and counts) two. The rules:
//! - no/`bad…` Bearer token → 401, code 190 (`expired…` → 190/463);
//! - a free-form **text** to a number whose customer-service window is closed (no message
//!   from it in the last 24 h; [`State::open_window`], `POST /_sim/whatsapp/inbound`) →
//!   400, code 131047 ([`send`]);
//! - a **template** not approved in that language → 132001, with the wrong number of body
//!   parameters → 132000, with a parameter holding a new line, a tab or more than 4
//!   consecutive spaces → 132018 ([`templates`]);
//! - missing `messaging_product`/`to`, bad number, other `type` → code 100;
//!   missing `text.body` / `template.name` / `template.language.code` → code 131008.
//!
//! After each accepted send, when a webhook is connected ([`State::connect_webhook`]), the
//! statuses follow in the background, signed ([`webhook`]): `sent` then `delivered`, or
//! `failed` (131026) for numbers configured to fail (default: ending in `26`). The
//! simulator's own controls are in [`controls`] (under `/_sim/whatsapp/`).

mod controls;
mod send;
pub mod templates;
pub mod webhook;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        Arc, Mutex, OnceLock, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::{Router, http::StatusCode, response::Response, routing::post};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::{Value, json};

pub use controls::{InboundReceipt, InboundRequest};
pub use templates::Template;
pub use webhook::Target;

use super::{Vendor, meta::graph_error};

/// How long a customer's message keeps the customer-service window open
/// (<https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/send-messages>).
pub const WINDOW: TimeDelta = TimeDelta::hours(24);

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
    /// Where it ends: `delivered`, or `failed` for a number configured to fail.
    pub status: String,
}

pub struct State {
    messages: Mutex<Vec<SentRecord>>,
    /// Digits → when the customer last wrote in.
    windows: Mutex<BTreeMap<String, DateTime<Utc>>>,
    templates: RwLock<Vec<Template>>,
    /// Numbers (digits) whose messages fail after acceptance, beside the default rule.
    failing: RwLock<BTreeSet<String>>,
    target: RwLock<Option<Target>>,
    client: OnceLock<reqwest::Client>,
    deliveries: webhook::Counters,
    inbound: AtomicU64,
}

impl Default for State {
    fn default() -> Self {
        Self {
            messages: Mutex::default(),
            windows: Mutex::default(),
            templates: RwLock::new(templates::defaults()),
            failing: RwLock::default(),
            target: RwLock::default(),
            client: OnceLock::new(),
            deliveries: webhook::Counters::default(),
            inbound: AtomicU64::new(0),
        }
    }
}

/// Digits of a number given with or without `+`, or `None` when it is not 7–15 digits.
pub fn digits(number: &str) -> Option<String> {
    let d = number.trim().trim_start_matches('+');
    ((7..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit())).then(|| d.to_string())
}

impl State {
    /// Accepted messages by kind: `messages` (free-form text) and `templates`.
    pub fn created(&self) -> BTreeMap<String, u64> {
        let messages = self.messages.lock().expect("whatsapp sim");
        let templates = messages.iter().filter(|m| m.kind == "template").count() as u64;
        BTreeMap::from([
            ("messages".to_string(), messages.len() as u64 - templates),
            ("templates".to_string(), templates),
        ])
    }

    /// Forgets messages, windows, added templates and failing numbers; the webhook stays connected.
    pub fn reset(&self) {
        self.messages.lock().expect("whatsapp sim").clear();
        self.windows.lock().expect("whatsapp sim").clear();
        *self.templates.write().expect("whatsapp sim") = templates::defaults();
        self.failing.write().expect("whatsapp sim").clear();
        self.deliveries.delivered.store(0, Ordering::Relaxed);
        self.deliveries.failed.store(0, Ordering::Relaxed);
        self.inbound.store(0, Ordering::Relaxed);
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

    /// Posts webhooks (statuses, customers' messages) to `target` from now on; `None` stops them.
    pub fn connect_webhook(&self, target: Option<Target>) {
        *self.target.write().expect("whatsapp sim") = target;
    }

    pub fn webhook(&self) -> Option<Target> {
        self.target.read().expect("whatsapp sim").clone()
    }

    /// Webhook deliveries so far: (answered 2xx, given up on).
    pub fn webhook_deliveries(&self) -> (u64, u64) {
        (self.deliveries.delivered.load(Ordering::Relaxed), self.deliveries.failed.load(Ordering::Relaxed))
    }

    /// Records that `number` wrote in at `at`, opening its window until `at` + 24 h (a
    /// later message moves it; an earlier one does not).
    pub fn open_window(&self, number: &str, at: DateTime<Utc>) {
        let Some(d) = digits(number) else { return };
        let mut windows = self.windows.lock().expect("whatsapp sim");
        let last = windows.entry(d).or_insert(at);
        *last = (*last).max(at);
    }

    /// Whether a free-form message to `number` may go out at `now`.
    pub fn window_open(&self, number: &str, now: DateTime<Utc>) -> bool {
        let Some(d) = digits(number) else { return false };
        self.windows.lock().expect("whatsapp sim").get(&d).is_some_and(|last| now - *last < WINDOW)
    }

    /// The approved templates.
    pub fn templates(&self) -> Vec<Template> {
        self.templates.read().expect("whatsapp sim").clone()
    }

    /// Approves `template` (replacing one of the same name and language).
    pub fn add_template(&self, template: Template) {
        let mut templates = self.templates.write().expect("whatsapp sim");
        templates.retain(|t| !(t.name == template.name && t.language == template.language));
        templates.push(template);
    }

    /// Numbers whose messages fail after acceptance, beside the default rule (ending in `26`).
    pub fn set_failing(&self, numbers: impl IntoIterator<Item = String>) {
        *self.failing.write().expect("whatsapp sim") = numbers.into_iter().collect();
    }

    pub fn failing(&self) -> Vec<String> {
        self.failing.read().expect("whatsapp sim").iter().cloned().collect()
    }

    /// Whether messages to `digits` fail asynchronously (131026).
    pub fn fails(&self, digits: &str) -> bool {
        digits.ends_with("26") || self.failing.read().expect("whatsapp sim").contains(digits)
    }

    fn client(&self) -> &reqwest::Client {
        self.client.get_or_init(|| {
            crate::tls::install_provider();
            reqwest::Client::new()
        })
    }

    /// Posts the statuses of an accepted message, in order, in the background.
    fn post_statuses(self: &Arc<Self>, record: &SentRecord) {
        let Some(target) = self.webhook() else { return };
        let state = self.clone();
        let (phone_number_id, id, to) = (record.phone_number_id.clone(), record.id.clone(), record.to.clone());
        let steps: &'static [&'static str] =
            if record.status == "failed" { &["failed"] } else { &["sent", "delivered"] };
        tokio::spawn(async move {
            for step in steps {
                let body = webhook::status(&phone_number_id, &id, &to, step, Utc::now());
                // A status that never arrives ends the sequence: Meta does not send `delivered` before `sent`.
                if !webhook::deliver(state.client(), &target, &body, &state.deliveries).await {
                    break;
                }
            }
        });
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
    fn controls(self: Arc<Self>) -> Option<Router> {
        Some(controls::router().with_state(self))
    }
}

pub fn router() -> Router<Arc<State>> {
    Router::new().route("/{version}/{phone_number_id}/messages", post(send::send))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_lasts_24_hours_from_the_last_message() {
        let state = State::default();
        let now = Utc::now();
        assert!(!state.window_open("+5511987654321", now), "closed until the customer writes");
        state.open_window("+5511987654321", now - TimeDelta::hours(25));
        assert!(!state.window_open("5511987654321", now), "25 h ago is too long ago");
        state.open_window("5511987654321", now - TimeDelta::hours(23));
        assert!(state.window_open("+5511987654321", now));
        // An older message does not move the window back.
        state.open_window("5511987654321", now - TimeDelta::hours(30));
        assert!(state.window_open("5511987654321", now));
        assert!(!state.window_open("5511987654321", now + TimeDelta::hours(1)), "23 h + 1 h: closed");
        state.reset();
        assert!(!state.window_open("5511987654321", now));
    }

    #[test]
    fn failing_numbers_are_the_default_rule_and_the_configured_ones() {
        let state = State::default();
        assert!(state.fails("5511900000026"));
        assert!(!state.fails("5511900000027"));
        state.set_failing(["5511900000027".to_string()]);
        assert!(state.fails("5511900000027"));
        state.reset();
        assert!(!state.fails("5511900000027"));
    }

    #[test]
    fn added_templates_replace_their_namesake_and_reset_restores_the_defaults() {
        let state = State::default();
        let t = Template { name: "welcome_client".into(), language: "en_US".into(), body_parameters: 2 };
        state.add_template(t.clone());
        assert_eq!(state.templates().len(), templates::defaults().len());
        assert!(state.templates().contains(&t));
        state.reset();
        assert_eq!(state.templates(), templates::defaults());
    }
}
