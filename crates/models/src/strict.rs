//! OpenAI's strict `json_schema` mode, and the way back to the caller's schema.
//!
//! Strict mode accepts only schemas in which every object lists all of its properties in
//! `required` and sets `additionalProperties: false`, and it rejects keywords such as `default`.
//! [`to_strict`] rewrites a caller's schema into that shape without changing what a reply
//! means: an optional property becomes required but nullable (`null` standing for "absent"),
//! objects are closed (a reply without extra properties still matches the original), and
//! keywords strict mode does not take are dropped (the reply is still validated against the
//! original schema afterwards, so a dropped constraint is checked there). When a schema cannot be
//! rewritten so (a free-form object, `oneOf`, `allOf`, `not`, conditionals, tuples,
//! non-local references), [`to_strict`] gives `None` and the schema is sent as it is, without
//! `strict`.
//!
//! [`restore`] undoes the nullable rewrite on a parsed reply: a `null` for an optional property
//! whose original schema does not allow `null` is replaced by the property's `default`, or
//! removed, so the value validates against the caller's schema.

use serde_json::{Map, Value};

/// Keywords strict mode rejects and that only annotate (or loosen nothing when dropped: the
/// reply is validated against the original schema anyway).
const DROPPED: &[&str] = &[
    "default",
    "examples",
    "$comment",
    "$schema",
    "$id",
    "deprecated",
    "readOnly",
    "writeOnly",
    "contentEncoding",
    "contentMediaType",
    "minLength",
    "maxLength",
    "minProperties",
    "maxProperties",
    "uniqueItems",
];

/// Keywords whose meaning strict mode cannot express: a schema using them is sent unstrict.
const IMPOSSIBLE: &[&str] = &[
    "allOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "patternProperties",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "propertyNames",
    "unevaluatedProperties",
    "unevaluatedItems",
    "contains",
    "minContains",
    "maxContains",
    "prefixItems",
    "additionalItems",
    "$dynamicRef",
    "$recursiveRef",
];

/// String formats strict mode understands; any other `format` is dropped.
const FORMATS: &[&str] = &[
    "date-time",
    "time",
    "date",
    "duration",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "uuid",
];

/// The deepest schema rewritten (strict mode itself allows far less nesting).
const MAX_DEPTH: usize = 64;

/// `schema` rewritten for strict mode, or `None` when that is impossible. The root must be an
/// object schema.
pub fn to_strict(schema: &Value) -> Option<Value> {
    if !is_object_schema(schema) {
        return None;
    }
    let mut out = schema.clone();
    strictify(&mut out, 0).then_some(out)
}

fn is_object_schema(schema: &Value) -> bool {
    match schema.get("type") {
        Some(Value::String(t)) => t == "object",
        _ => schema.get("properties").is_some(),
    }
}

