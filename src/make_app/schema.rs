//! From OpenAPI schemas to Make's parameter and interface lists, and from the spec's
//! examples to module samples.

use serde_json::{Map, Value, json};

/// The spec, for following `$ref`s.
pub struct Spec<'a>(pub &'a Value);

/// Depth at which nested objects stop being expanded (a cycle guard as much as a
/// readability limit: Make shows deeper data as "any").
const MAX_DEPTH: usize = 4;

impl Spec<'_> {
    /// Follows `$ref`s, unwraps `T | null` unions and merges `allOf` parts, so callers
    /// see one object schema with its `properties` and `required`.
    pub fn flatten(&self, schema: &Value) -> Value {
        let schema = self.resolve(schema);
        if let Some(parts) = schema["allOf"].as_array() {
            let (mut properties, mut required) = (Map::new(), vec![]);
            for part in parts {
                let part = self.flatten(part);
                properties.extend(part["properties"].as_object().cloned().unwrap_or_default());
                required.extend(part["required"].as_array().cloned().unwrap_or_default());
            }
            let mut merged = json!({"type": "object", "properties": properties, "required": required});
            copy_text(schema, &mut merged);
            return merged;
        }
        if let (Some(branches), Some(_)) = (schema["oneOf"].as_array(), schema.get("discriminator")) {
            let mut merged = self.common(branches);
            copy_text(schema, &mut merged);
            return merged;
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(branches) = schema[key].as_array() {
                let real: Vec<&Value> = branches.iter().filter(|b| b["type"] != json!("null")).collect();
                if let [only] = real.as_slice() {
                    let mut inner = self.flatten(only);
                    copy_text(schema, &mut inner);
                    return inner;
                }
            }
        }
        schema.clone()
    }

    /// What the branches of a discriminated `oneOf` (e.g. `Event`, one branch per event
    /// type) have in common, as one object schema: a property every branch has the same
    /// way stays; one whose branches differ in an enum of strings (the discriminator)
    /// becomes the enum of all their values; any other difference (e.g. `data`, typed per
    /// event type) becomes a plain object. The example is the first branch's.
    fn common(&self, branches: &[Value]) -> Value {
        let flats: Vec<Value> = branches.iter().map(|b| self.flatten(b)).collect();
        let Some(first) = flats.first() else { return json!({"type": "object"}) };
        let mut properties = Map::new();
        for (name, property) in first["properties"].as_object().into_iter().flatten() {
            let all: Vec<&Value> = flats.iter().filter_map(|f| f["properties"].get(name)).collect();
            if all.len() < flats.len() {
                continue;
            }
            let merged = if all.iter().all(|p| *p == property) {
                property.clone()
            } else if all.iter().all(|p| p["enum"].is_array() && p["type"] == json!("string")) {
                let values: Vec<Value> =
                    all.iter().flat_map(|p| p["enum"].as_array().cloned().unwrap_or_default()).collect();
                json!({"type": "string", "enum": values})
            } else {
                json!({"type": "object", "description": "Its fields depend on the branch (e.g. the event `type`)."})
            };
            properties.insert(name.clone(), merged);
        }
        let required: Vec<Value> = first["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| flats.iter().all(|f| f["required"].as_array().is_some_and(|a| a.contains(r))))
            .cloned()
            .collect();
        let mut merged = json!({"type": "object", "properties": properties, "required": required});
        if let Some(example) = first.get("example") {
            merged["example"] = example.clone();
        }
        merged
    }

    fn resolve<'s>(&'s self, mut schema: &'s Value) -> &'s Value {
        while let Some(r) = schema["$ref"].as_str() {
            match self.0.pointer(r.trim_start_matches('#')) {
                Some(target) => schema = target,
                None => break,
            }
        }
        schema
    }

    /// A named Make parameter for one property (mappable or static parameters).
    pub fn parameter(&self, name: &str, schema: &Value, required: bool) -> Value {
        let mut p = self.field(schema, 0, &Typing::Parameter);
        let object = p.as_object_mut().expect("a field is an object");
        object.insert("name".into(), json!(name));
        object.insert("label".into(), json!(label(name)));
        if required {
            object.insert("required".into(), json!(true));
        }
        sorted(p)
    }

    /// The fields of an object schema as Make parameters (request bodies).
    pub fn parameters(&self, schema: &Value, all_optional: bool) -> Vec<Value> {
        let flat = self.flatten(schema);
        let required = required_of(&flat);
        let mut out = vec![];
        for (name, property) in flat["properties"].as_object().into_iter().flatten() {
            if property["readOnly"] == json!(true) {
                continue;
            }
            out.push(self.parameter(name, property, !all_optional && required.contains(&name.as_str())));
        }
        out
    }

    /// A Make interface (output description) for a response schema.
    pub fn interface(&self, schema: &Value) -> Vec<Value> {
        let flat = self.flatten(schema);
        match flat["type"].as_str() {
            Some("object") | None if flat["properties"].is_object() => self.interface_fields(&flat, 0),
            _ => vec![],
        }
    }

    fn interface_fields(&self, flat: &Value, depth: usize) -> Vec<Value> {
        let mut out = vec![];
        for (name, property) in flat["properties"].as_object().into_iter().flatten() {
            let mut f = self.field(property, depth, &Typing::Interface);
            let object = f.as_object_mut().expect("a field is an object");
            object.insert("name".into(), json!(name));
            object.insert("label".into(), json!(label(name)));
            if object["type"] == json!("text") && (name.ends_with("_at") || property["format"] == json!("date-time")) {
                object.insert("type".into(), json!("date"));
            }
            out.push(sorted(f));
        }
        out
    }

    /// One field's type (and `spec`/`options`), without name and label.
    fn field(&self, schema: &Value, depth: usize, typing: &Typing) -> Value {
        let flat = self.flatten(schema);
        let mut f = Map::new();
        if let Some(help) = flat["description"].as_str().map(first_paragraph).filter(|h| !h.is_empty())
            && matches!(typing, Typing::Parameter)
        {
            f.insert("help".into(), json!(help));
        }
        let kind = primary_type(&flat);
        if let (Some(values), Typing::Parameter) = (flat["enum"].as_array(), typing) {
            f.insert("type".into(), json!("select"));
            f.insert("options".into(), options(values));
            return Value::Object(f);
        }
        let make_type = match kind.as_deref() {
            Some("string") => match flat["format"].as_str() {
                Some("date-time") => "date",
                Some("email") => "email",
                Some("uri" | "url") => "url",
                Some("uuid") => "uuid",
                // Make's time-zone picker gives IANA names, which is what the API takes.
                _ if flat["description"].as_str().is_some_and(|d| d.contains("IANA time zone")) => "timezone",
                _ => "text",
            },
            Some("integer") if flat["minimum"].as_f64().is_some_and(|m| m >= 0.0) => "uinteger",
            Some("integer") => "integer",
            Some("number") => "number",
            Some("boolean") => "boolean",
            Some("array") => {
                let items = self.flatten(&flat["items"]);
                if let (Some(values), Typing::Parameter) = (items["enum"].as_array(), typing) {
                    f.insert("type".into(), json!("select"));
                    f.insert("multiple".into(), json!(true));
                    f.insert("options".into(), options(values));
                    return Value::Object(f);
                }
                f.insert("type".into(), json!("array"));
                if depth < MAX_DEPTH {
                    let spec = if items["properties"].is_object() {
                        json!({"type": "collection", "spec": self.fields_of(&items, depth + 1, typing)})
                    } else {
                        let mut item = self.field(&items, depth + 1, typing);
                        item.as_object_mut().expect("a field is an object").remove("help");
                        item
                    };
                    f.insert("spec".into(), sorted(spec));
                }
                return Value::Object(f);
            }
            Some("object") | None if flat["properties"].is_object() => {
                f.insert("type".into(), json!("collection"));
                if depth < MAX_DEPTH {
                    f.insert("spec".into(), Value::Array(self.fields_of(&flat, depth + 1, typing)));
                }
                return Value::Object(f);
            }
            Some("object") => {
                // A map with known keys named in its description (`budgets`: `meta`, …).
                let keys = backticked(flat["description"].as_str().unwrap_or_default());
                if flat["additionalProperties"].is_object() && !keys.is_empty() {
                    let value = &flat["additionalProperties"];
                    let spec: Vec<Value> = keys
                        .iter()
                        .map(|k| {
                            let mut v = self.field(value, depth + 1, typing);
                            let o = v.as_object_mut().expect("a field is an object");
                            o.remove("help");
                            o.insert("name".into(), json!(k));
                            o.insert("label".into(), json!(label(k)));
                            sorted(v)
                        })
                        .collect();
                    f.insert("type".into(), json!("collection"));
                    f.insert("spec".into(), Value::Array(spec));
                    return Value::Object(f);
                }
                "any"
            }
            _ => "any",
        };
        f.insert("type".into(), json!(make_type));
        Value::Object(f)
    }

    fn fields_of(&self, flat: &Value, depth: usize, typing: &Typing) -> Vec<Value> {
        match typing {
            Typing::Interface => self.interface_fields(flat, depth),
            Typing::Parameter => {
                let required = required_of(flat);
                flat["properties"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(_, p)| p["readOnly"] != json!(true))
                    .map(|(name, property)| {
                        let mut f = self.field(property, depth, typing);
                        let o = f.as_object_mut().expect("a field is an object");
                        o.insert("name".into(), json!(name));
                        o.insert("label".into(), json!(label(name)));
                        if required.contains(&name.as_str()) {
                            o.insert("required".into(), json!(true));
                        }
                        sorted(f)
                    })
                    .collect()
            }
        }
    }

    /// A sample value for a schema: its example, else one built from its properties'
    /// examples; `None` when nothing in the spec shows one.
    pub fn sample(&self, schema: &Value) -> Option<Value> {
        let flat = self.flatten(schema);
        if let Some(example) = flat.get("example").or_else(|| schema.get("example")) {
            return Some(example.clone());
        }
        let properties = flat["properties"].as_object()?;
        let mut out = Map::new();
        for (name, property) in properties {
            let inner = self.flatten(property);
            // A closed set (a `$ref` to an enum carries no example of its own): its first name.
            let first_name = || inner["enum"].as_array().and_then(|names| names.first());
            if let Some(example) = inner.get("example").or_else(|| property.get("example")).or_else(first_name) {
                out.insert(name.clone(), example.clone());
            }
        }
        (!out.is_empty()).then_some(Value::Object(out))
    }
}

