//! Issue #10 finding 3: secrets at rest. New API tokens and webhook signing secrets
//! (returned by create/rotate, so kept in stored Idempotency-Key responses) and the
//! endpoints' signing secrets are sealed in the database; replays still answer them;
//! rows from before sealing are sealed at start-up; a key rotation keeps everything
//! readable.

use axum::http::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sqlx::PgPool;
use switchboard::{
    config::Config,
    crypto::{self, KeyRing},
    events::secret,
    reseal,
};

use crate::support::{ENCRYPTION_KEY, TestApp, TestResponse, test_config, test_keys};

async fn post_once(app: &TestApp, path: &str, key: &str, body: Value) -> TestResponse {
    app.request(Method::POST, path).token(&app.admin).header("idempotency-key", key).json(&body).send().await
}

/// Rows of the tables that hold secrets, as text (bytea as text too, not hex), and the audit log.
async fn stored_text(pool: &PgPool) -> String {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT t::text || coalesce(convert_from(t.response_body, 'UTF8'), '') FROM engine.idempotency_keys t
         UNION ALL SELECT t::text FROM engine.webhook_endpoints t
         UNION ALL SELECT t::text FROM audit.log t",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    rows.join("\n")
}

/// Creates a token, an endpoint and rotates its secret, each with an Idempotency-Key;
/// returns the token, the endpoint id and its current secret.
async fn create_secrets(app: &TestApp) -> (String, String, String) {
    let token = post_once(app, "/v1/tokens", "token-1", json!({"name": "make", "scopes": ["clients:read"]})).await;
    assert_eq!(token.status, StatusCode::CREATED, "{}", token.text());
    let endpoint =
        post_once(app, "/v1/webhook-endpoints", "endpoint-1", json!({"url": "https://203.0.113.10/hook"})).await;
    assert_eq!(endpoint.status, StatusCode::CREATED, "{}", endpoint.text());
    let id = endpoint.json()["id"].as_str().unwrap().to_string();
    let rotated = post_once(app, &format!("/v1/webhook-endpoints/{id}/rotate-secret"), "rotate-1", json!({})).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text());
    let first = endpoint.json()["secret"].as_str().unwrap().to_string();
    let current = rotated.json()["secret"].as_str().unwrap().to_string();
    assert_ne!(first, current);
    (token.json()["token"].as_str().unwrap().to_string(), id, current)
}

/// The same three requests again: replays of the first answers.
async fn replays(app: &TestApp, id: &str) -> (String, String) {
    let token = post_once(app, "/v1/tokens", "token-1", json!({"name": "make", "scopes": ["clients:read"]})).await;
    assert_eq!(
        (token.status, token.header("idempotent-replayed")),
        (StatusCode::CREATED, Some("true")),
        "{}",
        token.text()
    );
    let rotated = post_once(app, &format!("/v1/webhook-endpoints/{id}/rotate-secret"), "rotate-1", json!({})).await;
    assert_eq!(
        (rotated.status, rotated.header("idempotent-replayed")),
        (StatusCode::OK, Some("true")),
        "{}",
        rotated.text()
    );
    (token.json()["token"].as_str().unwrap().to_string(), rotated.json()["secret"].as_str().unwrap().to_string())
}

async fn stored_secret(pool: &PgPool, id: &str) -> String {
    sqlx::query_scalar("SELECT secret FROM engine.webhook_endpoints WHERE id = $1::uuid")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn tokens_and_webhook_secrets_are_sealed_at_rest_and_still_replayed(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let (token, id, secret) = create_secrets(&app).await;

    let text = stored_text(&pool).await;
    assert!(!text.contains(&token), "the API token is stored in plaintext");
    assert!(!text.contains("whsec_"), "a webhook secret is stored in plaintext");
    let sealed_bodies = app
        .count(
            "SELECT count(*) FROM engine.idempotency_keys WHERE response_sealed LIKE 'v1:%' AND response_body IS NULL",
        )
        .await;
    assert_eq!(sealed_bodies, 3);
    assert!(stored_secret(&pool, &id).await.starts_with(&format!("v1:{}:", test_keys().current_id())));

    assert_eq!(replays(&app, &id).await, (token.clone(), secret.clone()));
    // The new token works, and the stored secret is the one answered.
    let me = app.request(Method::GET, "/v1/tokens/current").token(&token).send().await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text());
    let opened = secret::open(&test_keys(), id.parse().unwrap(), &stored_secret(&pool, &id).await).unwrap();
    assert_eq!(opened.expose_secret(), secret);
}

