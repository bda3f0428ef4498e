//! A small Make interpreter for the live tests. It runs a blueprint's modules in
//! Make's order: each bundle goes depth first through the rest of the flow; a router
//! runs every route whose filter passes; iterators and repeaters emit one bundle per
//! item; an array aggregator collects its iterator's bundles and emits once that
//! iterator is done. It evaluates the IML the blueprints use, rejecting what Make
//! does not document (`+` on text, `,` between arguments, unlisted functions), and
//! sends each HTTP module's request to the in-process API. Placeholder modules
//! (email, Slack, Sheets) are recorded with their mapped fields instead of being
//! sent, or fail when a test says so. A failing module's error goes to its error
//! handler route as in Make (`{{N.error.…}}` readable there); one without a handler
//! fails the test, because Make would stop the scenario (and switch an instant one off).

use std::{collections::HashMap, time::Duration};

use axum::http::Method;
use chrono::{NaiveDate, Utc};
use futures::future::LocalBoxFuture;
use serde_json::{Map, Value, json};

use super::checker::{Piece, pieces};
use crate::support::TestApp;

/// One HTTP request a blueprint made.
#[derive(Debug)]
pub struct Call {
    pub method: String,
    pub url: String,
    pub status: u16,
}

/// An error that reached a module's error handler.
#[derive(Debug, Clone)]
pub struct Handled {
    pub module: u64,
    /// The HTTP status for an HTTP module; `None` for a placeholder that failed.
    pub status: Option<u16>,
    /// The directive that ended the handler route (`builtin:Break`, …).
    pub directive: String,
}

/// What a placeholder module would have sent.
#[derive(Debug)]
pub struct Sent {
    pub module: String,
    pub fields: Value,
}

struct Aggregation {
    feeder: u64,
    bundles: Vec<Value>,
    rest: Vec<Value>,
}

pub struct Runner<'a> {
    app: &'a TestApp,
    name: String,
    /// The user's edits of the settings module (variable → value).
    settings: HashMap<String, String>,
    outputs: HashMap<u64, Value>,
    variables: HashMap<String, Value>,
    aggregations: HashMap<u64, Aggregation>,
    pub calls: Vec<Call>,
    pub sent: Vec<Sent>,
    /// What a Webhook response module answered: status and JSON body.
    pub response: Option<(u16, Value)>,
    pub sleeps: usize,
    pub handled: Vec<Handled>,
    /// Placeholder modules (by id) that fail, as a mail server or Slack may.
    pub failing: Vec<u64>,
}

impl<'a> Runner<'a> {
    pub fn new(app: &'a TestApp, name: &str, settings: &[(&str, &str)]) -> Self {
        Runner {
            app,
            name: name.to_string(),
            settings: settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            outputs: HashMap::new(),
            variables: HashMap::new(),
            aggregations: HashMap::new(),
            calls: vec![],
            sent: vec![],
            response: None,
            sleeps: 0,
            handled: vec![],
            failing: vec![],
        }
    }

    /// One execution of the scenario; `trigger` is the webhook's bundle, if any.
    pub async fn execute(&mut self, bp: &Value, trigger: Value) {
        self.outputs.clear();
        self.variables.clear();
        self.response = None;
        let flow = bp["flow"].as_array().expect("flow").clone();
        if flow[0]["module"] == json!("gateway:CustomWebHook") {
            self.outputs.insert(flow[0]["id"].as_u64().unwrap(), trigger);
        }
        self.run(flow).await;
    }

    /// HTTP calls whose URL starts with `prefix`.
    pub fn calls_to(&self, method: &str, prefix: &str) -> usize {
        self.calls.iter().filter(|c| c.method == method && c.url.starts_with(prefix)).count()
    }

    pub fn sent_by(&self, module: &str) -> Vec<&Value> {
        self.sent.iter().filter(|s| s.module == module).map(|s| &s.fields).collect()
    }

