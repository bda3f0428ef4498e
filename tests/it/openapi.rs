//! The committed spec is what the code serves.

use axum::http::StatusCode;
use sqlx::PgPool;

use crate::support::TestApp;

const COMMITTED: &str = include_str!("../../openapi/openapi.json");

#[test]
fn committed_spec_matches_the_code() {
    let generated = switchboard::api::openapi::document();
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
            // A rule indexing a missing key writes `null`, which linters reject as a parameter list.
            assert!(op.get("parameters").is_none_or(|p| p.is_array()), "{at}: parameters is not a list");
            let responses = op["responses"].as_object().unwrap();
            if path.starts_with("/v1/") {
                let security = op["security"].as_array().unwrap_or_else(|| panic!("{at}: no security"));
                // Webhooks (`security: []`) take no token, so no token 401/429.
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

fn committed() -> serde_json::Value {
    serde_json::from_str(COMMITTED).unwrap()
}

/// Every operation of the document, as (`method path`, operation).
fn operations(doc: &serde_json::Value) -> Vec<(String, serde_json::Value)> {
    let mut all = vec![];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            all.push((format!("{method} {path}"), op.clone()));
        }
    }
    all
}

#[test]
fn the_document_names_its_server() {
    let doc = committed();
    let servers = doc["servers"].as_array().expect("servers");
    assert!(!servers.is_empty() && servers.iter().all(|s| s["url"].is_string()), "{servers:?}");
}

/// Every `*_at` field is an RFC 3339 timestamp, wherever it sits in a schema.
#[test]
fn every_timestamp_field_has_format_date_time() {
    fn walk(at: &str, value: &serde_json::Value, found: &mut usize) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(props) = map.get("properties").and_then(|p| p.as_object()) {
                    for (name, prop) in props.iter().filter(|(n, _)| n.ends_with("_at")) {
                        *found += 1;
                        let typed = prop["type"] == "string" || prop["type"] == serde_json::json!(["string", "null"]);
                        assert!(typed && prop["format"] == "date-time", "{at}.{name}: {prop}");
                    }
                }
                map.iter().for_each(|(k, v)| walk(&format!("{at}/{k}"), v, found));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(at, v, found)),
            _ => {}
        }
    }
    let mut found = 0;
    walk("", &committed(), &mut found);
    // Each schema once: pages refer to their items' component instead of repeating it.
    assert!(found > 30, "only {found} *_at fields");
}

/// `limit` is what `pagination::limit` accepts: 1–500.
#[test]
fn every_limit_is_bounded_as_the_server_bounds_it() {
    let mut seen = 0;
    for (at, op) in operations(&committed()) {
        for p in op["parameters"].as_array().into_iter().flatten().filter(|p| p["name"] == "limit") {
            assert_eq!(
                (p["schema"]["minimum"].as_u64(), p["schema"]["maximum"].as_u64()),
                (Some(1), Some(500)),
                "{at}"
            );
            seen += 1;
        }
    }
    assert!(seen >= 10, "only {seen} limits");
}

/// The answers of the shared layers are documented with their problem codes wherever they
/// can happen: every POST may meet a bad, reused or busy `Idempotency-Key`, every body a
/// wrong content type or size, every list a bad cursor, every `/v1` operation an unknown
/// query parameter, a timeout or a database that does not answer.
#[test]
fn every_shared_answer_is_documented_with_its_codes() {
    for (at, op) in operations(&committed()) {
        if !at.contains(" /v1/") {
            continue;
        }
        let codes = |status: &str| -> Vec<String> {
            op["responses"][status]["x-problem-codes"]
                .as_array()
                .unwrap_or_else(|| panic!("{at}: no codes for {status}"))
                .iter()
                .map(|c| c.as_str().unwrap().to_string())
                .collect()
        };
        let token = op["security"].as_array().unwrap().iter().any(|r| r.as_object().is_some_and(|o| !o.is_empty()));
        let mut expected: Vec<(&str, &str)> =
            vec![("400", "invalid_query"), ("408", "timeout"), ("500", "internal"), ("503", "database_timeout")];
        if token {
            expected.extend([("401", "missing_token"), ("429", "rate_limited")]);
        }
        if at.starts_with("post ") && token {
            expected.extend([
                ("400", "invalid_idempotency_key"),
                ("409", "idempotency_in_flight"),
                ("413", "payload_too_large"),
                ("422", "idempotency_key_reused"),
            ]);
        }
        if op.get("requestBody").is_some() {
            expected.extend([
                ("400", "malformed_json"),
                ("413", "payload_too_large"),
                ("415", "unsupported_media_type"),
            ]);
        }
        if op["parameters"].as_array().into_iter().flatten().any(|p| p["name"] == "cursor") {
            expected.push(("400", "invalid_cursor"));
        }
        if op["responses"].get("403").is_some() && token {
            expected.push(("403", "missing_scope"));
        }
        if op["parameters"].as_array().into_iter().flatten().any(|p| p["name"] == "limit") {
            expected.push(("400", "invalid_limit"));
        }
        if op.get("requestBody").is_some() {
            expected.push(("422", "validation_failed"));
        }
        for (status, code) in expected {
            assert!(codes(status).iter().any(|c| c == code), "{at}: {status} does not list `{code}`");
        }
    }
}

