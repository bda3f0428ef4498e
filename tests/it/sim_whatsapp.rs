//! The WhatsApp simulator enforces Meta's rules: the 24 h customer-service window (131047),
//! approved templates (132001, 132000, 132018), signed `statuses` and `messages` webhooks
//! (BSUID shape included), failing numbers, and stats by kind. Codes:
//! https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes/

use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;
use switchboard::{
    platforms::whatsapp::verify_signature,
    sim::{self, Behaviour, whatsapp::State},
};
use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};

use crate::support::{TestApp, WHATSAPP_APP_SECRET, http_client};

const SECRET: &str = "sim-test-app-secret";
const PHONE_ID: &str = "100000000000001";
const CUSTOMER: &str = "+5511987654321";

struct Sim {
    running: sim::Running,
    client: reqwest::Client,
}

impl Sim {
    async fn start() -> Self {
        let running =
            sim::spawn("127.0.0.1:0".parse().unwrap(), switchboard::platforms::simulator(Behaviour::default()))
                .await
                .unwrap();
        Self { running, client: http_client() }
    }

    fn state(&self) -> &State {
        self.running.state.vendor::<State>()
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let res = self
            .client
            .post(format!("{}{path}", self.running.base_url))
            .bearer_auth("sandbox-token")
            .json(&body)
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
    }

    async fn send(&self, body: Value) -> (u16, Value) {
        self.post(&format!("/whatsapp/v25.0/{PHONE_ID}/messages"), body).await
    }

    async fn text(&self, to: &str, body: &str) -> (u16, Value) {
        self.send(json!({"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": body}})).await
    }

    async fn template(&self, to: &str, name: &str, language: &str, params: &[&str]) -> (u16, Value) {
        let parameters: Vec<Value> = params.iter().map(|p| json!({"type": "text", "text": p})).collect();
        self.send(json!({"messaging_product": "whatsapp", "to": to, "type": "template", "template": {
            "name": name, "language": {"code": language}, "components": [{"type": "body", "parameters": parameters}]}}))
            .await
    }

    async fn inbound(&self, body: Value) -> (u16, Value) {
        self.post("/_sim/whatsapp/inbound", body).await
    }

    /// Sends webhooks to `server`, signed with `SECRET`.
    async fn connect(&self, server: &MockServer) {
        let (status, _) = self
            .post("/_sim/whatsapp/webhook", json!({"url": format!("{}/hook", server.uri()), "app_secret": SECRET}))
            .await;
        assert_eq!(status, 200);
    }
}

/// Asserts a Graph error body with this code, returning its `error`.
fn graph_error(answer: &(u16, Value), code: i64) -> Value {
    assert_eq!(answer.0, 400, "{}", answer.1);
    let error = answer.1["error"].clone();
    assert_eq!(error["code"], code, "{error}");
    assert_eq!(error["type"], "OAuthException");
    assert_eq!(error["error_data"]["messaging_product"], "whatsapp");
    assert!(error["error_data"]["details"].as_str().is_some_and(|d| !d.is_empty()), "{error}");
    assert!(error["fbtrace_id"].is_string(), "{error}");
    assert!(error["message"].as_str().unwrap().starts_with(&format!("(#{code}) ")), "{error}");
    error
}

/// A webhook receiver answering 200 to everything.
async fn receiver() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    server
}

