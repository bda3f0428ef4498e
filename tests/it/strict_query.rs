//! Unknown query parameters, driven from the served OpenAPI document: every operation
//! called with `?bogus=1` (path and required query parameters filled, admin token) is a
//! 400 `invalid_query` naming `bogus`, writes nothing, and its spec lists the 400.
//! A new route that forgets `ApiQuery<NoQuery>` (or `deny_unknown_fields`) fails here.

use axum::http::{Method, StatusCode};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::TestApp;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Called by others on their own terms, not by API clients, so left lenient: the probes
/// and the scraper outside `/v1`, and Meta's webhook (handshake and deliveries go to
/// whatever callback URL the operator registered). docs/decisions/0019-build-time.md.
const LENIENT: [&str; 5] = ["/healthz", "/readyz", "/metrics", "verifyWhatsappWebhook", "receiveWhatsappWebhook"];

/// A value its schema accepts: the example, else one that fits the format.
fn plausible(spec: &Value, param: &Value) -> String {
    let mut schema = &param["schema"];
    if let Some(name) = schema["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
        schema = &spec["components"]["schemas"][name];
    }
    let example = param.get("example").or_else(|| schema.get("example")).or_else(|| schema["enum"].get(0));
    match (example, schema["format"].as_str()) {
        (Some(Value::String(s)), _) => s.clone(),
        (Some(other), _) => other.to_string(),
        (None, Some("uuid")) => Uuid::now_v7().to_string(),
        (None, Some("date")) => "2026-06-01".into(),
        (None, _) if schema["type"] == "integer" => "1".into(),
        (None, _) => "acme-coffee".into(),
    }
}

/// The operation's URI with `bogus=1` first, then its required query parameters.
fn uri_with_bogus(spec: &Value, path: &str, op: &Value) -> String {
    let mut uri = path.to_string();
    let mut query = vec!["bogus=1".to_string()];
    for param in op["parameters"].as_array().into_iter().flatten() {
        let name = param["name"].as_str().unwrap();
        match param["in"].as_str() {
            Some("path") => uri = uri.replace(&format!("{{{name}}}"), &plausible(spec, param)),
            Some("query") if param["required"] == true => query.push(format!("{name}={}", plausible(spec, param))),
            _ => {}
        }
    }
    assert!(!uri.contains('{'), "{path}: a path parameter is not documented");
    format!("{uri}?{}", query.join("&"))
}

#[sqlx::test]
async fn every_operation_refuses_an_unknown_query_parameter(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let res = app.get("/openapi.json").send().await;
    assert_eq!(res.status, StatusCode::OK);
    let spec = res.json();
    let audit_rows = app.count("SELECT count(*) FROM audit.log").await;

    let (mut checked, mut failures) = (0, Vec::new());
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let id = op["operationId"].as_str().unwrap_or_default();
            if LENIENT.contains(&path.as_str()) || LENIENT.contains(&id) {
                continue;
            }
            checked += 1;
            let uri = uri_with_bogus(&spec, path, op);
            let at = format!("{} {uri} ({id})", method.to_uppercase());
            if op["responses"].get("400").is_none() {
                failures.push(format!("{at}: the spec lists no 400"));
            }
            // No body: the query is checked before the body is read, so a body would not matter.
            let res =
                app.request(method.to_uppercase().parse::<Method>().unwrap(), &uri).token(&app.admin).send().await;
            let body: Value = serde_json::from_slice(&res.body).unwrap_or_default();
            if res.status != StatusCode::BAD_REQUEST
                || body["code"] != "invalid_query"
                || body["errors"][0]["field"] != "bogus"
            {
                failures.push(format!("{at}: {} {}", res.status, res.text()));
            }
        }
    }
    assert!(checked > 60, "only {checked} operations in the document");
    assert!(failures.is_empty(), "{} operations accept `bogus`:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(app.count("SELECT count(*) FROM audit.log").await, audit_rows, "a refused request wrote");
}

/// A query parameter the spec lists as a closed set (an `enum`, inline or by `$ref`) refuses
/// a value outside it with 400 `invalid_query` naming the parameter: what the spec promises
/// is what the server does (not a quietly empty list).
#[sqlx::test]
async fn every_closed_set_filter_refuses_a_value_outside_it(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let spec = app.get("/openapi.json").send().await.json();
    let (mut checked, mut failures) = (0, Vec::new());
    for (path, item) in spec["paths"].as_object().unwrap() {
        let Some(op) = item.get("get") else { continue };
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        for param in params.iter().filter(|p| p["in"] == "query") {
            let mut schema = &param["schema"];
            if let Some(name) = schema["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
                schema = &spec["components"]["schemas"][name];
            }
            if schema["enum"].as_array().is_none() {
                continue;
            }
            let name = param["name"].as_str().unwrap();
            let mut uri = path.clone();
            let mut query = vec![format!("{name}=not-one-of-them")];
            for other in &params {
                let other_name = other["name"].as_str().unwrap();
                match other["in"].as_str() {
                    Some("path") => uri = uri.replace(&format!("{{{other_name}}}"), &plausible(&spec, other)),
                    Some("query") if other["required"] == true && other_name != name => {
                        query.push(format!("{other_name}={}", plausible(&spec, other)))
                    }
                    _ => {}
                }
            }
            let uri = format!("{uri}?{}", query.join("&"));
            checked += 1;
            let res = app.get(&uri).send().await;
            let body: Value = serde_json::from_slice(&res.body).unwrap_or_default();
            if res.status != StatusCode::BAD_REQUEST
                || body["code"] != "invalid_query"
                || body["errors"][0]["field"] != name
            {
                failures.push(format!("GET {uri}: {} {}", res.status, res.text()));
            }
        }
    }
    assert!(checked >= 6, "only {checked} closed-set filters in the document");
    assert!(failures.is_empty(), "{} filters take a value outside their set:\n{}", failures.len(), failures.join("\n"));
}