    fn run(&mut self, flow: Vec<Value>) -> LocalBoxFuture<'_, ()> {
        Box::pin(async move {
            for (i, m) in flow.iter().enumerate() {
                if !self.passes(&m["filter"]) {
                    return;
                }
                let id = m["id"].as_u64().unwrap();
                let mapper = &m["mapper"];
                let rest = flow[i + 1..].to_vec();
                match m["module"].as_str().unwrap() {
                    "gateway:CustomWebHook" => {}
                    "util:SetVariables" => {
                        let mut out = Map::new();
                        for v in mapper["variables"].as_array().unwrap() {
                            let name = v["name"].as_str().unwrap();
                            let value = match self.settings.get(name) {
                                Some(edited) => Value::String(edited.clone()),
                                None => self.render(&v["value"]),
                            };
                            out.insert(name.to_string(), value);
                        }
                        self.outputs.insert(id, Value::Object(out));
                    }
                    "util:SetVariable2" => {
                        let (name, value) = (mapper["name"].as_str().unwrap(), self.render(&mapper["value"]));
                        self.variables.insert(name.to_string(), value.clone());
                        self.outputs.insert(id, one(name, value));
                    }
                    "util:GetVariable2" => {
                        let name = mapper["name"].as_str().unwrap();
                        let value = self.variables.get(name).cloned().unwrap_or(Value::Null);
                        self.outputs.insert(id, one(name, value));
                    }
                    "util:FunctionSleep" => {
                        // 15 s in Make; a hundredth of it here.
                        self.sleeps += 1;
                        let secs: u64 = self.text(&mapper["duration"]).parse().unwrap();
                        tokio::time::sleep(Duration::from_millis(secs * 10)).await;
                    }
                    "builtin:BasicRepeater" => {
                        let [start, repeats, step] =
                            ["start", "repeats", "step"].map(|k| self.text(&mapper[k]).parse::<i64>().unwrap());
                        for k in 0..repeats {
                            self.outputs.insert(id, json!({"i": start + k * step}));
                            self.run(rest.clone()).await;
                        }
                        return;
                    }
                    "builtin:BasicFeeder" => {
                        let items = self.render(&mapper["array"]);
                        for item in items.as_array().cloned().unwrap_or_default() {
                            let bundle = if item.is_object() { item } else { json!({"value": item}) };
                            self.outputs.insert(id, bundle);
                            self.run(rest.clone()).await;
                        }
                        let done: Vec<u64> =
                            self.aggregations.iter().filter(|(_, a)| a.feeder == id).map(|(k, _)| *k).collect();
                        for agg in done {
                            let a = self.aggregations.remove(&agg).unwrap();
                            self.outputs.insert(agg, json!({"array": a.bundles}));
                            self.run(a.rest).await;
                        }
                        return;
                    }
                    "builtin:BasicAggregator" => {
                        let bundle = self.render(mapper);
                        let feeder = m["parameters"]["feeder"].as_u64().unwrap();
                        self.aggregations
                            .entry(id)
                            .or_insert(Aggregation { feeder, bundles: vec![], rest })
                            .bundles
                            .push(bundle);
                        return;
                    }
                    "builtin:BasicRouter" => {
                        for route in m["routes"].as_array().unwrap() {
                            self.run(route["flow"].as_array().unwrap().clone()).await;
                        }
                        return;
                    }
                    "http:MakeRequest" => {
                        if let Err((status, error)) = self.http(m).await
                            && !self.handle(m, status, error).await
                        {
                            return;
                        }
                    }
                    "gateway:WebhookRespond" => {
                        let body = self.text(&mapper["body"]);
                        let body = serde_json::from_str(&body).unwrap_or_else(|e| {
                            panic!("{}: module {id}: response is not JSON ({e}): {body}", self.name)
                        });
                        self.response = Some((self.text(&mapper["status"]).parse().unwrap(), body));
                    }
                    "email:ActionSendEmail" | "slack:CreateMessage" | "google-sheets:addRow" => {
                        if self.failing.contains(&id) {
                            let error = json!({"message": "The service is unavailable.", "type": "ConnectionError"});
                            if !self.handle(m, None, error).await {
                                return;
                            }
                            continue;
                        }
                        let fields = self.render(mapper);
                        self.sent.push(Sent { module: m["module"].as_str().unwrap().to_string(), fields });
                    }
                    other => panic!("{}: the live runner does not know module {other}", self.name),
                }
            }
        })
    }

    /// Sends an HTTP module's request; a non-2xx answer is the module's error (the
    /// blueprints all set "Return error if HTTP request fails").
    async fn http(&mut self, m: &Value) -> Result<(), (Option<u16>, Value)> {
        let (id, mapper) = (m["id"].as_u64().unwrap(), &m["mapper"]);
        let method = mapper["method"].as_str().unwrap().to_uppercase();
        let mut url = self.text(&mapper["url"]);
        let query: Vec<(String, String)> = mapper["queryParameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|q| (self.text(&q["name"]), self.text(&q["value"])))
            .collect();
        if !query.is_empty() {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&form_urlencoded::Serializer::new(String::new()).extend_pairs(query).finish());
        }
        let mut request = self.app.request(Method::from_bytes(method.as_bytes()).unwrap(), &url);
        let mut content_type = "application/json".to_string();
        for h in mapper["headers"].as_array().into_iter().flatten() {
            let (name, value) = (self.text(&h["name"]), self.text(&h["value"]));
            if name.eq_ignore_ascii_case("content-type") {
                content_type = value;
            } else {
                request = request.header(&name, &value);
            }
        }
        if let Some(body) = mapper["jsonStringBodyContent"].as_str() {
            let body = self.text(&Value::String(body.to_string()));
            serde_json::from_str::<Value>(&body).unwrap_or_else(|e| {
                panic!("{}: module {id}: the body Make would send is not JSON ({e}): {body}", self.name)
            });
            request = request.raw_body(&content_type, body);
        }
        let res = request.send().await;
        self.calls.push(Call { method: method.clone(), url: url.clone(), status: res.status.as_u16() });
        let data = serde_json::from_slice(&res.body).unwrap_or_else(|_| Value::String(res.text()));
        if !res.status.is_success() {
            let message = format!("[{}] {method} {url}: {}", res.status.as_u16(), res.text());
            return Err((Some(res.status.as_u16()), json!({"message": message, "type": "RuntimeError", "data": data})));
        }
        self.outputs.insert(id, json!({"data": data, "statusCode": res.status.as_u16()}));
        Ok(())
    }

    /// Runs a failed module's error handler route. Returns whether the flow goes on
    /// (`builtin:Resume`, with the handler's substitute output) or stops for this
    /// bundle (Break, which Make stores as an incomplete execution to retry; Ignore,
    /// Commit, Rollback).
    async fn handle(&mut self, m: &Value, status: Option<u16>, error: Value) -> bool {
        let id = m["id"].as_u64().unwrap();
        let Some(route) = m["onerror"].as_array().filter(|r| !r.is_empty()) else {
            panic!("{}: module {id} failed with no error handler, so Make would stop here: {error}", self.name)
        };
        self.outputs.insert(id, json!({"error": error}));
        for h in route.clone() {
            let directive = h["module"].as_str().unwrap().to_string();
            match directive.as_str() {
                "builtin:Break" | "builtin:Ignore" | "builtin:Commit" | "builtin:Rollback" => {
                    self.handled.push(Handled { module: id, status, directive });
                    return false;
                }
                "builtin:Resume" => {
                    let substitute = self.render(&h["mapper"]);
                    self.outputs.insert(id, substitute);
                    self.handled.push(Handled { module: id, status, directive });
                    return true;
                }
                _ => self.run(vec![h]).await,
            }
        }
        panic!(
            "{}: module {id}: its error handler route ends without a directive (Break, Resume, Ignore, …)",
            self.name
        )
    }

    fn passes(&self, filter: &Value) -> bool {
        let Some(groups) = filter["conditions"].as_array() else { return true };
        groups.iter().any(|group| {
            group.as_array().unwrap().iter().all(|c| {
                let (a, b) = (self.text(&c["a"]), self.text(&c["b"]));
                match c["o"].as_str().unwrap() {
                    "text:equal" => a == b,
                    "text:notequal" => a != b,
                    other => panic!("{}: the live runner does not know filter operator {other}", self.name),
                }
            })
        })
    }

    /// A mapped value: a field that is one `{{…}}` keeps the expression's type (as in
    /// Make); text with expressions becomes text; objects and arrays field by field.
    fn render(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => match pieces(s).as_slice() {
                [Piece::Expr(e)] => self.eval(e),
                _ => Value::String(self.text(v)),
            },
            Value::Array(items) => Value::Array(items.iter().map(|x| self.render(x)).collect()),
            Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), self.render(x))).collect()),
            other => other.clone(),
        }
    }

    fn text(&self, v: &Value) -> String {
        match v {
            Value::String(s) => pieces(s)
                .into_iter()
                .map(|p| match p {
                    Piece::Text(t) => t.to_string(),
                    Piece::Expr(e) => as_text(&self.eval(e)),
                })
                .collect(),
            other => as_text(other),
        }
    }

    fn eval(&self, expr: &str) -> Value {
        eval(expr, &|path| self.path(path))
    }

    fn path(&self, path: &str) -> Value {
        let mut parts = path.split('.');
        let id: u64 = parts.next().unwrap().parse().unwrap();
        let mut v = self.outputs.get(&id).cloned().unwrap_or(Value::Null);
        for part in parts {
            let (key, index) = match part.split_once('[') {
                Some((k, i)) => (k, Some(i.trim_end_matches(']').parse::<usize>().unwrap())),
                None => (part, None),
            };
            v = v[key].clone();
            if let Some(i) = index {
                v = v[i - 1].clone(); // IML arrays count from 1
            }
        }
        v
    }
}

