//! The blueprint checker: Make export shape, module names and versions, and every
//! HTTP request against the OpenAPI document.

use std::{
    collections::{BTreeSet, HashSet},
    fmt::Display,
};

use serde_json::{Value, json};

pub use super::text::{Piece, modules, pieces, referenced_ids, split_query, strings, substitute, variable};

/// The Make modules the blueprints may use, at the version Make exports them with.
pub const MODULES: &[(&str, u64)] = &[
    ("util:SetVariables", 1),
    ("util:SetVariable2", 1),
    ("util:GetVariable2", 1),
    ("util:FunctionSleep", 1),
    ("http:MakeRequest", 4),
    ("http:ActionSendData", 3),
    ("builtin:BasicRouter", 1),
    ("builtin:BasicFeeder", 1),
    ("builtin:BasicAggregator", 1),
    ("builtin:BasicRepeater", 1),
    ("builtin:Break", 1),
    ("builtin:Ignore", 1),
    ("gateway:CustomWebHook", 1),
    ("gateway:WebhookRespond", 1),
    ("email:ActionSendEmail", 7),
    ("slack:CreateMessage", 4),
    ("google-sheets:addRow", 2),
];
pub const HTTP_MODULES: [&str; 2] = ["http:MakeRequest", "http:ActionSendData"];
/// The modules that end an error handler route.
pub const DIRECTIVES: [&str; 5] =
    ["builtin:Break", "builtin:Resume", "builtin:Ignore", "builtin:Commit", "builtin:Rollback"];
/// `metadata.scenario` as Make exports it (the Scenario settings panel).
pub const SCENARIO_KEYS: [&str; 10] = [
    "roundtrips",
    "maxErrors",
    "autoCommit",
    "autoCommitTriggerLast",
    "sequential",
    "slots",
    "confidential",
    "dataloss",
    "dlq",
    "freshVariables",
];
/// The flows the Make integration issue asks for.
pub const FLOWS: [&str; 5] = [
    "alerts-webhook-receiver",
    "client-onboarding-from-form",
    "daily-monitoring",
    "sync-metrics-to-sheet",
    "weekly-report",
];
/// Headers any request may carry besides the operation's own header parameters.
pub const COMMON_HEADERS: [&str; 5] = ["authorization", "x-api-key", "content-type", "accept", "idempotency-key"];

/// What a `{{…}}` becomes when a body is parsed: inside a JSON string it is text
/// (valid only where the schema takes a string); bare, it renders whatever JSON the
/// expression yields (a number, `null`, an array), so any type is accepted.
pub const TEXT_EXPR: &str = "@@make-expr@@";
pub const BARE_EXPR: &str = "@@make-bare-expr@@";

pub struct Checked {
    pub problems: Vec<String>,
    /// Token scopes the blueprint's requests need (from each operation's 403).
    pub scopes: BTreeSet<String>,
}

pub struct Spec(pub Value);

impl Spec {
    /// Follows `$ref`s; a dangling one resolves to `{}` (accepts anything).
    pub fn resolve<'a>(&'a self, mut schema: &'a Value) -> &'a Value {
        static ANY: Value = Value::Null;
        while let Some(r) = schema["$ref"].as_str() {
            schema = self.0.pointer(r.trim_start_matches('#')).unwrap_or(&ANY);
        }
        schema
    }

    /// The path template a request path fits (`None` segments are expressions),
    /// preferring the one with the most literal segments (`/v1/tokens/current`).
    pub fn template(&self, segments: &[Option<&str>]) -> Option<&str> {
        let paths = self.0["paths"].as_object().unwrap();
        let fits = paths.keys().filter_map(|t| {
            let parts: Vec<&str> = t.trim_start_matches('/').split('/').collect();
            if parts.len() != segments.len() {
                return None;
            }
            let mut literal = 0;
            for (part, seg) in parts.iter().zip(segments) {
                match (part.starts_with('{'), seg) {
                    (true, _) => {}
                    (false, Some(s)) if s == part => literal += 1,
                    _ => return None,
                }
            }
            Some((literal, t.as_str()))
        });
        fits.max_by_key(|(literal, _)| *literal).map(|(_, t)| t)
    }
}

