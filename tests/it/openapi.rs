//! The committed spec is what the code serves.

use axum::http::StatusCode;
use sqlx::PgPool;

use crate::support::TestApp;

const COMMITTED: &str = include_str!("../../openapi/openapi.json");

#[test]
fn committed_spec_matches_the_code() {
    let generated = serde_json::to_value(switchboard::api::openapi::document()).unwrap();
    let committed: serde_json::Value = serde_json::from_str(COMMITTED).unwrap();
    assert!(
        generated == committed,
        "openapi/openapi.json is out of date: run `cargo run -- openapi > openapi/openapi.json`"
    );
}

#[sqlx::test]
async fn served_spec_is_the_committed_one(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let res = app.request(axum::http::Method::GET, "/openapi.json").send().await;
    assert_eq!(res.status, StatusCode::OK);
    let committed: serde_json::Value = serde_json::from_str(COMMITTED).unwrap();
    assert_eq!(res.json(), committed);
}

#[test]
fn every_operation_is_documented() {
    let doc: serde_json::Value = serde_json::from_str(COMMITTED).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let mut ids = std::collections::HashSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let at = format!("{method} {path}");
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{at}: no operationId"));
            assert!(ids.insert(id.to_string()), "{at}: duplicate operationId {id}");
            assert!(op["tags"].as_array().is_some_and(|t| !t.is_empty()), "{at}: no tag");
            assert!(op["summary"].as_str().is_some_and(|s| !s.is_empty()), "{at}: no summary");
            let responses = op["responses"].as_object().unwrap();
            if path.starts_with("/v1/") {
                let security = op["security"].as_array().unwrap_or_else(|| panic!("{at}: no security"));
                assert!(!security.is_empty(), "{at}: empty security");
                // Webhooks (`security: [{}]`) take no token, so no token 401/429.
                let public = security.iter().all(|s| s.as_object().is_some_and(|o| o.is_empty()));
                let shared: &[&str] = if public { &["500"] } else { &["401", "429", "500"] };
                for status in shared {
                    assert!(responses.contains_key(*status), "{at}: no {status} response");
                }
                assert!(
                    responses.keys().any(|s| s.starts_with('4') && s != "401" && s != "429")
                        || method == "get" && path == "/v1/tokens/current",
                    "{at}: no operation-specific error response"
                );
            }
        }
    }
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert!(schemes.contains_key("bearer") && schemes.contains_key("api_key"));
}

#[sqlx::test]
async fn swagger_ui_is_served(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let res = app.request(axum::http::Method::GET, "/docs/").send().await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.text().contains("swagger"), "{}", res.text());
    let res = app.request(axum::http::Method::GET, "/docs").send().await;
    assert!(res.status.is_redirection() || res.status == StatusCode::OK, "{}", res.status);
}
