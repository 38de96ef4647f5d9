//! JSON Schemas as MCP clients take them, and argument checking against them.
//!
//! Schemas come from the argument and result types (schemars, draft 2020-12) with every
//! subschema inlined — some clients do not follow `$ref` — and without schemars' non-standard
//! integer `format`s (`uint32`, …), which JSON-Schema validators in clients warn about. A
//! free-form value gets an explicit "any JSON value" schema rather than an empty one.

use rmcp::model::JsonObject;
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Value, json};
use std::sync::Arc;

/// The schema of `T` as a tool's input (`for_output: false`) or output.
pub fn schema_for<T: JsonSchema>(for_output: bool) -> Arc<JsonObject> {
    let mut settings = SchemaSettings::draft2020_12().with(|s| s.inline_subschemas = true);
    if for_output {
        settings = settings.for_serialize();
    }
    let schema = settings.into_generator().into_root_schema_for::<T>();
    let value = serde_json::to_value(schema).unwrap_or(Value::Null);
    Arc::new(object_schema(value))
}

/// A tool schema from its JSON (its root is an object type), made portable.
pub fn object_schema(mut value: Value) -> JsonObject {
    portable(&mut value);
    let Value::Object(mut map) = value else {
        return JsonObject::new();
    };
    // The tool's own title and description say what the root is.
    map.remove("title");
    map.remove("description");
    map
}

const NON_STANDARD_FORMATS: [&str; 11] = [
    "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "double",
    "float",
];

fn portable(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(d)) = m.get_mut("description") {
                *d = unwrap_lines(d);
            }
            if m.get("format")
                .and_then(Value::as_str)
                .is_some_and(|f| NON_STANDARD_FORMATS.contains(&f))
            {
                m.remove("format");
            }
            for (key, sub) in m.iter_mut() {
                // Keys whose values are maps of schemas, lists of schemas, or one schema.
                match key.as_str() {
                    "properties" | "$defs" | "patternProperties" => {
                        if let Value::Object(props) = sub {
                            for s in props.values_mut() {
                                portable_subschema(s);
                            }
                        }
                    }
                    "items"
                    | "additionalProperties"
                    | "not"
                    | "if"
                    | "then"
                    | "else"
                    | "contains"
                    | "propertyNames" => portable_subschema(sub),
                    "anyOf" | "oneOf" | "allOf" | "prefixItems" => {
                        if let Value::Array(list) = sub {
                            list.iter_mut().for_each(portable_subschema);
                        }
                    }
                    _ => {}
                }
            }
            consts_to_enum(m);
            nullable_enum(m);
        }
        Value::Array(a) => a.iter_mut().for_each(portable),
        _ => {}
    }
}

/// A `oneOf` of `const`s (what schemars makes of an enum whose variants have doc comments)
/// becomes a plain `enum`, which clients show as a choice and validators report as "not one
/// of …"; the variants' descriptions go into the description.
fn consts_to_enum(m: &mut JsonObject) {
    let Some(Value::Array(branches)) = m.get("oneOf") else {
        return;
    };
    let mut values = Vec::new();
    let mut described = Vec::new();
    for b in branches {
        let extra = b.as_object().is_none_or(|o| {
            o.keys()
                .any(|k| !matches!(k.as_str(), "const" | "enum" | "description" | "type"))
        });
        if extra {
            return;
        }
        let these: Vec<Value> = match (b.get("const"), b.get("enum")) {
            (Some(c), None) => vec![c.clone()],
            (None, Some(Value::Array(e))) => e.clone(),
            _ => return,
        };
        if let Some(d) = b.get("description").and_then(Value::as_str) {
            let names: Vec<String> = these
                .iter()
                .map(|v| format!("`{}`", v.as_str().unwrap_or_default()))
                .collect();
            described.push(format!("{}: {}", names.join(", "), unwrap_lines(d)));
        }
        values.extend(these);
    }
    m.remove("oneOf");
    if values.iter().all(Value::is_string) && !m.contains_key("type") {
        m.insert("type".into(), json!("string"));
    }
    m.insert("enum".into(), Value::Array(values));
    if !described.is_empty() {
        let base = m
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let text = if base.is_empty() {
            described.join("; ")
        } else {
            format!("{base} ({})", described.join("; "))
        };
        m.insert("description".into(), json!(text));
    }
}