fn one(name: &str, value: Value) -> Value {
    Value::Object(Map::from_iter([(name.to_string(), value)]))
}

fn as_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn empty(v: &Value) -> bool {
    v.is_null() || v.as_str() == Some("") || v.as_array().is_some_and(Vec::is_empty)
}

/// Evaluates a scenario IML expression; `lookup` reads module outputs (`3.data.id`).
pub fn eval(expr: &str, lookup: &dyn Fn(&str) -> Value) -> Value {
    let mut p = Iml { s: expr.as_bytes(), i: 0, lookup };
    let v = p.expr();
    p.ws();
    assert_eq!(p.i, expr.len(), "cannot evaluate `{{{{{expr}}}}}`");
    v
}

/// IML as Make documents it for scenarios, the part the blueprints use: paths
/// (`3.data.id`), `"text"`, numbers, `now`, `newline`, `+` between numbers, and the
/// functions ifempty, if, formatDate (YYYY-MM-DD), addDays, length, join and map,
/// arguments separated by `;`. Make documents `+` only as addition: text is joined
/// by writing its pieces side by side (`a {{1.x}} b`), so `+` on text is refused.
/// Whether Make's own evaluator would join text with `+` cannot be checked without a
/// Make account; we follow its documentation.
struct Iml<'e, 'l> {
    s: &'e [u8],
    i: usize,
    lookup: &'l dyn Fn(&str) -> Value,
}

