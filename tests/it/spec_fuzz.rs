//! Malformed input for every operation, generated from the OpenAPI document itself
//! (`api::openapi::document()`), against the real application on one fresh database:
//! wrong JSON types for each body property, each required property missing, bodies that
//! are not JSON, of the wrong content type or too large, bad `Idempotency-Key`s, bad
//! cursors and limits, badly typed and missing query parameters, unknown query
//! parameters, path values that are not ids or name nothing, and missing, bad or
//! under-scoped tokens. Every answer must be a status the operation documents, a problem
//! answer's `code` must be listed in that status's `x-problem-codes`, and nothing may
//! answer 5xx. The cases are enumerated (no randomness), so a run is repeatable.
//!
//! Fixtures (a client with a knowledge entry, a schedule, a run, an alert, a report, a
//! webhook endpoint with a delivery, a token) exist first, so both "names nothing" (404)
//! and "names something, but the input is wrong" (400/415/422) are reached.

use std::collections::BTreeMap;

use axum::{
    body::Body,
    http::{HeaderName, HeaderValue, Method, Request, header},
};
use chrono::NaiveDate;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sqlx::PgPool;
use switchboard::store;
use tower::ServiceExt;
use uuid::Uuid;

use crate::support::TestApp;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];
/// A well-formed id that names nothing (fixed: the run is repeatable).
const UNKNOWN_ID: &str = "00000000-0000-7000-8000-00000000f022";

/// The resources the path parameters name.
struct Fixtures {
    client: String,
    entry: String,
    schedule: String,
    run: String,
    alert: String,
    report: String,
    endpoint: String,
    delivery: String,
    token: String,
}

async fn fixtures(app: &TestApp) -> Fixtures {
    let id = |v: &Value| v["id"].as_str().unwrap_or_else(|| panic!("no id in {v}")).to_string();
    let created = |res: crate::support::TestResponse| {
        assert!(res.status.is_success(), "fixture: {} {}", res.status, res.text());
        res.json()
    };
    // The endpoint first, so the client's creation queues a delivery to it.
    let endpoint = created(
        app.post("/v1/webhook-endpoints", json!({"url": "https://203.0.113.10/hook", "events": ["*"]})).send().await,
    );
    let client = app.create_client(json!({"name": "Acme Coffee", "slug": "acme"})).await;
    let entry = created(
        app.post("/v1/clients/acme/knowledge", json!({"kind": "note", "title": "Seed", "body": "seed"})).send().await,
    );
    let schedule = created(
        app.post("/v1/schedules", json!({"workflow": "weekly-report", "cron": "0 8 * * 1", "timezone": "UTC"}))
            .send()
            .await,
    );
    // No worker runs: the run stays queued.
    let run = created(app.post("/v1/workflows/weekly-report/runs", json!({"client_ids": ["acme"]})).send().await);
    let token =
        created(app.post("/v1/tokens", json!({"name": "fuzz-target", "scopes": ["clients:read"]})).send().await);

    let client_id: Uuid = id(&client).parse().unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    let day = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
    let alert = store::alerts::NewAlert {
        kind: "pacing",
        severity: store::alerts::Severity::Warning,
        subject: "meta".into(),
        message: "Spend doubled".into(),
        data: json!({}),
    };
    let alerts = store::alerts::record(&mut conn, client_id, None, day, &[alert]).await.unwrap();
    let figures = json!({});
    let report = store::reports::NewReport {
        client_id,
        run_id: None,
        kind: "weekly-report",
        period_start: day,
        period_end: NaiveDate::from_ymd_opt(2026, 6, 7).unwrap(),
        body: "# Week",
        figures: &figures,
        model: None,
        input_tokens: None,
        output_tokens: None,
    };
    let report = store::reports::insert(&mut conn, &report).await.unwrap();
    let delivery: Uuid =
        sqlx::query_scalar("SELECT id FROM engine.deliveries LIMIT 1").fetch_one(&app.pool).await.expect("a delivery");
    Fixtures {
        client: "acme".into(),
        entry: id(&entry),
        schedule: id(&schedule),
        run: id(&run),
        alert: alerts[0].id.to_string(),
        report: report.id.to_string(),
        endpoint: id(&endpoint),
        delivery: delivery.to_string(),
        token: id(&token),
    }
}

