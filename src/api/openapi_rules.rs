//! Rules every operation and schema of the document follows, applied to the collected
//! document in one place instead of repeated in each `#[utoipa::path]`: the server,
//! the formats of timestamps and URLs, the bounds of `limit`, the answers the shared layers
//! give (strict extractors, `Idempotency-Key`, body limit, timeouts, the database) with
//! their problem `code`s, the merge-patch bodies' own schemas, workflow keys, and pages
//! that refer to their items' schema. Each rule is a fact of the code it names; tests in
//! tests/it/openapi.rs check the result.

use serde_json::{Map, Value, json};

use super::pagination::MAX_LIMIT;

/// A shared answer: its status, when it applies, what it means, the `code`s it carries.
struct Shared {
    status: &'static str,
    applies: fn(&Op) -> bool,
    description: &'static str,
    codes: &'static [&'static str],
}

struct Op<'a> {
    method: &'a str,
    has_body: bool,
    has_cursor: bool,
    has_limit: bool,
    token: bool,
}

/// What the layers every `/v1` operation goes through can answer.
const SHARED: &[Shared] = &[
    Shared {
        status: "400",
        applies: |_| true,
        description: "`invalid_query`: an unknown or malformed query parameter (named in `errors`)",
        codes: &["invalid_query"],
    },
    Shared {
        status: "400",
        applies: |op| op.has_body,
        description: "`malformed_json` / `unreadable_body`: the body is not the JSON this operation reads",
        codes: &["malformed_json", "unreadable_body"],
    },
    Shared {
        status: "400",
        applies: |op| op.has_cursor,
        description: "`invalid_cursor`: a cursor this list did not return",
        codes: &["invalid_cursor"],
    },
    Shared {
        status: "400",
        applies: |op| op.has_limit,
        description: "`invalid_limit`: a limit outside 1–500",
        codes: &["invalid_limit"],
    },
    Shared {
        status: "400",
        applies: |op| op.method == "post" && op.token,
        description: "`invalid_idempotency_key`: `Idempotency-Key` is not 1–255 visible ASCII characters",
        codes: &["invalid_idempotency_key"],
    },
    Shared {
        status: "401",
        applies: |op| op.token,
        description: "Missing, malformed, expired or revoked token",
        codes: &[
            "missing_token",
            "invalid_token",
            "token_expired",
            "invalid_audience",
            "token_revoked",
            "unknown_token",
        ],
    },
    Shared {
        status: "408",
        applies: |_| true,
        description: "`timeout`: the request ran longer than `REQUEST_TIMEOUT_SECS`",
        codes: &["timeout"],
    },
    Shared {
        status: "409",
        applies: |op| op.method == "post" && op.token,
        description: "`idempotency_in_flight`: a request with this `Idempotency-Key` is still running; retry shortly",
        codes: &["idempotency_in_flight"],
    },
    Shared {
        status: "413",
        applies: |op| op.has_body || op.method == "post",
        description: "`payload_too_large`: the body is over `BODY_LIMIT_BYTES`",
        codes: &["payload_too_large"],
    },
    Shared {
        status: "415",
        applies: |op| op.has_body,
        description: "`unsupported_media_type`: the body is not sent as JSON",
        codes: &["unsupported_media_type"],
    },
    Shared {
        status: "422",
        applies: |op| op.has_body,
        description: "`validation_failed`: a field is missing, of the wrong type, unknown or invalid (named in `errors`)",
        codes: &["validation_failed"],
    },
    Shared {
        status: "422",
        applies: |op| op.method == "post" && op.token,
        description: "`idempotency_key_reused`: this `Idempotency-Key` was used with another request",
        codes: &["idempotency_key_reused"],
    },
    Shared {
        status: "429",
        applies: |op| op.token,
        description: "`rate_limited`: rate limit of this token exceeded; see `Retry-After`",
        codes: &["rate_limited"],
    },
    Shared {
        status: "500",
        applies: |_| true,
        description: "`internal`: internal error (logged with the request id)",
        codes: &["internal"],
    },
    Shared {
        status: "503",
        applies: |_| true,
        description: "`database_timeout`: the database did not answer in time; see `Retry-After`",
        codes: &["database_timeout"],
    },
    Shared {
        status: "503",
        applies: |op| op.token,
        description: "`unavailable`: the shared rate limit could not be checked; see `Retry-After`",
        codes: &["unavailable"],
    },
];