fn types_of(node: &Map<String, Value>) -> Vec<&str> {
    match node.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Rewrites one schema in place; false when strict mode cannot express it.
fn strictify(node: &mut Value, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    let Value::Object(map) = node else {
        // `true`/`false` schemas: "anything" has no strict form.
        return false;
    };
    if IMPOSSIBLE.iter().any(|k| map.contains_key(*k)) {
        return false;
    }
    for k in DROPPED {
        map.remove(*k);
    }
    if let Some(Value::String(f)) = map.get("format")
        && !FORMATS.contains(&f.as_str())
    {
        map.remove("format");
    }
    if let Some(Value::String(r)) = map.get("$ref")
        && !(r.starts_with("#/$defs/") || r.starts_with("#/definitions/"))
    {
        return false;
    }
    for defs in ["$defs", "definitions"] {
        if let Some(d) = map.get_mut(defs) {
            let Value::Object(d) = d else { return false };
            if !d.values_mut().all(|s| strictify(s, depth + 1)) {
                return false;
            }
        }
    }
    if let Some(any) = map.get_mut("anyOf") {
        let Value::Array(branches) = any else {
            return false;
        };
        if !branches.iter_mut().all(|b| strictify(b, depth + 1)) {
            return false;
        }
    }
    let types: Vec<String> = types_of(map).into_iter().map(String::from).collect();
    let has_type = |t: &str| types.iter().any(|x| x == t);
    if has_type("array") || map.contains_key("items") {
        match map.get_mut("items") {
            Some(items @ Value::Object(_)) => {
                if !strictify(items, depth + 1) {
                    return false;
                }
            }
            // A tuple, or items of any kind: no strict form.
            _ => return false,
        }
    }
    if has_type("object") || map.contains_key("properties") {
        // A free-form object (no properties, or a map of any keys) cannot be closed without
        // changing what it accepts.
        match map.get("additionalProperties") {
            None | Some(Value::Bool(_)) => {}
            Some(_) => return false,
        }
        let required: Vec<String> = match map.get("required") {
            Some(Value::Array(r)) => r
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect(),
            _ => Vec::new(),
        };
        let Some(Value::Object(props)) = map.get_mut("properties") else {
            return false;
        };
        if props.is_empty() {
            return false;
        }
        for (name, prop) in props.iter_mut() {
            if !strictify(prop, depth + 1) {
                return false;
            }
            if !required.contains(name) {
                make_nullable(prop);
            }
        }
        let all: Vec<Value> = props.keys().cloned().map(Value::String).collect();
        map.insert("required".into(), Value::Array(all));
        map.insert("additionalProperties".into(), Value::Bool(false));
    }
    true
}

/// Lets a (strict) schema also accept `null`.
fn make_nullable(prop: &mut Value) {
    let Value::Object(map) = prop else { return };
    if accepts_null_here(map) {
        return;
    }
    match map.get_mut("type") {
        Some(Value::String(t)) => {
            let t = std::mem::take(t);
            map.insert(
                "type".into(),
                Value::Array(vec![Value::String(t), Value::String("null".into())]),
            );
        }
        Some(Value::Array(a)) => a.push(Value::String("null".into())),
        _ => {
            if let Some(Value::Array(branches)) = map.get_mut("anyOf") {
                branches.push(serde_json::json!({"type": "null"}));
            } else {
                let inner = Value::Object(std::mem::take(map));
                map.insert(
                    "anyOf".into(),
                    Value::Array(vec![inner, serde_json::json!({"type": "null"})]),
                );
            }
            return;
        }
    }
    if let Some(Value::Array(values)) = map.get_mut("enum")
        && !values.contains(&Value::Null)
    {
        values.push(Value::Null);
    }
}

/// Whether a schema node itself says `null` is fine (without following references).
fn accepts_null_here(map: &Map<String, Value>) -> bool {
    types_of(map).contains(&"null")
        || map.get("const") == Some(&Value::Null)
        || map
            .get("enum")
            .and_then(Value::as_array)
            .is_some_and(|e| e.contains(&Value::Null) && !map.contains_key("type"))
        || map.get("anyOf").and_then(Value::as_array).is_some_and(|b| {
            b.iter()
                .any(|b| b.as_object().is_some_and(accepts_null_here))
        })
}

/// Turns a reply to the strict form of `schema` back into one for `schema`: a `null` given for
/// an optional property that `schema` does not let be `null` becomes the property's `default`,
/// or is removed. Harmless on a reply to any other mode (it only touches such nulls).
pub fn restore(value: &mut Value, schema: &Value) {
    restore_at(value, schema, schema, 0);
}

/// Follows a local `$ref` (`#/$defs/X`, `#/definitions/X`).
fn resolve<'a>(node: &'a Value, root: &'a Value) -> &'a Value {
    let mut node = node;
    for _ in 0..16 {
        let Some(r) = node.get("$ref").and_then(Value::as_str) else {
            return node;
        };
        let Some(target) = r.strip_prefix('#').and_then(|p| root.pointer(p)) else {
            return node;
        };
        node = target;
    }
    node
}

fn restore_at(value: &mut Value, schema: &Value, root: &Value, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    let schema = resolve(schema, root);
    match value {
        Value::Object(obj) => {
            if let Some(Value::Object(props)) = schema.get("properties") {
                let required: Vec<&str> = schema
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                for (name, prop) in props {
                    let Some(v) = obj.get_mut(name) else { continue };
                    if v.is_null() && !required.contains(&name.as_str()) {
                        let prop = resolve(prop, root);
                        if !prop.as_object().is_some_and(accepts_null_here) {
                            match prop.get("default") {
                                Some(d) => *v = d.clone(),
                                None => {
                                    obj.remove(name);
                                }
                            }
                            continue;
                        }
                    }
                    restore_at(v, prop, root, depth + 1);
                }
            }
            // An object inside `anyOf`: the first object branch describes it.
            if let Some(Value::Array(branches)) = schema.get("anyOf")
                && let Some(branch) = branches.iter().find(|b| is_object_schema(resolve(b, root)))
            {
                restore_at(value, branch, root, depth + 1);
            }
        }
        Value::Array(items) => {
            let item_schema = schema.get("items").or_else(|| {
                schema
                    .get("anyOf")
                    .and_then(Value::as_array)
                    .and_then(|b| b.iter().find_map(|b| resolve(b, root).get("items")))
            });
            if let Some(item_schema) = item_schema {
                for item in items {
                    restore_at(item, item_schema, root, depth + 1);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan_like() -> Value {
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "Plan", "type": "object", "additionalProperties": false,
            "required": ["summary", "steps"],
            "properties": {
                "summary": {"type": "string", "description": "what"},
                "steps": {"type": "array", "items": {"$ref": "#/$defs/Step"}},
                "risks": {"type": "array", "default": [], "items": {"type": "string"}},
                "owner": {"$ref": "#/$defs/Kind"},
                "line": {"type": ["integer", "null"], "format": "uint64", "minimum": 0, "default": null}
            },
            "$defs": {
                "Step": {"type": "object", "required": ["id"], "properties": {
                    "id": {"type": "string", "minLength": 1},
                    "checks": {"type": "array", "default": [], "items": {"type": "string"}}
                }},
                "Kind": {"type": "string", "enum": ["a", "b"]}
            }
        })
    }

    #[test]
    fn optional_properties_become_required_and_nullable() {
        let strict = to_strict(&plan_like()).expect("strict form");
        assert!(strict.get("$schema").is_none());
        assert_eq!(
            strict["required"],
            json!(["line", "owner", "risks", "steps", "summary"])
        );
        assert_eq!(strict["additionalProperties"], false);
        assert_eq!(
            strict["properties"]["risks"]["type"],
            json!(["array", "null"])
        );
        assert!(strict["properties"]["risks"].get("default").is_none());
        assert_eq!(
            strict["properties"]["owner"],
            json!({"anyOf": [{"$ref": "#/$defs/Kind"}, {"type": "null"}]})
        );
        // Already nullable: unchanged but for the dropped keywords.
        assert_eq!(
            strict["properties"]["line"],
            json!({"type": ["integer", "null"], "minimum": 0})
        );
        let step = &strict["$defs"]["Step"];
        assert_eq!(step["required"], json!(["checks", "id"]));
        assert_eq!(step["additionalProperties"], false);
        assert!(step["properties"]["id"].get("minLength").is_none());
        assert_eq!(
            step["properties"]["checks"]["type"],
            json!(["array", "null"])
        );
        // Every object in the strict form is closed and lists all its properties.
        fn check(v: &Value) {
            if let Some(props) = v.get("properties").and_then(Value::as_object) {
                assert_eq!(v["additionalProperties"], false, "{v}");
                let req: Vec<&str> = v["required"]
                    .as_array()
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                for k in props.keys() {
                    assert!(req.contains(&k.as_str()), "{k} not required in {v}");
                }
            }
            match v {
                Value::Object(m) => m.values().for_each(check),
                Value::Array(a) => a.iter().for_each(check),
                _ => {}
            }
        }
        check(&strict);
        assert!(!strict.to_string().contains("\"default\""));
    }

    #[test]
    fn enums_get_null_and_impossible_schemas_are_refused() {
        let s = json!({"type": "object", "properties": {"k": {"type": "string", "enum": ["a"]}}});
        let strict = to_strict(&s).expect("strict");
        assert_eq!(strict["properties"]["k"]["enum"], json!(["a", null]));
        for impossible in [
            json!({"type": "object"}),
            json!({"type": "object", "properties": {"m": {"type": "object", "additionalProperties": {"type": "string"}}}}),
            json!({"type": "object", "properties": {"x": {"oneOf": [{"type": "string"}, {"type": "integer"}]}}}),
            json!({"type": "object", "properties": {"x": {"type": "array", "prefixItems": [{"type": "string"}]}}}),
            json!({"type": "object", "properties": {"x": {"type": "array"}}}),
            json!({"type": "object", "properties": {"x": {"$ref": "https://example.com/s.json"}}}),
            json!({"type": "object", "properties": {"x": true}}),
            json!({"type": "array", "items": {"type": "string"}}),
        ] {
            assert_eq!(to_strict(&impossible), None, "{impossible}");
        }
    }

    #[test]
    fn restore_applies_defaults_and_drops_nulls_so_the_original_validates() {
        let original = plan_like();
        let reply = json!({
            "summary": "s",
            "steps": [{"id": "s1", "checks": null}],
            "risks": null, "owner": null, "line": null
        });
        let strict = to_strict(&original).expect("strict");
        let strict_validator = jsonschema::validator_for(&strict).expect("strict schema");
        assert!(strict_validator.is_valid(&reply), "a strict reply");
        let validator = jsonschema::validator_for(&original).expect("schema");
        assert!(!validator.is_valid(&reply), "nulls break the original");
        let mut fixed = reply.clone();
        restore(&mut fixed, &original);
        assert_eq!(
            fixed,
            json!({"summary": "s", "steps": [{"id": "s1", "checks": []}], "risks": [], "line": null})
        );
        assert!(validator.is_valid(&fixed));
        // A required property that is null is left for validation to report.
        let mut bad = json!({"summary": null, "steps": []});
        restore(&mut bad, &original);
        assert_eq!(bad, json!({"summary": null, "steps": []}));
    }
}
