//! Examples for the JSON answers that have none: built from the answer's schema, using
//! the examples its components and properties already carry (so an answer shows the same
//! client, run or alert the request examples use), an enum's first name, and a fixed
//! value per type and format. Generators and Make's samples read these; the values fit
//! their schema by construction (tests/it/openapi_schemas.rs validates every one).

use serde_json::{Map, Value, json};

/// How deep a schema is followed: the document's nesting is shallower; this stops cycles.
const MAX_DEPTH: usize = 8;

/// Writes an `example` into every 2xx `application/json` answer that has none.
pub fn answers(doc: &mut Value) {
    let components = doc["components"]["schemas"].clone();
    for item in doc["paths"].as_object_mut().into_iter().flat_map(|p| p.values_mut()) {
        for op in item.as_object_mut().into_iter().flat_map(|i| i.values_mut()) {
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else { continue };
            for (_, response) in responses.iter_mut().filter(|(status, _)| status.starts_with('2')) {
                let Some(media) = response.pointer_mut("/content/application~1json") else { continue };
                if media.get("example").is_some() || media.get("examples").is_some() {
                    continue;
                }
                if let Some(example) = example_of(&components, &media["schema"], 0) {
                    media["example"] = example;
                }
            }
        }
    }
}

/// An example of `schema`, or `None` when the schema says too little to make one.
fn example_of(components: &Value, schema: &Value, depth: usize) -> Option<Value> {
    if depth > MAX_DEPTH {
        return None;
    }
    if let Some(example) = schema.get("example") {
        return Some(example.clone());
    }
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next()?;
        return example_of(components, &components[name], depth + 1);
    }
    if let Some(first) = schema["enum"].as_array().and_then(|names| names.first()) {
        return Some(first.clone());
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(branches) = schema[key].as_array() {
            return branches.iter().filter(|b| b["type"] != "null").find_map(|b| example_of(components, b, depth + 1));
        }
    }
    if let Some(parts) = schema["allOf"].as_array() {
        let mut merged = Map::new();
        for part in parts {
            if let Value::Object(o) = example_of(components, part, depth + 1)? {
                merged.extend(o);
            }
        }
        return Some(Value::Object(merged));
    }
    // `type` is a name or, for a nullable field, a list with "null": the non-null one.
    let kind = match &schema["type"] {
        Value::String(t) => t.as_str(),
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => return None,
    };
    Some(match kind {
        "object" => object(components, schema, depth)?,
        "array" => json!([example_of(components, &schema["items"], depth + 1)?]),
        "string" => string(schema),
        "integer" => json!(schema["minimum"].as_i64().unwrap_or(0).max(0)),
        "number" => json!(schema["minimum"].as_f64().unwrap_or(0.0).max(0.0)),
        "boolean" => json!(false),
        _ => Value::Null,
    })
}

fn object(components: &Value, schema: &Value, depth: usize) -> Option<Value> {
    let mut out = Map::new();
    for (name, property) in schema["properties"].as_object().into_iter().flatten() {
        match example_of(components, property, depth + 1) {
            Some(example) => {
                out.insert(name.clone(), example);
            }
            // A required field must be shown; an optional one can be left out.
            None if required(schema, name) => return None,
            None => {}
        }
    }
    Some(Value::Object(out))
}

fn required(schema: &Value, name: &str) -> bool {
    schema["required"].as_array().is_some_and(|r| r.iter().any(|n| n == name))
}

fn string(schema: &Value) -> Value {
    json!(match schema["format"].as_str() {
        Some("uuid") => "0192f0c4-0000-7000-8000-000000000001",
        Some("date-time") => "2026-06-15T07:00:00Z",
        Some("date") => "2026-06-14",
        Some("uri") => "https://switchboard.example.com/",
        _ => "text",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_without_an_example_gets_one_from_its_schema() {
        let mut doc = json!({
            "components": {"schemas": {
                "Status": {"type": "string", "enum": ["open", "closed"]},
                "Thing": {"type": "object", "required": ["id", "status", "at"], "properties": {
                    "id": {"type": "string", "format": "uuid"},
                    "status": {"$ref": "#/components/schemas/Status"},
                    "at": {"type": "string", "format": "date-time"},
                    "name": {"type": "string", "example": "Acme"},
                    "note": {"type": ["string", "null"]},
                    "count": {"type": "integer", "minimum": 1},
                }},
            }},
            "paths": {"/things": {"get": {"responses": {
                "200": {"content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Thing"}}}}},
                "201": {"content": {"application/json": {"example": {"kept": true}, "schema": {"type": "object"}}}},
                "404": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}},
            }}}},
        });
        answers(&mut doc);
        let responses = &doc["paths"]["/things"]["get"]["responses"];
        assert_eq!(
            responses["200"]["content"]["application/json"]["example"],
            json!([{"id": "0192f0c4-0000-7000-8000-000000000001", "status": "open", "at": "2026-06-15T07:00:00Z",
                "name": "Acme", "note": "text", "count": 1}])
        );
        assert_eq!(responses["201"]["content"]["application/json"]["example"], json!({"kept": true}));
        assert!(responses["404"]["content"]["application/json"].get("example").is_none(), "only 2xx answers");
    }

    #[test]
    fn a_schema_that_refers_to_itself_ends() {
        let components = json!({"Node": {"type": "object", "required": ["next"], "properties": {
            "next": {"$ref": "#/components/schemas/Node"}}}});
        assert_eq!(example_of(&components, &json!({"$ref": "#/components/schemas/Node"}), 0), None);
    }
}