/// The codes an operation's own answers carry, by status, where the code follows from
/// the status: a 403 of a scoped operation is the missing scope, every 404 is `not_found`.
/// Handlers list any other code of theirs in the response's `x-problem-codes`.
fn own_codes(status: &str, scoped: bool) -> &'static [&'static str] {
    match status {
        "403" if scoped => &["missing_scope"],
        "404" => &["not_found"],
        _ => &[],
    }
}

/// `ApiError::from(PlatformError)`: a platform's refusal is 502, its throttling 429 and its
/// absence 503, all `platform_error`; an operation that calls a platform can meet each.
const PLATFORM_ANSWERS: [(&str, &str); 3] = [
    ("429", "`platform_error`: the platform throttled the call; see `Retry-After`"),
    ("502", "`platform_error`: the platform refused the call (`platform` says why)"),
    ("503", "`platform_error`: the platform is unavailable or not configured"),
];

fn problem(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}})
}

/// Applies every rule to the document (as JSON).
pub fn apply(doc: &mut Value) {
    doc["servers"] =
        json!([{"url": "/", "description": "This Switchboard (the API is served from the root of its address)"}]);
    for (path, item) in doc["paths"].as_object_mut().into_iter().flatten() {
        if !path.starts_with("/v1/") {
            continue;
        }
        for (method, op) in item.as_object_mut().into_iter().flatten() {
            operation(method, op);
        }
    }
    public_operations(doc);
    merge_patch_bodies(doc);
    workflow_keys(doc);
    if let Some(schemas) = doc.pointer_mut("/components/schemas") {
        timestamps(schemas);
        urls(schemas);
        page_items(schemas);
    }
}

fn operation(method: &str, op: &mut Value) {
    let params = op["parameters"].as_array().cloned().unwrap_or_default();
    let named = |n: &str| params.iter().any(|p| p["name"] == n && p["in"] == "query");
    let token =
        op["security"].as_array().is_some_and(|s| s.iter().any(|r| r.as_object().is_some_and(|o| !o.is_empty())));
    let scoped = op["security"].as_array().is_some_and(|s| {
        s.iter().filter_map(Value::as_object).any(|r| r.values().any(|v| v.as_array().is_some_and(|a| !a.is_empty())))
    });
    let info = Op {
        method,
        has_body: op.get("requestBody").is_some(),
        has_cursor: named("cursor"),
        has_limit: named("limit"),
        token,
    };
    // `get_mut`, not `op["parameters"]`: indexing would insert `"parameters": null` where there are none.
    for p in op.get_mut("parameters").and_then(Value::as_array_mut).into_iter().flatten() {
        if p["in"] == "query" && p["name"] == "limit" {
            p["schema"] =
                json!({"type": "integer", "format": "int32", "minimum": 1, "maximum": MAX_LIMIT, "default": 50});
        }
    }
    let responses = op["responses"].as_object_mut().expect("responses");
    let calls_platform = responses
        .values()
        .any(|r| r["x-problem-codes"].as_array().is_some_and(|c| c.iter().any(|c| c == "platform_error")));
    if calls_platform {
        for (status, description) in PLATFORM_ANSWERS {
            // A handler's own description of the answer stays as it is.
            let described = responses.contains_key(status);
            let response = responses.entry(status).or_insert_with(|| problem(""));
            add_codes(response, &["platform_error"], if described { "" } else { description });
        }
    }
    for shared in SHARED.iter().filter(|s| (s.applies)(&info)) {
        let response = responses.entry(shared.status).or_insert_with(|| problem(""));
        add_codes(response, shared.codes, shared.description);
    }
    for (status, response) in responses.iter_mut() {
        let codes = own_codes(status, scoped);
        if !codes.is_empty() {
            add_codes(response, codes, "");
        }
    }
    sort_responses(responses);
}