#[sqlx::test]
async fn a_tampered_or_moved_stored_response_is_refused_without_showing_it(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let (_, id, _) = create_secrets(&app).await;
    // Another row's sealed body copied over this one: bound to its row, it does not open.
    sqlx::query(
        "UPDATE engine.idempotency_keys SET response_sealed = (SELECT response_sealed FROM engine.idempotency_keys WHERE key = 'endpoint-1')
         WHERE key = 'rotate-1'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let res = post_once(&app, &format!("/v1/webhook-endpoints/{id}/rotate-secret"), "rotate-1", json!({})).await;
    let problem = res.problem(500, "internal");
    assert!(!res.text().contains("whsec_") && !res.text().contains("v1:"), "{problem}");
}

#[sqlx::test]
async fn plaintext_rows_from_before_sealing_still_work_and_are_sealed_at_start_up(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let (token, id, secret) = create_secrets(&app).await;
    // What a version without sealing left behind.
    sqlx::query("UPDATE engine.webhook_endpoints SET secret = $1").bind(&secret).execute(&pool).await.unwrap();
    let rows: Vec<(uuid::Uuid, String, String)> =
        sqlx::query_as("SELECT token_id, key, response_sealed FROM engine.idempotency_keys")
            .fetch_all(&pool)
            .await
            .unwrap();
    for (token_id, key, sealed) in rows {
        let body = test_keys().open(&sealed, &switchboard::store::idempotency::aad(token_id, &key)).unwrap();
        sqlx::query("UPDATE engine.idempotency_keys SET response_body = $3, response_sealed = NULL WHERE token_id = $1 AND key = $2")
            .bind(token_id)
            .bind(&key)
            .bind(body)
            .execute(&pool)
            .await
            .unwrap();
    }
    assert!(stored_text(&pool).await.contains("whsec_"));
    assert_eq!(replays(&app, &id).await, (token.clone(), secret.clone()), "legacy rows still replay");

    let done = reseal::run(&pool, &test_keys(), false).await.unwrap();
    assert_eq!(done, reseal::Resealed { webhook_secrets: 1, webhook_headers: 0, idempotent_responses: 3, failed: 0 });
    let text = stored_text(&pool).await;
    assert!(!text.contains("whsec_") && !text.contains(&token), "sealed at start-up");
    assert_eq!(replays(&app, &id).await, (token, secret.clone()));
    let opened = secret::open(&test_keys(), id.parse().unwrap(), &stored_secret(&pool, &id).await).unwrap();
    assert_eq!(opened.expose_secret(), secret);
    assert_eq!(
        reseal::run(&pool, &test_keys(), false).await.unwrap(),
        reseal::Resealed::default(),
        "nothing left to do"
    );
}

#[sqlx::test]
async fn a_key_rotation_keeps_every_secret_readable(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let (token, id, secret) = create_secrets(&app).await;
    let admin = app.admin.clone();

    // Step 2 of docs/OPERATIONS.md: a new current key, the old one kept for reading.
    let new_key = crypto::generate_key();
    let rotated = Config {
        encryption_key: Some(new_key.clone().into()),
        encryption_keys_old: Some(ENCRYPTION_KEY.into()),
        ..test_config()
    };
    let mut during = TestApp::with_config(pool.clone(), rotated).await;
    during.admin = admin.clone();
    assert_eq!(
        replays(&during, &id).await,
        (token.clone(), secret.clone()),
        "values sealed under the old key still open"
    );

    // Step 3: `switchboard secrets rotate`.
    let ring = KeyRing::parse(&new_key, Some(ENCRYPTION_KEY)).unwrap();
    let done = reseal::run(&pool, &ring, true).await.unwrap();
    assert_eq!((done.webhook_secrets, done.idempotent_responses, done.failed), (1, 3, 0));
    let prefix = format!("v1:{}:", ring.current_id());
    assert!(stored_secret(&pool, &id).await.starts_with(&prefix));
    let not_moved = app
        .count(&format!(
            "SELECT count(*) FROM engine.idempotency_keys WHERE NOT starts_with(response_sealed, '{prefix}')"
        ))
        .await;
    assert_eq!(not_moved, 0);

    // Step 4: the old key dropped; everything still opens.
    let mut after =
        TestApp::with_config(pool.clone(), Config { encryption_key: Some(new_key.clone().into()), ..test_config() })
            .await;
    after.admin = admin;
    assert_eq!(replays(&after, &id).await, (token, secret.clone()));
    let opened =
        secret::open(&KeyRing::parse(&new_key, None).unwrap(), id.parse().unwrap(), &stored_secret(&pool, &id).await)
            .unwrap();
    assert_eq!(opened.expose_secret(), secret);
    // And the old key alone no longer opens anything.
    assert!(secret::open(&test_keys(), id.parse().unwrap(), &stored_secret(&pool, &id).await).is_err());
}
