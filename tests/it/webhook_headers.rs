//! Custom headers on webhook endpoints (issue #11: Make's custom webhook API key
//! `x-make-apikey`): refused names and values name their field and write nothing; values
//! are sealed at rest, masked in answers and audit rows, sent on every delivery and on
//! `/test`, and re-sealed by a key rotation.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use switchboard::{
    crypto::{self, KeyRing},
    events::secret,
    reseal,
};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{header, method},
};

use crate::{
    support::{ENCRYPTION_KEY, TestApp, test_keys},
    webhooks::{RunningDeliverer, fast, local_app, wait_for},
};

const KEY: &str = "mk_live_4f9a8b7c6d5e";

async fn create(app: &TestApp, url: &str, headers: Value) -> Value {
    let body = json!({"url": url, "events": ["client.*"], "headers": headers});
    let res = app.post("/v1/webhook-endpoints", body).send().await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    res.json()
}

/// Every stored trace of endpoints and the audit log, as text.
async fn stored_text(pool: &PgPool) -> String {
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT t::text FROM engine.webhook_endpoints t UNION ALL SELECT t::text FROM audit.log t")
            .fetch_all(pool)
            .await
            .unwrap();
    rows.join("\n")
}

async fn stored_headers(pool: &PgPool, id: &str) -> Option<String> {
    sqlx::query_scalar("SELECT headers FROM engine.webhook_endpoints WHERE id = $1::uuid")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn refused_names_and_values_name_their_field_and_write_nothing(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let url = "https://203.0.113.10/hook";
    let cases = [
        (json!([{"name": "x-ok", "value": "1"}, {"name": "Content-Type", "value": "text/plain"}]), "headers[1].name"),
        (json!([{"name": "host", "value": "evil.example"}]), "headers[0].name"),
        (json!([{"name": "webhook-signature", "value": "v1,forged"}]), "headers[0].name"),
        (json!([{"name": "transfer-encoding", "value": "chunked"}]), "headers[0].name"),
        (json!([{"name": "bad name", "value": "1"}]), "headers[0].name"),
        (json!([{"name": "x-make-apikey", "value": "a\r\nx-injected: 1"}]), "headers[0].value"),
        (json!([{"name": "x-make-apikey", "value": "v".repeat(1001)}]), "headers[0].value"),
        (json!([{"name": "x-make-apikey", "value": ""}]), "headers[0].value"),
        (json!((0..6).map(|i| json!({"name": format!("x-{i}"), "value": "v"})).collect::<Vec<_>>()), "headers"),
    ];
    for (headers, field) in &cases {
        let res = app.post("/v1/webhook-endpoints", json!({"url": url, "headers": headers})).send().await;
        res.problem(422, "validation_failed");
        assert_eq!(res.error_fields(), vec![field.to_string()], "{headers}");
        assert!(!res.text().contains("x-injected"), "a refused value is not echoed: {}", res.text());
    }
    assert_eq!(app.count("SELECT count(*) FROM engine.webhook_endpoints").await, 0, "nothing written");

    // The same on update: the endpoint keeps what it had.
    let created = create(&app, url, json!([{"name": "x-make-apikey", "value": KEY}])).await;
    let id = created["id"].as_str().unwrap();
    let before = stored_headers(&pool, id).await;
    for (headers, field) in &cases {
        let res = app.patch(&format!("/v1/webhook-endpoints/{id}"), json!({"headers": headers})).send().await;
        res.problem(422, "validation_failed");
        assert_eq!(res.error_fields(), vec![field.to_string()]);
    }
    assert_eq!(stored_headers(&pool, id).await, before);
}

#[sqlx::test]
async fn values_are_sealed_at_rest_and_masked_in_every_answer_and_audit_row(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let created = create(
        &app,
        "https://203.0.113.10/hook",
        json!([{"name": "X-Make-ApiKey", "value": KEY}, {"name": "authorization", "value": "Bearer tok"}]),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let masked = json!([{"name": "x-make-apikey", "value": "••••6d5e"}, {"name": "authorization", "value": "••••"}]);
    assert_eq!(created["headers"], masked);
    assert_eq!(app.get(&format!("/v1/webhook-endpoints/{id}")).send().await.json()["headers"], masked);
    assert_eq!(app.get("/v1/webhook-endpoints").send().await.json()["data"][0]["headers"], masked);

    let sealed = stored_headers(&pool, id).await.expect("stored");
    assert!(sealed.starts_with(&format!("v1:{}:", test_keys().current_id())), "{sealed}");
    let opened = secret::open_headers(&test_keys(), id.parse().unwrap(), Some(&sealed)).unwrap();
    assert_eq!((opened[0].name.as_str(), opened[0].value.as_str()), ("x-make-apikey", KEY));

    // Changing other fields keeps the headers; `headers: []` removes them.
    let res = app.patch(&format!("/v1/webhook-endpoints/{id}"), json!({"description": "renamed"})).send().await;
    assert_eq!(res.json()["headers"], masked);
    assert_eq!(stored_headers(&pool, id).await.as_deref(), Some(sealed.as_str()));
    let res = app.patch(&format!("/v1/webhook-endpoints/{id}"), json!({"headers": []})).send().await;
    assert_eq!(res.json()["headers"], json!([]));
    assert_eq!(stored_headers(&pool, id).await, None);

    let text = stored_text(&pool).await;
    assert!(!text.contains(KEY) && !text.contains("Bearer tok"), "a header value is stored or audited in plaintext");
    assert!(text.contains("••••6d5e"), "the audit rows show the masked value");
}

#[sqlx::test]
async fn deliveries_and_tests_carry_the_custom_headers(pool: PgPool) {
    let app = local_app(pool.clone()).await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("x-make-apikey", KEY))
        .respond_with(ResponseTemplate::new(200).set_body_string("Accepted"))
        .mount(&server)
        .await;
    // Without the key, Make answers 401 (a custom webhook with an API key attached).
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(401)).mount(&server).await;
    let created =
        create(&app, &format!("{}/hook", server.uri()), json!([{"name": "x-make-apikey", "value": KEY}])).await;
    let id = created["id"].as_str().unwrap();

    let deliverer = RunningDeliverer::start(&pool, fast(2, Duration::from_millis(50)));
    app.create_client(json!({"name": "Acme"})).await;
    wait_for(&app, "SELECT count(*) FROM engine.deliveries WHERE status = 'succeeded'", 1, Duration::from_secs(10))
        .await;
    deliverer.stop().await;
    let received = server.received_requests().await.unwrap();
    assert_eq!(received.len(), 1, "delivered at the first attempt");
    assert_eq!(received[0].headers.get("x-make-apikey").unwrap(), KEY);

    let res = app.post(&format!("/v1/webhook-endpoints/{id}/test"), json!({})).send().await;
    assert_eq!(res.json()["status"], 200, "{}", res.text());
    let received = server.received_requests().await.unwrap();
    assert_eq!(received[1].headers.get("x-make-apikey").unwrap(), KEY);
}

