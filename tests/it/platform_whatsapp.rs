//! WhatsApp Cloud API connector against wiremock (as the platform) and the simulator.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard::{
    platforms::{
        ErrorKind,
        whatsapp::{self, Settings, WhatsApp},
    },
    sim::{self, Behaviour},
};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_json, header, method, path},
};

const PHONE_ID: &str = "106540352242922";
const MESSAGES: &str = "/v25.0/106540352242922/messages";

fn settings(base: &str) -> Settings {
    Settings {
        access_token: Some("EAAG_wa_token".into()),
        phone_number_id: Some(PHONE_ID.into()),
        base_url: base.to_string(),
        retry_base_ms: Some(5),
        ..Settings::default()
    }
}

fn accepted(to: &str, id: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(
        json!({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}], "messages": [{"id": id}]}),
    )
}

fn cloud_error(status: u16, code: i64, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"error": {"message": message, "type": "OAuthException", "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": format!("details of {code}")}, "fbtrace_id": "AbCdEf123"}}))
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test]
async fn platform_whatsapp_send_text_posts_the_cloud_api_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .and(header("authorization", "Bearer EAAG_wa_token"))
        .and(body_json(json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "16505551234",
            "type": "text", "text": {"preview_url": false, "body": "Your weekly report is ready."}})))
        .respond_with(accepted("16505551234", "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"))
        .expect(1)
        .mount(&server)
        .await;
    let wa = WhatsApp::new(&settings(&server.uri()));
    let sent = wa.send_text("+1 650 555 1234", "Your weekly report is ready.").await.unwrap();
    assert_eq!(sent.id, "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA");
    assert_eq!(sent.to, "16505551234");
}

#[tokio::test]
async fn platform_whatsapp_send_template_with_body_parameters() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .and(body_json(json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "16505551234", "type": "template",
            "template": {"name": "weekly_report_ready", "language": {"code": "en_US"},
                         "components": [{"type": "body", "parameters": [{"type": "text", "text": "Acme Corp"}, {"type": "text", "text": "12%"}]}]}})))
        .respond_with(accepted("16505551234", "wamid.T1"))
        .expect(1)
        .mount(&server)
        .await;
    let wa = WhatsApp::new(&settings(&server.uri()));
    let params = ["Acme Corp".to_string(), "12%".to_string()];
    let sent = wa.send_template("+16505551234", "weekly_report_ready", "en_US", &params).await.unwrap();
    assert_eq!(sent.id, "wamid.T1");
}

#[tokio::test]
async fn platform_whatsapp_template_parameters_are_made_single_line() {
    // Meta refuses a parameter with a newline, a tab or more than 4 consecutive spaces (132018).
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .and(body_json(json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "16505551234", "type": "template",
            "template": {"name": "switchboard_daily_digest", "language": {"code": "en_US"},
                         "components": [{"type": "body", "parameters": [
                             {"type": "text", "text": "Acme Corp"}, {"type": "text", "text": "-"},
                             {"type": "text", "text": "[critical] Pacing over · [warning] CPA 40.00"}]}]}})))
        .respond_with(accepted("16505551234", "wamid.P1"))
        .expect(1)
        .mount(&server)
        .await;
    let wa = WhatsApp::new(&settings(&server.uri()));
    let params =
        ["Acme\tCorp".to_string(), " \n ".to_string(), "[critical] Pacing over\n[warning]      CPA 40.00".to_string()];
    wa.send_template("+16505551234", "switchboard_daily_digest", "en_US", &params).await.unwrap();
}

#[tokio::test]
async fn platform_whatsapp_template_errors_fail_at_once() {
    // Meta's documented template errors (error-codes page): unknown template 132001, wrong
    // parameter count 132000, bad parameter format 132018; the 132001 body is Meta's own.
    for (code, message, details) in [
        (
            132001,
            "(#132001) Template name does not exist in the translation",
            "template name (switchboard_daily_digest) does not exist in en_US",
        ),
        (
            132000,
            "(#132000) Number of parameters does not match the expected number of params",
            "body: number of localizable_params (2) does not match the expected number of params (3)",
        ),
        (
            132018,
            "(#132018) There was an issue with the parameters in your template.",
            "Param text cannot have new-line/tab characters or more than 4 consecutive spaces",
        ),
    ] {
        let server = MockServer::start().await;
        Mock::given(path(MESSAGES))
            .respond_with(ResponseTemplate::new(400).set_body_json(
                json!({"error": {"message": message, "type": "OAuthException",
                "code": code, "error_data": {"messaging_product": "whatsapp", "details": details},
                "error_subcode": 2494073, "fbtrace_id": "AE9jPfwk6-lgxrhmyNUuovy"}}),
            ))
            .mount(&server)
            .await;
        let wa = WhatsApp::new(&settings(&server.uri()));
        let err = wa.send_template("16505551234", "switchboard_daily_digest", "en_US", &[]).await.unwrap_err();
        assert_eq!((err.kind, err.retryable), (ErrorKind::Invalid, false), "{code}");
        // The code, with Meta's subcode after a slash when it sent one.
        assert_eq!(err.code.as_deref().and_then(|c| c.split('/').next()), Some(code.to_string().as_str()));
        assert!(err.message.contains(details), "{}", err.message);
        assert_eq!(requests(&server).await, 1, "{code} is not retried");
    }
}

