//! The auth matrix, generated from the OpenAPI document: every operation whose
//! `security` asks for a token × {no token, bad signature, expired, revoked, wrong
//! audience, every scope but the one it needs} is refused (401, or 403 for the scope),
//! never answered 2xx. Operations are public when their `security` is `[]`; the
//! needed scope is the one their security requirement names.

use std::collections::HashMap;

use axum::http::{Method, StatusCode};
use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sqlx::PgPool;
use switchboard::{auth::Claims, domain::scope::Scope};
use uuid::Uuid;

use crate::support::{JWT_SECRET, TestApp, TestResponse};

const SPEC: &str = include_str!("../../openapi/openapi.json");
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// One operation of the document that needs a token.
struct Operation {
    method: Method,
    /// With path parameters filled and required query parameters appended.
    uri: String,
    body: Option<(String, Value)>,
    /// The scopes its security requirements name, any one of which suffices (none: any valid token).
    scopes: Vec<String>,
}

fn operations(spec: &Value) -> Vec<Operation> {
    let mut ops = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let requirements = op["security"].as_array().cloned().unwrap_or_default();
            // No requirement, or an empty one (`{}`: the token is optional, as on `/metrics`
            // without METRICS_TOKEN, tested in runtime_limits): the operation takes no API token.
            let secured: Vec<&serde_json::Map<String, Value>> =
                requirements.iter().filter_map(Value::as_object).filter(|r| !r.is_empty()).collect();
            if secured.is_empty() || secured.len() < requirements.len() {
                continue;
            }
            let mut scopes: Vec<String> = secured
                .iter()
                .flat_map(|r| r.values())
                .flat_map(|s| s.as_array().cloned().unwrap_or_default())
                .filter_map(|s| s.as_str().map(String::from))
                .collect();
            scopes.sort();
            scopes.dedup();
            ops.push(Operation {
                method: method.to_uppercase().parse().unwrap(),
                uri: uri(spec, path, op),
                body: body(spec, op),
                scopes,
            });
        }
    }
    ops
}

/// A plausible value for a parameter: its example, else one that fits its format.
fn plausible(spec: &Value, param: &Value) -> String {
    let schema = resolve(spec, &param["schema"]);
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

fn uri(spec: &Value, path: &str, op: &Value) -> String {
    let mut uri = path.to_string();
    let mut query = Vec::new();
    for param in op["parameters"].as_array().into_iter().flatten() {
        let name = param["name"].as_str().unwrap();
        match param["in"].as_str() {
            Some("path") => uri = uri.replace(&format!("{{{name}}}"), &plausible(spec, param)),
            Some("query") if param["required"] == true => query.push(format!("{name}={}", plausible(spec, param))),
            _ => {}
        }
    }
    assert!(!uri.contains('{'), "{path}: a path parameter is not documented");
    if query.is_empty() { uri } else { format!("{uri}?{}", query.join("&")) }
}

/// The request body's example (so the request gets past parsing), else `{}`.
fn body(spec: &Value, op: &Value) -> Option<(String, Value)> {
    let (content_type, media) = op["requestBody"]["content"].as_object()?.iter().next()?;
    let example = media.get("example").cloned().or_else(|| resolve(spec, &media["schema"]).get("example").cloned());
    Some((content_type.clone(), example.unwrap_or_else(|| json!({}))))
}

fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) => &spec["components"]["schemas"][name],
        None => schema,
    }
}

fn sign(claims: &Claims, secret: &str) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret.as_bytes()).unwrap())
        .unwrap()
}

/// Claims for an existing, live admin token row, which each case then spoils in one way.
fn claims(jti: Uuid) -> Claims {
    Claims {
        jti,
        sub: format!("token:{jti}"),
        name: "matrix".into(),
        scopes: vec![Scope::Admin],
        aud: "switchboard".into(),
        iss: "switchboard".into(),
        iat: Utc::now().timestamp(),
        exp: None,
    }
}

async fn token_id(app: &TestApp, token: &str) -> Uuid {
    let res = app.request(Method::GET, "/v1/tokens/current").token(token).send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    res.json()["id"].as_str().unwrap().parse().unwrap()
}

async fn send(app: &TestApp, op: &Operation, token: Option<&str>) -> TestResponse {
    let mut req = app.request(op.method.clone(), &op.uri);
    if let Some(token) = token {
        req = req.token(token);
    }
    match &op.body {
        Some((content_type, body)) => req.raw_body(content_type, serde_json::to_vec(body).unwrap()).send().await,
        None => req.send().await,
    }
}

#[sqlx::test]
async fn every_secured_operation_refuses_every_bad_token(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let spec: Value = serde_json::from_str(SPEC).unwrap();
    let ops = operations(&spec);
    assert!(ops.len() > 50, "only {} secured operations found", ops.len());
    assert!(ops.iter().filter(|o| !o.scopes.is_empty()).count() > 50, "the spec names almost no scopes");

    // Each bad token would be a working admin token but for one thing.
    let live = token_id(&app, &app.admin).await;
    let revoked = app.token_named("matrix-revoked", &["admin"]).await;
    let revoked_id = token_id(&app, &revoked).await;
    assert_eq!(app.delete(&format!("/v1/tokens/{revoked_id}")).send().await.status, StatusCode::NO_CONTENT);
    let expired = Claims { exp: Some(Utc::now().timestamp() - 3600), ..claims(live) };
    let foreign = Claims { aud: "another-service".into(), ..claims(live) };
    let bad: [(&str, Option<String>); 5] = [
        ("no token", None),
        ("bad signature", Some(sign(&claims(live), "another-secret-that-is-also-long-enough-for-hs256"))),
        ("expired", Some(sign(&expired, JWT_SECRET))),
        ("revoked", Some(revoked)),
        ("wrong audience", Some(sign(&foreign, JWT_SECRET))),
    ];

    let mut all_but: HashMap<String, String> = HashMap::new();
    let mut failures = Vec::new();
    for op in &ops {
        let at = format!("{} {}", op.method, op.uri);
        for (case, token) in &bad {
            let res = send(&app, op, token.as_deref()).await;
            if res.status != StatusCode::UNAUTHORIZED {
                failures.push(format!("{at} with {case}: {} {}", res.status, res.text()));
            }
        }
        if op.scopes.is_empty() {
            continue;
        }
        let key = op.scopes.join(" ");
        if !all_but.contains_key(&key) {
            let others: Vec<&str> = Scope::ALL
                .iter()
                .map(|s| s.as_str())
                .filter(|s| !op.scopes.iter().any(|n| n == s) && *s != "admin")
                .collect();
            all_but.insert(key.clone(), app.token_named("matrix-all-but", &others).await);
        }
        let res = send(&app, op, Some(&all_but[&key])).await;
        if res.status != StatusCode::FORBIDDEN {
            failures.push(format!("{at} with every scope but `{key}`: {} {}", res.status, res.text()));
        }
    }
    assert!(failures.is_empty(), "{} refusals missing:\n{}", failures.len(), failures.join("\n"));
}