/// The bodies `server` received once there are `n` (checking each signature), in order.
async fn webhooks(server: &MockServer, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let requests = server.received_requests().await.unwrap_or_default();
        if requests.len() >= n {
            return requests
                .iter()
                .map(|r| {
                    let signature = r.headers.get("x-hub-signature-256").and_then(|v| v.to_str().ok()).unwrap_or("");
                    // The service's own check accepts it: HMAC-SHA256 of the raw body with the app secret.
                    assert!(verify_signature(SECRET.as_bytes(), &r.body, signature), "bad signature {signature}");
                    assert!(!verify_signature(b"another secret", &r.body, signature));
                    serde_json::from_slice(&r.body).unwrap()
                })
                .collect();
        }
        assert!(Instant::now() < deadline, "{} of {n} webhooks arrived", requests.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn statuses(hook: &Value) -> &Value {
    assert_eq!(hook["object"], "whatsapp_business_account");
    let change = &hook["entry"][0]["changes"][0];
    assert_eq!(change["field"], "messages");
    assert_eq!(change["value"]["metadata"]["phone_number_id"], PHONE_ID);
    &change["value"]["statuses"][0]
}

#[tokio::test]
async fn sim_whatsapp_text_outside_the_window_is_131047_and_inside_goes() {
    let sim = Sim::start().await;
    let refused = sim.text(CUSTOMER, "Your report is ready").await;
    let error = graph_error(&refused, 131047);
    assert_eq!(error["message"], "(#131047) Re-engagement message");
    assert_eq!(
        error["error_data"]["details"],
        "Message failed to send because more than 24 hours have passed since the customer last replied to this number."
    );
    // A template goes outside the window.
    let (status, accepted) = sim.template(CUSTOMER, "welcome_client", "en_US", &["Acme"]).await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(accepted["messages"][0]["message_status"], "accepted");
    // The customer writes in: the window opens (no webhook is connected, so none is delivered).
    let (status, receipt) = sim.inbound(json!({"from": CUSTOMER, "text": "hi"})).await;
    assert_eq!(status, 202, "{receipt}");
    assert_eq!(receipt["delivered"], false);
    assert!(receipt["message_id"].as_str().unwrap().starts_with("wamid."));
    let (status, accepted) = sim.text(CUSTOMER, "Your report is ready").await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(accepted["contacts"][0]["wa_id"], "5511987654321");
    assert!(accepted["messages"][0].get("message_status").is_none());
    // Only this number's window opened.
    graph_error(&sim.text("+5511987654322", "hi").await, 131047);
    assert_eq!(sim.running.state.stats().platforms["whatsapp"].errors["131047"], 2);
}

#[tokio::test]
async fn sim_whatsapp_window_closes_24_hours_after_the_last_message() {
    let sim = Sim::start().await;
    let ago = |hours| (Utc::now() - TimeDelta::hours(hours)).to_rfc3339();
    assert_eq!(sim.inbound(json!({"from": CUSTOMER, "text": "hi", "at": ago(25)})).await.0, 202);
    graph_error(&sim.text(CUSTOMER, "too late").await, 131047);
    assert_eq!(sim.inbound(json!({"from": CUSTOMER, "text": "again", "at": ago(23)})).await.0, 202);
    assert_eq!(sim.text(CUSTOMER, "in time").await.0, 200);
    assert!(sim.state().window_open(CUSTOMER, Utc::now()));
    assert!(!sim.state().window_open(CUSTOMER, Utc::now() + TimeDelta::hours(2)), "23 h + 2 h is past the window");
}

#[tokio::test]
async fn sim_whatsapp_unknown_template_or_language_is_132001() {
    let sim = Sim::start().await;
    let error = graph_error(&sim.template(CUSTOMER, "weekly_report_ready", "en_US", &["Acme"]).await, 132001);
    assert_eq!(error["message"], "(#132001) Template name does not exist in the translation");
    assert_eq!(error["error_data"]["details"], "template name (weekly_report_ready) does not exist in en_US");
    graph_error(&sim.template(CUSTOMER, "welcome_client", "pt_BR", &["Acme"]).await, 132001);
    // Approved through the control, it goes.
    let (status, list) = sim
        .post("/_sim/whatsapp/templates", json!({"name": "welcome_client", "language": "pt_BR", "body_parameters": 1}))
        .await;
    assert_eq!(status, 201, "{list}");
    assert_eq!(sim.template(CUSTOMER, "welcome_client", "pt_BR", &["Acme"]).await.0, 200);
    assert!(sim.state().messages().iter().all(|m| m.kind == "template"));
    assert_eq!(sim.state().messages().len(), 1, "refused sends are not kept");
}

#[tokio::test]
async fn sim_whatsapp_wrong_parameter_count_is_132000() {
    let sim = Sim::start().await;
    let error = graph_error(
        &sim.template(CUSTOMER, "switchboard_weekly_report", "en_US", &["Acme", "2026-11-23"]).await,
        132000,
    );
    assert_eq!(error["message"], "(#132000) Number of parameters does not match the expected number of params");
    assert!(
        error["error_data"]["details"]
            .as_str()
            .unwrap()
            .contains("(2) does not match the expected number of params (3)")
    );
    graph_error(&sim.template(CUSTOMER, "welcome_client", "en_US", &[]).await, 132000);
    let three = ["Acme", "2026-11-23 – 2026-11-29", "Spend 1,234 EUR, 12 leads"];
    assert_eq!(sim.template(CUSTOMER, "switchboard_weekly_report", "en_US", &three).await.0, 200);
}

#[tokio::test]
async fn sim_whatsapp_parameter_with_new_line_tab_or_spaces_is_132018() {
    let sim = Sim::start().await;
    for bad in ["line one\nline two", "a\ttab", "five     spaces"] {
        let error = graph_error(&sim.template(CUSTOMER, "welcome_client", "en_US", &[bad]).await, 132018);
        assert_eq!(error["message"], "(#132018) There's an issue with the parameters in your template");
    }
    assert_eq!(sim.template(CUSTOMER, "welcome_client", "en_US", &["four    spaces ok"]).await.0, 200);
    let errors = &sim.running.state.stats().platforms["whatsapp"].errors;
    assert_eq!(errors["132018"], 3);
}

#[tokio::test]
async fn sim_whatsapp_statuses_reach_the_webhook_signed() {
    let sim = Sim::start().await;
    let server = receiver().await;
    sim.connect(&server).await;
    let before = Utc::now().timestamp() - 1;
    let (status, accepted) =
        sim.template(CUSTOMER, "switchboard_alert", "en_US", &["Acme", "Spend spike", "+80%"]).await;
    assert_eq!(status, 200, "{accepted}");
    let id = accepted["messages"][0]["id"].as_str().unwrap();
    let hooks = webhooks(&server, 2).await;
    let (sent, delivered) = (statuses(&hooks[0]), statuses(&hooks[1]));
    assert_eq!((sent["status"].as_str(), delivered["status"].as_str()), (Some("sent"), Some("delivered")));
    for s in [sent, delivered] {
        assert_eq!(s["id"], id);
        assert_eq!(s["recipient_id"], "5511987654321");
        assert!(s["timestamp"].as_str().unwrap().parse::<i64>().unwrap() >= before, "{s}");
        assert!(s.get("errors").is_none());
    }
    assert_eq!(hooks[0]["entry"][0]["id"], sim::whatsapp::webhook::WABA_ID);
    // Nothing more follows (no `read`).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
    assert_eq!(sim.state().webhook_deliveries(), (2, 0));
}

#[tokio::test]
async fn sim_whatsapp_failing_numbers_get_a_failed_status() {
    let sim = Sim::start().await;
    let server = receiver().await;
    sim.connect(&server).await;
    let (status, answer) = sim.post("/_sim/whatsapp/failing", json!({"numbers": ["+5511900000099"]})).await;
    assert_eq!((status, &answer["numbers"]), (200, &json!(["5511900000099"])));
    // Accepted at once (the failure is asynchronous), then `failed` with 131026.
    assert_eq!(sim.template("+5511900000099", "welcome_client", "en_US", &["Acme"]).await.0, 200);
    let hooks = webhooks(&server, 1).await;
    let failed = statuses(&hooks[0]);
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["errors"][0]["code"], 131026);
    assert_eq!(failed["errors"][0]["title"], "Message undeliverable");
    assert!(failed["errors"][0]["error_data"]["details"].is_string());
    // The default rule: numbers ending in 26.
    assert_eq!(sim.template("+5511900000026", "welcome_client", "en_US", &["Acme"]).await.0, 200);
    let hooks = webhooks(&server, 2).await;
    assert_eq!(statuses(&hooks[1])["status"], "failed");
    assert_eq!(statuses(&hooks[1])["recipient_id"], "5511900000026");
    let kept = sim.state().messages();
    assert!(kept.iter().all(|m| m.status == "failed"), "{kept:?}");
    // Bad input names the field and changes nothing.
    let (status, problem) = sim.post("/_sim/whatsapp/failing", json!({"numbers": ["12"]})).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("numbers[0]")));
    assert_eq!(sim.state().failing(), ["5511900000099"]);
}

