//! The Make custom app in `make-scenarios/app/` (docs/MAKE.md): it is exactly what
//! `switchboard make-app` generates from today's API, every request it makes is an
//! operation of the spec with that operation's parameters, and its expressions call
//! only functions Make documents.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

use serde_json::{Value, json};
use switchboard::make_app;

use crate::make_iml::{FUNCTIONS, called, expressions};

fn app_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("make-scenarios/app")
}

fn spec() -> Value {
    serde_json::to_value(switchboard::api::openapi::document()).unwrap()
}

/// Every file under `dir`, by path relative to it.
fn read_tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
                out.insert(relative, fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn committed() -> BTreeMap<String, String> {
    read_tree(&app_dir())
}

fn generated() -> BTreeMap<String, String> {
    make_app::generate(&spec(), json!([])).unwrap()
}

#[test]
fn the_committed_app_is_what_the_generator_writes_today() {
    let (committed, fresh) = (committed(), generated());
    let regenerate = "regenerate it: cargo run -- make-app --out make-scenarios/app";
    let missing: Vec<&String> = fresh.keys().filter(|k| !committed.contains_key(*k)).collect();
    let stale: Vec<&String> = committed.keys().filter(|k| !fresh.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "make-scenarios/app: missing {missing:?}, stale {stale:?}; {regenerate}"
    );
    for (path, content) in &fresh {
        assert!(committed[path] == *content, "make-scenarios/app/{path} differs from a fresh generation; {regenerate}");
    }
    // Same spec, same bytes.
    assert_eq!(fresh, generated());
}

#[test]
fn the_cli_writes_the_project_and_keeps_the_users_origins() {
    let dir = tempfile::tempdir().unwrap();
    let origin = json!([{"label": "production", "baseUrl": "https://eu1.make.com/api", "appId": "switchboard-42",
                         "appVersion": 1, "apikeyFile": ".secrets/apikey"}]);
    fs::write(dir.path().join("makecomapp.json"), json!({"origins": origin}).to_string()).unwrap();
    fs::create_dir_all(dir.path().join("modules/gone")).unwrap();
    fs::write(dir.path().join("modules/gone/gone.communication.iml.json"), "{}").unwrap();
    fs::write(dir.path().join("notes.txt"), "mine").unwrap();

    let (written, removed) = switchboard::cli::write_make_app(dir.path()).unwrap();
    let tree = read_tree(dir.path());
    assert_eq!((written, removed), (generated().len(), 1));
    assert!(!dir.path().join("modules/gone").exists(), "a module the spec no longer has is removed");
    assert_eq!(tree["notes.txt"], "mine", "files outside the generated directories are left alone");
    let index: Value = serde_json::from_str(&tree["makecomapp.json"]).unwrap();
    assert_eq!(index["origins"], origin);
    let expected = make_app::generate(&spec(), origin).unwrap();
    assert!(expected.iter().all(|(path, content)| tree[path] == *content));
}

// ---------------------------------------------------------------------------- modules match the spec

/// Checks each component's requests against the spec; returns the problems found.
fn check(files: &BTreeMap<String, String>, spec: &Value) -> Vec<String> {
    let mut problems = vec![];
    let json = |path: &str| -> Value {
        serde_json::from_str(files.get(path).unwrap_or_else(|| panic!("{path} is missing")))
            .unwrap_or_else(|e| panic!("{path}: not JSON: {e}"))
    };
    let index = json("makecomapp.json");
    for kind in ["connection", "module", "rpc", "webhook"] {
        for (id, component) in index["components"][kind].as_object().into_iter().flatten() {
            let code = |name: &str| component["codeFiles"][name].as_str().map(json);
            let mut params: BTreeSet<String> = BTreeSet::new();
            let mut required: BTreeSet<String> = BTreeSet::new();
            for file in ["mappableParams", "staticParams", "params"] {
                for p in code(file).as_ref().and_then(Value::as_array).into_iter().flatten() {
                    let name = p["name"].as_str().unwrap_or_default().to_string();
                    if p["required"] == json!(true) {
                        required.insert(name.clone());
                    }
                    params.insert(name);
                }
            }
            let mut requests = vec![];
            for file in ["communication", "attach", "detach"] {
                if let Some(c) = code(file).filter(|c| c.get("url").is_some()) {
                    requests.push((file, c));
                }
            }
            for (file, c) in requests {
                let at = format!("{kind} {id} ({file})");
                if kind == "connection" {
                    let url = c["url"].as_str().unwrap_or_default();
                    if url != "{{parameters.baseUrl}}/v1/tokens/current" || c["method"] != json!("GET") {
                        problems.push(format!("{at}: must verify with GET /v1/tokens/current, not {url}"));
                    }
                    continue;
                }
                problems.extend(check_request(&at, &c, spec, &params, &required));
            }
        }
    }
    problems
}

/// One request: its path and method are an operation; every query parameter, header
/// and body field it sends is one of that operation's; each required one is sent.
fn check_request(
    at: &str,
    c: &Value,
    spec: &Value,
    params: &BTreeSet<String>,
    required: &BTreeSet<String>,
) -> Vec<String> {
    let mut problems = vec![];
    let url = c["url"].as_str().unwrap_or_default();
    let method = c["method"].as_str().unwrap_or_default().to_ascii_lowercase();
    let segments: Vec<&str> = url.trim_start_matches('/').split('/').collect();
    let Some((template, op)) = spec["paths"].as_object().unwrap().iter().find_map(|(t, item)| {
        let parts: Vec<&str> = t.trim_start_matches('/').split('/').collect();
        let fits = parts.len() == segments.len()
            && parts.iter().zip(&segments).all(|(p, s)| if p.starts_with('{') { s.starts_with("{{") } else { p == s });
        fits.then(|| item.get(&method).map(|op| (t.as_str(), op))).flatten()
    }) else {
        return vec![format!("{at}: {} {url} is not an operation of the spec", method.to_uppercase())];
    };
    let declared = |place: &str| -> Vec<&Value> {
        op["parameters"].as_array().into_iter().flatten().filter(|p| p["in"] == json!(place)).collect()
    };
    // Path parameters: each segment is that parameter's field.
    for (part, seg) in template.trim_start_matches('/').split('/').zip(&segments) {
        if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}'))
            && !seg.contains(&format!("parameters.{name}}}"))
            && !seg.starts_with("{{webhook.")
        {
            problems.push(format!("{at}: path parameter `{name}` is sent as {seg}"));
        }
    }
    // Query parameters.
    let query = declared("query");
    let sent: BTreeSet<&str> = c["qs"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k.as_str())
        .chain(c["pagination"]["qs"].as_object().into_iter().flatten().map(|(k, _)| k.as_str()))
        .collect();
    for name in &sent {
        if !query.iter().any(|p| p["name"] == json!(name)) {
            problems.push(format!(
                "{at}: query parameter `{name}` is not a parameter of {} {template}",
                method.to_uppercase()
            ));
        }
    }
    for p in query.iter().filter(|p| p["required"] == json!(true)) {
        let name = p["name"].as_str().unwrap();
        if !sent.contains(name) || !required.contains(name) {
            problems.push(format!("{at}: required query parameter `{name}` must be a required field and sent"));
        }
    }
    // Headers: the operation's header parameters; Idempotency-Key on any POST (the
    // API honours it on every POST); Content-Type naming the request body's type.
    let headers = declared("header");
    for (name, _) in c["headers"].as_object().into_iter().flatten() {
        let ok = headers.iter().any(|p| p["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
            || (name.eq_ignore_ascii_case("idempotency-key") && method == "post")
            || (name.eq_ignore_ascii_case("content-type")
                && op["requestBody"]["content"].get(c["headers"][name].as_str().unwrap_or_default()).is_some());
        if !ok {
            problems.push(format!("{at}: header `{name}` is not a parameter of {} {template}", method.to_uppercase()));
        }
    }
    // Every `parameters.x` the request reads is a field of the module.
    let text = c.to_string();
    for expr in expressions(&text) {
        for (i, _) in expr.match_indices("parameters.") {
            let name: String = expr[i + 11..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !params.contains(&name) {
                problems.push(format!("{at}: reads parameters.{name}, which is not a field of it"));
            }
        }
    }
    // Body: what the fields send (all of them but those omitted) fits the schema.
    let body_schema = op["requestBody"]["content"].as_object().and_then(|m| m.values().next()).map(|m| &m["schema"]);
    match (&c["body"], body_schema) {
        (Value::Null, None) => {}
        (Value::Null, Some(_)) if op["requestBody"]["required"] == json!(true) => {
            problems.push(format!("{at}: {} {template} needs a body", method.to_uppercase()))
        }
        (Value::Null, Some(_)) => {}
        (_, None) => problems.push(format!("{at}: sends a body, but {} {template} takes none", method.to_uppercase())),
        (Value::String(expr), Some(schema)) => {
            let omitted: BTreeSet<String> = expr.split('\'').skip(1).step_by(2).map(str::to_string).collect();
            let fields: BTreeSet<&String> =
                params.iter().filter(|p| !omitted.contains(*p) && p.as_str() != "limit").collect();
            let properties = properties_of(spec, schema);
            for f in &fields {
                if !properties.0.contains(*f) {
                    problems.push(format!(
                        "{at}: field `{f}` is not a property of the {} {template} body",
                        method.to_uppercase()
                    ));
                }
            }
            if method != "patch" {
                for r in &properties.1 {
                    if !required.contains(r) {
                        problems
                            .push(format!("{at}: body property `{r}` is required by the spec but not by the module"));
                    }
                }
            }
        }
        (Value::Object(body), Some(schema)) => {
            let properties = properties_of(spec, schema);
            for key in body.keys() {
                if !properties.0.contains(key) {
                    problems.push(format!(
                        "{at}: body key `{key}` is not a property of the {} {template} body",
                        method.to_uppercase()
                    ));
                }
            }
        }
        (other, _) => problems.push(format!("{at}: body {other} is neither fields nor an object")),
    }
    problems
}

/// An object schema's property names and required ones (following `$ref`/`allOf`, and
/// an optional body's `oneOf: [T, null]`).
fn properties_of(spec: &Value, schema: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut schema = schema;
    while let Some(r) = schema["$ref"].as_str() {
        schema = spec.pointer(r.trim_start_matches('#')).unwrap();
    }
    if let Some(branches) = schema["oneOf"].as_array() {
        let real: Vec<&Value> = branches.iter().filter(|b| b["type"] != "null").collect();
        if let [only] = real.as_slice() {
            return properties_of(spec, only);
        }
    }
    let (mut names, mut required) = (BTreeSet::new(), BTreeSet::new());
    for part in schema["allOf"].as_array().into_iter().flatten() {
        let (n, r) = properties_of(spec, part);
        names.extend(n);
        required.extend(r);
    }
    names.extend(schema["properties"].as_object().into_iter().flatten().map(|(k, _)| k.clone()));
    required.extend(schema["required"].as_array().into_iter().flatten().filter_map(|r| r.as_str().map(str::to_string)));
    (names, required)
}

#[test]
fn every_request_of_the_app_is_an_operation_with_its_parameters() {
    let problems = check(&committed(), &spec());
    assert!(problems.is_empty(), "make-scenarios/app has {} problem(s):\n  {}", problems.len(), problems.join("\n  "));
}

#[test]
fn every_operation_a_make_user_calls_has_a_module() {
    let spec = spec();
    let index: Value = serde_json::from_str(&committed()["makecomapp.json"]).unwrap();
    let modules = index["components"]["module"].as_object().unwrap();
    let operations = make_app::operations(&spec).unwrap();
    assert!(operations.len() > 50, "{} operations", operations.len());
    for o in &operations {
        let module =
            modules.get(o.id()).unwrap_or_else(|| panic!("no module for {} {} ({})", o.method, o.path, o.id()));
        let communication: Value =
            serde_json::from_str(&committed()[module["codeFiles"]["communication"].as_str().unwrap()]).unwrap();
        assert_eq!(communication["method"], json!(o.method), "{}", o.id());
        if o.method == "POST" {
            let fields: Value =
                serde_json::from_str(&committed()[module["codeFiles"]["mappableParams"].as_str().unwrap()]).unwrap();
            let key = fields.as_array().unwrap().iter().find(|f| f["name"] == json!("idempotencyKey"));
            assert!(key.is_some_and(|k| k["advanced"] == json!(true)), "{}: no advanced Idempotency-Key field", o.id());
            assert!(communication["headers"]["Idempotency-Key"].is_string(), "{}", o.id());
        }
    }
    // The inbound WhatsApp webhook is Meta's to call, not a Make user's.
    assert!(!modules.contains_key("receiveWhatsappWebhook"));
}

/// The checker itself: each kind of mismatch is found.
#[test]
fn the_checker_reports_a_module_that_does_not_match_the_spec() {
    let spec = spec();
    let path = "modules/create-client/create-client.communication.iml.json";
    type Mutation = fn(&mut Value);
    let cases: [(&str, Mutation); 6] = [
        ("is not an operation", |c| c["url"] = json!("/v1/client")),
        ("is not an operation", |c| c["method"] = json!("PUT")),
        ("query parameter `cursor`", |c| c["qs"] = json!({"cursor": "x"})),
        ("header `X-Make`", |c| c["headers"]["X-Make"] = json!("1")),
        ("reads parameters.nmae", |c| c["headers"]["Idempotency-Key"] = json!("{{parameters.nmae}}")),
        ("takes none", |c| {
            c["url"] = json!("/v1/tokens/current");
            c["method"] = json!("GET");
        }),
    ];
    for (expected, mutate) in cases {
        let mut files = committed();
        let mut c: Value = serde_json::from_str(&files[path]).unwrap();
        mutate(&mut c);
        files.insert(path.into(), c.to_string());
        let problems = check(&files, &spec);
        assert!(
            problems.iter().any(|p| p.contains("createClient") && p.contains(expected)),
            "{expected}: {problems:#?}"
        );
    }
    // A body field the schema does not have.
    let mut files = committed();
    let params = "modules/create-client/create-client.mappable-params.iml.json";
    let mut fields: Value = serde_json::from_str(&files[params]).unwrap();
    fields.as_array_mut().unwrap().push(json!({"name": "colour", "type": "text", "label": "Colour"}));
    files.insert(params.into(), fields.to_string());
    assert!(check(&files, &spec).iter().any(|p| p.contains("field `colour`")));
}

// ---------------------------------------------------------------------------- IML

fn iml_problems(files: &BTreeMap<String, String>) -> Vec<String> {
    let mut problems = vec![];
    for (path, content) in files.iter().filter(|(p, _)| p.ends_with(".json")) {
        for expr in expressions(content) {
            for f in called(expr) {
                if !FUNCTIONS.contains(&f.as_str()) {
                    problems.push(format!("{path}: `{{{{{expr}}}}}` calls {f}(), which Make does not document"));
                }
            }
        }
    }
    problems
}

#[test]
fn the_app_calls_only_iml_functions_make_documents() {
    let problems = iml_problems(&committed());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let mut files = committed();
    files.insert("general/base.iml.json".into(), r#"{"baseUrl": "{{trimEnd(connection.baseUrl, '/')}}"}"#.into());
    assert!(iml_problems(&files).iter().any(|p| p.contains("trimEnd()")));
}

// ---------------------------------------------------------------------------- errors, triggers, dropdowns

#[test]
fn problem_statuses_map_to_make_error_types() {
    let base: Value = serde_json::from_str(&committed()["general/base.iml.json"]).unwrap();
    let error = &base["response"]["error"];
    let expect = |status: &str| error[status]["type"].as_str().unwrap_or("(none)").to_string();
    for (status, kind) in [
        ("401", "InvalidAccessTokenError"),
        ("403", "InvalidAccessTokenError"),
        ("429", "RateLimitError"),
        ("400", "DataError"),
        ("404", "DataError"),
        ("409", "DataError"),
        ("422", "DataError"),
        ("500", "ConnectionError"),
        ("503", "ConnectionError"),
    ] {
        assert_eq!(expect(status), kind, "status {status}");
    }
    assert!(error["message"].as_str().unwrap().contains("body.code"), "the message quotes our problem code");
    assert_eq!(base["log"]["sanitize"], json!(["request.headers.authorization"]), "the token is never logged");
}

#[test]
fn triggers_rpcs_and_searches_are_wired() {
    let files = committed();
    let get = |p: &str| -> Value { serde_json::from_str(&files[p]).unwrap() };
    let index = get("makecomapp.json");
    let components = &index["components"];
    assert_eq!(components["module"]["watchEventsInstant"]["webhook"], "switchboardEvents");
    let attach = get("webhooks/switchboard-events/switchboard-events.attach.iml.json");
    assert_eq!((&attach["method"], &attach["url"]), (&json!("POST"), &json!("/v1/webhook-endpoints")));
    assert_eq!(attach["body"]["url"], "{{webhook.url}}");
    let detach = get("webhooks/switchboard-events/switchboard-events.detach.iml.json");
    assert_eq!(detach["url"], format!("/v1/webhook-endpoints/{{{{webhook.{}}}}}", "endpointId"));
    assert_eq!(attach["response"]["data"]["endpointId"], "{{body.id}}");

    let watch = get("modules/watch-events/watch-events.communication.iml.json");
    assert_eq!(components["module"]["watchEvents"]["moduleType"], "trigger");
    assert!(components["module"]["watchEvents"]["codeFiles"]["epoch"].is_string());
    assert_eq!(watch["response"]["trigger"]["id"], "{{item.id}}");

    for rpc in ["listClients", "listWorkflows", "listPromptTemplates", "listPlatforms"] {
        assert!(components["rpc"][rpc].is_object(), "RPC {rpc}");
    }
    let fields = get("modules/get-client/get-client.mappable-params.iml.json");
    assert_eq!(fields[0]["options"], "rpc://listClients", "the client is chosen from a dropdown");

    let search = get("modules/list-clients/list-clients.communication.iml.json");
    assert_eq!(components["module"]["listClients"]["moduleType"], "search");
    assert_eq!(search["pagination"]["qs"]["cursor"], "{{body.next_cursor}}");
    assert_eq!(search["response"]["iterate"], "{{body.data}}");
    assert!(search["qs"].get("cursor").is_none(), "the first page sends no cursor");
}

/// A closed set of the spec becomes a dropdown of exactly its names (the run statuses, the
/// alert kinds); a set the API lists live (workflows) keeps its RPC dropdown.
#[test]
fn closed_sets_become_select_parameters() {
    use switchboard::domain::{alert::AlertKind, run::RunStatus};
    let files = committed();
    let params = |module: &str| -> Value {
        serde_json::from_str(&files[&format!("modules/{module}/{module}.mappable-params.iml.json")]).unwrap()
    };
    let field = |module: &str, name: &str| -> Value {
        params(module)
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{module}: no {name}"))
    };
    for (module, name, names) in [("list-runs", "status", RunStatus::NAMES), ("list-alerts", "kind", AlertKind::NAMES)]
    {
        let f = field(module, name);
        assert_eq!(f["type"], "select", "{module}.{name}: {f}");
        let values: Vec<&str> = f["options"].as_array().unwrap().iter().map(|o| o["value"].as_str().unwrap()).collect();
        assert_eq!(values, names, "{module}.{name}");
    }
    assert_eq!(field("list-runs", "workflow")["options"], "rpc://listWorkflows");
}
