//! The Make custom app, generated from the OpenAPI document: a Make Apps SDK
//! local-development project (`makecomapp.json`, `general/`, and code files per
//! component) that Make's VS Code extension deploys. Pure: the spec's JSON in, file
//! contents out; `switchboard make-app --out DIR` writes them (docs/MAKE.md).
//! The same spec always gives the same bytes.

mod modules;
mod schema;
mod triggers;

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

pub use modules::operations;
use schema::{Spec, sorted};

/// What went wrong reading the spec.
#[derive(Debug, thiserror::Error)]
#[error("make-app: {0}")]
pub struct GenerateError(pub String);

/// One component (connection, webhook, module, RPC) and its code files.
pub struct Component {
    /// `connection`, `webhook`, `module` or `rpc`.
    kind: &'static str,
    id: String,
    /// Its entry in `makecomapp.json`, without `codeFiles`.
    meta: Value,
    /// Code type (`communication`, `mappableParams`, …) → content.
    files: Vec<(&'static str, Value)>,
}

/// The connection every module uses.
pub const CONNECTION: &str = "switchboard";
/// The RPCs feeding dropdowns: id → the list operation it calls.
const RPCS: [(&str, &str); 4] = [
    ("listClients", "listClients"),
    ("listPlatforms", "listPlatforms"),
    ("listPromptTemplates", "listPromptTemplates"),
    ("listWorkflows", "listWorkflows"),
];

/// Every file of the project: path → content. `origins` is kept from an existing
/// `makecomapp.json` (it names the user's Make app), `[]` for a fresh project.
pub fn generate(spec_json: &Value, origins: Value) -> Result<BTreeMap<String, String>, GenerateError> {
    let spec = Spec(spec_json);
    let ops = operations(spec_json)?;
    let available: Vec<&str> =
        RPCS.iter().filter(|(_, op)| ops.iter().any(|o| o.id() == *op)).map(|(id, _)| *id).collect();

    let mut components = vec![connection(spec_json)?];
    for (id, op) in RPCS {
        if let Some(o) = ops.iter().find(|o| o.id() == op) {
            components.push(rpc(&spec, id, o)?);
        }
    }
    for o in &ops {
        components.push(modules::module(&spec, o, &available)?);
    }
    components.extend(triggers::components(&spec, &ops)?);

    let mut files = BTreeMap::new();
    let mut index: BTreeMap<&str, BTreeMap<String, Value>> =
        ["connection", "function", "module", "rpc", "webhook"].into_iter().map(|k| (k, BTreeMap::new())).collect();
    for c in &components {
        let dir = format!("{}s/{}", c.kind, kebab(&c.id));
        let mut code_files = Map::new();
        for (code, content) in &c.files {
            let path = format!("{dir}/{}.{}.iml.json", kebab(&c.id), kebab(code));
            code_files.insert((*code).to_string(), json!(path));
            files.insert(path, render(content));
        }
        let mut meta = c.meta.clone();
        meta["codeFiles"] = Value::Object(code_files);
        index.get_mut(c.kind).expect("a known kind").insert(c.id.clone(), sorted(meta));
    }

    files.insert("general/base.iml.json".into(), render(&base(spec_json)));
    files.insert("general/common.json".into(), render(&json!({})));
    files.insert("modules/groups.json".into(), render(&groups(spec_json, &ops)));
    files.insert("README.md".into(), readme(spec_json));
    let makecomapp = json!({
        "fileVersion": 1,
        "generalCodeFiles": {
            "base": "general/base.iml.json",
            "common": "general/common.json",
            "groups": "modules/groups.json",
            "readme": "README.md"
        },
        "components": index,
        "origins": origins,
    });
    files.insert("makecomapp.json".into(), render(&makecomapp));
    Ok(files)
}

/// Pretty JSON with a final newline.
fn render(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("JSON values serialise");
    s.push('\n');
    s
}

/// `createClient` → `create-client`, `mappableParams` → `mappable-params`.
pub fn kebab(id: &str) -> String {
    let mut out = String::new();
    for c in id.chars() {
        if c.is_ascii_uppercase() {
            if !out.is_empty() {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The status codes the spec's operations answer with, 4xx and 5xx.
fn error_statuses(spec: &Value) -> Vec<u16> {
    let mut statuses: Vec<u16> = spec["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(_, item)| item.as_object().into_iter().flatten())
        .flat_map(|(_, op)| op["responses"].as_object().into_iter().flatten())
        .filter_map(|(status, _)| status.parse().ok())
        .filter(|s| *s >= 400)
        .collect();
    statuses.sort_unstable();
    statuses.dedup();
    statuses
}

/// Make's error type for one of our statuses: a bad or under-scoped token is an
/// access error (the user must fix the connection), 429 is a rate limit, 408 and
/// 5xx are the service's trouble (Make retries those), any other 4xx is the data.
pub fn error_type(status: u16) -> &'static str {
    match status {
        401 | 403 => "InvalidAccessTokenError",
        429 => "RateLimitError",
        408 | 500..=599 => "ConnectionError",
        _ => "DataError",
    }
}

/// Our problem body, said in one line: status, code, detail and the request id to
/// quote when asking for help.
const ERROR_MESSAGE: &str = "[{{statusCode}}] {{ifempty(body.code, 'error')}}: {{ifempty(body.detail, body.title)}} (request {{body.request_id}})";

fn error_directive(spec: &Value) -> Value {
    let mut error = Map::new();
    error.insert("message".into(), json!(ERROR_MESSAGE));
    error.insert("type".into(), json!("RuntimeError"));
    for status in error_statuses(spec) {
        error.insert(status.to_string(), json!({"message": ERROR_MESSAGE, "type": error_type(status)}));
    }
    Value::Object(error)
}

fn base(spec: &Value) -> Value {
    json!({
        "baseUrl": "{{connection.baseUrl}}",
        "headers": {"Authorization": "Bearer {{connection.token}}"},
        "log": {"sanitize": ["request.headers.authorization"]},
        "response": {"error": error_directive(spec)},
    })
}

fn connection(spec: &Value) -> Result<Component, GenerateError> {
    if !spec["paths"]["/v1/tokens/current"]["get"].is_object() {
        return Err(GenerateError("the spec has no GET /v1/tokens/current to verify a connection".into()));
    }
    let communication = json!({
        "url": "{{parameters.baseUrl}}/v1/tokens/current",
        "method": "GET",
        "headers": {"Authorization": "Bearer {{parameters.token}}"},
        "log": {"sanitize": ["request.headers.authorization"]},
        "response": {
            "metadata": {"type": "text", "value": "{{body.name}}"},
            "error": error_directive(spec),
        },
    });
    let params = json!([
        {"name": "baseUrl", "label": "Base URL", "type": "url", "required": true,
         "help": "Where Switchboard runs, without a trailing slash, e.g. https://switchboard.example.com."},
        {"name": "token", "label": "API token", "type": "password", "required": true,
         "help": "Create one with `switchboard token create --name make --scope …` and the scopes the modules you use need."}
    ]);
    Ok(Component {
        kind: "connection",
        id: CONNECTION.into(),
        meta: json!({"label": "Switchboard", "connectionType": "basic"}),
        files: vec![("communication", communication), ("params", params)],
    })
}

/// An RPC listing values for a dropdown: label and value from the item schema.
fn rpc(spec: &Spec, id: &str, o: &modules::Operation) -> Result<Component, GenerateError> {
    let shape =
        modules::list_shape(spec, o).ok_or(GenerateError(format!("{}: {} is not a list", id, o.path.as_str())))?;
    let item = spec.flatten(&shape.item);
    let has = |k: &str| item["properties"].get(k).is_some();
    let value = ["id", "key"].into_iter().find(|k| has(k)).ok_or(GenerateError(format!("{id}: items have no id")))?;
    let label = ["name", "title", "key"].into_iter().find(|k| has(k)).unwrap_or(value);
    let mut communication = json!({
        "url": o.path,
        "method": "GET",
        "response": {
            "iterate": shape.iterate,
            "output": {"label": format!("{{{{item.{label}}}}}"), "value": format!("{{{{item.{value}}}}}")},
        },
    });
    if let Some((cursor, next, condition)) = shape.next {
        communication["qs"] = json!({"limit": modules::page_size(o)});
        communication["pagination"] = json!({"qs": {cursor: next}, "condition": condition});
    }
    Ok(Component {
        kind: "rpc",
        id: id.into(),
        meta: json!({"label": o.op["summary"].as_str().unwrap_or(id), "connection": CONNECTION}),
        files: vec![("communication", communication), ("params", json!([]))],
    })
}

/// Modules grouped by the spec's tags, in the order the spec lists its tags.
fn groups(spec: &Value, ops: &[modules::Operation]) -> Value {
    let tags: Vec<&str> = spec["tags"].as_array().into_iter().flatten().filter_map(|t| t["name"].as_str()).collect();
    let mut out = vec![];
    for tag in tags {
        let mut ids: Vec<&str> = ops
            .iter()
            .filter(|o| o.op["tags"].as_array().is_some_and(|t| t.contains(&json!(tag))))
            .map(|o| o.id())
            .collect();
        if tag == "events" {
            ids.extend(triggers::IDS);
        }
        if !ids.is_empty() {
            out.push(json!({"label": schema::label(tag), "modules": ids}));
        }
    }
    Value::Array(out)
}

fn readme(spec: &Value) -> String {
    let version = spec["info"]["version"].as_str().unwrap_or("?");
    format!(
        "# Switchboard for Make\n\n\
         Generated by `switchboard make-app` from Switchboard's OpenAPI document (API version {version}).\n\
         Do not edit by hand: regenerate instead (see docs/MAKE.md in the Switchboard repository).\n\n\
         - Connection: the base URL of your Switchboard and an API token (checked with `GET /v1/tokens/current`).\n\
         - One module per API operation; searches page through the whole list.\n\
         - Watch events: a polling trigger on the event feed; Watch events (instant): a webhook endpoint\n  \
         Switchboard creates when the scenario is switched on and deletes when it is removed.\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_become_kebab_case() {
        assert_eq!(kebab("createClient"), "create-client");
        assert_eq!(kebab("mappableParams"), "mappable-params");
        assert_eq!(kebab("switchboard"), "switchboard");
    }

    #[test]
    fn statuses_map_to_make_error_types() {
        assert_eq!(error_type(401), "InvalidAccessTokenError");
        assert_eq!(error_type(403), "InvalidAccessTokenError");
        assert_eq!(error_type(429), "RateLimitError");
        assert_eq!(error_type(422), "DataError");
        assert_eq!(error_type(409), "DataError");
        assert_eq!(error_type(503), "ConnectionError");
        assert_eq!(error_type(500), "ConnectionError");
    }
}
