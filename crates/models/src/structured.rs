//! Structured output: the three request modes, the learned mode per endpoint, lenient JSON
//! extraction from a reply, validation, and the repair prompt.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::SchemaIssue;

/// How a schema is asked for. Tried in this order until an endpoint accepts one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StructuredMode {
    /// `response_format: {type: json_schema, json_schema: {strict: true, …}}`.
    JsonSchema,
    /// `response_format: {type: json_object}`, the schema in the system prompt.
    JsonObject,
    /// No `response_format`; the schema in the system prompt only.
    PromptOnly,
}

impl StructuredMode {
    /// The next, less demanding mode, if any.
    pub fn next(self) -> Option<StructuredMode> {
        match self {
            StructuredMode::JsonSchema => Some(StructuredMode::JsonObject),
            StructuredMode::JsonObject => Some(StructuredMode::PromptOnly),
            StructuredMode::PromptOnly => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StructuredMode::JsonSchema => "json_schema",
            StructuredMode::JsonObject => "json_object",
            StructuredMode::PromptOnly => "prompt_only",
        }
    }

    /// Whether the schema goes into the system prompt in this mode.
    pub fn schema_in_prompt(self) -> bool {
        !matches!(self, StructuredMode::JsonSchema)
    }
}

/// The working mode per endpoint, keyed by `"{base_url} {model}"`. Serializable so the host
/// can persist it between processes ([`crate::ModelClient::learned_modes`]).
pub type LearnedModes = BTreeMap<String, StructuredMode>;

/// The key of an endpoint in [`LearnedModes`].
pub fn endpoint_key(base_url: &str, model: &str) -> String {
    format!("{base_url} {model}")
}

/// The system-prompt paragraph that carries the schema in `json_object` and prompt-only modes.
pub(crate) fn schema_instruction(schema: &serde_json::Value) -> String {
    format!(
        "Reply with one JSON value that validates against this JSON Schema, and nothing else \
         (no prose, no Markdown fences):\n{}",
        serde_json::to_string_pretty(schema).unwrap_or_else(|_| schema.to_string())
    )
}

/// The follow-up user message of a repair round.
pub(crate) fn repair_prompt(issues: &[SchemaIssue]) -> String {
    let list: Vec<String> = issues.iter().map(|i| format!("- {i}")).collect();
    format!(
        "Your reply did not validate against the JSON Schema. Validation errors:\n{}\n\
         Reply again with only the corrected JSON value.",
        list.join("\n")
    )
}

/// Finds the first complete JSON value in a model reply: skips `<think>…</think>` blocks,
/// Markdown fences and leading prose, ignores anything after the value.
pub fn extract_json(text: &str) -> Option<serde_json::Value> {
    let text = strip_think(text);
    let trimmed = text.trim();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(trimmed) {
        return Some(v);
    }
    // Prefer the inside of a fenced block, then any `{`/`[` in the text.
    for candidate in fenced_blocks(trimmed)
        .into_iter()
        .chain(std::iter::once(trimmed))
    {
        for (i, c) in candidate.char_indices() {
            if c != '{' && c != '[' {
                continue;
            }
            let mut stream = serde_json::Deserializer::from_str(&candidate[i..])
                .into_iter::<serde_json::Value>();
            if let Some(Ok(v)) = stream.next() {
                return Some(v);
            }
        }
    }
    None
}

fn strip_think(text: &str) -> &str {
    let t = text.trim_start();
    if t.starts_with("<think>")
        && let Some(end) = t.find("</think>")
    {
        return &t[end + "</think>".len()..];
    }
    text
}

fn fenced_blocks(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        // Skip the info string (`json`, …) up to the end of the line.
        let body_start = after.find('\n').map_or(after.len(), |i| i + 1);
        let body = &after[body_start..];
        match body.find("```") {
            Some(end) => {
                out.push(&body[..end]);
                rest = &body[end + 3..];
            }
            None => {
                out.push(body);
                break;
            }
        }
    }
    out
}

/// Validates `value`, returning the issues (empty when valid), at most `limit` of them.
pub(crate) fn validate(
    validator: &jsonschema::Validator,
    value: &serde_json::Value,
    limit: usize,
) -> Vec<SchemaIssue> {
    validator
        .iter_errors(value)
        .take(limit)
        .map(|e| SchemaIssue {
            path: e.instance_path().to_string(),
            message: e.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn extracts_from_fences_prose_and_think_blocks() {
        assert_eq!(extract_json("{\"a\":1}"), Some(json!({"a":1})));
        assert_eq!(
            extract_json("Sure! Here it is:\n```json\n{\"a\": [1, 2]}\n```\nAnything else?"),
            Some(json!({"a":[1,2]}))
        );
        assert_eq!(
            extract_json("The {braces} here are prose. {\"ok\": true} trailing"),
            Some(json!({"ok":true}))
        );
        assert_eq!(
            extract_json("<think>maybe {\"no\": 1}</think>\n{\"yes\": 2}"),
            Some(json!({"yes":2}))
        );
        assert_eq!(extract_json("```\n[1,2]\n```"), Some(json!([1, 2])));
        assert_eq!(extract_json("no json at all"), None);
        assert_eq!(extract_json("{\"unterminated\": "), None);
    }

    #[test]
    fn validation_reports_paths() {
        let schema = json!({"type":"object","required":["steps"],
            "properties":{"steps":{"type":"array","items":{"type":"string"}}}});
        let v = jsonschema::validator_for(&schema).expect("schema");
        assert!(validate(&v, &json!({"steps":["a"]}), 5).is_empty());
        let issues = validate(&v, &json!({"steps":["a", 3]}), 5);
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].path, "/steps/1");
        let issues = validate(&v, &json!({}), 5);
        assert_eq!(issues[0].path, "");
        assert!(issues[0].message.contains("steps"), "{:?}", issues);
    }

    #[test]
    fn modes_degrade_in_order() {
        assert_eq!(
            StructuredMode::JsonSchema.next(),
            Some(StructuredMode::JsonObject)
        );
        assert_eq!(
            StructuredMode::JsonObject.next(),
            Some(StructuredMode::PromptOnly)
        );
        assert_eq!(StructuredMode::PromptOnly.next(), None);
    }
}
