//! The document's OpenAPI 3.1 `webhooks` section: one entry per event type, the
//! request Switchboard sends to a registered endpoint (its body the type's event
//! schema, the Standard Webhooks signature headers) and the answers it expects.
//! Built from `EventType::ALL` and `events::catalogue`, so no type can be left out.

use serde_json::{Map, Value, json};

use crate::{domain::events::EventType, events::catalogue};

fn header(name: &str, description: &str, example: &str) -> Value {
    json!({"name": name, "in": "header", "required": true, "description": description,
        "schema": {"type": "string"}, "example": example})
}

/// The `webhooks` object, keyed by event type.
pub fn section() -> Value {
    let parameters = json!([
        header(
            "webhook-id",
            "The event's `id`: the same on every retry of one event (deduplicate on it).",
            "0192f0c4-5d7e-7c1a-9f4e-2b8d6a1c3e5f"
        ),
        header(
            "webhook-timestamp",
            "When this attempt was signed, in Unix seconds: refuse attempts more than \
            5 minutes away from your clock.",
            "1781506803"
        ),
        header(
            "webhook-signature",
            "`v1,` and the base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}` \
            keyed with the base64-decoded part of the endpoint's `whsec_` secret (Standard Webhooks).",
            "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="
        ),
    ]);
    let mut out = Map::new();
    for t in EventType::ALL {
        let schema = catalogue::event_schema_name(t);
        let id = format!("on{}", schema.trim_end_matches("Event"));
        let operation = json!({
            "operationId": id,
            "tags": ["webhooks"],
            "summary": format!("`{t}` delivered"),
            "description": format!("Sent to every enabled webhook endpoint subscribed to `{t}` (or a wildcard \
                such as `{}.*`, or `*`), as `POST` with a JSON body, the Standard Webhooks signature headers and \
                the endpoint's custom headers (e.g. `x-make-apikey`). `POST /v1/webhook-endpoints/{{id}}/test` \
                with `{{\"event_type\": \"{t}\"}}` sends a sample, with `\"test\": true`.",
                t.as_str().split('.').next().unwrap_or_default()),
            "parameters": parameters,
            "requestBody": {"required": true, "content": {"application/json": {
                "schema": {"$ref": format!("#/components/schemas/{schema}")}}}},
            "responses": {
                "2XX": {"description": "Delivered: any 2xx answer (Make's custom webhooks answer `200 Accepted`)."},
                "410": {"description": "Gone: the endpoint is disabled at once and nothing more is sent to it."},
                "default": {"description": "Anything else, or no answer within the timeout (10 s by default), is \
                    retried on the Standard Webhooks schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h after \
                    the first attempt (8 attempts over about a day). An endpoint failing without a success for a \
                    day is disabled; `PATCH` it with `enabled: true` to resume."},
            },
            "security": [],
        });
        out.insert(t.as_str().to_string(), json!({"post": operation}));
    }
    Value::Object(out)
}
