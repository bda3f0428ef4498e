//! One Make module per API operation: actions for reads by id, creates, updates,
//! deletes and verbs; searches (with cursor pagination) for lists.

use serde_json::{Map, Value, json};

use super::{
    Component, GenerateError,
    schema::{Spec, first_paragraph, label, sorted},
};

/// Items per page a search or RPC asks for when the spec gives no maximum.
const DEFAULT_PAGE: u64 = 100;
/// How many results a search returns unless the user sets its Limit.
const DEFAULT_LIMIT: u64 = 10;

/// An operation of the spec that becomes a module.
pub struct Operation<'s> {
    pub method: String,
    pub path: String,
    pub op: &'s Value,
}

impl Operation<'_> {
    pub fn id(&self) -> &str {
        self.op["operationId"].as_str().unwrap_or_default()
    }

    fn parameters(&self, place: &str) -> impl Iterator<Item = &Value> {
        let place = place.to_string();
        self.op["parameters"].as_array().into_iter().flatten().filter(move |p| p["in"] == json!(place))
    }

    /// The 2xx response with a JSON body, if any.
    fn success_schema(&self) -> Option<(&Value, &Value)> {
        let responses = self.op["responses"].as_object()?;
        responses.iter().filter(|(status, _)| status.starts_with('2')).find_map(|(_, r)| {
            let media = r["content"].get("application/json")?;
            Some((&media["schema"], media))
        })
    }
}

/// The operations a Make user calls: everything under `/v1/` except what the vendors
/// call (tag `inbound`: WhatsApp's webhook), in operationId order.
pub fn operations(spec: &Value) -> Result<Vec<Operation<'_>>, GenerateError> {
    let mut out = vec![];
    for (path, item) in spec["paths"].as_object().ok_or(GenerateError("the spec has no paths".into()))? {
        if !path.starts_with("/v1/") {
            continue;
        }
        for (method, op) in item.as_object().into_iter().flatten() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            if op["tags"].as_array().is_some_and(|t| t.contains(&json!("inbound"))) {
                continue;
            }
            if op["operationId"].as_str().is_none_or(str::is_empty) {
                return Err(GenerateError(format!("{} {path} has no operationId", method.to_uppercase())));
            }
            out.push(Operation { method: method.to_uppercase(), path: path.clone(), op });
        }
    }
    out.sort_by(|a, b| a.id().cmp(b.id()));
    Ok(out)
}

/// How a list answers: where its items are and how to get the next page.
pub struct ListShape {
    /// `{{body.data}}`, or `{{body}}` for a bare array.
    pub iterate: &'static str,
    pub item: Value,
    /// `(qs parameter, value expression, condition)` for the next page.
    pub next: Option<(&'static str, &'static str, &'static str)>,
}

pub fn list_shape(spec: &Spec, o: &Operation) -> Option<ListShape> {
    if o.method != "GET" {
        return None;
    }
    let (schema, _) = o.success_schema()?;
    let flat = spec.flatten(schema);
    if flat["type"] == json!("array") {
        return Some(ListShape { iterate: "{{body}}", item: flat["items"].clone(), next: None });
    }
    let properties = flat["properties"].as_object()?;
    let data = spec.flatten(properties.get("data")?);
    if data["type"] != json!("array") || !properties.contains_key("next_cursor") {
        return None;
    }
    let condition = if properties.contains_key("has_more") { "{{body.has_more}}" } else { "{{body.next_cursor}}" };
    Some(ListShape {
        iterate: "{{body.data}}",
        item: data["items"].clone(),
        next: Some(("cursor", "{{body.next_cursor}}", condition)),
    })
}

/// The page size to ask for: the spec's maximum for `limit`, else a default.
pub fn page_size(o: &Operation) -> u64 {
    o.parameters("query")
        .find(|p| p["name"] == json!("limit"))
        .and_then(|p| p["schema"]["maximum"].as_u64())
        .unwrap_or(DEFAULT_PAGE)
}

/// Which RPC fills a field's dropdown, by what the field names.
fn rpc_for(path: &str, name: &str, rpcs: &[&str]) -> Option<&'static str> {
    let rpc = match name {
        "client" | "client_id" => "listClients",
        "workflow" => "listWorkflows",
        "key" if path.starts_with("/v1/workflows/") => "listWorkflows",
        "key" if path.starts_with("/v1/prompt-templates/") => "listPromptTemplates",
        "platform" => "listPlatforms",
        _ => return None,
    };
    rpcs.contains(&rpc).then_some(rpc)
}

