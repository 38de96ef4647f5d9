//! Structured output: the request modes, the mode learned per endpoint (with when it was
//! learned, so it expires), lenient JSON extraction from a reply, validation, and the repair
//! prompt.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use ao_core::config::Provider;
use serde::{Deserialize, Serialize};

use crate::error::SchemaIssue;

/// How a schema is asked for. Tried in this order until an endpoint accepts one; only a
/// rejection that concerns the response format moves to the next (see the crate doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StructuredMode {
    /// `response_format: {type: json_schema, json_schema: {…}}`, strict when the schema can be
    /// made strict (see [`crate::strict`]).
    JsonSchema,
    /// `response_format: {type: json_object, schema: …}` (llama.cpp and others constrain the
    /// output with a grammar built from it), the schema also in the system prompt.
    JsonObjectSchema,
    /// `response_format: {type: json_object}`, the schema in the system prompt.
    JsonObject,
    /// No `response_format`; the schema in the system prompt only.
    PromptOnly,
}

impl StructuredMode {
    /// The next, less demanding mode, if any.
    pub fn next(self) -> Option<StructuredMode> {
        match self {
            StructuredMode::JsonSchema => Some(StructuredMode::JsonObjectSchema),
            StructuredMode::JsonObjectSchema => Some(StructuredMode::JsonObject),
            StructuredMode::JsonObject => Some(StructuredMode::PromptOnly),
            StructuredMode::PromptOnly => None,
        }
    }

    /// The mode tried first against an endpoint nothing has been learned about. The llama.cpp
    /// server answers `json_schema` with a 500 but constrains `json_object` with a schema.
    pub fn first_for(provider: Provider) -> StructuredMode {
        match provider {
            Provider::LlamaCpp => StructuredMode::JsonObjectSchema,
            _ => StructuredMode::JsonSchema,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StructuredMode::JsonSchema => "json_schema",
            StructuredMode::JsonObjectSchema => "json_object_schema",
            StructuredMode::JsonObject => "json_object",
            StructuredMode::PromptOnly => "prompt_only",
        }
    }

    /// Whether the schema goes into the system prompt in this mode.
    pub fn schema_in_prompt(self) -> bool {
        !matches!(self, StructuredMode::JsonSchema)
    }

    /// Whether this mode sends a `response_format` (which an endpoint may reject).
    pub fn sends_response_format(self) -> bool {
        !matches!(self, StructuredMode::PromptOnly)
    }
}

impl std::fmt::Display for StructuredMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How long a learned mode is trusted before the endpoint is probed again from the first mode
/// (a server may be upgraded, a proxy may be pointed elsewhere). See
/// [`crate::ModelClient::with_learned_mode_lifetime`].
pub const LEARNED_MODE_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// The structured-output mode that worked for one endpoint (base URL + model), and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LearnedMode {
    pub base_url: String,
    pub model: String,
    pub mode: StructuredMode,
    /// Unix time (seconds) when the mode was learned.
    pub learned_at: u64,
    /// Why a weaker mode than the first was learned: the endpoint's rejection, shortened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl LearnedMode {
    /// Whether the mode is too old to trust at `now` (a time in the future counts as expired:
    /// the record is not trustworthy).
    pub fn is_expired(&self, now: SystemTime, lifetime: Duration) -> bool {
        let now = unix_secs(now);
        self.learned_at > now || now - self.learned_at >= lifetime.as_secs()
    }

    /// When the mode expires, in Unix seconds.
    pub fn expires_at(&self, lifetime: Duration) -> u64 {
        self.learned_at.saturating_add(lifetime.as_secs())
    }
}

pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The learned modes, by endpoint. Serializable (a JSON object keyed by
/// `"{base_url} {model}"`) so the host can persist it between processes
/// ([`crate::ModelClient::learned_modes`], [`crate::ModelClient::import_learned_modes`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LearnedModes(BTreeMap<String, LearnedMode>);

impl LearnedModes {
    pub fn new() -> Self {
        Self::default()
    }

    /// The mode learned for an endpoint, expired or not.
    pub fn get(&self, base_url: &str, model: &str) -> Option<&LearnedMode> {
        self.0.get(&endpoint_key(base_url, model))
    }

    /// Records a mode (replacing what was known about the endpoint).
    pub fn insert(&mut self, learned: LearnedMode) {
        self.0
            .insert(endpoint_key(&learned.base_url, &learned.model), learned);
    }

    /// Forgets an endpoint; whether it was known.
    pub fn remove(&mut self, base_url: &str, model: &str) -> bool {
        self.0.remove(&endpoint_key(base_url, model)).is_some()
    }

    /// Keeps the entries `keep` accepts; returns how many were dropped.
    pub fn retain(&mut self, mut keep: impl FnMut(&LearnedMode) -> bool) -> usize {
        let before = self.0.len();
        self.0.retain(|_, v| keep(v));
        before - self.0.len()
    }

    /// Adds `other`; for an endpoint known to both, the more recently learned entry wins.
    pub fn merge(&mut self, other: LearnedModes) {
        for (k, v) in other.0 {
            match self.0.get(&k) {
                Some(mine) if mine.learned_at >= v.learned_at => {}
                _ => {
                    self.0.insert(k, v);
                }
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &LearnedMode> {
        self.0.values()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The key of an endpoint in [`LearnedModes`]' serialized form.
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

/// Finds the JSON value in a model reply: skips a leading `<think>…</think>` block, Markdown
/// fences and prose, ignores anything after the value. Without a schema to tell candidates
/// apart, a top-level object is preferred over an earlier array (prose such as "see \[1\]" holds
/// small arrays); see [`extract_json_matching`].
pub fn extract_json(text: &str) -> Option<serde_json::Value> {
    let sources = candidates(text);
    prefer_object(&sources)
}

/// Like [`extract_json`], but the first candidate value that validates against `validator`
/// wins; when none does, the choice [`extract_json`] makes (so the repair prompt can name the
/// issues).
pub fn extract_json_matching(
    text: &str,
    validator: &jsonschema::Validator,
) -> Option<serde_json::Value> {
    extract_json_prepared(text, validator, &|_| {})
}

/// Like [`extract_json_matching`], each candidate first passed through `prepare` (which turns
/// a reply to a strict schema back into one for the caller's schema, see [`crate::strict`]).
pub(crate) fn extract_json_prepared(
    text: &str,
    validator: &jsonschema::Validator,
    prepare: &dyn Fn(&mut serde_json::Value),
) -> Option<serde_json::Value> {
    let mut sources = candidates(text);
    for value in sources.iter_mut().flatten() {
        prepare(value);
    }
    sources
        .iter()
        .flatten()
        .find(|v| validator.is_valid(v))
        .cloned()
        .or_else(|| prefer_object(&sources))
}

/// At most this many candidate values are collected from one reply.
const MAX_CANDIDATES: usize = 64;

/// The candidate values of a reply, grouped by where they were found, best place first: the
/// whole reply, then each fenced block, then the top-level `{…}`/`[…]` values in the text
/// (a value nested inside an earlier candidate is not a candidate of its own).
fn candidates(text: &str) -> Vec<Vec<serde_json::Value>> {
    let text = strip_think(text);
    let trimmed = text.trim();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(trimmed) {
        return vec![vec![v]];
    }
    let mut out = Vec::new();
    let mut total = 0;
    for source in fenced_blocks(trimmed)
        .into_iter()
        .chain(std::iter::once(trimmed))
    {
        let mut found = Vec::new();
        let mut next_free = 0;
        for (i, c) in source.char_indices() {
            if i < next_free || (c != '{' && c != '[') {
                continue;
            }
            if total >= MAX_CANDIDATES {
                break;
            }
            let mut stream =
                serde_json::Deserializer::from_str(&source[i..]).into_iter::<serde_json::Value>();
            if let Some(Ok(v)) = stream.next() {
                next_free = i + stream.byte_offset();
                found.push(v);
                total += 1;
            }
        }
        if !found.is_empty() {
            out.push(found);
        }
    }
    out
}

/// From the first place that holds any value: its first object, else its first value.
fn prefer_object(sources: &[Vec<serde_json::Value>]) -> Option<serde_json::Value> {
    let first = sources.first()?;
    first
        .iter()
        .find(|v| v.is_object())
        .or_else(|| first.first())
        .cloned()
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
    fn prefers_the_value_matching_the_schema_over_an_earlier_array() {
        let text = "Based on [1], here is the plan: {\"steps\":[\"a\"]}";
        // Without a schema: the top-level object, not the citation.
        assert_eq!(extract_json(text), Some(json!({"steps": ["a"]})));
        let plan = jsonschema::validator_for(&json!({"type": "object", "required": ["steps"]}))
            .expect("schema");
        assert_eq!(
            extract_json_matching(text, &plan),
            Some(json!({"steps": ["a"]}))
        );
        // A schema that wants an array takes the array.
        let list =
            jsonschema::validator_for(&json!({"type": "array", "items": {"type": "string"}}))
                .expect("schema");
        assert_eq!(
            extract_json_matching("Steps {\"n\": 2}: [\"a\", \"b\"]", &list),
            Some(json!(["a", "b"]))
        );
        // The schema picks the second of two objects; nested values are not candidates.
        assert_eq!(
            extract_json_matching("{\"draft\": {\"steps\": 1}} then {\"steps\": []}", &plan),
            Some(json!({"steps": []}))
        );
        // Nothing validates: the schemaless choice, for the repair prompt.
        assert_eq!(
            extract_json_matching("see [1] and {\"x\": 1}", &plan),
            Some(json!({"x": 1}))
        );
        // Fences and <think> still apply.
        assert_eq!(
            extract_json_matching(
                "<think>{\"steps\": [\"no\"]}</think>Per [2]:\n```json\n{\"steps\": [\"yes\"]}\n```",
                &plan
            ),
            Some(json!({"steps": ["yes"]}))
        );
        assert_eq!(
            extract_json("```\n[1,2]\n``` and {\"x\": 1}"),
            Some(json!([1, 2]))
        );
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
        let mut order = vec![StructuredMode::JsonSchema];
        while let Some(next) = order.last().and_then(|m| m.next()) {
            order.push(next);
        }
        assert_eq!(
            order,
            [
                StructuredMode::JsonSchema,
                StructuredMode::JsonObjectSchema,
                StructuredMode::JsonObject,
                StructuredMode::PromptOnly
            ]
        );
        assert_eq!(
            StructuredMode::first_for(Provider::LlamaCpp),
            StructuredMode::JsonObjectSchema
        );
        assert_eq!(
            StructuredMode::first_for(Provider::OpenAi),
            StructuredMode::JsonSchema
        );
    }

    fn learned(model: &str, mode: StructuredMode, at: u64) -> LearnedMode {
        LearnedMode {
            base_url: "http://h/v1".into(),
            model: model.into(),
            mode,
            learned_at: at,
            reason: None,
        }
    }

    #[test]
    fn learned_modes_expire_merge_and_round_trip() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let day = Duration::from_secs(86_400);
        let fresh = learned("a", StructuredMode::JsonObject, 1_000_000 - 3600);
        assert!(!fresh.is_expired(now, day));
        let old = learned("a", StructuredMode::PromptOnly, 1_000_000 - 86_400);
        assert!(old.is_expired(now, day));
        let future = learned("a", StructuredMode::PromptOnly, 2_000_000);
        assert!(
            future.is_expired(now, day),
            "a time ahead of now is not trusted"
        );
        assert_eq!(fresh.expires_at(day), 1_000_000 - 3600 + 86_400);

        let mut modes = LearnedModes::new();
        modes.insert(old.clone());
        let mut other = LearnedModes::new();
        other.insert(fresh.clone());
        other.insert(learned("b", StructuredMode::JsonSchema, 5));
        modes.merge(other);
        assert_eq!(
            modes.get("http://h/v1", "a"),
            Some(&fresh),
            "the newer wins"
        );
        assert_eq!(modes.len(), 2);
        let json = serde_json::to_value(&modes).expect("json");
        assert_eq!(json["http://h/v1 a"]["mode"], "json_object");
        assert_eq!(json["http://h/v1 a"]["learned_at"], 1_000_000 - 3600);
        let back: LearnedModes = serde_json::from_value(json).expect("back");
        assert_eq!(back, modes);
        // The format before timestamps (a bare mode per endpoint) is not read: nothing learned.
        assert!(
            serde_json::from_value::<LearnedModes>(
                serde_json::json!({"http://h/v1 a": "prompt_only"})
            )
            .is_err()
        );
        assert!(modes.remove("http://h/v1", "b"));
        assert_eq!(modes.retain(|m| m.model != "a"), 1);
        assert!(modes.is_empty());
    }
}