/// Adds `codes` to the response's `x-problem-codes` and `description` to its description.
fn add_codes(response: &mut Value, codes: &[&str], description: &str) {
    let list = response.as_object_mut().expect("response").entry("x-problem-codes").or_insert_with(|| json!([]));
    let list = list.as_array_mut().expect("codes");
    for code in codes {
        if !list.iter().any(|c| c == code) {
            list.push(json!(code));
        }
    }
    if !description.is_empty() {
        let current = response["description"].as_str().unwrap_or_default();
        response["description"] = match current.is_empty() || current.contains(description) {
            true if current.is_empty() => description.into(),
            true => current.into(),
            false => format!("{current}; or {description}").into(),
        };
    }
}

fn sort_responses(responses: &mut Map<String, Value>) {
    let mut all: Vec<(String, Value)> = std::mem::take(responses).into_iter().collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    responses.extend(all);
}

/// Every `*_at` string is an RFC 3339 timestamp (docs/API.md).
fn timestamps(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get_mut("properties") {
                for (name, prop) in props.iter_mut() {
                    let is_string = prop["type"] == "string" || prop["type"] == json!(["string", "null"]);
                    if name.ends_with("_at") && is_string && prop.get("format").is_none() {
                        prop["format"] = "date-time".into();
                    }
                }
            }
            map.values_mut().for_each(timestamps);
        }
        Value::Array(items) => items.iter_mut().for_each(timestamps),
        _ => {}
    }
}

/// `url` and every `*_url` string is an absolute URL (webhook endpoints, run callbacks).
fn urls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get_mut("properties") {
                for (name, prop) in props.iter_mut() {
                    let is_string = prop["type"] == "string" || prop["type"] == json!(["string", "null"]);
                    if (name == "url" || name.ends_with("_url")) && is_string && prop.get("format").is_none() {
                        prop["format"] = "uri".into();
                    }
                }
            }
            map.values_mut().for_each(urls);
        }
        Value::Array(items) => items.iter_mut().for_each(urls),
        _ => {}
    }
}

/// `Page<T>` (`Page_T`) is generated with its items inlined; where `T` is a component the
/// items refer to it, so the component is used and clients get one type for both.
fn page_items(schemas: &mut Value) {
    let Some(all) = schemas.as_object_mut() else { return };
    let pages: Vec<String> = all
        .keys()
        .filter(|name| name.strip_prefix("Page_").is_some_and(|item| all.contains_key(item)))
        .cloned()
        .collect();
    for page in pages {
        let item = page.trim_start_matches("Page_").to_string();
        if let Some(items) = all[&page].pointer_mut("/properties/data/items") {
            *items = json!({"$ref": format!("#/components/schemas/{item}")});
        }
    }
}

/// A workflow run, schedule or filter names its workflow by key: every `workflow` string
/// (property or query parameter) is one of the registry's keys (`WorkflowKey`).
fn workflow_keys(doc: &mut Value) {
    let key = json!({"$ref": "#/components/schemas/WorkflowKey"});
    let is_string = |v: &Value| v["type"] == "string";
    for item in doc["paths"].as_object_mut().into_iter().flat_map(|p| p.values_mut()) {
        for op in item.as_object_mut().into_iter().flat_map(|i| i.values_mut()) {
            // `get_mut`: indexing would write `"parameters": null` into operations without any.
            for p in op.get_mut("parameters").and_then(Value::as_array_mut).into_iter().flatten() {
                if p["name"] == "workflow" && is_string(&p["schema"]) {
                    p["schema"] = key.clone();
                }
            }
        }
    }
    fn walk(value: &mut Value, key: &Value) {
        match value {
            Value::Object(map) => {
                if let Some(prop) = map.get_mut("properties").and_then(|p| p.get_mut("workflow"))
                    && prop["type"] == "string"
                {
                    let description = prop.get("description").cloned();
                    *prop = key.clone();
                    if let Some(d) = description {
                        prop["description"] = d;
                    }
                }
                map.values_mut().for_each(|v| walk(v, key));
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, key)),
            _ => {}
        }
    }
    if let Some(schemas) = doc.pointer_mut("/components/schemas") {
        walk(schemas, &key);
    }
}