enum Typing {
    /// Input fields: enums become selects, descriptions become help.
    Parameter,
    /// Output fields: types only.
    Interface,
}

fn copy_text(from: &Value, to: &mut Value) {
    for key in ["description", "example"] {
        if let Some(v) = from.get(key)
            && let Some(o) = to.as_object_mut()
        {
            o.insert(key.into(), v.clone());
        }
    }
}

fn required_of(flat: &Value) -> Vec<&str> {
    flat["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect()
}

/// The type of a schema, ignoring `null` in a type list.
fn primary_type(flat: &Value) -> Option<String> {
    match &flat["type"] {
        Value::String(t) => Some(t.clone()),
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null").map(str::to_string),
        _ => None,
    }
}

fn options(values: &[Value]) -> Value {
    Value::Array(
        values
            .iter()
            .filter(|v| !v.is_null())
            .map(|v| {
                let text = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
                json!({"label": label(&text), "value": v})
            })
            .collect(),
    )
}

/// The words in backticks of a description, in order, without repeats.
pub fn backticked(text: &str) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    for word in text.split('`').skip(1).step_by(2) {
        if !word.is_empty() && !out.iter().any(|w| w == word) {
            out.push(word.to_string());
        }
    }
    out
}

/// The first paragraph of a description, on one line.
pub fn first_paragraph(text: &str) -> String {
    text.split("\n\n").next().unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `google_ads` → `Google ads`, `client.created` → `Client created`, `createdAt` →
/// `Created at`.
pub fn label(name: &str) -> String {
    let mut words = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if matches!(c, '_' | '-' | '.' | ' ') {
            words.push(' ');
            previous_lower = false;
        } else if c.is_ascii_uppercase() && previous_lower {
            words.push(' ');
            words.push(c.to_ascii_lowercase());
            previous_lower = false;
        } else {
            words.push(c);
            previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        }
    }
    let words = words.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => name.to_string(),
    }
}

