//! Health, readiness, metrics, request ids, content negotiation of problems.

use axum::http::{Method, StatusCode};
use sqlx::PgPool;

use crate::support::TestApp;

#[sqlx::test]
async fn health_and_readiness(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let res = app.request(Method::GET, "/healthz").send().await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json()["status"], "ok");
    let res = app.request(Method::GET, "/readyz").send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["status"], "ready");
}

#[sqlx::test]
async fn readiness_fails_when_migrations_are_missing(pool: PgPool) {
    let app = TestApp::new(pool).await;
    sqlx::query("DELETE FROM _sqlx_migrations").execute(&app.pool).await.unwrap();
    let res = app.request(Method::GET, "/readyz").send().await;
    res.problem(503, "not_ready");
}

#[sqlx::test]
async fn metrics_count_requests_by_route(pool: PgPool) {
    let app = TestApp::new(pool).await;
    app.get("/v1/clients").send().await;
    let res = app.request(Method::GET, "/metrics").send().await;
    assert_eq!(res.status, StatusCode::OK);
    let text = res.text();
    assert!(text.contains("http_requests_total"), "{text}");
    assert!(text.contains("route=\"/v1/clients\""), "{text}");
    assert!(text.contains("http_request_duration_seconds_bucket"), "{text}");
}

#[sqlx::test]
async fn request_ids_are_echoed_and_generated(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let res = app.get("/v1/clients").header("x-request-id", "make-exec-42").send().await;
    assert_eq!(res.header("x-request-id"), Some("make-exec-42"));
    let res = app.get("/v1/clients/nope").send().await;
    let generated = res.header("x-request-id").expect("generated id").to_string();
    assert_eq!(res.json()["request_id"], generated.as_str());
}

#[sqlx::test]
async fn problems_are_json_unless_problem_json_is_asked_for(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let res = app.get("/v1/clients/nope").send().await;
    assert_eq!(res.header("content-type"), Some("application/json"));
    let body = res.problem(404, "not_found");
    assert_eq!(body["instance"], "/v1/clients/nope");
    let res = app.get("/v1/clients/nope").header("accept", "application/problem+json").send().await;
    assert_eq!(res.header("content-type"), Some("application/problem+json"));
}

#[sqlx::test]
async fn unknown_routes_and_methods_are_problems(pool: PgPool) {
    let app = TestApp::new(pool).await;
    app.get("/v2/nothing").send().await.problem(404, "not_found");
    app.request(Method::PUT, "/v1/clients").token(&app.admin).send().await.problem(405, "method_not_allowed");
}

#[sqlx::test]
async fn responses_are_gzipped_when_asked(pool: PgPool) {
    let app = TestApp::new(pool).await;
    for i in 0..20 {
        app.create_client(serde_json::json!({"name": format!("Gzip Client {i}"), "notes": "x".repeat(200)})).await;
    }
    let res = app.get("/v1/clients").header("accept-encoding", "gzip").send().await;
    assert_eq!(res.header("content-encoding"), Some("gzip"));
}