#[tokio::test]
async fn sim_whatsapp_inbound_posts_a_signed_message_and_bsuid_shape() {
    let sim = Sim::start().await;
    let server = receiver().await;
    sim.connect(&server).await;
    let (status, receipt) = sim.inbound(json!({"from": CUSTOMER, "text": "status acme", "name": "Ana"})).await;
    assert_eq!((status, &receipt["delivered"]), (202, &json!(true)), "{receipt}");
    let (status, bsuid) = sim.inbound(json!({"from": CUSTOMER, "text": "oi", "username_only": true})).await;
    assert_eq!((status, &bsuid["delivered"]), (202, &json!(true)), "{bsuid}");
    let hooks = webhooks(&server, 2).await;

    let value = &hooks[0]["entry"][0]["changes"][0]["value"];
    let message = &value["messages"][0];
    assert_eq!(message["id"], receipt["message_id"]);
    assert_eq!((message["from"].as_str(), message["type"].as_str()), (Some("5511987654321"), Some("text")));
    assert_eq!(message["text"]["body"], "status acme");
    assert_eq!(value["contacts"][0]["profile"]["name"], "Ana");
    assert_eq!(value["contacts"][0]["wa_id"], "5511987654321");
    let user_id = value["contacts"][0]["user_id"].as_str().unwrap();
    assert!(user_id.starts_with("BR.") && user_id.len() == 23, "{user_id}");
    assert!((message["timestamp"].as_str().unwrap().parse::<i64>().unwrap() - Utc::now().timestamp()).abs() < 60);

    // Username only: the business-scoped user id, no phone number anywhere.
    let value = &hooks[1]["entry"][0]["changes"][0]["value"];
    let message = &value["messages"][0];
    assert!(message.get("from").is_none() && value["contacts"][0].get("wa_id").is_none(), "{value}");
    assert_eq!(message["from_user_id"], user_id);
    assert_eq!(value["contacts"][0]["user_id"], user_id);
    assert_eq!(bsuid["user_id"], user_id);
    assert!(!hooks[1].to_string().contains("5511987654321"), "the number is withheld");
    // Bad input names the field and plays nothing.
    for (body, field) in [
        (json!({"from": "12", "text": "x"}), "from"),
        (json!({"from": CUSTOMER, "text": "  "}), "text"),
        (json!({"from": CUSTOMER, "text": "x", "at": (Utc::now() + TimeDelta::hours(1)).to_rfc3339()}), "at"),
        (json!({"from": CUSTOMER, "text": "x", "at": "yesterday"}), "at"),
        (json!({"from": CUSTOMER}), "body"),
        (json!({"from": CUSTOMER, "text": "x", "unknown": 1}), "unknown"),
    ] {
        let (status, problem) = sim.inbound(body.clone()).await;
        assert_eq!(status, 400, "{body}: {problem}");
        assert_eq!(problem["field"], field, "{body}: {problem}");
    }
    assert_eq!(server.received_requests().await.unwrap().len(), 2, "nothing more was posted");
    // Either way the customer wrote in: their window is open.
    assert_eq!(sim.text(CUSTOMER, "thanks").await.0, 200);
}