/// Collects problems as `<blueprint>: <where>: <what>`.
pub struct Report<'a> {
    name: &'a str,
    problems: Vec<String>,
}

impl Report<'_> {
    fn at(&mut self, m: &Value, what: impl Display) {
        self.problems.push(format!(
            "{}: module {} ({}): {what}",
            self.name,
            m["id"],
            m["module"].as_str().unwrap_or("?")
        ));
    }
    fn top(&mut self, field: &str, what: impl Display) {
        self.problems.push(format!("{}: {field}: {what}", self.name));
    }
}

pub fn check(name: &str, bp: &Value, spec: &Spec) -> Checked {
    let mut r = Report { name, problems: vec![] };
    let mut scopes = BTreeSet::new();
    if bp["name"].as_str().is_none_or(str::is_empty) {
        r.top("name", "missing");
    }
    let flow = &bp["flow"];
    if flow.as_array().is_none_or(|f| f.is_empty()) {
        r.top("flow", "missing or empty");
    }
    let scenario = &bp["metadata"]["scenario"];
    for key in SCENARIO_KEYS {
        if scenario.get(key).is_none() {
            r.top("metadata.scenario", format!("no `{key}` (Make exports every scenario setting)"));
        }
    }
    if bp["metadata"]["version"] != json!(1) || !bp["metadata"]["designer"]["orphans"].is_array() {
        r.top("metadata", "needs `version: 1` and `designer.orphans`");
    }
    let instant = flow[0]["module"] == json!("gateway:CustomWebHook");
    if bp["metadata"]["instant"] != json!(instant) {
        r.top("metadata.instant", format!("must be {instant} (true exactly when a webhook starts the flow)"));
    }

    let all = modules(flow);
    let mut ids = HashSet::new();
    for m in &all {
        match m["id"].as_u64() {
            Some(id) if !ids.insert(id) => r.at(m, format!("id {id} is used twice")),
            Some(_) => {}
            None => r.at(m, "no integer id"),
        }
    }
    // The one place the user edits: Set multiple variables at the start of the flow.
    let settings =
        all.iter().find(|m| m["module"] == json!("util:SetVariables") && variable(m, "switchboard_url").is_some());
    let settings_id = settings.and_then(|m| m["id"].as_u64());
    match settings {
        None => r.top("flow", "no util:SetVariables setting `switchboard_url` and `switchboard_token`"),
        Some(m) => {
            let position = flow.as_array().into_iter().flatten().position(|x| x == *m);
            if position != Some(usize::from(instant)) {
                r.at(m, "the settings must come first (right after the webhook in instant flows)");
            }
            if variable(m, "switchboard_token").is_none() {
                r.at(m, "no `switchboard_token` variable");
            }
        }
    }
    for note in bp["metadata"]["notes"].as_array().into_iter().flatten() {
        for id in note["moduleIds"].as_array().into_iter().flatten() {
            if !id.as_u64().is_some_and(|id| ids.contains(&id)) {
                r.top("metadata.notes", format!("a note is attached to module {id}, which does not exist"));
            }
        }
    }
    if all.iter().any(|m| m["module"] == json!("builtin:Break")) && scenario["dlq"] != json!(true) {
        r.top("metadata.scenario.dlq", "must be true: Break retries need \"Allow storing of incomplete executions\"");
    }

    for m in &all {
        let module = m["module"].as_str().unwrap_or_default();
        match MODULES.iter().find(|(name, _)| *name == module) {
            None => r.at(
                m,
                format!(
                    "not a module the blueprints may use ({})",
                    MODULES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                ),
            ),
            Some((_, version)) if m["version"].as_u64() != Some(*version) => {
                r.at(m, format!("version {} (Make exports version {version})", m["version"]))
            }
            Some(_) => {}
        }
        if !(m["metadata"]["designer"]["x"].is_number() && m["metadata"]["designer"]["y"].is_number()) {
            r.at(m, "no metadata.designer {x, y}");
        }
        // Make draws a module as a circle about 100 px wide: closer ones cover each other.
        let at = |m: &Value| (m["metadata"]["designer"]["x"].as_f64(), m["metadata"]["designer"]["y"].as_f64());
        if let (Some(x), Some(y)) = at(m) {
            for other in all.iter().take_while(|o| !std::ptr::eq(**o, *m)) {
                if let (Some(ox), Some(oy)) = at(other)
                    && (x - ox).abs() < 150.0
                    && (y - oy).abs() < 150.0
                {
                    r.at(m, format!("sits on module {} in the designer (x {x}, y {y})", other["id"]));
                }
            }
        }
        // Any module that talks to another service can fail; without a handler, Make
        // stops the scenario (an instant one is switched off at its first error).
        let namespace = module.split(':').next().unwrap_or_default();
        if !["builtin", "util", "gateway", "http"].contains(&namespace)
            && !m["onerror"]
                .as_array()
                .is_some_and(|h| h.iter().any(|x| DIRECTIVES.contains(&x["module"].as_str().unwrap_or_default())))
        {
            r.at(m, "no error handler (an error route ending in Break, Resume, Ignore, Commit or Rollback)");
        }
        let mut texts = vec![];
        for field in ["parameters", "mapper", "filter"] {
            strings(&m[field], &mut texts);
        }
        for text in texts {
            for piece in pieces(text) {
                if let Piece::Expr(e) = piece {
                    for f in crate::make_iml::called(e) {
                        if !crate::make_iml::FUNCTIONS.contains(&f.as_str()) {
                            r.at(m, format!("`{{{{{e}}}}}` calls {f}(), which Make does not document"));
                        }
                    }
                    for id in referenced_ids(e) {
                        if !ids.contains(&id) {
                            r.at(m, format!("`{{{{{e}}}}}` refers to module {id}, which does not exist"));
                        }
                    }
                }
            }
        }
        if module == "builtin:BasicAggregator" && !m["parameters"]["feeder"].as_u64().is_some_and(|f| ids.contains(&f))
        {
            r.at(m, "parameters.feeder must be the id of the iterator it aggregates");
        }
        if HTTP_MODULES.contains(&module) {
            let retries = m["onerror"].as_array().is_some_and(|h| {
                h.iter().any(|x| x["module"] == json!("builtin:Break") && x["mapper"]["retry"] == json!(true))
            });
            if !retries {
                r.at(m, "no error handler with a retrying builtin:Break");
            }
            if let Some(scope) = check_http(&mut r, m, spec, settings_id) {
                scopes.insert(scope);
            }
        }
    }
    Checked { problems: r.problems, scopes }
}

