//! The interview suite: versioned data that says what a worker is asked and how each reply
//! is judged.
//!
//! A suite is a YAML document ([`SuiteSpec`], JSON Schema from [`suite_schema`], printed by
//! `ao schema interview-suite`): a name, a version and cases. Each case belongs to one
//! [`Capability`], carries its messages (with all the material they talk about), the JSON
//! Schema its reply must match, and deterministic checks on the parsed reply. Loading a suite
//! ([`Suite::from_yaml`]) checks everything that can be checked before a model is asked:
//! unknown keys, schemas that do not compile, checks whose pointer leads nowhere in the
//! schema, cases without a `confidence` field, capabilities without cases, and reference
//! answers that fail their own checks. Problems are reported with file:line:col.
//!
//! The suite's identity is its name, version and the SHA-256 of its content (canonical JSON
//! of the parsed document, so comments and formatting do not count): a profile made with
//! another hash is stale.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use ao_core::profile::{Capability, SuiteRef};
use ao_graph::yaml::{Seg, locate};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::checks::{Check, CheckSpec, pointer_tokens};

/// The built-in suite's source, compiled into the binary.
pub const BUILTIN_SUITE_YAML: &str = include_str!("../../suites/worker-interview.yaml");

/// The name the built-in suite is reported under when it fails to load (it never should: a
/// test loads it).
pub const BUILTIN_SUITE_ORIGIN: &str = "<built-in worker-interview suite>";

/// An interview suite as written (`ao schema interview-suite`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "ao interview suite")]
pub struct SuiteSpec {
    pub name: String,
    /// Changed whenever the cases change meaning; recorded in every profile.
    pub version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub cases: Vec<CaseSpec>,
}

/// One case: what is asked, and how the reply is judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseSpec {
    /// Unique within the suite (letters, digits, `-`, `_`, `.`).
    pub id: String,
    pub capability: Capability,
    /// `false` for a case whose material does not contain the answer: the correct reply
    /// says so, and a confident answer is over-confidence.
    #[serde(default = "yes")]
    pub answerable: bool,
    /// The conversation sent to the model. It must contain all the material the question is
    /// about.
    pub messages: Vec<Message>,
    /// The JSON Schema of the reply. It must be an object schema with a required
    /// `confidence` number in [0, 1].
    pub output_schema: Value,
    /// Deterministic checks on the parsed reply; a reply is correct when all pass.
    pub checks: Vec<CheckSpec>,
    /// A known-good reply. When given, loading proves it matches the schema and passes
    /// every check, so a suite cannot ask for something its own answer does not do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<Value>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// The JSON Schema of the suite format.
pub fn suite_schema() -> Value {
    serde_json::to_value(schemars::schema_for!(SuiteSpec)).unwrap_or(Value::Null)
}

/// One problem in a suite, with its place when it is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteIssue {
    pub line: Option<usize>,
    pub col: Option<usize>,
    pub message: String,
}

/// A suite that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("cannot read interview suite {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", render_issues(origin, issues))]
    Invalid {
        origin: String,
        issues: Vec<SuiteIssue>,
    },
}

