//! The WhatsApp message log (`GET /v1/messages`), status webhooks moving it forward
//! (`message.failed` on a failure), inbound messages without a phone number (BSUID),
//! the 24 h window as the service tracks it, and sendable recipients only.

use axum::http::{Method, StatusCode};
use chrono::{Duration, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::{TestApp, TestResponse, whatsapp_signature};

const INBOUND: &str = "/v1/inbound/whatsapp";

async fn post_signed(app: &TestApp, body: &Value) -> TestResponse {
    let bytes = serde_json::to_vec(body).unwrap();
    let res = app
        .request(Method::POST, INBOUND)
        .header("x-hub-signature-256", &whatsapp_signature(&bytes))
        .raw_body("application/json", bytes)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    res
}

/// A `statuses` delivery shaped as Meta's "Status messages webhook reference" example
/// (https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages/status/).
fn status_webhook(wamid: &str, status: &str, recipient: &str, errors: Option<Value>) -> Value {
    let mut s = json!({
        "id": wamid, "status": status, "timestamp": Utc::now().timestamp().to_string(), "recipient_id": recipient,
        "pricing": {"billable": true, "pricing_model": "PMP", "category": "utility"}
    });
    if let Some(errors) = errors {
        s["errors"] = errors;
    }
    json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages",
        "value": {"messaging_product": "whatsapp",
                  "metadata": {"display_phone_number": "15550783881", "phone_number_id": "100000000000001"},
                  "statuses": [s]}}]}]})
}

/// Meta's documented failure: 131026 "Message undeliverable".
fn undeliverable() -> Value {
    json!([{"code": 131026, "title": "Message undeliverable", "message": "Message undeliverable",
            "error_data": {"details": "Message Undeliverable."}}])
}

fn template() -> Value {
    json!({"name": "switchboard_weekly_report", "language": "en_US",
           "params": ["Chat Co", "2026-06-01 – 2026-06-07", "Spend up 12%"]})
}

/// Sends a template through the API and returns (wamid, log id).
async fn send_template(app: &TestApp, body: Value) -> (String, String) {
    let res = app.post("/v1/platforms/whatsapp/messages", body).send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let v = res.json();
    (v["message_id"].as_str().unwrap().to_string(), v["log_id"].as_str().expect("logged").to_string())
}

async fn message(app: &TestApp, log_id: &str) -> Value {
    let page = app.get("/v1/messages?limit=500").send().await.json();
    page["data"].as_array().unwrap().iter().find(|m| m["id"] == log_id).cloned().expect("listed")
}