/// `anyOf: [{enum: [...]}, {type: null}]` (an optional enum) becomes one nullable `enum`.
fn nullable_enum(m: &mut JsonObject) {
    let Some(Value::Array(branches)) = m.get("anyOf") else {
        return;
    };
    let [a, b] = branches.as_slice() else {
        return;
    };
    let is_null = |v: &Value| v == &json!({"type": "null"});
    let (inner, _) = match (is_null(a), is_null(b)) {
        (false, true) => (a, b),
        (true, false) => (b, a),
        _ => return,
    };
    let Some(inner) = inner.as_object() else {
        return;
    };
    if inner.get("type") != Some(&json!("string"))
        || !inner
            .keys()
            .all(|k| matches!(k.as_str(), "type" | "enum" | "description"))
    {
        return;
    }
    let Some(Value::Array(values)) = inner.get("enum") else {
        return;
    };
    let mut values = values.clone();
    values.push(Value::Null);
    let description = inner.get("description").cloned();
    m.remove("anyOf");
    m.insert("type".into(), json!(["string", "null"]));
    m.insert("enum".into(), Value::Array(values));
    if let (Some(d), false) = (description, m.contains_key("description")) {
        m.insert("description".into(), d);
    }
}

/// Doc comments wrap lines; a description is one paragraph per blank-line-separated block.
fn unwrap_lines(text: &str) -> String {
    text.split("\n\n")
        .map(|p| p.split('\n').map(str::trim).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// A subschema: `true` or `{}` (any value) is spelled out, so clients show it as "any JSON".
fn portable_subschema(s: &mut Value) {
    let any = matches!(s, Value::Bool(true)) || s.as_object().is_some_and(|m| m.is_empty());
    if any {
        *s = json!({"description": "Any JSON value."});
        return;
    }
    if let Value::Object(m) = s
        && m.len() == 1
        && m.contains_key("description")
    {
        return;
    }
    portable(s);
}

/// Checks `args` against a compiled input schema; `None` when they fit, else one message that
/// names every argument that is wrong and what is expected.
pub fn argument_errors(
    tool: &str,
    validator: &jsonschema::Validator,
    args: &Value,
) -> Option<String> {
    let mut lines: Vec<String> = validator
        .iter_errors(args)
        .map(|e| {
            let path = e.instance_path().to_string();
            let at = path.trim_start_matches('/').replace('/', ".");
            if at.is_empty() {
                format!("- {e}")
            } else {
                format!("- argument `{at}`: {e}")
            }
        })
        .collect();
    if lines.is_empty() {
        return None;
    }
    lines.sort();
    lines.dedup();
    Some(format!(
        "invalid arguments for `{tool}`:\n{}\n(the tool's input schema lists every argument, its type and its allowed values)",
        lines.join("\n")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(schemars::JsonSchema, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Args {
        /// How
        /// many.
        n: u32,
        any: Option<Value>,
        kind: Option<Kind>,
    }

    #[derive(schemars::JsonSchema, serde::Deserialize)]
    #[serde(rename_all = "snake_case")]
    #[allow(dead_code)]
    enum Kind {
        /// Not much.
        Low,
        High,
    }

    #[test]
    fn schemas_are_inlined_and_use_standard_formats_only() {
        let s = Value::Object(schema_for::<Args>(false).as_ref().clone());
        let text = s.to_string();
        assert!(!text.contains("$ref"), "{text}");
        assert!(!text.contains("uint32"), "{text}");
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(s["properties"]["n"]["minimum"], 0);
        assert!(text.contains("\"low\""), "{text}");
        assert_eq!(
            s["properties"]["kind"]["enum"],
            json!(["high", "low", null]),
            "{text}"
        );
        assert!(s.get("title").is_none());
        assert_eq!(s["properties"]["n"]["description"], "How many.");
    }

    #[test]
    fn errors_name_each_argument() {
        let schema = Value::Object(schema_for::<Args>(false).as_ref().clone());
        let v = jsonschema::validator_for(&schema).unwrap();
        let msg =
            argument_errors("t", &v, &json!({"n": -1, "kind": "middle", "extra": true})).unwrap();
        assert!(msg.contains("argument `n`"), "{msg}");
        assert!(msg.contains("argument `kind`"), "{msg}");
        assert!(msg.contains("'extra' was unexpected"), "{msg}");
        assert!(argument_errors("t", &v, &json!({"n": 1})).is_none());
    }
}
