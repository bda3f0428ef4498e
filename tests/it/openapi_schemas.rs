//! The spec's schemas tell the whole truth (issue #11): formats on dates, URLs and ids,
//! merge-patch bodies with their own schemas, enums that are the Rust sets, an example
//! that fits every request body, a description and security on every operation, and no
//! component left unused. Each test reads the committed document (which
//! `openapi::committed_spec_matches_the_code` keeps equal to the code's).

use serde_json::{Value, json};

const COMMITTED: &str = include_str!("../../openapi/openapi.json");

fn doc() -> Value {
    serde_json::from_str(COMMITTED).unwrap()
}

/// Every operation, as (`method path`, operation).
fn operations(doc: &Value) -> Vec<(String, Value)> {
    let mut all = vec![];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            all.push((format!("{method} {path}"), op.clone()));
        }
    }
    all
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) => &doc["components"]["schemas"][name],
        None => schema,
    }
}

/// Every named property of every schema (nested ones too), as (`where.name`, schema).
fn properties(value: &Value, at: &str, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            for (name, prop) in map.get("properties").and_then(Value::as_object).into_iter().flatten() {
                out.push((format!("{at}.{name}"), prop.clone()));
            }
            map.iter().for_each(|(k, v)| properties(v, &format!("{at}/{k}"), out));
        }
        Value::Array(items) => items.iter().for_each(|v| properties(v, at, out)),
        _ => {}
    }
}

fn all_properties(doc: &Value) -> Vec<(String, Value)> {
    let mut out = vec![];
    properties(&doc["components"]["schemas"], "", &mut out);
    properties(&doc["paths"], "", &mut out);
    out
}

/// Every query and path parameter, as (`method path name`, schema).
fn parameters(doc: &Value) -> Vec<(String, Value)> {
    let mut out = vec![];
    for (at, op) in operations(doc) {
        for p in op["parameters"].as_array().into_iter().flatten().filter(|p| p["in"] != "header") {
            out.push((format!("{at} {}", p["name"].as_str().unwrap()), p["schema"].clone()));
        }
    }
    out
}

fn is_string(schema: &Value) -> bool {
    schema["type"] == "string" || schema["type"] == json!(["string", "null"])
}

fn looks_like_a_date(value: &Value) -> bool {
    value.as_str().is_some_and(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok())
}

/// A day (`from`/`to` of a range, `day`, `date`, a period's ends, `as_of`) is
/// `format: date`, wherever it is: a property or a query parameter. Found by its name or
/// by an example that is a date, so a new one cannot slip through untyped.
#[test]
fn every_date_has_format_date() {
    let doc = doc();
    let day_names = ["day", "date", "as_of", "period_start", "period_end", "sunset_on"];
    let mut seen = 0;
    let mut found = all_properties(&doc);
    found.extend(parameters(&doc));
    let ats: Vec<String> = found.iter().map(|(at, _)| at.clone()).collect();
    for (at, schema) in found {
        let (parent, name) = at.rsplit_once(['.', ' ']).unwrap();
        let sep = &at[parent.len()..parent.len() + 1];
        // `from` and `to` side by side are a range (of days, or of instants: `date-time`).
        let range =
            ["from", "to"].contains(&name) && ["from", "to"].iter().all(|n| ats.contains(&format!("{parent}{sep}{n}")));
        let example_is_a_date = looks_like_a_date(&schema["example"]);
        let named_a_day = (day_names.contains(&name) || range) && schema["format"] != "date-time";
        if is_string(&schema) && (example_is_a_date || named_a_day) {
            assert_eq!(schema["format"], "date", "{at}: {schema}");
            seen += 1;
        }
    }
    assert!(seen >= 15, "only {seen} dates");
}

/// `url` and `*_url` strings are `format: uri`; every `id` string is a UUID.
#[test]
fn urls_and_ids_have_their_formats() {
    let doc = doc();
    let (mut urls, mut ids) = (0, 0);
    let mut found = all_properties(&doc);
    found.extend(parameters(&doc));
    for (at, schema) in found.iter().filter(|(_, s)| is_string(s)) {
        let name = at.rsplit(['.', ' ']).next().unwrap();
        if name == "url" || name.ends_with("_url") {
            assert_eq!(schema["format"], "uri", "{at}: {schema}");
            urls += 1;
        }
        if name == "id" {
            assert_eq!(schema["format"], "uuid", "{at}: {schema}");
            ids += 1;
        }
    }
    assert!(urls >= 4 && ids >= 20, "{urls} urls, {ids} ids");
}