/// Checks one HTTP module against the spec; returns the scope its operation needs.
pub fn check_http(r: &mut Report, m: &Value, spec: &Spec, settings: Option<u64>) -> Option<String> {
    let mapper = &m["mapper"];
    let v4 = m["module"] == json!("http:MakeRequest");
    let method = mapper["method"].as_str().unwrap_or_default();
    if !["get", "post", "put", "patch", "delete"].contains(&method) {
        r.at(m, format!("method {method:?} (Make writes get/post/put/patch/delete)"));
        return None;
    }
    let (parse, errors) = if v4 {
        (&mapper["parseResponse"], &mapper["stopOnHttpError"])
    } else {
        (&mapper["parseResponse"], &m["parameters"]["handleErrors"])
    };
    if *parse != json!(true) || *errors != json!(true) {
        r.at(m, "parse the response and turn HTTP errors into module errors (so the error handler runs)");
    }
    let base = format!("{{{{{}.switchboard_url}}}}", settings.unwrap_or(0));
    let url = mapper["url"].as_str().unwrap_or_default();
    let Some(rest) = url.strip_prefix(&base) else {
        r.at(m, format!("url {url:?} must start with {base}"));
        return None;
    };
    let (path, query) = split_query(rest);
    let segments: Vec<Option<&str>> = path
        .trim_start_matches('/')
        .split('/')
        .map(|s| if s.contains('\0') || s.is_empty() { None } else { Some(s) })
        .collect();
    let shown = path.replace('\0', "{…}");
    let Some(template) = spec.template(&segments) else {
        r.at(m, format!("{} {shown} is not in openapi.json", method.to_uppercase()));
        return None;
    };
    let Some(op) = spec.0["paths"][template].get(method) else {
        r.at(m, format!("openapi.json has no {} on {template}", method.to_uppercase()));
        return None;
    };
    let op_name = format!("{} {template}", method.to_uppercase());
    let params = op["parameters"].as_array().map(Vec::as_slice).unwrap_or_default();
    let declared = |place: &'static str| params.iter().filter(move |p| p["in"] == json!(place));

    // Query parameters: from the URL and from the module's list.
    let list = if v4 { &mapper["queryParameters"] } else { &mapper["qs"] };
    let mut sent = query;
    for q in list.as_array().into_iter().flatten() {
        let value =
            q["value"].as_str().map(|v| if v.contains("{{") { None } else { Some(v.to_string()) }).unwrap_or(None);
        sent.push((q["name"].as_str().unwrap_or_default().to_string(), value));
    }
    for (name, value) in &sent {
        match declared("query").find(|p| p["name"] == json!(name)) {
            None => r.at(m, format!("query parameter `{name}` is not a parameter of {op_name}")),
            Some(p) => {
                let schema = spec.resolve(&p["schema"]);
                if let (Some(allowed), Some(v)) = (schema["enum"].as_array(), value)
                    && !allowed.contains(&json!(v))
                {
                    r.at(m, format!("query parameter `{name}`: {v:?} is not one of {}", Value::Array(allowed.clone())));
                }
            }
        }
    }
    for p in declared("query").filter(|p| p["required"] == json!(true)) {
        if !sent.iter().any(|(n, _)| p["name"] == json!(n)) {
            r.at(m, format!("{op_name} has a required query parameter `{}`", p["name"].as_str().unwrap_or_default()));
        }
    }

    // Headers.
    let headers: Vec<(String, &str)> = mapper["headers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| (h["name"].as_str().unwrap_or_default().to_ascii_lowercase(), h["value"].as_str().unwrap_or_default()))
        .collect();
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
    let token = format!("{{{{{}.switchboard_token}}}}", settings.unwrap_or(0));
    let connection = v4 && m["parameters"]["authenticationType"] == json!("apiKey");
    if !connection && header("authorization") != Some(&format!("Bearer {token}")) && header("x-api-key") != Some(&token)
    {
        r.at(m, format!("needs `Authorization: Bearer {token}` (or the API-key connection)"));
    }
    for (name, _) in &headers {
        if !COMMON_HEADERS.contains(&name.as_str())
            && !declared("header").any(|p| p["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        {
            r.at(m, format!("header `{name}` is not a parameter of {op_name}"));
        }
    }
    if method == "post" {
        match header("idempotency-key") {
            None => r.at(m, "every POST needs an Idempotency-Key header"),
            Some(key) if !key.contains("{{") || key.to_ascii_lowercase().contains("uuid") => {
                r.at(m, format!("Idempotency-Key {key:?} must be derived from business data (a {{{{…}}}} of the trigger), not constant or random"))
            }
            Some(_) => {}
        }
    }
    if let Some(prefer) = header("prefer") {
        let wait: Option<u64> = prefer.strip_prefix("wait=").and_then(|n| n.trim().parse().ok());
        let timeout = match &mapper["timeout"] {
            Value::String(s) => s.parse::<u64>().ok(),
            other => other.as_u64(),
        };
        match wait {
            Some(n) if n <= 30 && timeout.is_some_and(|t| t >= n + 5 && t <= 300) => {}
            _ => r.at(
                m,
                format!(
                    "`Prefer: {prefer}` needs wait ≤ 30 and a module timeout at least 5 s longer (timeout is {})",
                    mapper["timeout"]
                ),
            ),
        }
    }

    // Body.
    let body = if v4 {
        let body = mapper["jsonStringBodyContent"].as_str();
        if body.is_some() && (mapper["contentType"] != json!("json") || mapper["inputMethod"] != json!("jsonString")) {
            r.at(m, "a JSON body needs contentType \"json\" and inputMethod \"jsonString\"");
        }
        body
    } else {
        mapper["data"]
            .as_str()
            .filter(|_| mapper["bodyType"] == json!("raw") && mapper["contentType"] == json!("application/json"))
    };
    let request_body = &op["requestBody"];
    match body {
        None if request_body["required"] == json!(true) => r.at(m, format!("{op_name} needs a JSON body")),
        None => {}
        Some(_) if request_body.is_null() => r.at(m, format!("sends a body, but {op_name} takes none")),
        Some(text) => {
            if header("content-type") != Some("application/json") {
                r.at(m, "a JSON body needs the header Content-Type: application/json");
            }
            match serde_json::from_str::<Value>(&substitute(text)) {
                Err(e) => r.at(m, format!("body is not JSON once each {{{{…}}}} is replaced: {e}")),
                Ok(value) => {
                    let mut errors = vec![];
                    validate(spec, &request_body["content"]["application/json"]["schema"], &value, "body", &mut errors);
                    for e in errors {
                        r.at(m, format!("{e} ({op_name})"));
                    }
                }
            }
        }
    }
    let forbidden = op["responses"]["403"]["description"].as_str().unwrap_or_default();
    forbidden.split_once("Missing scope `").and_then(|(_, rest)| rest.split('`').next()).map(str::to_string)
}

/// Checks `v` against a JSON schema: types, required and unknown properties, enums.
pub fn validate(spec: &Spec, schema: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
    let schema = spec.resolve(schema);
    if v.as_str() == Some(BARE_EXPR) {
        return;
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(branches) = schema[key].as_array() {
            let fits = |b: &Value| {
                let mut e = vec![];
                validate(spec, b, v, at, &mut e);
                e.is_empty()
            };
            if !branches.iter().any(fits) {
                let mut first = vec![];
                validate(spec, &branches[0], v, at, &mut first);
                out.push(format!("{at}: {v} fits none of the allowed schemas ({})", first.join("; ")));
            }
            return;
        }
    }
    for branch in schema["allOf"].as_array().into_iter().flatten() {
        validate(spec, branch, v, at, out);
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !types.is_empty() && !types.iter().any(|t| type_ok(t, v)) {
        let hint = if v.as_str().is_some_and(|s| s.contains(TEXT_EXPR)) {
            " (a quoted {{…}} sends text: leave it unquoted)"
        } else {
            ""
        };
        out.push(format!("{at}: expected {}, got {v}{hint}", types.join(" or ")));
        return;
    }
    if let (Some(allowed), Some(s)) = (schema["enum"].as_array(), v.as_str())
        && !s.contains(TEXT_EXPR)
        && !allowed.contains(v)
    {
        out.push(format!("{at}: {v} is not one of {}", Value::Array(allowed.clone())));
    }
    match v {
        Value::Object(object) => {
            for required in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                if !object.contains_key(required) {
                    out.push(format!("{at}: missing required `{required}`"));
                }
            }
            let properties = schema["properties"].as_object();
            let extra = &schema["additionalProperties"];
            for (key, value) in object {
                let child = format!("{at}.{key}");
                if let Some(p) = properties.and_then(|p| p.get(key)) {
                    validate(spec, p, value, &child, out);
                } else if extra.is_object() {
                    validate(spec, extra, value, &child, out);
                } else if *extra != json!(true) && (properties.is_some() || *extra == json!(false)) {
                    let known: Vec<&String> = properties.map(|p| p.keys().collect()).unwrap_or_default();
                    out.push(format!("{child}: unknown property (allowed: {known:?})"));
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                validate(spec, &schema["items"], item, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

pub fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "null" => v.is_null(),
        _ => true,
    }
}