impl Iml<'_, '_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn expr(&mut self) -> Value {
        let mut v = self.term();
        loop {
            self.ws();
            if self.s.get(self.i) != Some(&b'+') {
                return v;
            }
            self.i += 1;
            let w = self.term();
            v = match (v.as_f64(), w.as_f64()) {
                (Some(a), Some(b)) if v.is_i64() && w.is_i64() => json!(a as i64 + b as i64),
                (Some(a), Some(b)) => json!(a + b),
                _ => panic!(
                    "`+` on text ({v} + {w}): Make documents `+` only as addition; join text by writing the pieces side by side"
                ),
            };
        }
    }

    fn term(&mut self) -> Value {
        self.ws();
        if self.s.get(self.i) == Some(&b'"') {
            let end = self.s[self.i + 1..].iter().position(|c| *c == b'"').expect("closing quote") + self.i + 1;
            let literal = String::from_utf8(self.s[self.i + 1..end].to_vec()).unwrap();
            self.i = end + 1;
            return Value::String(literal);
        }
        let start = self.i;
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_alphanumeric() || b"_.[]-".contains(c)) {
            self.i += 1;
        }
        let token = std::str::from_utf8(&self.s[start..self.i]).unwrap();
        if self.s.get(self.i) == Some(&b'(') {
            self.i += 1;
            let mut args = vec![];
            loop {
                args.push(self.expr());
                self.ws();
                self.i += 1;
                match self.s.get(self.i - 1) {
                    Some(b')') => break,
                    Some(b';') => {}
                    other => panic!(
                        "`{token}(…)`: scenario IML separates arguments with `;` (found {:?})",
                        other.map(|c| *c as char)
                    ),
                }
            }
            assert!(
                crate::make_iml::FUNCTIONS.contains(&token),
                "`{token}` is not a function Make documents (tests/it/make_iml.rs)"
            );
            return self.call(token, args);
        }
        if let Ok(n) = token.parse::<i64>() {
            return json!(n);
        }
        match token {
            "now" => Value::String(Utc::now().to_rfc3339()),
            "newline" => Value::String("\n".into()),
            t if t.starts_with(|c: char| c.is_ascii_digit()) => (self.lookup)(t),
            t => panic!("unknown IML term `{t}`"),
        }
    }

    fn call(&self, name: &str, args: Vec<Value>) -> Value {
        let date = |v: &Value| {
            as_text(v).get(..10).and_then(|d| d.parse::<NaiveDate>().ok()).unwrap_or_else(|| panic!("not a date: {v}"))
        };
        match (name, args.as_slice()) {
            ("ifempty", [a, b]) => {
                if empty(a) {
                    b.clone()
                } else {
                    a.clone()
                }
            }
            ("if", [c, a, b]) => {
                if empty(c) || *c == json!(false) {
                    b.clone()
                } else {
                    a.clone()
                }
            }
            ("formatDate", [d, f]) if as_text(f) == "YYYY-MM-DD" => Value::String(date(d).to_string()),
            ("addDays", [d, n]) => {
                Value::String((date(d) + chrono::Duration::days(as_text(n).parse().unwrap())).to_string())
            }
            ("length", [a]) => json!(a.as_array().map_or(0, Vec::len)),
            ("join", [a, sep]) => {
                Value::String(a.as_array().unwrap().iter().map(as_text).collect::<Vec<_>>().join(&as_text(sep)))
            }
            ("map", [a, key]) => Value::Array(a.as_array().unwrap().iter().map(|x| x[as_text(key)].clone()).collect()),
            _ => panic!("the live runner does not know IML `{name}` with {} argument(s)", args.len()),
        }
    }
}
