//! Validators for Clerk's webhook payloads, compiled from `openapi/webhooks-2025-04-15.yml`.
//!
//! OpenAPI 3.0 is not JSON Schema, so the event's request-body schema is turned into one:
//! `$ref`s to `#/components/schemas/*` are inlined, `nullable: true` becomes a `"null"` type
//! (and a `null` enum member), and an `allOf` of object schemas is merged into one object the
//! way OpenAPI code generators read it. Without the merge the spec contradicts itself: its
//! `SessionEventPayload` is `allOf: [Session, {properties: {user}, required: [user]}]` while
//! `Session` says `additionalProperties: false`, which in JSON Schema rejects every payload.

use anyhow::{anyhow, bail, Context as _};
use serde_json::{json, Map, Value};

/// The parsed spec.
pub struct WebhookSpec {
    doc: Value,
}

impl WebhookSpec {
    /// Loads the spec from the repository's `openapi/` folder.
    pub fn load() -> anyhow::Result<Self> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/webhooks-2025-04-15.yml");
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
        let doc: Value = serde_yaml::from_str(&text).with_context(|| format!("parsing {path}"))?;
        Ok(Self { doc })
    }

    /// The JSON Schema of the whole request body of `event_type` (envelope and `data`).
    pub fn event_schema(&self, event_type: &str) -> anyhow::Result<Value> {
        let raw = self
            .doc
            .pointer(&format!("/x-webhooks/{event_type}/post/requestBody/content/application~1json/schema"))
            .ok_or_else(|| anyhow!("the spec has no request-body schema for {event_type}"))?;
        let mut stack = vec![];
        let resolved = self.resolve(raw, &mut stack)?;
        Ok(normalize(resolved))
    }

    /// A compiled validator for `event_type`.
    pub fn validator(&self, event_type: &str) -> anyhow::Result<jsonschema::Validator> {
        let schema = self.event_schema(event_type)?;
        jsonschema::draft7::new(&schema).map_err(|e| anyhow!("the {event_type} schema does not compile: {e}"))
    }

    fn resolve(&self, value: &Value, stack: &mut Vec<String>) -> anyhow::Result<Value> {
        match value {
            Value::Object(obj) => {
                if let Some(reference) = obj.get("$ref").and_then(Value::as_str) {
                    let Some(name) = reference.strip_prefix("#/components/schemas/") else {
                        bail!("unsupported $ref {reference}");
                    };
                    if stack.iter().any(|s| s == name) {
                        bail!("recursive schema {name} (via {})", stack.join(" → "));
                    }
                    let target = self.doc.pointer(&format!("/components/schemas/{name}")).ok_or_else(|| anyhow!("dangling $ref {reference}"))?;
                    stack.push(name.to_string());
                    let resolved = self.resolve(target, stack);
                    stack.pop();
                    // OpenAPI 3.0 ignores the siblings of a $ref.
                    return resolved;
                }
                let mut out = Map::new();
                for (k, v) in obj {
                    // Examples are data, not schemas.
                    let v = if k == "example" || k == "examples" { v.clone() } else { self.resolve(v, stack)? };
                    out.insert(k.clone(), v);
                }
                Ok(Value::Object(out))
            }
            Value::Array(items) => items.iter().map(|v| self.resolve(v, stack)).collect::<anyhow::Result<Vec<_>>>().map(Value::Array),
            other => Ok(other.clone()),
        }
    }
}

/// `nullable` → JSON Schema, `allOf` of objects → one object; children first.
fn normalize(value: Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(normalize).collect()),
        Value::Object(obj) => {
            let mut obj: Map<String, Value> =
                obj.into_iter().map(|(k, v)| if k == "example" || k == "examples" { (k, v) } else { (k, normalize(v)) }).collect();
            merge_all_of(&mut obj);
            nullable(obj)
        }
        other => other,
    }
}

fn nullable(mut obj: Map<String, Value>) -> Value {
    if obj.remove("nullable") != Some(Value::Bool(true)) {
        return Value::Object(obj);
    }
    if let Some(Value::Array(values)) = obj.get_mut("enum") {
        values.push(Value::Null);
    }
    match obj.get("type").cloned() {
        Some(Value::String(t)) => {
            obj.insert("type".into(), json!([t, "null"]));
            Value::Object(obj)
        }
        _ => json!({ "anyOf": [Value::Object(obj), { "type": "null" }] }),
    }
}

fn merge_all_of(obj: &mut Map<String, Value>) {
    let Some(Value::Array(members)) = obj.get("allOf") else { return };
    let mergeable = members.iter().all(|m| {
        m.as_object().is_some_and(|m| m.keys().all(|k| ["type", "properties", "required", "additionalProperties", "description"].contains(&k.as_str())))
    });
    if !mergeable {
        return;
    }
    let Some(Value::Array(members)) = obj.remove("allOf") else { return };
    let mut properties = obj.remove("properties").and_then(|p| p.as_object().cloned()).unwrap_or_default();
    let mut required: Vec<Value> = obj.remove("required").and_then(|r| r.as_array().cloned()).unwrap_or_default();
    let mut closed = obj.get("additionalProperties") == Some(&Value::Bool(false));
    for member in members {
        let Value::Object(member) = member else { continue };
        closed |= member.get("additionalProperties") == Some(&Value::Bool(false));
        for (name, schema) in member.get("properties").and_then(Value::as_object).cloned().unwrap_or_default() {
            let merged = match properties.remove(&name) {
                Some(existing) => json!({ "allOf": [existing, schema] }),
                None => schema,
            };
            properties.insert(name, merged);
        }
        for r in member.get("required").and_then(Value::as_array).cloned().unwrap_or_default() {
            if !required.contains(&r) {
                required.push(r);
            }
        }
    }
    obj.insert("type".into(), json!("object"));
    obj.insert("properties".into(), Value::Object(properties));
    obj.insert("required".into(), Value::Array(required));
    if closed {
        obj.insert("additionalProperties".into(), Value::Bool(false));
    }
}

/// Every way `instance` breaks the `event_type` schema, one per line (empty: valid).
pub fn violations(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path)).collect()
}
