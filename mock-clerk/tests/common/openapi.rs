//! Validates JSON against a schema of Clerk's published OpenAPI specs (`openapi/`).
//!
//! OpenAPI 3.0 schemas are not quite JSON Schema: `nullable: true` is turned into
//! `anyOf: [{type: null}, schema]`, and every `$ref` resolves inside the same document
//! (the spec's `components` are kept at the root).

use serde_json::{json, Map, Value};

fn convert(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out: Map<String, Value> = map
                .iter()
                .filter(|(k, _)| !k.starts_with("x-") && *k != "discriminator" && *k != "nullable" && *k != "example")
                .map(|(k, v)| (k.clone(), convert(v)))
                .collect();
            if map.get("nullable") == Some(&Value::Bool(true)) {
                let inner = Value::Object(std::mem::take(&mut out));
                out.insert("anyOf".into(), json!([{ "type": "null" }, inner]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(convert).collect()),
        other => other.clone(),
    }
}

/// The converted `components` of a spec, parsed once per process (the files are large).
fn components(spec: &str) -> Value {
    static CACHE: std::sync::Mutex<Vec<(String, Value)>> = std::sync::Mutex::new(Vec::new());
    let mut cache = CACHE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, v)) = cache.iter().find(|(name, _)| name == spec) {
        return v.clone();
    }
    let path = format!("{}/../openapi/{spec}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let doc: Value = serde_yaml::from_str(&text).expect("spec is YAML");
    let converted = convert(&doc["components"]);
    cache.push((spec.to_string(), converted.clone()));
    converted
}

/// A validator for `components.schemas.<name>` of the spec file `spec` (e.g. `bapi-2025-11-10.yml`).
pub fn validator(spec: &str, name: &str) -> jsonschema::Validator {
    let components = components(spec);
    assert!(components["schemas"].get(name).is_some(), "{spec} has no schema {name}");
    let schema = json!({ "$ref": format!("#/components/schemas/{name}"), "components": components });
    jsonschema::options().with_draft(jsonschema::Draft::Draft7).build(&schema).unwrap_or_else(|e| panic!("schema {name} does not compile: {e}"))
}

/// Panics with every validation error if `instance` does not match.
pub fn assert_valid(validator: &jsonschema::Validator, instance: &Value, what: &str) {
    let errors: Vec<String> = validator.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path)).collect();
    assert!(errors.is_empty(), "{what} does not match Clerk's OpenAPI schema:\n{}\n{instance:#}", errors.join("\n"));
}

/// A validator for the JSON response of `method path` with status `code` (inline schemas of
/// `paths`, e.g. `/api_keys/verify`), `$ref`s resolving to the spec's components.
pub fn response_validator(spec: &str, path: &str, method: &str, code: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(format!("{}/../openapi/{spec}", env!("CARGO_MANIFEST_DIR"))).expect("spec");
    let doc: Value = serde_yaml::from_str(&text).expect("spec is YAML");
    let schema = doc["paths"][path][method]["responses"][code]["content"]["application/json"]["schema"].clone();
    assert!(!schema.is_null(), "{spec} has no JSON response {code} for {method} {path}");
    let mut root = convert(&schema);
    root["components"] = components(spec);
    jsonschema::options().with_draft(jsonschema::Draft::Draft7).build(&root).unwrap_or_else(|e| panic!("{method} {path} {code} does not compile: {e}"))
}