fn render_issues(origin: &str, issues: &[SuiteIssue]) -> String {
    issues
        .iter()
        .map(|i| match (i.line, i.col) {
            (Some(l), Some(c)) => format!("{origin}:{l}:{c}: {}", i.message),
            (Some(l), None) => format!("{origin}:{l}: {}", i.message),
            _ => format!("{origin}: {}", i.message),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A case ready to run: its schema and checks compiled.
#[derive(Debug)]
pub struct Case {
    spec: CaseSpec,
    validator: jsonschema::Validator,
    checks: Vec<Check>,
}

impl Case {
    pub fn id(&self) -> &str {
        &self.spec.id
    }
    pub fn capability(&self) -> Capability {
        self.spec.capability
    }
    pub fn answerable(&self) -> bool {
        self.spec.answerable
    }
    pub fn messages(&self) -> &[Message] {
        &self.spec.messages
    }
    pub fn output_schema(&self) -> &Value {
        &self.spec.output_schema
    }
    pub fn checks(&self) -> &[Check] {
        &self.checks
    }
    pub fn reference(&self) -> Option<&Value> {
        self.spec.reference.as_ref()
    }

    /// The schema violations of a reply (`at /items/0: "x" is not of type "integer"`); empty
    /// when it matches.
    pub fn schema_errors(&self, reply: &Value) -> Vec<String> {
        self.validator
            .iter_errors(reply)
            .map(|e| {
                let at = e.instance_path().to_string();
                let at = if at.is_empty() { "/".to_string() } else { at };
                format!("at {at}: {e}")
            })
            .collect()
    }
}

/// A loaded, checked suite.
#[derive(Debug)]
pub struct Suite {
    spec: SuiteSpec,
    sha256: String,
    cases: Vec<Case>,
}

impl Suite {
    /// The built-in suite.
    pub fn builtin() -> Result<Suite, SuiteError> {
        Suite::from_yaml(BUILTIN_SUITE_YAML, BUILTIN_SUITE_ORIGIN)
    }

    /// Reads and checks a suite file (`--suite FILE`).
    pub fn from_file(path: &Path) -> Result<Suite, SuiteError> {
        let source = std::fs::read_to_string(path).map_err(|source| SuiteError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Suite::from_yaml(&source, &path.display().to_string())
    }

    /// Parses and checks a suite; `origin` names it in errors.
    pub fn from_yaml(source: &str, origin: &str) -> Result<Suite, SuiteError> {
        let spec: SuiteSpec = serde_yaml::from_str(source).map_err(|e| {
            let loc = e.location();
            let mut message = e.to_string();
            // The position is printed in front; drop serde's copy of it.
            if let Some(at) = message.rfind(" at line ") {
                message.truncate(at);
            }
            SuiteError::Invalid {
                origin: origin.to_string(),
                issues: vec![SuiteIssue {
                    line: loc.as_ref().map(|l| l.line()),
                    col: loc.as_ref().map(|l| l.column()),
                    message,
                }],
            }
        })?;
        Suite::from_spec(spec, source, origin)
    }

    fn from_spec(spec: SuiteSpec, source: &str, origin: &str) -> Result<Suite, SuiteError> {
        let mut issues = Vec::new();
        let mut issue = |path: Vec<Seg>, message: String| {
            let pos = locate(source, &path);
            issues.push(SuiteIssue {
                line: pos.map(|p| p.line),
                col: pos.map(|p| p.col),
                message,
            });
        };
        if spec.name.trim().is_empty() {
            issue(
                vec![Seg::Key("name".into())],
                "the suite needs a name".into(),
            );
        }
        if spec.version.trim().is_empty() {
            issue(
                vec![Seg::Key("version".into())],
                "the suite needs a version".into(),
            );
        }
        let mut ids = HashSet::new();
        let mut cases = Vec::new();
        for (i, c) in spec.cases.iter().enumerate() {
            let at = |rest: &[Seg]| {
                let mut p = vec![Seg::Key("cases".into()), Seg::Index(i)];
                p.extend_from_slice(rest);
                p
            };
            let name = format!("case `{}`", c.id);
            if c.id.is_empty()
                || !c
                    .id
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'))
            {
                issue(
                    at(&[Seg::Key("id".into())]),
                    format!(
                        "case id `{}` must be letters, digits, `-`, `_` or `.`",
                        c.id
                    ),
                );
            }
            if !ids.insert(c.id.as_str()) {
                issue(
                    at(&[Seg::Key("id".into())]),
                    format!("case id `{}` is used twice", c.id),
                );
            }
            if !c.messages.iter().any(|m| m.role == Role::User) {
                issue(
                    at(&[Seg::Key("messages".into())]),
                    format!("{name} has no user message"),
                );
            }
            for (j, m) in c.messages.iter().enumerate() {
                if m.content.trim().is_empty() {
                    issue(
                        at(&[Seg::Key("messages".into()), Seg::Index(j)]),
                        format!("{name}: message {} is empty", j + 1),
                    );
                }
            }
            let schema_at = at(&[Seg::Key("output_schema".into())]);
            if let Err(why) = confidence_declared(&c.output_schema) {
                issue(schema_at.clone(), format!("{name}: {why}"));
            }
            let validator = match jsonschema::validator_for(&c.output_schema) {
                Ok(v) => Some(v),
                Err(e) => {
                    issue(
                        schema_at,
                        format!("{name}: the output schema is not a valid JSON Schema: {e}"),
                    );
                    None
                }
            };
            if c.checks.is_empty() {
                issue(
                    at(&[Seg::Key("checks".into())]),
                    format!("{name} has no checks"),
                );
            }
            let mut checks = Vec::new();
            for (j, ch) in c.checks.iter().enumerate() {
                let check_at = at(&[Seg::Key("checks".into()), Seg::Index(j)]);
                match Check::compile(ch) {
                    Ok(compiled) => {
                        if !schema_reaches(&c.output_schema, &pointer_tokens(&ch.at)) {
                            issue(
                                check_at,
                                format!(
                                    "{name}: check {}: `{}` does not exist in the output schema",
                                    j + 1,
                                    ch.at
                                ),
                            );
                        }
                        checks.push(compiled);
                    }
                    Err(why) => issue(check_at, format!("{name}: check {}: {why}", j + 1)),
                }
            }
            let Some(validator) = validator else { continue };
            if checks.len() != c.checks.len() {
                continue;
            }
            let case = Case {
                spec: c.clone(),
                validator,
                checks,
            };
            if let Some(reference) = case.reference() {
                let ref_at = at(&[Seg::Key("reference".into())]);
                if let Some(e) = case.schema_errors(reference).first() {
                    issue(
                        ref_at.clone(),
                        format!("{name}: the reference answer does not match the schema: {e}"),
                    );
                }
                for (j, check) in case.checks().iter().enumerate() {
                    let r = check.evaluate(reference);
                    if !r.passed {
                        issue(
                            ref_at.clone(),
                            format!(
                                "{name}: the reference answer fails check {} ({}): {}",
                                j + 1,
                                check.describe(),
                                r.detail
                            ),
                        );
                    }
                }
            }
            cases.push(case);
        }
        let covered: BTreeSet<Capability> = spec.cases.iter().map(|c| c.capability).collect();
        for cap in Capability::ALL {
            if !covered.contains(&cap) {
                issue(
                    vec![Seg::Key("cases".into())],
                    format!("no case tests capability `{cap}`; every capability needs one"),
                );
            }
        }
        let calibration = |answerable: bool| {
            spec.cases.iter().any(|c| {
                c.capability == Capability::ConfidenceCalibration && c.answerable == answerable
            })
        };
        if covered.contains(&Capability::ConfidenceCalibration)
            && !(calibration(true) && calibration(false))
        {
            issue(
                vec![Seg::Key("cases".into())],
                "confidence-calibration needs answerable cases and unanswerable ones \
                 (`answerable: false`)"
                    .into(),
            );
        }
        if !issues.is_empty() {
            issues.sort_by_key(|i| (i.line.unwrap_or(usize::MAX), i.col.unwrap_or(0)));
            return Err(SuiteError::Invalid {
                origin: origin.to_string(),
                issues,
            });
        }
        let sha256 = content_hash(&spec);
        Ok(Suite {
            spec,
            sha256,
            cases,
        })
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }
    pub fn version(&self) -> &str {
        &self.spec.version
    }
    /// Hex SHA-256 of the suite's content.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
    pub fn suite_ref(&self) -> SuiteRef {
        SuiteRef {
            name: self.spec.name.clone(),
            version: self.spec.version.clone(),
            sha256: self.sha256.clone(),
        }
    }
    pub fn cases(&self) -> &[Case] {
        &self.cases
    }
    pub fn case(&self, id: &str) -> Option<&Case> {
        self.cases.iter().find(|c| c.id() == id)
    }
    pub fn spec(&self) -> &SuiteSpec {
        &self.spec
    }
}

/// Every case's schema must ask for `confidence`: a required number in [0, 1].
fn confidence_declared(schema: &Value) -> Result<(), String> {
    let missing = "the output schema must be an object schema with a required `confidence` \
                   number between 0 and 1 (`minimum: 0`, `maximum: 1`)";
    let obj = schema.as_object().ok_or(missing)?;
    if obj.get("type").and_then(Value::as_str) != Some("object") {
        return Err(missing.into());
    }
    let required = obj
        .get("required")
        .and_then(Value::as_array)
        .is_some_and(|r| r.iter().any(|x| x == "confidence"));
    let conf = obj
        .get("properties")
        .and_then(|p| p.get("confidence"))
        .and_then(Value::as_object);
    let ok = required
        && conf.is_some_and(|c| {
            c.get("type").and_then(Value::as_str) == Some("number")
                && c.get("minimum").and_then(Value::as_f64) == Some(0.0)
                && c.get("maximum").and_then(Value::as_f64) == Some(1.0)
        });
    if ok { Ok(()) } else { Err(missing.into()) }
}

/// Whether a pointer leads somewhere the schema declares: through `properties`, `items`,
/// `prefixItems`, an explicit `additionalProperties` schema, or any branch of
/// `anyOf`/`oneOf`/`allOf`. A `$ref` is not followed and is accepted. Keys a schema does not
/// declare are refused even when it would allow them, so a typo in a check is caught.
fn schema_reaches(schema: &Value, tokens: &[String]) -> bool {
    let Some((first, rest)) = tokens.split_first() else {
        return true;
    };
    let Some(s) = schema.as_object() else {
        return schema == &Value::Bool(true);
    };
    if s.contains_key("$ref") {
        return true;
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(branches) = s.get(key).and_then(Value::as_array)
            && branches.iter().any(|b| schema_reaches(b, tokens))
        {
            return true;
        }
    }
    if let Some(p) = s.get("properties").and_then(|p| p.get(first.as_str()))
        && schema_reaches(p, rest)
    {
        return true;
    }
    if let Some(extra) = s.get("additionalProperties")
        && extra.is_object()
        && schema_reaches(extra, rest)
    {
        return true;
    }
    if let Ok(index) = first.parse::<usize>() {
        if let Some(item) = s
            .get("prefixItems")
            .and_then(Value::as_array)
            .and_then(|p| p.get(index))
            && schema_reaches(item, rest)
        {
            return true;
        }
        if let Some(items) = s.get("items")
            && items.is_object()
            && schema_reaches(items, rest)
        {
            return true;
        }
    }
    false
}

/// SHA-256 of the canonical JSON of the suite (object keys sorted, no white space).
fn content_hash(spec: &SuiteSpec) -> String {
    let value = serde_json::to_value(spec).unwrap_or(Value::Null);
    let mut text = String::new();
    canonical_json(&value, &mut text);
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn canonical_json(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical_json(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small valid suite: one case per capability, calibration with both kinds.
    pub(crate) fn tiny_suite_yaml() -> String {
        let mut s = String::from("name: tiny\nversion: '1'\ncases:\n");
        let mut cases: Vec<(String, &str)> = Capability::ALL
            .iter()
            .map(|c| (c.as_str().to_string(), "true"))
            .collect();
        cases.push(("confidence-calibration".into(), "false"));
        for (i, (cap, answerable)) in cases.iter().enumerate() {
            s.push_str(&format!(
                "  - id: c{i}\n    capability: {cap}\n    answerable: {answerable}\n    \
                 messages:\n      - {{role: user, content: 'Say 42.'}}\n    output_schema:\n      \
                 type: object\n      required: [answer, confidence]\n      properties:\n        \
                 answer: {{type: integer}}\n        confidence: {{type: number, minimum: 0, \
                 maximum: 1}}\n    checks:\n      - {{at: /answer, equals: 42}}\n    \
                 reference: {{answer: 42, confidence: 0.9}}\n"
            ));
        }
        s
    }

    fn errors(yaml: &str) -> String {
        Suite::from_yaml(yaml, "suite.yaml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_valid_suite_loads_and_exposes_its_cases() {
        let suite = Suite::from_yaml(&tiny_suite_yaml(), "suite.yaml").unwrap();
        assert_eq!(suite.name(), "tiny");
        assert_eq!(suite.cases().len(), 9);
        let c = suite.case("c8").unwrap();
        assert!(!c.answerable());
        assert_eq!(c.capability(), Capability::ConfidenceCalibration);
        assert!(
            c.schema_errors(&serde_json::json!({"answer": 1, "confidence": 1}))
                .is_empty()
        );
        let errs = c.schema_errors(&serde_json::json!({"answer": "x", "confidence": 2}));
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(
            errs.iter().any(|e| e.starts_with("at /answer: ")),
            "{errs:?}"
        );
        assert_eq!(suite.sha256().len(), 64);
    }

    #[test]
    fn the_builtin_suite_loads_with_three_cases_per_capability_and_references() {
        let suite = Suite::builtin().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(suite.name(), "worker-interview");
        for cap in Capability::ALL {
            let n = suite
                .cases()
                .iter()
                .filter(|c| c.capability() == cap)
                .count();
            assert!(n >= 3, "{cap} has {n} cases");
        }
        let unanswerable = suite.cases().iter().filter(|c| !c.answerable()).count();
        assert!(unanswerable >= 2, "calibration needs unanswerable cases");
        for c in suite.cases() {
            assert!(c.reference().is_some(), "{} has a reference answer", c.id());
            let text: String = c.messages().iter().map(|m| m.content.as_str()).collect();
            assert!(text.len() > 200, "{} carries its material", c.id());
        }
        let any_rule = suite.cases().iter().any(|c| {
            c.capability() == Capability::Codegen
                && c.checks()
                    .iter()
                    .any(|k| k.is_critical() && k.describe().contains("any-type"))
        });
        assert!(any_rule, "a codegen case forbids `any` as a type");
    }

    #[test]
    fn the_hash_ignores_formatting_and_follows_content() {
        let a = Suite::from_yaml(&tiny_suite_yaml(), "a").unwrap();
        let reformatted = format!("# a comment\n{}", tiny_suite_yaml().replace("'1'", "\"1\""));
        let b = Suite::from_yaml(&reformatted, "b").unwrap();
        assert_eq!(a.sha256(), b.sha256());
        let changed = tiny_suite_yaml().replacen("Say 42.", "Say 42!", 1);
        let c = Suite::from_yaml(&changed, "c").unwrap();
        assert_ne!(a.sha256(), c.sha256());
        // Key order inside a schema does not matter either.
        let reordered = tiny_suite_yaml().replacen(
            "required: [answer, confidence]\n      properties:",
            "properties:",
            1,
        );
        let reordered = reordered.replacen(
            "maximum: 1}\n    checks:",
            "maximum: 1}\n      required: [answer, confidence]\n    checks:",
            1,
        );
        let d = Suite::from_yaml(&reordered, "d").unwrap();
        assert_eq!(a.sha256(), d.sha256());
    }

    #[test]
    fn yaml_errors_carry_file_line_and_column() {
        let bad = tiny_suite_yaml().replacen("    answerable: true\n", "    answerabel: true\n", 1);
        let e = errors(&bad);
        assert!(e.starts_with("suite.yaml:6:5: "), "{e}");
        assert!(e.contains("unknown field `answerabel`"), "{e}");
        let e = errors(&tiny_suite_yaml().replacen("capability: codegen", "capability: poetry", 1));
        assert!(e.contains("unknown variant `poetry`"), "{e}");
        assert!(e.starts_with("suite.yaml:"), "{e}");
    }

    #[test]
    fn semantic_problems_are_all_reported_at_their_place() {
        let yaml = tiny_suite_yaml()
            .replacen("{at: /answer, equals: 42}", "{at: /answr, equals: 42}", 1)
            .replacen("id: c2", "id: c1", 1)
            .replacen("answer: {type: integer}", "answer: {type: integr}", 1);
        let e = errors(&yaml);
        assert!(
            e.contains("case `c0`: check 1: `/answr` does not exist in the output schema"),
            "{e}"
        );
        assert!(e.contains("case id `c1` is used twice"), "{e}");
        assert!(
            e.contains("the output schema is not a valid JSON Schema"),
            "{e}"
        );
        for line in e.lines() {
            assert!(
                line.starts_with("suite.yaml:")
                    && line.split(':').nth(1).unwrap().parse::<usize>().is_ok(),
                "every issue has a line: {line}"
            );
        }
    }

    #[test]
    fn a_case_without_confidence_or_a_wrong_reference_is_refused() {
        let e = errors(&tiny_suite_yaml().replacen(
            "required: [answer, confidence]",
            "required: [answer]",
            1,
        ));
        assert!(
            e.contains(
                "case `c0`: the output schema must be an object schema with a required `confidence`"
            ),
            "{e}"
        );
        let e = errors(&tiny_suite_yaml().replacen(
            "reference: {answer: 42",
            "reference: {answer: 41",
            1,
        ));
        assert!(
            e.contains("case `c0`: the reference answer fails check 1 (/answer equals 42): /answer is 41, expected 42"),
            "{e}"
        );
        let e = errors(&tiny_suite_yaml().replacen("confidence: 0.9}", "confidence: 1.5}", 1));
        assert!(
            e.contains("the reference answer does not match the schema"),
            "{e}"
        );
    }

    #[test]
    fn every_capability_and_both_kinds_of_calibration_case_are_required() {
        let yaml = tiny_suite_yaml().replacen("capability: codegen", "capability: review", 1);
        assert!(errors(&yaml).contains("no case tests capability `codegen`"));
        let yaml = tiny_suite_yaml().replacen("answerable: false", "answerable: true", 1);
        assert!(errors(&yaml).contains("needs answerable cases and unanswerable ones"));
    }

    #[test]
    fn pointers_are_resolved_through_items_and_branches() {
        let schema = serde_json::json!({
            "type": "object",
            "properties": {
                "list": {"type": "array", "items": {"type": "object", "properties": {"q": {}}}},
                "either": {"anyOf": [{"type": "null"}, {"properties": {"x": {}}}]},
                "map": {"type": "object", "additionalProperties": {"type": "integer"}}
            }
        });
        let t = |p: &str| schema_reaches(&schema, &pointer_tokens(p));
        assert!(t("/list/3/q"));
        assert!(!t("/list/x/q"));
        assert!(!t("/list/0/r"));
        assert!(t("/either/x"));
        assert!(t("/map/anything"));
        assert!(!t("/nope"));
        assert!(t(""));
    }

    #[test]
    fn the_suite_schema_describes_the_format() {
        let schema = suite_schema();
        let v = jsonschema::validator_for(&schema).unwrap();
        let doc: Value = serde_yaml::from_str(&tiny_suite_yaml()).unwrap();
        assert!(v.is_valid(&doc));
        let mut bad = doc.clone();
        bad["cases"][0]["capability"] = "poetry".into();
        assert!(!v.is_valid(&bad));
        let builtin: Value = serde_yaml::from_str(BUILTIN_SUITE_YAML).unwrap();
        assert!(
            v.is_valid(&builtin),
            "the built-in suite matches the published schema"
        );
    }
}