/// A PATCH body is a patch: its schema requires nothing and is no create (POST/PUT) body's
/// schema. In a JSON merge patch (`application/merge-patch+json`, where `null` removes a
/// field) every field the create body may leave out can be sent as `null`, and the fields a
/// create requires cannot.
#[test]
fn every_patch_body_has_its_own_schema() {
    let doc = doc();
    let body_schema = |op: &Value| -> Option<(String, Value)> {
        let (_, media) = op["requestBody"]["content"].as_object()?.iter().next()?;
        Some((media["schema"]["$ref"].as_str().unwrap_or_default().to_string(), media["schema"].clone()))
    };
    let mut create_refs = vec![];
    for (_, op) in operations(&doc).iter().filter(|(at, _)| at.starts_with("post ") || at.starts_with("put ")) {
        if let Some((reference, _)) = body_schema(op) {
            create_refs.push(reference);
        }
    }
    let (mut patched, mut merge_patches) = (0, 0);
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(op) = item.get("patch") else { continue };
        let (reference, schema) = body_schema(op).unwrap_or_else(|| panic!("patch {path}: no body"));
        assert!(!create_refs.contains(&reference), "patch {path}: reuses the create schema {reference}");
        let patch = resolve(&doc, &schema);
        assert!(patch.get("required").is_none(), "patch {path}: requires {}", patch["required"]);
        patched += 1;
        if op["requestBody"]["content"].get("application/merge-patch+json").is_none() {
            continue;
        }
        // The create body is the POST on the collection the resource belongs to.
        let collection = &path[..path.rfind('/').unwrap()];
        let create = doc["paths"][collection]["post"].clone();
        let (_, create_schema) = body_schema(&create).unwrap_or_else(|| panic!("no create for {path}"));
        let create = resolve(&doc, &create_schema);
        let required: Vec<&Value> = create["required"].as_array().map(|r| r.iter().collect()).unwrap_or_default();
        for name in patch["properties"].as_object().unwrap().keys() {
            let cleared = validate(&doc, patch, &json!({name: null}), path);
            let may_clear = !required.iter().any(|r| *r == name);
            assert_eq!(cleared.is_ok(), may_clear, "patch {path}: `{name}: null` ({cleared:?})");
        }
        merge_patches += 1;
    }
    assert!(patched >= 4 && merge_patches >= 3, "only {patched} PATCH operations, {merge_patches} merge patches");
}

/// Each operation says what it does and who may call it: a description, and a security
/// requirement (an empty list for the few that take no credential).
#[test]
fn every_operation_has_a_description_and_security() {
    let doc = doc();
    let mut public = vec![];
    for (at, op) in operations(&doc) {
        assert!(op["description"].as_str().is_some_and(|d| d.len() > 10), "{at}: no description");
        let security = op["security"].as_array().unwrap_or_else(|| panic!("{at}: no security"));
        if security.is_empty() {
            public.push(at);
        } else {
            assert!(security.iter().all(|r| r.as_object().is_some()), "{at}: {security:?}");
        }
    }
    public.sort();
    assert_eq!(public, ["get /healthz", "get /readyz", "get /v1/inbound/whatsapp", "post /v1/inbound/whatsapp"]);
}

/// Every request body shows an example (on the body or its schema) that its own schema accepts.
#[test]
fn every_request_body_has_an_example_that_fits_its_schema() {
    let doc = doc();
    let mut seen = 0;
    for (at, op) in operations(&doc) {
        for (media_type, media) in op["requestBody"]["content"].as_object().into_iter().flatten() {
            let schema = resolve(&doc, &media["schema"]);
            let example = media.get("example").or_else(|| schema.get("example"));
            let example = example.unwrap_or_else(|| panic!("{at} {media_type}: no example"));
            if let Err(e) = validate(&doc, &media["schema"], example, &at) {
                panic!("{at} {media_type}: the example does not fit: {e}\n{example}");
            }
            seen += 1;
        }
    }
    assert!(seen >= 20, "only {seen} bodies");
}

