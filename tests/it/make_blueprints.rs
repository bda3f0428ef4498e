//! The Make.com blueprints in `make-scenarios/` (docs/MAKE.md). The plain tests here
//! check each one statically: shaped as Make exports them, and every HTTP request
//! exists in `openapi/openapi.json` with a body its schema accepts and the headers
//! Switchboard expects. `live` runs them, module by module, against the API.

mod checker;
mod live;
mod runner;
mod text;

use std::{collections::BTreeSet, fs, path::PathBuf};

use checker::{BARE_EXPR, FLOWS, Spec, TEXT_EXPR, check, referenced_ids, substitute};
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn spec() -> Spec {
    let path = root().join("openapi/openapi.json");
    Spec(
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
}

/// Every `make-scenarios/*.json`, by file name.
fn blueprints() -> Vec<(String, Value)> {
    let dir = root().join("make-scenarios");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let bp = serde_json::from_str(&fs::read_to_string(&p).unwrap())
                .unwrap_or_else(|e| panic!("{name}: not JSON: {e}"));
            (name, bp)
        })
        .collect()
}

#[test]
fn every_blueprint_is_importable_and_matches_the_spec() {
    let spec = spec();
    let all = blueprints();
    let names: BTreeSet<_> = all.iter().map(|(n, _)| n.trim_end_matches(".json").to_string()).collect();
    for flow in FLOWS {
        assert!(names.contains(flow), "make-scenarios/{flow}.json is missing");
    }
    let problems: Vec<String> = all.iter().flat_map(|(name, bp)| check(name, bp, &spec).problems).collect();
    assert!(problems.is_empty(), "make-scenarios/ has {} problem(s):\n  {}", problems.len(), problems.join("\n  "));
}

#[test]
fn readme_lists_every_blueprint_with_the_scopes_it_needs() {
    let spec = spec();
    let readme = fs::read_to_string(root().join("make-scenarios/README.md")).expect("make-scenarios/README.md");
    for (name, bp) in blueprints() {
        let row = readme
            .lines()
            .find(|l| l.starts_with('|') && l.contains(&format!("`{name}`")))
            .unwrap_or_else(|| panic!("make-scenarios/README.md has no table row for `{name}`"));
        let checked = check(&name, &bp, &spec);
        assert!(!checked.scopes.is_empty(), "{name}: no scope found for its requests");
        for scope in checked.scopes {
            assert!(
                row.contains(&format!("`{scope}`")),
                "make-scenarios/README.md: the row for `{name}` must list scope `{scope}`:\n{row}"
            );
        }
    }
}

