//! Response headers that keep browsers and caches from mishandling answers (issue #10,
//! finding 12): `nosniff` everywhere, `no-store` wherever a token or secret is answered,
//! idempotent replays included.

use axum::http::{Method, StatusCode};
use serde_json::json;
use sqlx::PgPool;

use crate::support::{TestApp, TestResponse};

fn assert_no_store(res: &TestResponse, what: &str) {
    let cache_control = res.header("cache-control").unwrap_or_else(|| panic!("{what}: no Cache-Control"));
    assert!(cache_control.contains("no-store"), "{what}: Cache-Control {cache_control}");
}

#[sqlx::test]
async fn every_response_says_nosniff(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let responses = [
        ("health", app.request(Method::GET, "/healthz").send().await),
        ("docs", app.request(Method::GET, "/docs/").send().await),
        ("spec", app.request(Method::GET, "/openapi.json").send().await),
        ("api", app.get("/v1/clients").send().await),
        ("401", app.request(Method::GET, "/v1/clients").send().await),
        ("404", app.get("/nowhere").send().await),
        ("405", app.request(Method::PUT, "/healthz").send().await),
        ("422", app.post("/v1/clients", json!({"name": ""})).send().await),
    ];
    for (what, res) in responses {
        assert_eq!(res.header("x-content-type-options"), Some("nosniff"), "{what} ({})", res.status);
    }
}

#[sqlx::test]
async fn created_tokens_are_not_stored_by_caches_even_when_replayed(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let body = json!({"name": "make-production", "scopes": ["clients:read"]});
    let first = app.post("/v1/tokens", body.clone()).header("idempotency-key", "token-1").send().await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    assert_no_store(&first, "create token");
    let replay = app.post("/v1/tokens", body).header("idempotency-key", "token-1").send().await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.json()["token"], first.json()["token"]);
    assert_no_store(&replay, "replayed create token");
    // Lists and reads hold no secret and keep their usual caching.
    assert!(app.get("/v1/tokens").send().await.header("cache-control").is_none());
}

#[sqlx::test]
async fn webhook_secrets_are_not_stored_by_caches_even_when_replayed(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let body = json!({"url": "https://203.0.113.10/hook"});
    let first = app.post("/v1/webhook-endpoints", body.clone()).header("idempotency-key", "hook-1").send().await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    assert!(first.json()["secret"].is_string());
    assert_no_store(&first, "create endpoint");
    let replay = app.post("/v1/webhook-endpoints", body).header("idempotency-key", "hook-1").send().await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_no_store(&replay, "replayed create endpoint");

    let id = first.json()["id"].as_str().unwrap().to_string();
    let path = format!("/v1/webhook-endpoints/{id}/rotate-secret");
    let rotated = app.post(&path, json!({})).header("idempotency-key", "rotate-1").send().await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text());
    assert!(rotated.json()["secret"].is_string());
    assert_no_store(&rotated, "rotate secret");
    let replay = app.post(&path, json!({})).header("idempotency-key", "rotate-1").send().await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_no_store(&replay, "replayed rotate secret");
}