#[tokio::test]
async fn platform_whatsapp_outside_the_window_is_rejected_without_retry() {
    let server = MockServer::start().await;
    Mock::given(path(MESSAGES))
        .respond_with(cloud_error(400, 131047, "(#131047) Re-engagement message"))
        .mount(&server)
        .await;
    let wa = WhatsApp::new(&settings(&server.uri()));
    let err = wa.send_text("16505551234", "hi").await.unwrap_err();
    assert_eq!((err.kind, err.retryable, err.code.as_deref()), (ErrorKind::Rejected, false, Some("131047")));
    assert!(err.message.contains("details of 131047"), "{}", err.message);
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test]
async fn platform_whatsapp_throughput_limit_is_retried() {
    let server = MockServer::start().await;
    Mock::given(path(MESSAGES))
        .respond_with(cloud_error(400, 130429, "(#130429) Rate limit hit"))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(path(MESSAGES)).respond_with(accepted("16505551234", "wamid.R")).mount(&server).await;
    let wa = WhatsApp::new(&settings(&server.uri()));
    assert_eq!(wa.send_text("16505551234", "hi").await.unwrap().id, "wamid.R");
    assert_eq!(requests(&server).await, 3);
}

#[tokio::test]
async fn platform_whatsapp_throttle_honours_retry_after() {
    let server = MockServer::start().await;
    Mock::given(path(MESSAGES))
        .respond_with(cloud_error(429, 130429, "(#130429) Rate limit hit").insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path(MESSAGES)).respond_with(accepted("16505551234", "wamid.R")).mount(&server).await;
    let wa = WhatsApp::new(&settings(&server.uri()));
    let started = Instant::now();
    wa.send_text("16505551234", "hi").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(950), "{:?}", started.elapsed());
    assert_eq!(requests(&server).await, 2);
}

#[tokio::test]
async fn platform_whatsapp_retries_131000_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(path(MESSAGES))
        .respond_with(cloud_error(500, 131000, "(#131000) Something went wrong"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path(MESSAGES)).respond_with(accepted("16505551234", "wamid.S")).mount(&server).await;
    let wa = WhatsApp::new(&settings(&server.uri()));
    assert_eq!(wa.send_text("16505551234", "hi").await.unwrap().id, "wamid.S");
    assert_eq!(requests(&server).await, 2);
}

#[tokio::test]
async fn platform_whatsapp_invalid_token_is_an_auth_failure() {
    let server = MockServer::start().await;
    Mock::given(path(MESSAGES))
        .respond_with(cloud_error(401, 190, "Invalid OAuth access token - Cannot parse access token"))
        .mount(&server)
        .await;
    let wa = WhatsApp::new(&settings(&server.uri()));
    let err = wa.send_template("16505551234", "t", "en", &[]).await.unwrap_err();
    assert_eq!((err.kind, err.retryable, err.code.as_deref()), (ErrorKind::Auth, false, Some("190")));
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test]
async fn platform_whatsapp_missing_parameter_fails_at_once() {
    let server = MockServer::start().await;
    Mock::given(path(MESSAGES))
        .respond_with(cloud_error(400, 131008, "(#131008) Required parameter is missing"))
        .mount(&server)
        .await;
    let wa = WhatsApp::new(&settings(&server.uri()));
    assert_eq!(wa.send_text("16505551234", "").await.unwrap_err().kind, ErrorKind::Invalid);
    assert_eq!(requests(&server).await, 1);
    // A number that cannot be one never leaves.
    assert_eq!(wa.send_text("call me", "hi").await.unwrap_err().kind, ErrorKind::Invalid);
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test]
async fn platform_whatsapp_malformed_response_is_a_clear_error() {
    let server = MockServer::start().await;
    Mock::given(path(MESSAGES))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"messaging_product": "whatsapp", "messages": []})),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path(MESSAGES))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"messages\": 3}"))
        .mount(&server)
        .await;
    let wa = WhatsApp::new(&settings(&server.uri()));
    let err = wa.send_text("16505551234", "hi").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::MalformedResponse);
    assert!(err.message.contains("no message id"), "{}", err.message);
    assert_eq!(wa.send_text("16505551234", "hi").await.unwrap_err().kind, ErrorKind::MalformedResponse);
}