#[sqlx::test]
async fn status_webhooks_move_messages_forward_and_a_failure_emits_message_failed(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let client = app.create_client(json!({"name": "Chat Co", "accounts": {"whatsapp": "+5511999990000"}})).await;
    let (wamid, log_id) = send_template(&app, json!({"client": "chat-co", "template": template()})).await;
    let m = message(&app, &log_id).await;
    assert_eq!(
        (m["status"].as_str(), m["kind"].as_str(), m["template"].as_str(), m["wamid"].as_str()),
        (Some("accepted"), Some("template"), Some("switchboard_weekly_report"), Some(wamid.as_str()))
    );
    assert_eq!((m["client_id"].as_str(), m["recipient"].as_str()), (client["id"].as_str(), Some("5511999990000")));

    let ack = post_signed(&app, &status_webhook(&wamid, "delivered", "5511999990000", None)).await.json();
    assert_eq!(ack["statuses"], 1);
    assert_eq!(message(&app, &log_id).await["status"], "delivered");
    // Out of order: a late `sent` never moves it back.
    let ack = post_signed(&app, &status_webhook(&wamid, "sent", "5511999990000", None)).await.json();
    assert_eq!(ack["statuses"], 0);
    assert_eq!(message(&app, &log_id).await["status"], "delivered");
    post_signed(&app, &status_webhook(&wamid, "read", "5511999990000", None)).await;
    assert_eq!(message(&app, &log_id).await["status"], "read");
    assert_eq!(app.count("SELECT count(*) FROM engine.events WHERE type = 'message.failed'").await, 0);

    // A failure is final, carries the vendor's code and title, and is announced.
    let (failing, failing_id) = send_template(&app, json!({"to": "+16505551226", "template": template()})).await;
    post_signed(&app, &status_webhook(&failing, "failed", "16505551226", Some(undeliverable()))).await;
    let f = message(&app, &failing_id).await;
    assert_eq!(
        (f["status"].as_str(), f["error_code"].as_str(), f["error_title"].as_str()),
        (Some("failed"), Some("131026"), Some("Message undeliverable"))
    );
    post_signed(&app, &status_webhook(&failing, "delivered", "16505551226", None)).await;
    assert_eq!(message(&app, &failing_id).await["status"], "failed", "failed is final");
    let event: Value = sqlx::query_scalar("SELECT data FROM engine.events WHERE type = 'message.failed'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!((event["wamid"].as_str(), event["error_code"].as_str()), (Some(failing.as_str()), Some("131026")));
    // A wamid that is not ours changes nothing.
    let ack = post_signed(&app, &status_webhook("wamid.unknown", "failed", "1", Some(undeliverable()))).await.json();
    assert_eq!(ack["statuses"], 0);
    assert_eq!(app.count("SELECT count(*) FROM engine.events WHERE type = 'message.failed'").await, 1);
}

#[sqlx::test]
async fn messages_list_filters_pages_and_needs_clients_read(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let client = app.create_client(json!({"name": "Chat Co", "accounts": {"whatsapp": "+5511999990000"}})).await;
    let (first, _) = send_template(&app, json!({"client": "chat-co", "template": template()})).await;
    send_template(&app, json!({"to": "+16505551234", "template": template()})).await;
    send_template(&app, json!({"to": "+16505551235", "template": template()})).await;
    post_signed(&app, &status_webhook(&first, "failed", "5511999990000", Some(undeliverable()))).await;

    let list = |q: &'static str| app.get(&format!("/v1/messages{q}")).send();
    let all = list("").await.json();
    assert_eq!(all["data"].as_array().unwrap().len(), 3);
    assert_eq!(all["data"][2]["wamid"], first.as_str(), "newest first");
    let of_client = list("?client=chat-co").await.json();
    assert_eq!(of_client["data"].as_array().unwrap().len(), 1);
    assert_eq!(of_client["data"][0]["client_id"], client["id"]);
    let failed = list("?status=failed").await.json();
    assert_eq!(
        (failed["data"].as_array().unwrap().len(), failed["data"][0]["wamid"].as_str()),
        (1, Some(first.as_str()))
    );
    assert_eq!(list("?status=read").await.json()["data"], json!([]));

    let since = (Utc::now() - Duration::minutes(5)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let until = (Utc::now() + Duration::minutes(5)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let ranged = app.get(&format!("/v1/messages?from={since}&to={until}")).send().await.json();
    assert_eq!(ranged["data"].as_array().unwrap().len(), 3);
    let future = app.get(&format!("/v1/messages?from={until}")).send().await.json();
    assert_eq!(future["data"], json!([]));
    let backwards = app.get(&format!("/v1/messages?from={until}&to={since}")).send().await;
    assert_eq!(backwards.problem(400, "invalid_query")["errors"][0]["field"], "to");
    list("?status=lost").await.problem(400, "invalid_query");
    list("?client=nobody").await.problem(404, "not_found");

    let page = list("?limit=2").await.json();
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = app.get(&format!("/v1/messages?limit=2&cursor={cursor}")).send().await.json();
    assert_eq!((rest["data"].as_array().unwrap().len(), &rest["next_cursor"]), (1, &Value::Null));
    assert_eq!(rest["data"][0]["wamid"], first.as_str());

    let reader = app.token(&["clients:read"]).await;
    let res = app.request(Method::GET, "/v1/messages").token(&reader).send().await;
    assert_eq!(res.status, StatusCode::OK);
    let other = app.token(&["workflows:read"]).await;
    app.request(Method::GET, "/v1/messages").token(&other).send().await.problem(403, "missing_scope");
}

/// Meta's "Business-scoped user IDs" page: a user who adopted a username and withholds
/// the number is named only by `from_user_id` (contacts `user_id`), without `from`/`wa_id`
/// (https://developers.facebook.com/documentation/business-messaging/whatsapp/business-scoped-user-ids/).
#[sqlx::test]
async fn inbound_without_a_phone_number_is_kept_by_user_id_and_the_batch_survives(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let now = Utc::now().timestamp().to_string();
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages",
    "value": {"messaging_product": "whatsapp",
              "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
              "contacts": [{"profile": {"name": "Sheena Nelson", "username": "@realsheenanelson"},
                            "user_id": "US.13491208655302741918"},
                           {"profile": {"name": "Ana"}, "wa_id": "5511999990000", "user_id": "BR.1502576394655843"}],
              "messages": [
                  {"from_user_id": "US.13491208655302741918", "id": "wamid.bsuid1", "timestamp": now,
                   "type": "text", "text": {"body": "Does it come in another color?"}},
                  {"id": "wamid.nobody", "timestamp": now, "type": "text", "text": {"body": "no sender at all"}},
                  {"from": "5511999990000", "from_user_id": "BR.1502576394655843", "id": "wamid.phone1",
                   "timestamp": now, "type": "text", "text": {"body": "hi"}}
              ]}}]}]});
    let ack = post_signed(&app, &body).await.json();
    assert_eq!((ack["messages"].as_u64(), ack["new"].as_u64()), (Some(3), Some(2)), "{ack}");
    let rows: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT message_id, sender, user_id FROM engine.inbound_messages ORDER BY message_id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        vec![
            ("wamid.bsuid1".into(), "US.13491208655302741918".into(), Some("US.13491208655302741918".into())),
            ("wamid.phone1".into(), "+5511999990000".into(), Some("BR.1502576394655843".into())),
        ]
    );
}