#[tokio::test]
async fn sim_whatsapp_stats_count_messages_and_templates_apart() {
    let sim = Sim::start().await;
    sim.state().open_window(CUSTOMER, Utc::now());
    assert_eq!(sim.text(CUSTOMER, "one").await.0, 200);
    assert_eq!(sim.text(CUSTOMER, "two").await.0, 200);
    assert_eq!(sim.template(CUSTOMER, "welcome_client", "en_US", &["Acme"]).await.0, 200);
    graph_error(&sim.template(CUSTOMER, "nope", "en_US", &[]).await, 132001);
    let stats = &sim.running.state.stats().platforms["whatsapp"];
    assert_eq!((stats.created["messages"], stats.created["templates"]), (2, 1));
    assert_eq!(stats.errors["132001"], 1);
    sim.running.state.reset();
    let stats = &sim.running.state.stats().platforms["whatsapp"];
    assert_eq!((stats.created["messages"], stats.created["templates"]), (0, 0));
    graph_error(&sim.text(CUSTOMER, "after reset").await, 131047);
}

#[tokio::test]
async fn sim_whatsapp_webhook_control_needs_a_secret_and_never_shows_it() {
    let sim = Sim::start().await;
    let (status, problem) = sim.post("/_sim/whatsapp/webhook", json!({"url": "http://127.0.0.1:9/hook"})).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("app_secret")));
    let (status, problem) = sim.post("/_sim/whatsapp/webhook", json!({"url": "ftp://x", "app_secret": SECRET})).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("url")));
    assert!(sim.state().webhook().is_none());
    let (status, summary) =
        sim.post("/_sim/whatsapp/webhook", json!({"url": "http://127.0.0.1:9/hook", "app_secret": SECRET})).await;
    assert_eq!(status, 200);
    assert_eq!(summary["webhook"]["url"], "http://127.0.0.1:9/hook");
    assert!(!summary.to_string().contains(SECRET));
    // A receiver that is down: the customer's message is not delivered, and that is counted.
    let (status, receipt) = sim.inbound(json!({"from": CUSTOMER, "text": "hi"})).await;
    assert_eq!((status, &receipt["delivered"]), (202, &json!(false)));
    assert_eq!(sim.state().webhook_deliveries(), (0, 1));
    assert_eq!(sim.post("/_sim/whatsapp/webhook", json!({"url": null})).await.0, 200);
    assert!(sim.state().webhook().is_none());
}