/// The existing resource a path parameter of `path` names.
fn known(f: &Fixtures, path: &str, name: &str) -> String {
    let value = match name {
        "client" => &f.client,
        "platform" => "meta",
        "chart" => "daily-spend.png",
        "key" if path.starts_with("/v1/workflows/") => "weekly-report",
        "key" if path.starts_with("/v1/prompt-templates/") => "weekly-report",
        "id" if path.starts_with("/v1/clients/{client}/knowledge/") => &f.entry,
        "id" if path.starts_with("/v1/schedules/") => &f.schedule,
        "id" if path.starts_with("/v1/runs/") => &f.run,
        "id" if path.starts_with("/v1/alerts/") => &f.alert,
        "id" if path.starts_with("/v1/reports/") => &f.report,
        "id" if path.starts_with("/v1/webhook-endpoints/") => &f.endpoint,
        "id" if path.starts_with("/v1/deliveries/") => &f.delivery,
        "id" if path.starts_with("/v1/tokens/") => &f.token,
        _ => panic!("{path}: no fixture for path parameter `{name}`; add one to spec_fuzz::known"),
    };
    value.to_string()
}

fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) => resolve(spec, &spec["components"]["schemas"][name]),
        None => schema,
    }
}

/// The JSON types a schema admits (`None`: any).
fn admitted(spec: &Value, schema: &Value) -> Option<Vec<String>> {
    let schema = resolve(spec, schema);
    if let Some(alternatives) = schema.get("oneOf").or_else(|| schema.get("anyOf")).and_then(Value::as_array) {
        let mut all = vec![];
        for alternative in alternatives {
            all.extend(admitted(spec, alternative)?);
        }
        return Some(all);
    }
    match &schema["type"] {
        Value::String(t) => Some(vec![t.clone()]),
        Value::Array(ts) => Some(ts.iter().filter_map(|t| t.as_str().map(String::from)).collect()),
        _ if schema.get("properties").is_some() => Some(vec!["object".into()]),
        _ if schema.get("enum").is_some() => Some(vec!["string".into()]),
        _ => None,
    }
}

/// A value of a JSON type the schema does not admit.
fn wrong_type(spec: &Value, schema: &Value) -> Option<Value> {
    let types = admitted(spec, schema)?;
    let fits = |v: &Value| match v {
        Value::Number(_) => types.iter().any(|t| t == "integer" || t == "number"),
        Value::String(_) => types.iter().any(|t| t == "string"),
        Value::Bool(_) => types.iter().any(|t| t == "boolean"),
        Value::Array(_) => types.iter().any(|t| t == "array"),
        Value::Object(_) => types.iter().any(|t| t == "object"),
        Value::Null => true,
    };
    [json!(12345), json!("fuzz"), json!(true), json!([1]), json!({"fuzz": 1})].into_iter().find(|v| !fits(v))
}

/// A value that fits a schema (for required fields of a body that has no example).
fn plausible(spec: &Value, schema: &Value) -> Value {
    let schema = resolve(spec, schema);
    if let Some(v) = schema.get("example").or_else(|| schema["enum"].get(0)).or_else(|| schema.get("default")) {
        return v.clone();
    }
    if let Some(first) = schema.get("oneOf").or_else(|| schema.get("anyOf")).and_then(|a| a.get(0)) {
        return plausible(spec, first);
    }
    let types = admitted(spec, schema).unwrap_or_default();
    match (types.first().map(String::as_str), schema["format"].as_str()) {
        (_, Some("uuid")) => json!(UNKNOWN_ID),
        (_, Some("date")) => json!("2026-06-01"),
        (_, Some("date-time")) => json!("2026-06-01T00:00:00Z"),
        (Some("integer" | "number"), _) => json!(1),
        (Some("boolean"), _) => json!(true),
        (Some("array"), _) => json!([]),
        (Some("object"), _) => {
            let mut body = serde_json::Map::new();
            for name in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                body.insert(name.into(), plausible(spec, &schema["properties"][name]));
            }
            Value::Object(body)
        }
        _ => json!("fuzz"),
    }
}

/// A query value of the wrong shape for a parameter's schema (`None`: any text fits).
fn malformed_query_value(spec: &Value, param: &Value) -> Option<&'static str> {
    let schema = resolve(spec, &param["schema"]);
    let types = admitted(spec, schema).unwrap_or_default();
    let format = schema["format"].as_str();
    if schema.get("enum").is_some()
        || format.is_some()
        || types.iter().any(|t| t == "integer" || t == "number" || t == "boolean")
    {
        Some("not-a-value")
    } else {
        None
    }
}