/// Every successful JSON answer shows an example (written, or built from its schema by
/// `api::openapi_examples`) that its own schema accepts.
#[test]
fn every_json_answer_has_an_example_that_fits_its_schema() {
    let doc = doc();
    let mut seen = 0;
    for (at, op) in operations(&doc) {
        for (status, response) in op["responses"].as_object().unwrap().iter().filter(|(s, _)| s.starts_with('2')) {
            let Some(media) = response["content"].get("application/json") else { continue };
            let example = media.get("example").unwrap_or_else(|| panic!("{at} {status}: no example"));
            if let Err(e) = validate(&doc, &media["schema"], example, &at) {
                panic!("{at} {status}: the example does not fit: {e}\n{example}");
            }
            seen += 1;
        }
    }
    assert!(seen >= 60, "only {seen} answers");
}

/// Every component is referenced from somewhere, and every reference names a component.
#[test]
fn every_component_is_used_and_every_reference_resolves() {
    let doc = doc();
    let text = doc.to_string();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in schemas.keys() {
        let reference = format!("\"#/components/schemas/{name}\"");
        assert!(text.contains(&reference), "component {name} is not used");
    }
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = &reference[..reference.find('"').unwrap()];
        assert!(schemas.contains_key(name), "{name} is referenced but not defined");
    }
}

/// A closed set is an `enum` in the spec, and exactly the names the code knows, in the
/// components and where the API uses them (bodies, answers and query parameters).
#[test]
fn closed_sets_are_the_rust_sets() {
    use switchboard::{
        domain::{alert, events::EventType, run, scope::Scope},
        operations::metrics::AdPlatform,
        platforms::REGISTRY,
        workflows::Registry,
    };
    let doc = doc();
    let strings = |names: &[&str]| names.iter().map(|n| json!(n)).collect::<Vec<_>>();
    let sets: Vec<(&str, Vec<Value>)> = vec![
        ("RunStatus", strings(run::RunStatus::NAMES)),
        ("TaskStatus", strings(run::TaskStatus::NAMES)),
        ("RunTrigger", strings(run::RunTrigger::NAMES)),
        ("AlertKind", strings(alert::AlertKind::NAMES)),
        ("AlertStatus", strings(alert::AlertStatus::NAMES)),
        ("Severity", strings(alert::Severity::NAMES)),
        ("Scope", Scope::ALL.iter().map(|s| json!(s.as_str())).collect()),
        ("EventType", EventType::ALL.iter().map(|t| json!(t.as_str())).collect()),
        ("PlatformKey", REGISTRY.iter().map(|p| json!(p.key)).collect()),
        ("AdPlatform", AdPlatform::keys().map(|k| json!(k)).collect()),
        ("WorkflowKey", Registry::builtin().keys().into_iter().map(|k| json!(k)).collect()),
    ];
    for (name, names) in &sets {
        let schema = &doc["components"]["schemas"][name];
        assert_eq!(schema["enum"].as_array(), Some(names), "{name}: {schema}");
    }
    let schemas = &doc["components"]["schemas"];
    let uses = [
        (&schemas["RunView"]["properties"]["status"], "RunStatus"),
        (&schemas["RunView"]["properties"]["trigger"], "RunTrigger"),
        (&schemas["RunView"]["properties"]["workflow"], "WorkflowKey"),
        (&schemas["ScheduleView"]["properties"]["workflow"], "WorkflowKey"),
        (&schemas["TaskView"]["properties"]["status"], "TaskStatus"),
        (&schemas["TokenView"]["properties"]["scopes"]["items"], "Scope"),
        (&schemas["Alert"]["properties"]["kind"], "AlertKind"),
        (&schemas["DeliveryView"]["properties"]["event_type"], "EventType"),
        (&schemas["PlatformView"]["properties"]["key"], "PlatformKey"),
        (&schemas["PlatformSync"]["properties"]["platform"], "AdPlatform"),
        (&schemas["SyncRequest"]["properties"]["platforms"]["items"], "AdPlatform"),
    ];
    for (schema, name) in uses {
        assert_eq!(schema["$ref"], format!("#/components/schemas/{name}"), "{schema} is not a {name}");
    }
    let param =
        |at: &str| parameters(&doc).into_iter().find(|(a, _)| a == at).unwrap_or_else(|| panic!("no parameter {at}")).1;
    for (at, name) in [
        ("get /v1/runs status", "RunStatus"),
        ("get /v1/runs workflow", "WorkflowKey"),
        ("get /v1/schedules workflow", "WorkflowKey"),
        ("get /v1/alerts kind", "AlertKind"),
        ("get /v1/alerts status", "AlertStatus"),
        ("get /v1/clients/{client}/metrics platform", "AdPlatform"),
        ("get /v1/platforms/{platform} platform", "PlatformKey"),
        ("post /v1/workflows/{key}/runs key", "WorkflowKey"),
    ] {
        assert_eq!(param(at)["$ref"], format!("#/components/schemas/{name}"), "{at}");
    }
}