/// Sandbox: the in-process simulator is wired to the service's own inbound endpoint with the
/// installation's app secret; a customer played through the simulator reaches the service,
/// and the statuses of a send are accepted by it (a bad signature would be refused and counted).
#[sqlx::test]
async fn sim_whatsapp_sandbox_inbound_reaches_the_service(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bound = listener.local_addr().unwrap();
    let service = tokio::spawn(axum::serve(listener, switchboard::api::app(app.state.clone())).into_future());
    switchboard::server::wire_simulator(&app.sim.state, bound, &app.state.platforms);
    let state = app.sim.state.vendor::<State>();
    let target = state.webhook().expect("wired");
    assert_eq!(target.url, format!("http://{bound}/v1/inbound/whatsapp"));
    assert_eq!(target.app_secret, WHATSAPP_APP_SECRET);

    let client = http_client();
    let res = client
        .post(format!("{}/_sim/whatsapp/inbound", app.sim.base_url))
        .json(&json!({"from": "+5511999990042", "text": "hello from the sandbox"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 202);
    let receipt: Value = res.json().await.unwrap();
    assert_eq!(receipt["delivered"], true, "{receipt}");
    let (sender, body): (String, String) =
        sqlx::query_as("SELECT sender, body FROM engine.inbound_messages WHERE message_id = $1")
            .bind(receipt["message_id"].as_str().unwrap())
            .fetch_one(&app.pool)
            .await
            .expect("the service recorded the message");
    assert_eq!((sender.as_str(), body.as_str()), ("+5511999990042", "hello from the sandbox"));

    // A send's statuses are signed so the service accepts them (2 more deliveries, none refused).
    let params = ["Acme".to_string()];
    app.state.platforms.whatsapp.send_template("+5511999990042", "welcome_client", "en_US", &params).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while state.webhook_deliveries() != (3, 0) {
        assert!(Instant::now() < deadline, "deliveries: {:?}", state.webhook_deliveries());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    service.abort();
}