/// A PDF or a PNG answer is described as bytes (`string`/`binary`), not as a JSON array of numbers,
/// so generators and Make's custom app treat it as a file.
#[test]
fn file_answers_are_described_as_binary_strings() {
    let doc: serde_json::Value = serde_json::from_str(COMMITTED).unwrap();
    let mut seen = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().into_iter().flatten() {
                for (media, content) in response["content"].as_object().into_iter().flatten() {
                    if !(media == "application/pdf" || media.starts_with("image/")) {
                        continue;
                    }
                    seen += 1;
                    let mut schema = &content["schema"];
                    if let Some(reference) = schema["$ref"].as_str() {
                        let name = reference.trim_start_matches("#/components/schemas/");
                        schema = &doc["components"]["schemas"][name];
                    }
                    assert_eq!(schema["type"], "string", "{method} {path} {status} {media}: {schema}");
                    assert_eq!(schema["format"], "binary", "{method} {path} {status} {media}: {schema}");
                }
            }
        }
    }
    assert!(seen >= 2, "the PDF report and the PNG charts are file answers");
}

/// Every problem answer names the `code`s it can carry (tests/it/spec_fuzz.rs checks the
/// answers against them), and an operation that calls a platform lists `platform_error`
/// on each status a platform failure becomes (429, 502, 503).
#[test]
fn every_problem_answer_lists_its_codes() {
    let mut listed = 0;
    for (at, op) in operations(&committed()) {
        let responses = op["responses"].as_object().unwrap();
        for (status, response) in responses.iter().filter(|(s, _)| s.as_str() >= "400") {
            let codes = response["x-problem-codes"].as_array().map(Vec::as_slice).unwrap_or_default();
            assert!(!codes.is_empty() && codes.iter().all(|c| c.is_string()), "{at}: {status} lists no codes");
            listed += codes.len();
        }
        let platform = |s: &str| {
            responses
                .get(s)
                .and_then(|r| r["x-problem-codes"].as_array())
                .is_some_and(|c| c.iter().any(|c| c == "platform_error"))
        };
        if ["429", "502", "503"].iter().any(|s| platform(s)) {
            assert!(["429", "502", "503"].iter().all(|s| platform(s)), "{at}: platform_error on only some statuses");
        }
    }
    assert!(listed > 500, "only {listed} codes listed");
}

/// The 3.1 `webhooks` section describes every event type: its own event schema (with
/// `type` fixed and `data` typed), the signature headers and the answers expected; and
/// `Event` is the `oneOf` of those schemas, told apart by `type`.
#[test]
fn webhooks_and_the_event_schema_list_every_event_type() {
    use switchboard::{domain::events::EventType, events::catalogue};
    let doc = committed();
    let webhooks = doc["webhooks"].as_object().expect("a webhooks section");
    assert_eq!(webhooks.len(), EventType::ALL.len());
    let schemas = &doc["components"]["schemas"];
    for t in EventType::ALL {
        let name = catalogue::event_schema_name(t);
        let reference = format!("#/components/schemas/{name}");
        let op = &webhooks[t.as_str()]["post"];
        assert_eq!(op["requestBody"]["content"]["application/json"]["schema"]["$ref"], reference.as_str(), "{t}");
        let headers: Vec<&str> =
            op["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(headers, ["webhook-id", "webhook-timestamp", "webhook-signature"], "{t}");
        assert!(op["responses"]["2XX"].is_object() && op["responses"]["default"].is_object(), "{t}");
        assert_eq!(schemas[&name]["properties"]["type"]["enum"], serde_json::json!([t.as_str()]));
        let payload = schemas[&name]["properties"]["data"]["$ref"].as_str().unwrap().rsplit('/').next().unwrap();
        assert!(schemas[payload]["properties"].is_object(), "{t}: data names {payload}, which is not in the document");
        assert_eq!(schemas["Event"]["discriminator"]["mapping"][t.as_str()], reference.as_str());
        // The schema's example is a valid payload of its type.
        (catalogue::payload(t).check)(&schemas[&name]["example"]["data"]).unwrap_or_else(|e| panic!("{t}: {e}"));
    }
    assert_eq!(schemas["Event"]["oneOf"].as_array().unwrap().len(), EventType::ALL.len());
}