#[tokio::test]
async fn platform_whatsapp_without_credentials_sends_nothing() {
    let server = MockServer::start().await;
    let wa = WhatsApp::new(&Settings { phone_number_id: None, ..settings(&server.uri()) });
    let err = wa.send_text("16505551234", "hi").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotConfigured);
    assert!(err.message.contains("WHATSAPP_PHONE_NUMBER_ID"), "{}", err.message);
    assert_eq!(requests(&server).await, 0);
}

// ---- simulator ----

async fn sim_whatsapp() -> (sim::Running, WhatsApp, String) {
    let running = sim::spawn("127.0.0.1:0".parse().unwrap(), switchboard::platforms::simulator(Behaviour::default()))
        .await
        .unwrap();
    let base = format!("{}{}", running.base_url, whatsapp::INFO.sim_prefix);
    let wa = WhatsApp::new(&Settings { retry_base_ms: Some(1), ..Settings::default() }.sandboxed(&base));
    (running, wa, base)
}

#[tokio::test]
async fn platform_whatsapp_sim_records_every_send() {
    let (running, wa, _) = sim_whatsapp().await;
    // Free-form text needs the customer's 24 h window open: they wrote in a minute ago.
    let sim_wa = running.state.vendor::<switchboard::sim::whatsapp::State>();
    sim_wa.open_window("+5511987654321", chrono::Utc::now() - chrono::TimeDelta::minutes(1));
    let first = wa.send_text("+5511987654321", "Report ready").await.unwrap();
    let second = wa.send_text("+5511987654321", "Report ready").await.unwrap();
    assert!(first.id.starts_with("wamid.") && second.id.starts_with("wamid."));
    assert_ne!(first.id, second.id);
    assert_eq!(first.to, "5511987654321");
    // The Cloud API has no idempotency: two sends are two messages, and the simulator shows both.
    let created = &running.state.stats().platforms["whatsapp"].created;
    assert_eq!(created["messages"], 2);
    let params = ["Acme".to_string()];
    wa.send_template("5511987654321", "welcome_client", "en_US", &params).await.unwrap();
    let sent = sim_wa.sent_to("+5511987654321");
    assert_eq!(sent.len(), 3);
    assert_eq!(
        (sent[2].kind.as_str(), sent[2].body.as_str(), sent[2].params.as_slice()),
        ("template", "welcome_client", &params[..])
    );
    assert_eq!(sent[2].language.as_deref(), Some("en_US"));
    assert_eq!(running.state.stats().platforms["whatsapp"].created["templates"], 1);
}

#[tokio::test]
async fn platform_whatsapp_sim_answers_real_errors() {
    let (running, wa, base) = sim_whatsapp().await;
    // A text to a number that has not written in the last 24 h is refused; a template still goes.
    let err = wa.send_text("+5511900000047", "hi").await.unwrap_err();
    assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::Rejected, Some("131047")));
    wa.send_template("+5511900000047", "welcome_client", "en_US", &["Acme".to_string()]).await.unwrap();
    assert_eq!(running.state.vendor::<switchboard::sim::whatsapp::State>().messages().len(), 1);
    assert_eq!(running.state.stats().platforms["whatsapp"].calls, 2, "the rejection was not retried");

    let bad = WhatsApp::new(&Settings { access_token: Some("bad".into()), ..Settings::default().sandboxed(&base) });
    assert_eq!(bad.send_text("5511987654321", "hi").await.unwrap_err().kind, ErrorKind::Auth);

    let raw: Value = crate::support::http_client()
        .post(format!("{base}/v25.0/100000000000001/messages"))
        .bearer_auth("t")
        .json(&json!({"messaging_product": "whatsapp", "to": "5511987654321", "type": "text", "text": {}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(raw["error"]["code"], 131008);

    running
        .state
        .vendor::<switchboard::sim::whatsapp::State>()
        .open_window("5511987654321", chrono::Utc::now() - chrono::TimeDelta::minutes(1));
    running.state.configure("whatsapp", Behaviour { fault_rate: 1.0, ..Behaviour::default() });
    let err = wa.send_text("5511987654321", "hi").await.unwrap_err();
    assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::Unavailable, Some("131000")));

    running.state.configure("whatsapp", Behaviour { rate_per_second: Some(0.001), ..Behaviour::default() });
    wa.send_text("5511987654321", "first").await.unwrap();
    let err = wa.send_text("5511987654321", "second").await.unwrap_err();
    assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::Throttled, Some("130429")));
    assert_eq!(
        running.state.vendor::<switchboard::sim::whatsapp::State>().messages().len(),
        2,
        "only what was accepted is stored"
    );
}