#[sqlx::test]
async fn a_key_rotation_reseals_the_headers(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let created = create(&app, "https://203.0.113.10/hook", json!([{"name": "x-make-apikey", "value": KEY}])).await;
    let id = created["id"].as_str().unwrap();
    let before = stored_headers(&pool, id).await.unwrap();

    let new_key = crypto::generate_key();
    let ring = KeyRing::parse(&new_key, Some(ENCRYPTION_KEY)).unwrap();
    let done = reseal::run(&pool, &ring, true).await.unwrap();
    assert_eq!((done.webhook_headers, done.failed), (1, 0));
    let after = stored_headers(&pool, id).await.unwrap();
    assert!(after.starts_with(&format!("v1:{}:", ring.current_id())) && after != before, "{after}");
    // Readable with the new key alone; the old key no longer opens it.
    let only_new = KeyRing::parse(&new_key, None).unwrap();
    let opened = secret::open_headers(&only_new, id.parse().unwrap(), Some(&after)).unwrap();
    assert_eq!(opened[0].value, KEY);
    assert!(secret::open_headers(&test_keys(), id.parse().unwrap(), Some(&after)).is_err());
    assert_eq!(reseal::run(&pool, &ring, true).await.unwrap().webhook_headers, 0, "nothing left to move");
}