/// A `PATCH` with an `application/merge-patch+json` body (RFC 7386) takes a patch of the
/// writable fields, not the create body: its own schema `<Name>Patch`, derived from the
/// create schema, where nothing is required and every field the create body may leave out
/// is nullable (`null` removes it: back to its default). A field the create body requires
/// cannot be removed, so it stays non-null (the merged result is validated whole).
fn merge_patch_bodies(doc: &mut Value) {
    let mut patches: Vec<(String, Value)> = vec![];
    for item in doc["paths"].as_object_mut().into_iter().flat_map(|p| p.values_mut()) {
        let Some(op) = item.get_mut("patch") else { continue };
        let Some(content) = op.pointer_mut("/requestBody/content/application~1merge-patch+json") else { continue };
        let Some(target) =
            content["schema"]["$ref"].as_str().map(|r| r.trim_start_matches("#/components/schemas/").to_string())
        else {
            continue;
        };
        let name = format!("{}Patch", target.strip_suffix("Input").unwrap_or(&target));
        content["schema"] = json!({"$ref": format!("#/components/schemas/{name}")});
        let example = content.get("example").cloned();
        patches.push((name, json!({"target": target, "example": example})));
    }
    let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) else { return };
    for (name, how) in patches {
        let target = how["target"].as_str().unwrap_or_default();
        let Some(create) = schemas.get(target).cloned() else { continue };
        let required: Vec<Value> = create["required"].as_array().cloned().unwrap_or_default();
        let mut patch = create;
        let object = patch.as_object_mut().expect("a schema object");
        object.remove("required");
        object.remove("example");
        if !how["example"].is_null() {
            object.insert("example".into(), how["example"].clone());
        }
        object.insert(
            "description".into(),
            format!(
                "A JSON merge patch (RFC 7386) of a `{target}`: fields present replace, `null` removes \
                 (back to the default), absent fields stay; the result is validated whole."
            )
            .into(),
        );
        for (field, prop) in object.get_mut("properties").and_then(Value::as_object_mut).into_iter().flatten() {
            if !required.iter().any(|r| r == field) {
                nullable(prop);
            }
        }
        schemas.insert(name, patch);
    }
}

/// Lets `null` through a property's schema (3.1: `type: [X, "null"]`, or `oneOf` with null).
fn nullable(prop: &mut Value) {
    let null_type = json!({"type": "null"});
    match prop.get("type").cloned() {
        Some(Value::String(t)) => prop["type"] = json!([t, "null"]),
        Some(Value::Array(mut types)) => {
            if !types.iter().any(|t| t == "null") {
                types.push("null".into());
                prop["type"] = Value::Array(types);
            }
        }
        _ if prop.get("$ref").is_some() => {
            let description = prop.as_object_mut().and_then(|o| o.remove("description"));
            let mut wrapped = json!({"oneOf": [prop.clone(), null_type]});
            if let Some(d) = description {
                wrapped["description"] = d;
            }
            *prop = wrapped;
        }
        _ => {
            if let Some(one_of) = prop.get_mut("oneOf").and_then(Value::as_array_mut)
                && !one_of.iter().any(|s| s == &null_type)
            {
                one_of.push(null_type);
            }
        }
    }
}

/// An operation that takes no credential at all (health, readiness, the inbound webhooks
/// that carry their own signature: `security(())` in utoipa, `[{}]`) says so the way
/// linters read it: `security: []`. One that takes a token optionally (`/metrics`) keeps
/// its alternatives.
fn public_operations(doc: &mut Value) {
    for item in doc["paths"].as_object_mut().into_iter().flat_map(|p| p.values_mut()) {
        for op in item.as_object_mut().into_iter().flat_map(|i| i.values_mut()) {
            let Some(requirements) = op.get_mut("security").and_then(Value::as_array_mut) else { continue };
            if requirements.iter().all(|r| r.as_object().is_some_and(|o| o.is_empty())) {
                requirements.clear();
            }
        }
    }
}