#[sqlx::test]
async fn the_window_opens_with_an_inbound_message_and_closes_after_24_hours(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let text = json!({"to": "+16505551234", "text": "Following up"});
    let send = || app.post("/v1/platforms/whatsapp/messages", text.clone()).send();
    send().await.problem(409, "whatsapp_window_closed");

    // A message written 25 hours ago (Meta's timestamp) does not open it.
    let old = (Utc::now() - Duration::hours(25)).timestamp().to_string();
    let stale = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
        "value": {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "1", "phone_number_id": "1"},
                  "messages": [{"from": "16505551234", "id": "wamid.old", "timestamp": old, "type": "text",
                                "text": {"body": "yesterday"}}]}}]}]});
    post_signed(&app, &stale).await;
    send().await.problem(409, "whatsapp_window_closed");
    assert_eq!(app.sim.state.stats().platforms["whatsapp"].calls, 0, "nothing reached WhatsApp");

    app.customer_writes("+16505551234", "still there?").await;
    let res = send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(app.count("SELECT count(*) FROM engine.whatsapp_messages WHERE kind = 'text'").await, 1);
}

#[sqlx::test]
async fn group_recipients_are_refused_naming_the_field(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let res = app
        .post("/v1/clients", json!({"name": "Group Co", "accounts": {"whatsapp": "120363025246125486@g.us"}}))
        .send()
        .await;
    let problem = res.problem(422, "validation_failed");
    assert_eq!(res.error_fields(), ["accounts.whatsapp"], "{problem}");
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("@g.us"), "{problem}");
    assert_eq!(app.count("SELECT count(*) FROM knowledge.clients").await, 0);
}

/// Our record says the window is open but WhatsApp answers 131047 (its clock or
/// records differ): the proactive send still goes, as the template. The refusal is
/// Meta's documented error body (error-codes page, 131047 "Re-engagement message").
#[sqlx::test]
async fn a_text_refused_inside_the_tracked_window_falls_back_to_the_template(pool: PgPool) {
    use switchboard::{
        operations::messages::{Origin, send_proactive},
        platforms::whatsapp::{Settings, WhatsApp},
    };
    use wiremock::{
        Mock, MockServer, ResponseTemplate,
        matchers::{body_partial_json, method, path},
    };
    let server = MockServer::start().await;
    let messages = "/v25.0/106540352242922/messages";
    Mock::given(method("POST"))
        .and(path(messages))
        .and(body_partial_json(json!({"type": "text"})))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "(#131047) Re-engagement message", "type": "OAuthException", "code": 131047,
            "error_data": {"messaging_product": "whatsapp",
                           "details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
            "fbtrace_id": "AbCdEf123"}})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(messages))
        .and(body_partial_json(json!({"type": "template", "template": {"name": "switchboard_daily_digest"}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"messaging_product": "whatsapp",
            "contacts": [{"input": "+5511999990001", "wa_id": "5511999990001"}],
            "messages": [{"id": "wamid.T", "message_status": "accepted"}]})))
        .expect(1)
        .mount(&server)
        .await;
    sqlx::query("INSERT INTO engine.inbound_messages (message_id, sender, body, sent_at) VALUES ('wamid.in', '+5511999990001', 'hi', now() - interval '1 hour')")
        .execute(&pool)
        .await
        .unwrap();
    let settings = Settings {
        access_token: Some("EAAG_wa_token".into()),
        phone_number_id: Some("106540352242922".into()),
        base_url: server.uri(),
        retry_base_ms: Some(5),
        ..Settings::default()
    };
    let wa = WhatsApp::new(&settings);
    let values = [("client", "Alpha".to_string()), ("alerts", "2".to_string()), ("summary", "x".to_string())];
    let sent =
        send_proactive(&pool, &wa, "+5511999990001", "Daily check", settings.digest(), &values, &Origin::default())
            .await
            .unwrap();
    assert_eq!((sent.wamid.as_str(), sent.kind.as_str()), ("wamid.T", "template"));
    let logged: (String, String) =
        sqlx::query_as("SELECT kind, status FROM engine.whatsapp_messages WHERE wamid = 'wamid.T'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(logged, ("template".to_string(), "accepted".to_string()));
}