/// Checks `value` against `schema`: the parts of JSON Schema the document uses (`$ref`,
/// `type` (one or a list), `enum`, `required`, `properties`, `additionalProperties`,
/// `items`, `oneOf`/`anyOf`/`allOf`, `minimum`/`maximum`, and the formats `date`,
/// `date-time`, `uuid` and `uri`).
fn validate(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(doc, schema);
    if let Some(all) = schema["allOf"].as_array() {
        for s in all {
            validate(doc, s, value, at)?;
        }
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(any) = schema[key].as_array()
            && !any.iter().any(|s| validate(doc, s, value, at).is_ok())
        {
            return Err(format!("{at}: {value} matches none of {key}"));
        }
    }
    let nullable = schema["type"].as_array().is_some_and(|t| t.contains(&json!("null")));
    if let Some(names) = schema["enum"].as_array()
        && !names.contains(value)
        && !(value.is_null() && nullable)
    {
        return Err(format!("{at}: {value} is not one of {names:?}"));
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    if !types.is_empty() && !types.iter().any(|t| *t == kind || (*t == "number" && kind == "integer")) {
        return Err(format!("{at}: {value} is a {kind}, not {types:?}"));
    }
    if let (Some(n), Some(min)) = (value.as_f64(), schema["minimum"].as_f64())
        && n < min
    {
        return Err(format!("{at}: {n} < minimum {min}"));
    }
    if let (Some(n), Some(max)) = (value.as_f64(), schema["maximum"].as_f64())
        && n > max
    {
        return Err(format!("{at}: {n} > maximum {max}"));
    }
    if let (Some(s), Some(format)) = (value.as_str(), schema["format"].as_str()) {
        let ok = match format {
            "date" => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
            "date-time" => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
            "uuid" => uuid::Uuid::parse_str(s).is_ok(),
            "uri" => reqwest::Url::parse(s).is_ok(),
            _ => true,
        };
        if !ok {
            return Err(format!("{at}: {s:?} is not a {format}"));
        }
    }
    match value {
        Value::Object(fields) => {
            for name in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                if !fields.contains_key(name) {
                    return Err(format!("{at}: `{name}` is required"));
                }
            }
            let props = schema["properties"].as_object();
            for (name, field) in fields {
                let at = format!("{at}.{name}");
                match (props.and_then(|p| p.get(name)), &schema["additionalProperties"]) {
                    (Some(prop), _) => validate(doc, prop, field, &at)?,
                    (None, Value::Bool(false)) => return Err(format!("{at}: not a field of this schema")),
                    (None, extra @ Value::Object(_)) => validate(doc, extra, field, &at)?,
                    (None, _) => {}
                }
            }
        }
        Value::Array(items) if schema.get("items").is_some() => {
            for (i, item) in items.iter().enumerate() {
                validate(doc, &schema["items"], item, &format!("{at}[{i}]"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The walker above can fail: a wrong type, a missing required field, an unknown field, a
/// value outside an enum, a malformed date.
#[test]
fn the_example_check_rejects_what_a_schema_forbids() {
    let doc = doc();
    let schema = json!({"$ref": "#/components/schemas/SyncRequest"});
    assert!(validate(&doc, &schema, &json!({"from": "2026-06-01", "to": "2026-06-07"}), "").is_ok());
    for bad in [
        json!({"from": "2026-06-01"}),
        json!({"from": "2026-06-01", "to": 7}),
        json!({"from": "2026-06-01", "to": "2026-06-07", "extra": 1}),
        json!({"from": "2026-06-01", "to": "2026-06-07", "platforms": ["tiktok"]}),
        json!({"from": "2026-06-01", "to": "June 7"}),
    ] {
        assert!(validate(&doc, &schema, &bad, "").is_err(), "accepted {bad}");
    }
}