/// One operation, with what a request to it needs to get past everything but the one
/// thing a case spoils.
struct Operation {
    method: Method,
    path: String,
    op: Value,
    /// Path parameters filled with existing resources.
    uri: String,
    /// Required query parameters, plausibly filled.
    query: Vec<(String, String)>,
    body: Option<(String, Value)>,
    /// Takes a token (a security requirement that is not `{}`).
    token: bool,
    /// The scopes that would do (any one of them).
    scopes: Vec<String>,
}

fn operations(spec: &Value, f: &Fixtures) -> Vec<Operation> {
    let mut ops = vec![];
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let mut uri = path.clone();
            let mut query = vec![];
            for p in &params {
                let name = p["name"].as_str().unwrap();
                match p["in"].as_str() {
                    Some("path") => uri = uri.replace(&format!("{{{name}}}"), &known(f, path, name)),
                    Some("query") if p["required"] == true => {
                        let value = plausible(spec, &p["schema"]);
                        let value = p.get("example").unwrap_or(&value);
                        query.push((name.to_string(), value.as_str().map(String::from).unwrap_or(value.to_string())));
                    }
                    _ => {}
                }
            }
            let body = op["requestBody"]["content"].as_object().and_then(|c| c.iter().next()).map(|(ct, media)| {
                let example = media.get("example").or_else(|| resolve(spec, &media["schema"]).get("example"));
                (ct.clone(), example.cloned().unwrap_or_else(|| plausible(spec, &media["schema"])))
            });
            let requirements: Vec<&serde_json::Map<String, Value>> =
                op["security"].as_array().into_iter().flatten().filter_map(Value::as_object).collect();
            let token = !requirements.is_empty() && requirements.iter().all(|r| !r.is_empty());
            let mut scopes: Vec<String> = requirements
                .iter()
                .flat_map(|r| r.values())
                .flat_map(|s| s.as_array().cloned().unwrap_or_default())
                .filter_map(|s| s.as_str().map(String::from))
                .collect();
            scopes.sort();
            scopes.dedup();
            ops.push(Operation {
                method: method.to_uppercase().parse().unwrap(),
                path: path.clone(),
                op: op.clone(),
                uri,
                query,
                body,
                token,
                scopes,
            });
        }
    }
    // Deletes last, the deepest paths first: a delete that wrongly succeeds takes no fixture
    // from a case that still needs it.
    ops.sort_by_key(|o| (o.method == Method::DELETE, std::cmp::Reverse(o.path.len())));
    ops
}

/// A request: the operation's, with one thing spoiled.
#[derive(Clone)]
struct Case {
    label: String,
    uri: String,
    query: Vec<(String, String)>,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Option<(Option<String>, Vec<u8>)>,
    /// `None`: no `Authorization` header.
    token: Option<String>,
}

impl Case {
    fn labelled(&self, label: impl Into<String>) -> Self {
        Self { label: label.into(), ..self.clone() }
    }

    fn with_query(mut self, name: &str, value: &str) -> Self {
        self.query.retain(|(n, _)| n != name);
        self.query.push((name.into(), value.into()));
        self
    }

    fn with_json(mut self, content_type: &str, body: &Value) -> Self {
        self.body = Some((Some(content_type.into()), serde_json::to_vec(body).unwrap()));
        self
    }
}

struct Tokens {
    admin: String,
    /// A token per needed scope set, holding every scope but those (and `admin`).
    all_but: BTreeMap<String, String>,
}