/// Turns a plain text field, or a select of the names the spec knew when the app was
/// generated, into a dropdown fed by an RPC (the live list; values stay mappable).
fn with_rpc(mut param: Value, rpc: &str) -> Value {
    let fixed_select =
        param["type"] == json!("select") && param["options"].is_array() && param.get("multiple").is_none();
    if param["type"] == json!("text") || param["type"] == json!("uuid") || fixed_select {
        let o = param.as_object_mut().expect("a parameter is an object");
        o.insert("type".into(), json!("select"));
        o.insert("options".into(), json!(format!("rpc://{rpc}")));
        o.insert("editable".into(), json!(true));
    }
    sorted(param)
}

/// Header parameters become advanced fields named in camelCase.
fn header_field(header: &str) -> String {
    let mut out = String::new();
    for (i, part) in header.split('-').enumerate() {
        let lower = part.to_ascii_lowercase();
        if i == 0 {
            out.push_str(&lower);
        } else {
            let mut c = lower.chars();
            if let Some(first) = c.next() {
                out.extend(first.to_uppercase().chain(c));
            }
        }
    }
    out
}

pub fn module(spec: &Spec, o: &Operation, rpcs: &[&str]) -> Result<Component, GenerateError> {
    let list = list_shape(spec, o);
    let mut params: Vec<Value> = vec![];
    let mut not_body: Vec<String> = vec![];

    // Path parameters: required, dropdowns where an RPC lists the values.
    let mut url = o.path.clone();
    for p in o.parameters("path") {
        let name = p["name"].as_str().unwrap_or_default();
        url = url.replace(&format!("{{{name}}}"), &format!("{{{{parameters.{name}}}}}"));
        let mut param = spec.parameter(name, &p["schema"], true);
        if let Some(help) = p["description"].as_str() {
            param["help"] = json!(first_paragraph(help));
        }
        params.push(match rpc_for(&o.path, name, rpcs) {
            Some(rpc) => with_rpc(param, rpc),
            None => sorted(param),
        });
        not_body.push(name.to_string());
    }
    if url.contains('{') && !url.contains("{{") {
        return Err(GenerateError(format!("{} {}: a path parameter is not declared", o.method, o.path)));
    }

    // Query parameters; a search pages by itself, so `cursor` and `limit` are its own.
    let mut qs = Map::new();
    for p in o.parameters("query") {
        let name = p["name"].as_str().unwrap_or_default();
        if list.is_some() && ["cursor", "limit"].contains(&name) {
            continue;
        }
        let mut param = spec.parameter(name, &p["schema"], p["required"] == json!(true));
        if let Some(help) = p["description"].as_str() {
            param["help"] = json!(first_paragraph(help));
        }
        params.push(match rpc_for(&o.path, name, rpcs) {
            Some(rpc) => with_rpc(param, rpc),
            None => sorted(param),
        });
        // An empty optional field sends no parameter (an empty one could be refused).
        let value = if p["required"] == json!(true) {
            format!("{{{{parameters.{name}}}}}")
        } else {
            format!("{{{{ifempty(parameters.{name}, undefined)}}}}")
        };
        qs.insert(name.into(), json!(value));
        not_body.push(name.to_string());
    }
    if let Some(shape) = &list {
        qs.insert("limit".into(), json!(page_size(o)));
        if shape.next.is_none() {
            qs.remove("limit");
        }
    }

    // Headers: every POST takes an Idempotency-Key (the API honours it on all of
    // them); other header parameters (e.g. `Prefer`) become advanced fields too.
    let mut headers = Map::new();
    let mut header_params: Vec<(String, String, Option<String>)> = o
        .parameters("header")
        .map(|p| {
            let name = p["name"].as_str().unwrap_or_default().to_string();
            (header_field(&name), name, p["description"].as_str().map(first_paragraph))
        })
        .collect();
    if o.method == "POST" && !header_params.iter().any(|(_, h, _)| h.eq_ignore_ascii_case("idempotency-key")) {
        header_params.push(("idempotencyKey".into(), "Idempotency-Key".into(), None));
    }
    header_params.sort();
    for (field, header, help) in header_params {
        let help = if header.eq_ignore_ascii_case("idempotency-key") {
            "Map something stable from the trigger (e.g. the form submission id), so a retry of this \
             module returns the first answer instead of doing the work twice. Empty: no key is sent."
                .to_string()
        } else {
            help.unwrap_or_else(|| format!("Sent as the `{header}` header."))
        };
        params.push(sorted(json!({"name": field, "label": label(&header), "type": "text", "advanced": true,
                                  "help": help})));
        // Empty fields send no header at all (an empty key would be refused).
        headers.insert(header, json!(format!("{{{{ifempty(parameters.{field}, undefined)}}}}")));
        not_body.push(field);
    }

    // Body.
    let content = &o.op["requestBody"]["content"];
    let (media, body_schema) = match content.as_object().and_then(|c| c.iter().next()) {
        Some((media, m)) => (Some(media.as_str()), Some(&m["schema"])),
        None => (None, None),
    };
    if let Some(schema) = body_schema {
        // A merge patch changes only what it names: no field of it is required.
        let patch = o.method == "PATCH";
        for mut p in spec.parameters(schema, patch) {
            let name = p["name"].as_str().unwrap_or_default().to_string();
            if let Some(rpc) = rpc_for(&o.path, &name, rpcs) {
                p = with_rpc(p, rpc);
            }
            params.push(p);
        }
    }

    let mut communication = Map::new();
    communication.insert("url".into(), json!(url));
    communication.insert("method".into(), json!(o.method));
    if !headers.is_empty() || media.is_some_and(|m| m != "application/json") {
        if let Some(m) = media.filter(|m| *m != "application/json") {
            headers.insert("Content-Type".into(), json!(m));
        }
        communication.insert("headers".into(), Value::Object(headers));
    }
    if !qs.is_empty() {
        communication.insert("qs".into(), Value::Object(qs));
    }
    if body_schema.is_some() {
        let quoted: Vec<String> = not_body.iter().map(|n| format!("'{n}'")).collect();
        let body = if quoted.is_empty() {
            "{{parameters}}".to_string()
        } else {
            format!("{{{{omit(parameters, {})}}}}", quoted.join(", "))
        };
        communication.insert("body".into(), json!(body));
        communication.insert("type".into(), json!("json"));
    }

    let success = o.success_schema();
    let (module_type, crud, interface, sample) = match &list {
        Some(shape) => {
            params.push(sorted(json!({"name": "limit", "label": "Limit", "type": "uinteger", "required": true,
                "default": DEFAULT_LIMIT, "help": "The most results this module returns in one execution."})));
            let mut response = json!({"iterate": shape.iterate, "output": "{{item}}", "limit": "{{parameters.limit}}"});
            if let Some((cursor, value, condition)) = shape.next {
                communication.insert("pagination".into(), json!({"qs": {cursor: value}, "condition": condition}));
            }
            communication.insert("response".into(), sorted_map(response.take()));
            let sample = success.and_then(|(_, media)| {
                let example = media.get("example").cloned().or_else(|| spec.sample(&shape.item));
                match example {
                    Some(Value::Object(page)) => page.get("data").and_then(|d| d.get(0)).cloned(),
                    Some(Value::Array(items)) => items.first().cloned(),
                    _ => None,
                }
                .or_else(|| spec.sample(&shape.item))
            });
            ("search", None, spec.interface(&shape.item), sample)
        }
        None => {
            let crud = match o.method.as_str() {
                "GET" => Some("read"),
                "PUT" | "PATCH" => Some("update"),
                "DELETE" => Some("delete"),
                _ if o.op["responses"].get("201").is_some() => Some("create"),
                _ => None,
            };
            if success.is_some() {
                communication.insert("response".into(), json!({"output": "{{body}}"}));
            }
            let (interface, sample) = match success {
                Some((schema, media)) => {
                    (spec.interface(schema), media.get("example").cloned().or_else(|| spec.sample(schema)))
                }
                None => (vec![], None),
            };
            ("action", crud, interface, sample)
        }
    };

    let summary = o.op["summary"].as_str().unwrap_or(o.id());
    let mut meta = json!({
        "label": summary,
        "description": format!("{summary} ({} {}).", o.method, o.path),
        "moduleType": module_type,
        "connection": "switchboard",
    });
    if let Some(crud) = crud {
        meta["actionCrud"] = json!(crud);
    }
    let mut files = vec![
        ("communication", Value::Object(communication)),
        ("staticParams", json!([])),
        ("mappableParams", Value::Array(params)),
        ("interface", Value::Array(interface)),
        ("samples", sample.unwrap_or_else(|| json!({}))),
    ];
    files.sort_by_key(|(kind, _)| *kind);
    Ok(Component { kind: "module", id: o.id().to_string(), meta, files })
}

fn sorted_map(v: Value) -> Value {
    match v {
        Value::Object(o) => {
            let mut entries: Vec<(String, Value)> = o.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().collect())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_are_camel_case() {
        assert_eq!(header_field("Idempotency-Key"), "idempotencyKey");
        assert_eq!(header_field("Prefer"), "prefer");
    }
}