/// The checker itself: a small valid blueprint passes, and each kind of mistake is
/// reported naming the blueprint and the module.
#[test]
fn the_checker_reports_each_kind_of_mistake() {
    let spec = spec();
    let ok = check("sample.json", &sample(), &spec);
    assert!(ok.problems.is_empty(), "{:#?}", ok.problems);
    assert_eq!(ok.scopes, BTreeSet::from(["clients:read".to_string(), "platforms:act".to_string()]));

    type Mutation = fn(&mut Value);
    let cases: [(&str, &str, Mutation); 21] = [
        ("module 2", "is not in openapi.json", |b| {
            b["flow"][1]["mapper"]["url"] = json!("{{1.switchboard_url}}/v1/client/{{1.client}}/metrics/sync")
        }),
        ("module 2", "no PUT", |b| b["flow"][1]["mapper"]["method"] = json!("put")),
        ("module 2", "body.form: unknown property", |b| {
            b["flow"][1]["mapper"]["jsonStringBodyContent"] =
                json!(r#"{"from": "{{1.from}}", "to": "{{1.to}}", "form": 1}"#)
        }),
        ("module 2", "body: missing required `to`", |b| {
            b["flow"][1]["mapper"]["jsonStringBodyContent"] = json!(r#"{"from": "{{1.from}}"}"#)
        }),
        ("module 2", "body.platforms: expected array or null", |b| {
            b["flow"][1]["mapper"]["jsonStringBodyContent"] =
                json!(r#"{"from": "{{1.from}}", "to": "{{1.to}}", "platforms": "{{1.p}}"}"#)
        }),
        ("module 2", "not JSON", |b| {
            b["flow"][1]["mapper"]["jsonStringBodyContent"] = json!(r#"{"from": "{{1.from}}", "to": }"#)
        }),
        ("module 2", "Idempotency-Key", |b| remove_header(b, 1, "Idempotency-Key")),
        ("module 2", "derived from business data", |b| set_header(b, 1, "Idempotency-Key", "{{uuid}}")),
        ("module 2", "Authorization", |b| remove_header(b, 1, "Authorization")),
        ("module 2", "Content-Type: application/json", |b| remove_header(b, 1, "Content-Type")),
        ("module 2", "id 2 is used twice", |b| b["flow"][2]["id"] = json!(2)),
        ("module 2", "not a module the blueprints may use", |b| {
            b["flow"][1]["module"] = json!("http:ActionSendDataBasicAuth")
        }),
        ("module 4", "query parameter `granularty`", |b| {
            b["flow"][2]["mapper"]["queryParameters"][2]["name"] = json!("granularty")
        }),
        ("module 4", "\"closed\" is not one of", |b| {
            b["flow"][2]["mapper"]["url"] = json!("{{1.switchboard_url}}/v1/alerts");
            b["flow"][2]["mapper"]["queryParameters"] = json!([{"name": "status", "value": "closed"}]);
        }),
        ("module 4", "required query parameter `to`", |b| {
            b["flow"][2]["mapper"]["queryParameters"].as_array_mut().unwrap().remove(1);
        }),
        ("module 4", "refers to module 9", |b| {
            b["flow"][2]["mapper"]["url"] = json!("{{1.switchboard_url}}/v1/clients/{{9.id}}/metrics")
        }),
        ("module 4", "no error handler with a retrying builtin:Break", |b| {
            b["flow"][2].as_object_mut().unwrap().remove("onerror");
        }),
        ("metadata.scenario.dlq", "Break", |b| b["metadata"]["scenario"]["dlq"] = json!(false)),
        ("module 4", "sits on module 2", |b| b["flow"][2]["metadata"]["designer"] = json!({"x": 340, "y": 60})),
        ("module 2", "calls trimEnd(), which Make does not document", |b| {
            b["flow"][1]["mapper"]["url"] =
                json!("{{trimEnd(1.switchboard_url; \"/\")}}/v1/clients/{{1.client}}/metrics/sync")
        }),
        ("module 6", "no error handler", |b| {
            b["flow"].as_array_mut().unwrap().push(json!({"id": 6, "module": "slack:CreateMessage", "version": 4,
                "parameters": {}, "mapper": {"text": "{{4.data.total.spend}}"},
                "metadata": {"designer": {"x": 900, "y": 0}}}))
        }),
    ];
    for (at, expected, mutate) in cases {
        let mut bp = sample();
        mutate(&mut bp);
        let problems = check("sample.json", &bp, &spec).problems;
        assert!(
            problems.iter().any(|p| p.starts_with(&format!("sample.json: {at}")) && p.contains(expected)),
            "expected a problem at {at:?} containing {expected:?}, got {problems:#?}"
        );
    }

    // `Prefer: wait=N` needs a module timeout above N, or Make gives up first.
    let mut bp = sample();
    bp["flow"][1]["mapper"]["url"] = json!("{{1.switchboard_url}}/v1/workflows/daily-monitoring/runs");
    bp["flow"][1]["mapper"]["jsonStringBodyContent"] = json!(r#"{"params": {}, "dry_run": {{1.dry}}}"#);
    set_header(&mut bp, 1, "Prefer", "wait=25");
    assert!(check("sample.json", &bp, &spec).problems.is_empty());
    bp["flow"][1]["mapper"]["timeout"] = json!("20");
    let problems = check("sample.json", &bp, &spec).problems;
    assert!(problems.iter().any(|p| p.contains("timeout")), "{problems:#?}");
}

#[test]
fn expressions_become_strings_or_any_value() {
    assert_eq!(
        substitute(r#"{"a": "x {{1.b}}", "n": {{ifempty(1.c; "null")}}, "q": "\"{{2.d}}"}"#),
        format!(r#"{{"a": "x {TEXT_EXPR}", "n": "{BARE_EXPR}", "q": "\"{TEXT_EXPR}"}}"#)
    );
    assert_eq!(
        referenced_ids(
            r#"if(3.cursor; "&cursor=" + 3.cursor; "") + 11.data.contacts[1].email + addDays(now; -1) + 0.5"#
        ),
        [3, 3, 11]
    );
}

/// The runner's IML is Make's documented scenario IML: `+` adds numbers only, text
/// is joined side by side, arguments are separated by `;`, and only documented
/// functions exist. Each rule fails loudly, so a blueprint cannot pass on it.
#[test]
fn the_runners_iml_refuses_what_make_does_not_document() {
    let lookup = |path: &str| match path {
        "3.cursor" => json!("abc"),
        "4.n" => json!(2),
        _ => Value::Null,
    };
    assert_eq!(runner::eval("4.n + 3", &lookup), json!(5));
    assert_eq!(runner::eval(r#"ifempty(3.cursor; "none")"#, &lookup), json!("abc"));
    assert_eq!(runner::eval(r#"ifempty(9.missing; "none")"#, &lookup), json!("none"));
    let refused = |expr: &'static str, why: &str| {
        let panic = std::panic::catch_unwind(|| runner::eval(expr, &lookup)).expect_err(expr);
        let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(message.contains(why), "{expr}: {message}");
    };
    refused(r#""&cursor=" + 3.cursor"#, "`+` on text");
    refused(r#"ifempty(3.cursor, "none")"#, "separates arguments with `;`");
    refused(r#"trimEnd(3.cursor; "/")"#, "not a function Make documents");
}

// ---------------------------------------------------------------------------- sample

fn remove_header(bp: &mut Value, module: usize, name: &str) {
    bp["flow"][module]["mapper"]["headers"].as_array_mut().unwrap().retain(|h| h["name"] != json!(name));
}

fn set_header(bp: &mut Value, module: usize, name: &str, value: &str) {
    remove_header(bp, module, name);
    bp["flow"][module]["mapper"]["headers"].as_array_mut().unwrap().push(json!({"name": name, "value": value}));
}

/// A small valid blueprint: settings → sync a client's metrics → read them back.
fn sample() -> Value {
    let brk = |id: u64, x: u64| {
        json!([{"id": id, "module": "builtin:Break", "version": 1, "parameters": {},
        "mapper": {"retry": true, "count": "3", "interval": "15"}, "metadata": {"designer": {"x": x, "y": 300}}}])
    };
    let auth = json!({"name": "Authorization", "value": "Bearer {{1.switchboard_token}}"});
    json!({
        "name": "sample",
        "flow": [
            {"id": 1, "module": "util:SetVariables", "version": 1, "parameters": {},
             "mapper": {"scope": "roundtrip", "variables": [
                 {"name": "switchboard_url", "value": "https://switchboard.example.com"},
                 {"name": "switchboard_token", "value": "token"}]},
             "metadata": {"designer": {"x": 0, "y": 0}}},
            {"id": 2, "module": "http:MakeRequest", "version": 4, "parameters": {"authenticationType": "noAuth"},
             "mapper": {"url": "{{1.switchboard_url}}/v1/clients/{{1.client}}/metrics/sync", "method": "post",
                 "headers": [auth, {"name": "Idempotency-Key", "value": "sync-{{1.client}}-{{1.from}}"},
                             {"name": "Content-Type", "value": "application/json"}],
                 "queryParameters": [], "contentType": "json", "inputMethod": "jsonString",
                 "jsonStringBodyContent": r#"{"from": "{{1.from}}", "to": "{{1.to}}", "platforms": {{1.platforms}}}"#,
                 "parseResponse": true, "stopOnHttpError": true, "timeout": "40"},
             "metadata": {"designer": {"x": 300, "y": 0}}, "onerror": brk(3, 300)},
            {"id": 4, "module": "http:MakeRequest", "version": 4, "parameters": {"authenticationType": "noAuth"},
             "mapper": {"url": "{{1.switchboard_url}}/v1/clients/{{2.data.client_id}}/metrics", "method": "get",
                 "headers": [auth],
                 "queryParameters": [{"name": "from", "value": "{{1.from}}"}, {"name": "to", "value": "{{1.to}}"},
                                     {"name": "granularity", "value": "total"}],
                 "parseResponse": true, "stopOnHttpError": true, "timeout": ""},
             "metadata": {"designer": {"x": 600, "y": 0}}, "onerror": brk(5, 600)}
        ],
        "metadata": {"instant": false, "version": 1, "designer": {"orphans": []},
            "scenario": {"roundtrips": 1, "maxErrors": 3, "autoCommit": true, "autoCommitTriggerLast": true,
                "sequential": false, "slots": null, "confidential": false, "dataloss": false, "dlq": true,
                "freshVariables": false}}
    })
}