fn cases(spec: &Value, op: &Operation, tokens: &Tokens, body_limit: usize) -> Vec<Case> {
    let base = Case {
        label: String::new(),
        uri: op.uri.clone(),
        query: op.query.clone(),
        headers: vec![],
        body: op.body.as_ref().map(|(ct, v)| (Some(ct.clone()), serde_json::to_vec(v).unwrap())),
        token: op.token.then(|| tokens.admin.clone()),
    };
    let mut all = vec![base.labelled("unknown query parameter").with_query("fuzz_unknown", "1")];
    let params = op.op["parameters"].as_array().cloned().unwrap_or_default();
    for p in params.iter().filter(|p| p["in"] == "query") {
        let name = p["name"].as_str().unwrap();
        // A value of the wrong shape where the schema gives one, else text no id or cursor has;
        // and a long one anywhere.
        let bad = malformed_query_value(spec, p).unwrap_or("!!%2F..");
        all.push(base.labelled(format!("query {name}={bad}")).with_query(name, bad));
        all.push(base.labelled(format!("query {name} of 2,000 characters")).with_query(name, &"9".repeat(2000)));
        if p["required"] == true {
            let mut case = base.labelled(format!("query {name} missing"));
            case.query.retain(|(n, _)| n != name);
            all.push(case);
        }
    }
    if params.iter().any(|p| p["name"] == "limit" && p["in"] == "query") {
        for bad in ["0", "501", "x", "-1"] {
            all.push(base.labelled(format!("limit={bad}")).with_query("limit", bad));
        }
    }
    if params.iter().any(|p| p["name"] == "cursor" && p["in"] == "query") {
        for bad in ["", "!!!", "eyJmdXp6IjoxfQ", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
            all.push(base.labelled(format!("cursor={bad:?}")).with_query("cursor", bad));
        }
    }
    for p in params.iter().filter(|p| p["in"] == "path") {
        let name = p["name"].as_str().unwrap();
        let value = known_value_in(&op.uri, &op.path, name);
        for bad in ["not-an-id", UNKNOWN_ID, "%20", "x%2Fy"] {
            let mut case = base.labelled(format!("path {name}={bad}"));
            case.uri = replace_segment(&op.uri, &op.path, name, &value, bad);
            all.push(case);
        }
    }
    if op.token {
        all.push(Case { token: None, ..base.labelled("no token") });
        all.push(Case { token: Some("not-a-token".into()), ..base.labelled("malformed token") });
        if !op.scopes.is_empty() {
            let key = op.scopes.join(" ");
            all.push(Case { token: Some(tokens.all_but[&key].clone()), ..base.labelled(format!("without {key}")) });
        }
    }
    if op.method == Method::POST && op.token {
        let bad_keys: [(&str, HeaderValue); 4] = [
            ("empty", HeaderValue::from_static("")),
            ("blank", HeaderValue::from_static("   ")),
            ("256 characters", HeaderValue::from_str(&"k".repeat(256)).unwrap()),
            ("not ASCII", HeaderValue::from_bytes("clé-ключ".as_bytes()).unwrap()),
        ];
        for (what, value) in bad_keys {
            let mut case = base.labelled(format!("Idempotency-Key {what}"));
            case.headers.push((HeaderName::from_static("idempotency-key"), value));
            all.push(case);
        }
    }
    if op.method == Method::POST || op.body.is_some() {
        let content_type = op.body.as_ref().map(|(ct, _)| ct.clone()).unwrap_or("application/json".into());
        let big = format!("{{\"fuzz\": \"{}\"}}", "x".repeat(body_limit));
        let mut case =
            Case { body: Some((Some(content_type), big.into_bytes())), ..base.labelled("body over the limit") };
        // An operation that reads no body ignores one, unless `Idempotency-Key` makes it read
        // the body to fingerprint the request: that is where a large one is refused.
        if op.body.is_none() && op.token {
            case.headers.push((HeaderName::from_static("idempotency-key"), HeaderValue::from_static("fuzz-too-large")));
        }
        if op.body.is_some() || op.token {
            all.push(case);
        }
    }
    if let Some((content_type, example)) = &op.body {
        let ct = Some(content_type.clone());
        all.push(Case { body: Some((ct.clone(), b"{\"not json".to_vec())), ..base.labelled("body not JSON") });
        all.push(Case { body: Some((ct.clone(), vec![])), ..base.labelled("empty body") });
        let raw = serde_json::to_vec(example).unwrap();
        all.push(Case { body: Some((Some("text/plain".into()), raw.clone())), ..base.labelled("text/plain body") });
        all.push(Case { body: Some((None, raw)), ..base.labelled("no Content-Type") });
        for other in [json!(null), json!([]), json!("text"), json!(7)] {
            all.push(base.labelled(format!("body {other}")).with_json(content_type, &other));
        }
        let schema = resolve(spec, &op.op["requestBody"]["content"][content_type.as_str()]["schema"]);
        let required: Vec<&str> =
            schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        for (name, property) in schema["properties"].as_object().into_iter().flatten() {
            if let Some(wrong) = wrong_type(spec, property) {
                let mut body = example.clone();
                body[name.as_str()] = wrong.clone();
                all.push(base.labelled(format!("body {name}: {wrong}")).with_json(content_type, &body));
            }
            if required.contains(&name.as_str()) {
                let mut body = example.clone();
                body.as_object_mut().map(|o| o.remove(name));
                all.push(base.labelled(format!("body without {name}")).with_json(content_type, &body));
            }
        }
        let mut unknown = example.clone();
        if let Some(o) = unknown.as_object_mut() {
            o.insert("fuzz_unknown".into(), json!(1));
            all.push(base.labelled("body with an unknown field").with_json(content_type, &unknown));
        }
    }
    all
}

