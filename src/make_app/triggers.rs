//! The two ways a scenario starts on a Switchboard event: an instant trigger backed
//! by a webhook endpoint (attached when the scenario's webhook is created, detached
//! when it is deleted), and a polling trigger on the event feed.

use serde_json::{Value, json};

use super::{
    CONNECTION, Component, GenerateError,
    modules::{Operation, page_size},
    schema::{Spec, backticked, label, sorted},
};

/// The trigger modules' ids (for the groups file).
pub const IDS: [&str; 2] = ["watchEvents", "watchEventsInstant"];
const WEBHOOK: &str = "switchboardEvents";
/// How many events a first run of the polling trigger offers to start from.
const EPOCH_LIMIT: u64 = 300;

pub fn components(spec: &Spec, ops: &[Operation]) -> Result<Vec<Component>, GenerateError> {
    let types = event_types(spec);
    if types.is_empty() {
        return Err(GenerateError("no event types found (Event.type enum or description)".into()));
    }
    let event = spec.0["components"]["schemas"].get("Event").ok_or(GenerateError("no Event schema".into()))?;
    let (interface, sample) = (spec.interface(event), spec.sample(event).unwrap_or_else(|| json!({})));
    let feed = ops.iter().find(|o| o.id() == "listEvents").ok_or(GenerateError("no listEvents".into()))?;
    for needed in ["createWebhookEndpoint", "deleteWebhookEndpoint"] {
        if !ops.iter().any(|o| o.id() == needed) {
            return Err(GenerateError(format!("no {needed} for the instant trigger")));
        }
    }
    Ok(vec![webhook(&types), instant(interface.clone(), sample.clone()), polling(feed, &types, interface, sample)])
}

/// The event types, from the `Event.type` enum (with one schema per type, the enum of
/// them all: `Spec::flatten`) or, failing that, its description.
fn event_types(spec: &Spec) -> Vec<String> {
    let Some(event) = spec.0["components"]["schemas"].get("Event") else { return vec![] };
    let flat = spec.flatten(event);
    let kind = spec.flatten(&flat["properties"]["type"]);
    match kind["enum"].as_array() {
        Some(values) => values.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        None => backticked(kind["description"].as_str().unwrap_or_default()),
    }
}

fn type_options(types: &[String]) -> Value {
    let mut options: Vec<Value> = types.iter().map(|t| json!({"label": label(t), "value": t})).collect();
    options.push(json!({"label": "Every event type", "value": "*"}));
    Value::Array(options)
}

fn webhook(types: &[String]) -> Component {
    let params = json!([sorted(json!({
        "name": "events", "label": "Event types", "type": "select", "multiple": true, "required": true,
        "options": type_options(types),
        "help": "What Switchboard sends to this scenario. The connection's token needs `webhooks:write`."
    }))]);
    let attach = json!({
        "url": "/v1/webhook-endpoints",
        "method": "POST",
        "body": {"url": "{{webhook.url}}", "events": "{{parameters.events}}", "description": "Make scenario webhook"},
        "type": "json",
        "response": {"data": {"endpointId": "{{body.id}}"}},
    });
    let detach = json!({"url": "/v1/webhook-endpoints/{{webhook.endpointId}}", "method": "DELETE"});
    // Each delivery is one event; its body is the event.
    let communication = json!({"output": "{{body}}"});
    Component {
        kind: "webhook",
        id: WEBHOOK.into(),
        meta: json!({"label": "Switchboard events", "webhookType": "web", "connection": CONNECTION}),
        files: vec![("attach", attach), ("communication", communication), ("detach", detach), ("params", params)],
    }
}

fn instant(interface: Vec<Value>, sample: Value) -> Component {
    Component {
        kind: "module",
        id: IDS[1].into(),
        meta: json!({
            "label": "Watch events (instant)",
            "description": "Starts the scenario as soon as Switchboard sends an event (a webhook endpoint Switchboard signs and retries).",
            "moduleType": "instant_trigger",
            "connection": CONNECTION,
            "webhook": WEBHOOK,
        }),
        files: vec![("interface", Value::Array(interface)), ("samples", sample), ("staticParams", json!([]))],
    }
}

/// Polls the feed newest first when the spec offers `order=desc` (Make's triggers stop
/// at the first item they have seen); otherwise oldest first from the start, which is
/// all the feed can do (docs/MAKE.md).
fn polling(feed: &Operation, types: &[String], interface: Vec<Value>, sample: Value) -> Component {
    let query = |name: &str| {
        feed.op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["in"] == json!("query") && p["name"] == json!(name))
    };
    let descending = query("order").is_some() && query("before").is_some();
    let mut qs = json!({
        "types": "{{if(parameters.types, join(parameters.types, ','), undefined)}}",
        "limit": page_size(feed),
    });
    let (order, pagination) = if descending {
        qs["order"] = json!("desc");
        ("desc", json!({"qs": {"before": "{{body.last_id}}"}, "condition": "{{body.has_more}}"}))
    } else {
        ("asc", json!({"qs": {"after": "{{body.last_id}}"}, "condition": "{{body.has_more}}"}))
    };
    let communication = json!({
        "url": feed.path,
        "method": "GET",
        "qs": qs,
        "pagination": pagination,
        "response": {
            "iterate": "{{body.data}}",
            "output": "{{item}}",
            "limit": "{{parameters.limit}}",
            "trigger": {"type": "date", "order": order, "id": "{{item.id}}", "date": "{{item.created_at}}"},
        },
    });
    let epoch = json!({
        "response": {"limit": EPOCH_LIMIT, "output": {"label": "{{item.type}} {{item.created_at}}", "date": "{{item.created_at}}"}},
    });
    let static_params = json!([
        sorted(json!({"name": "types", "label": "Event types", "type": "select", "multiple": true,
            "options": type_options(types), "help": "Leave empty for every type the token may read."})),
        sorted(json!({"name": "limit", "label": "Limit", "type": "uinteger", "required": true, "default": 10,
            "help": "The most events one run of the scenario processes."}))
    ]);
    Component {
        kind: "module",
        id: IDS[0].into(),
        meta: json!({
            "label": "Watch events",
            "description": format!("Polls the event feed for new events ({} {}).", feed.method, feed.path),
            "moduleType": "trigger",
            "connection": CONNECTION,
        }),
        files: vec![
            ("communication", communication),
            ("epoch", epoch),
            ("interface", Value::Array(interface)),
            ("samples", sample),
            ("staticParams", static_params),
        ],
    }
}