/// Puts a field's keys in a fixed order (name, label, type first; the rest sorted),
/// so the generated files read well and never depend on map order.
pub fn sorted(v: Value) -> Value {
    let Value::Object(mut o) = v else { return v };
    let mut out = Map::new();
    for key in ["name", "label", "type"] {
        if let Some(x) = o.remove(key) {
            out.insert(key.into(), x);
        }
    }
    let mut rest: Vec<(String, Value)> = o.into_iter().collect();
    rest.sort_by(|a, b| a.0.cmp(&b.0));
    out.extend(rest);
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_discriminated_one_of_flattens_to_what_its_branches_share() {
        let doc = json!({"components": {"schemas": {
            "A": {"type": "object", "required": ["id", "type", "data"], "example": {"type": "a"}, "properties": {
                "id": {"type": "string"}, "type": {"type": "string", "enum": ["a"]}, "data": {"$ref": "#/components/schemas/X"},
                "only_a": {"type": "string"}}},
            "B": {"type": "object", "required": ["id", "type"], "properties": {
                "id": {"type": "string"}, "type": {"type": "string", "enum": ["b"]}, "data": {"type": "integer"}}},
            "X": {"type": "object", "properties": {"x": {"type": "string"}}},
        }}});
        let either = json!({"oneOf": [{"$ref": "#/components/schemas/A"}, {"$ref": "#/components/schemas/B"}],
            "discriminator": {"propertyName": "type"}});
        let flat = Spec(&doc).flatten(&either);
        assert_eq!(flat["properties"]["id"], json!({"type": "string"}));
        assert_eq!(flat["properties"]["type"], json!({"type": "string", "enum": ["a", "b"]}));
        assert_eq!(flat["properties"]["data"]["type"], "object");
        assert!(flat["properties"].get("only_a").is_none());
        assert_eq!(flat["required"], json!(["id", "type"]));
        assert_eq!(flat["example"], json!({"type": "a"}));
    }

    #[test]
    fn labels_read_as_words() {
        assert_eq!(label("google_ads"), "Google ads");
        assert_eq!(label("client.created"), "Client created");
        assert_eq!(label("idempotencyKey"), "Idempotency key");
        assert_eq!(label("*"), "*");
    }

    #[test]
    fn backticked_words_in_order() {
        assert_eq!(backticked("per platform (`meta`, `google_ads`, `meta`)"), ["meta", "google_ads"]);
    }
}