/// The value `name` has in `uri` (filled from `path`).
fn known_value_in(uri: &str, path: &str, name: &str) -> String {
    let at = path.split('/').position(|s| s == format!("{{{name}}}")).unwrap();
    uri.split('/').nth(at).unwrap().to_string()
}

fn replace_segment(uri: &str, path: &str, name: &str, value: &str, with: &str) -> String {
    let at = path.split('/').position(|s| s == format!("{{{name}}}")).unwrap();
    let mut segments: Vec<&str> = uri.split('/').collect();
    assert_eq!(segments[at], value);
    segments[at] = with;
    segments.join("/")
}

/// What is wrong with an answer, if anything.
fn offence(op: &Value, status: u16, body: &[u8]) -> Option<String> {
    if status >= 500 {
        return Some(format!("{status}: {}", String::from_utf8_lossy(body)));
    }
    let Some(documented) = op["responses"].get(status.to_string()) else {
        return Some(format!("{status} is not documented: {}", String::from_utf8_lossy(body)));
    };
    if status < 400 {
        return None;
    }
    let code = serde_json::from_slice::<Value>(body).ok().and_then(|b| b["code"].as_str().map(String::from));
    let Some(code) = code else {
        return Some(format!("{status} without a problem `code`: {}", String::from_utf8_lossy(body)));
    };
    let listed = documented["x-problem-codes"].as_array().is_some_and(|l| l.iter().any(|c| c == code.as_str()));
    (!listed).then(|| format!("{status} `{code}` is not in its x-problem-codes {}", documented["x-problem-codes"]))
}

async fn send(app: &TestApp, method: &Method, case: &Case) -> (u16, Vec<u8>) {
    let mut uri = case.uri.clone();
    if !case.query.is_empty() {
        let query: Vec<String> = case.query.iter().map(|(n, v)| format!("{n}={v}")).collect();
        uri = format!("{uri}?{}", query.join("&"));
    }
    let mut req = Request::builder().method(method.clone()).uri(uri);
    if let Some(token) = &case.token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    for (name, value) in &case.headers {
        req = req.header(name, value);
    }
    let body = match &case.body {
        Some((content_type, bytes)) => {
            if let Some(ct) = content_type {
                req = req.header(header::CONTENT_TYPE, ct);
            }
            Body::from(bytes.clone())
        }
        None => Body::empty(),
    };
    let response = app.router.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    (status, response.into_body().collect().await.unwrap().to_bytes().to_vec())
}

#[sqlx::test]
async fn every_operation_answers_malformed_input_as_documented(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let spec = switchboard::api::openapi::document();
    let f = fixtures(&app).await;
    let ops = operations(&spec, &f);
    assert!(ops.len() > 60, "only {} operations", ops.len());

    let mut tokens = Tokens { admin: app.admin.clone(), all_but: BTreeMap::new() };
    for op in ops.iter().filter(|o| !o.scopes.is_empty()) {
        let key = op.scopes.join(" ");
        if let std::collections::btree_map::Entry::Vacant(entry) = tokens.all_but.entry(key) {
            let others: Vec<&str> = switchboard::domain::scope::Scope::ALL
                .iter()
                .map(|s| s.as_str())
                .filter(|s| !op.scopes.iter().any(|n| n == s) && *s != "admin")
                .collect();
            entry.insert(app.token_named("fuzz-all-but", &others).await);
        }
    }

    let mut offences = vec![];
    let mut sent = 0;
    for op in &ops {
        for case in cases(&spec, op, &tokens, app.state.config.body_limit_bytes) {
            let (status, body) = send(&app, &op.method, &case).await;
            sent += 1;
            if let Some(why) = offence(&op.op, status, &body) {
                offences.push(format!("{} {} [{}]: {why}", op.method, op.path, case.label));
            }
        }
    }
    assert!(offences.is_empty(), "{} of {sent} answers break the spec:\n{}", offences.len(), offences.join("\n"));
    assert!(sent > 900, "only {sent} requests");
}
