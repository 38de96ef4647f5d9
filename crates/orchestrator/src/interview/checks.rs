//! Deterministic checks on a parsed reply.
//!
//! A check names a place in the reply by JSON pointer (`at: /items/0`) and one predicate:
//! `equals`, `one_of`, `contains`, `matches` (a regular expression), `mentions_all` /
//! `mentions_any` / `mentions_none` (whole words or phrases, case-insensitive), `range`,
//! `length`, or `code` (a rule on source code, see [`super::code`]). The spec form
//! ([`CheckSpec`]) is what a suite file holds; [`Check::compile`] turns it into a check whose
//! regular expressions are built once.

use regex::{Regex, RegexBuilder};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::code::{CodeRule, CodeRuleKind, Language, kind_name};

/// One check, as written in a suite. Exactly one predicate key must be given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    /// JSON pointer into the reply (`/items/0`, `/server/port`; empty for the whole reply).
    pub at: String,
    /// The value equals this (numbers compare by value: `1` equals `1.0`).
    #[serde(
        default,
        deserialize_with = "some_value",
        skip_serializing_if = "Option::is_none"
    )]
    pub equals: Option<Value>,
    /// The value equals one of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_of: Option<Vec<Value>>,
    /// A string value contains this text, or a list value has this element.
    #[serde(
        default,
        deserialize_with = "some_value",
        skip_serializing_if = "Option::is_none"
    )]
    pub contains: Option<Value>,
    /// The text of the value matches this regular expression (`\b` marks a word boundary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<String>,
    /// Every one of these words or phrases appears as a whole word (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mentions_all: Option<Vec<String>>,
    /// At least one of these words or phrases appears as a whole word (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mentions_any: Option<Vec<String>>,
    /// None of these words or phrases appears as a whole word (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mentions_none: Option<Vec<String>>,
    /// The value is a number within these bounds (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<Bounds<f64>>,
    /// The value is a list (or a string) whose length is within these bounds (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<Bounds<u64>>,
    /// The value is source code on which this rule holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeSpec>,
    /// Compare strings without regard to letter case (`equals`, `one_of`, `contains`,
    /// `matches`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub ignore_case: bool,
    /// Failing this check in any trial disqualifies the case's capability, whatever the
    /// rest of the score.
    #[serde(default, skip_serializing_if = "is_false")]
    pub critical: bool,
    /// The one-line reason reported when the check fails ("Generated code uses any.").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

// `equals: null` means "equals null", not "no equals": keep a present null.
fn some_value<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Inclusive bounds; either may be left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Bounds<T> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<T>,
}

/// A rule on the source code found at the check's place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeSpec {
    pub language: Language,
    pub rule: CodeRuleKind,
    /// The function or identifier the rule is about (`call`, `identifier`,
    /// `defines-function`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether the rule's target must be present (default) or absent.
    #[serde(default = "yes")]
    pub present: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone)]
enum Mention {
    All,
    Any,
    None,
}

#[derive(Debug, Clone)]
enum Predicate {
    Equals(Value),
    OneOf(Vec<Value>),
    Contains(Value),
    Matches(Regex),
    Mentions(Mention, Vec<(String, Regex)>),
    Range(Option<f64>, Option<f64>),
    Length(Option<u64>, Option<u64>),
    Code(CodeRule, bool),
}

/// A compiled check.
#[derive(Debug, Clone)]
pub struct Check {
    at: String,
    predicate: Predicate,
    ignore_case: bool,
    critical: bool,
    fail: Option<String>,
}

/// What a check found on one reply.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub passed: bool,
    /// What was found, for the report (`/line is 41, expected 42`).
    pub detail: String,
}

/// Is `at` a syntactically valid JSON pointer (RFC 6901)?
pub fn pointer_syntax(at: &str) -> Result<(), String> {
    if !at.is_empty() && !at.starts_with('/') {
        return Err(format!(
            "`{at}` is not a JSON pointer: it must start with `/`"
        ));
    }
    let mut chars = at.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(format!(
                "`{at}` is not a JSON pointer: `~` must be followed by 0 or 1"
            ));
        }
    }
    Ok(())
}

/// The reference tokens of a pointer, unescaped.
pub fn pointer_tokens(at: &str) -> Vec<String> {
    if at.is_empty() {
        return Vec::new();
    }
    at[1..]
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// A regular expression matching `phrase` as a whole word or phrase, case-insensitively.
/// Word boundaries are required only where the phrase begins or ends with a word character,
/// so `--config` and `@org/tax` work as well as `disk`.
pub fn word_regex(phrase: &str) -> Result<Regex, String> {
    let phrase = phrase.trim();
    if phrase.is_empty() {
        return Err("an empty word cannot be mentioned".into());
    }
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let start = if phrase.chars().next().is_some_and(is_word) {
        r"\b"
    } else {
        ""
    };
    let end = if phrase.chars().last().is_some_and(is_word) {
        r"\b"
    } else {
        ""
    };
    // Any run of spaces in the phrase matches any run of white space in the text.
    let body = phrase
        .split_whitespace()
        .map(regex::escape)
        .collect::<Vec<_>>()
        .join(r"\s+");
    RegexBuilder::new(&format!("{start}{body}{end}"))
        .case_insensitive(true)
        .build()
        .map_err(|e| format!("cannot build a pattern for `{phrase}`: {e}"))
}

impl Check {
    /// Compiles a check, or says what is wrong with it.
    pub fn compile(spec: &CheckSpec) -> Result<Check, String> {
        pointer_syntax(&spec.at)?;
        let mut given = Vec::new();
        let mut predicate = None;
        let mut set = |name: &'static str, p: Predicate| {
            given.push(name);
            predicate = Some(p);
        };
        if let Some(v) = &spec.equals {
            set("equals", Predicate::Equals(v.clone()));
        }
        if let Some(v) = &spec.one_of {
            if v.is_empty() {
                return Err("`one_of` needs at least one value".into());
            }
            set("one_of", Predicate::OneOf(v.clone()));
        }
        if let Some(v) = &spec.contains {
            set("contains", Predicate::Contains(v.clone()));
        }
        if let Some(p) = &spec.matches {
            let re = RegexBuilder::new(p)
                .case_insensitive(spec.ignore_case)
                .build()
                .map_err(|e| format!("`matches` is not a valid regular expression: {e}"))?;
            set("matches", Predicate::Matches(re));
        }
        for (name, list, mode) in [
            ("mentions_all", &spec.mentions_all, Mention::All),
            ("mentions_any", &spec.mentions_any, Mention::Any),
            ("mentions_none", &spec.mentions_none, Mention::None),
        ] {
            if let Some(words) = list {
                if words.is_empty() {
                    return Err(format!("`{name}` needs at least one word"));
                }
                let compiled = words
                    .iter()
                    .map(|w| word_regex(w).map(|re| (w.clone(), re)))
                    .collect::<Result<Vec<_>, _>>()?;
                set(name, Predicate::Mentions(mode, compiled));
            }
        }
        if let Some(b) = &spec.range {
            if b.min.is_none() && b.max.is_none() {
                return Err("`range` needs `min`, `max` or both".into());
            }
            if let (Some(lo), Some(hi)) = (b.min, b.max)
                && lo > hi
            {
                return Err(format!("`range` has min {lo} above max {hi}"));
            }
            set("range", Predicate::Range(b.min, b.max));
        }
        if let Some(b) = &spec.length {
            if b.min.is_none() && b.max.is_none() {
                return Err("`length` needs `min`, `max` or both".into());
            }
            if let (Some(lo), Some(hi)) = (b.min, b.max)
                && lo > hi
            {
                return Err(format!("`length` has min {lo} above max {hi}"));
            }
            set("length", Predicate::Length(b.min, b.max));
        }
        if let Some(c) = &spec.code {
            if c.rule == CodeRuleKind::Balanced && !c.present {
                return Err("code rule `balanced` can only be required, not forbidden".into());
            }
            let rule = CodeRule::new(c.language, c.rule, c.name.clone())?;
            set("code", Predicate::Code(rule, c.present));
        }
        let predicate = match (given.len(), predicate) {
            (1, Some(p)) => p,
            (0, _) => {
                return Err(
                    "a check needs one predicate: equals, one_of, contains, matches, \
                     mentions_all, mentions_any, mentions_none, range, length or code"
                        .into(),
                );
            }
            _ => {
                return Err(format!(
                    "a check takes one predicate, this one has {}",
                    given.join(", ")
                ));
            }
        };
        if spec.fail.as_deref().is_some_and(|f| f.contains('\n')) {
            return Err("`fail` must be one line".into());
        }
        Ok(Check {
            at: spec.at.clone(),
            predicate,
            ignore_case: spec.ignore_case,
            critical: spec.critical,
            fail: spec.fail.clone(),
        })
    }

    pub fn at(&self) -> &str {
        &self.at
    }

    pub fn is_critical(&self) -> bool {
        self.critical
    }

    /// The suite's one-line reason for a failure, if it gives one.
    pub fn fail_message(&self) -> Option<&str> {
        self.fail.as_deref()
    }

    /// What the check asks, in words (`/severity equals "high"`).
    pub fn describe(&self) -> String {
        let at = if self.at.is_empty() { "/" } else { &self.at };
        let words = |list: &[(String, Regex)]| {
            list.iter()
                .map(|(w, _)| format!("`{w}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match &self.predicate {
            Predicate::Equals(v) => format!("{at} equals {v}"),
            Predicate::OneOf(vs) => format!("{at} is one of {}", Value::from(vs.clone())),
            Predicate::Contains(v) => format!("{at} contains {v}"),
            Predicate::Matches(re) => format!("{at} matches /{}/", re.as_str()),
            Predicate::Mentions(Mention::All, l) => format!("{at} mentions {}", words(l)),
            Predicate::Mentions(Mention::Any, l) => {
                format!("{at} mentions one of {}", words(l))
            }
            Predicate::Mentions(Mention::None, l) => {
                format!("{at} does not mention {}", words(l))
            }
            Predicate::Range(lo, hi) => format!("{at} is a number in {}", bounds(lo, hi)),
            Predicate::Length(lo, hi) => format!("{at} has a length in {}", bounds(lo, hi)),
            Predicate::Code(rule, present) => {
                let what = match &rule.name {
                    Some(n) => format!("{} `{n}`", kind_name(rule.kind)),
                    None => kind_name(rule.kind).to_string(),
                };
                if *present {
                    format!("{at} is code with {what}")
                } else {
                    format!("{at} is code without {what}")
                }
            }
        }
    }

    /// Runs the check on a parsed reply.
    pub fn evaluate(&self, reply: &Value) -> CheckResult {
        let at = if self.at.is_empty() { "/" } else { &self.at };
        let Some(value) = reply.pointer(&self.at) else {
            return CheckResult {
                passed: false,
                detail: format!("nothing at {at}"),
            };
        };
        let pass = |detail: String| CheckResult {
            passed: true,
            detail,
        };
        let fail = |detail: String| CheckResult {
            passed: false,
            detail,
        };
        let shown = short(value);
        match &self.predicate {
            Predicate::Equals(want) => {
                if json_eq(value, want, self.ignore_case) {
                    pass(format!("{at} is {shown}"))
                } else {
                    fail(format!("{at} is {shown}, expected {}", short(want)))
                }
            }
            Predicate::OneOf(wants) => {
                if wants.iter().any(|w| json_eq(value, w, self.ignore_case)) {
                    pass(format!("{at} is {shown}"))
                } else {
                    fail(format!("{at} is {shown}, not one of the expected values"))
                }
            }
            Predicate::Contains(want) => match (value, want) {
                (Value::String(s), Value::String(w)) => {
                    let found = if self.ignore_case {
                        s.to_lowercase().contains(&w.to_lowercase())
                    } else {
                        s.contains(w.as_str())
                    };
                    if found {
                        pass(format!("{at} contains {}", short(want)))
                    } else {
                        fail(format!("{at} is {shown}, without {}", short(want)))
                    }
                }
                (Value::Array(items), _) => {
                    if items.iter().any(|i| json_eq(i, want, self.ignore_case)) {
                        pass(format!("{at} has {}", short(want)))
                    } else {
                        fail(format!("{at} is {shown}, without {}", short(want)))
                    }
                }
                _ => fail(format!("{at} is {shown}: neither a string nor a list")),
            },
            Predicate::Matches(re) => match text_of(value) {
                Some(t) if re.is_match(&t) => pass(format!("{at} matches")),
                Some(_) => fail(format!("{at} is {shown}, which does not match")),
                None => fail(format!("{at} is {shown}: not text")),
            },
            Predicate::Mentions(mode, words) => {
                let Some(text) = text_of(value) else {
                    return fail(format!("{at} is {shown}: not text"));
                };
                let found: Vec<&str> = words
                    .iter()
                    .filter(|(_, re)| re.is_match(&text))
                    .map(|(w, _)| w.as_str())
                    .collect();
                let missing: Vec<&str> = words
                    .iter()
                    .map(|(w, _)| w.as_str())
                    .filter(|w| !found.contains(w))
                    .collect();
                let ok = match mode {
                    Mention::All => missing.is_empty(),
                    Mention::Any => !found.is_empty(),
                    Mention::None => found.is_empty(),
                };
                let detail = match mode {
                    Mention::All | Mention::Any if !ok => {
                        format!("{at} does not mention {}", missing.join(", "))
                    }
                    Mention::None if !ok => format!("{at} mentions {}", found.join(", ")),
                    _ => format!("{at} mentions as required"),
                };
                CheckResult { passed: ok, detail }
            }
            Predicate::Range(lo, hi) => match value.as_f64() {
                Some(n) if lo.is_none_or(|l| n >= l) && hi.is_none_or(|h| n <= h) => {
                    pass(format!("{at} is {n}"))
                }
                Some(n) => fail(format!("{at} is {n}, outside {}", bounds(lo, hi))),
                None => fail(format!("{at} is {shown}: not a number")),
            },
            Predicate::Length(lo, hi) => {
                let len = match value {
                    Value::Array(a) => a.len() as u64,
                    Value::String(s) => s.chars().count() as u64,
                    _ => return fail(format!("{at} is {shown}: neither a list nor a string")),
                };
                if lo.is_none_or(|l| len >= l) && hi.is_none_or(|h| len <= h) {
                    pass(format!("{at} has length {len}"))
                } else {
                    fail(format!("{at} has length {len}, outside {}", bounds(lo, hi)))
                }
            }
            Predicate::Code(rule, present) => {
                let Value::String(code) = value else {
                    return fail(format!("{at} is {shown}: not code"));
                };
                let finding = rule.find(code);
                CheckResult {
                    passed: finding.found == *present,
                    detail: format!("{at}: {}", finding.detail),
                }
            }
        }
    }
}

fn bounds<T: std::fmt::Display>(lo: &Option<T>, hi: &Option<T>) -> String {
    match (lo, hi) {
        (Some(l), Some(h)) => format!("[{l}, {h}]"),
        (Some(l), None) => format!("[{l}, …)"),
        (None, Some(h)) => format!("(…, {h}]"),
        (None, None) => "(…)".into(),
    }
}

/// A value shown in a report line, shortened.
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(57).collect();
        format!("{cut}…")
    } else {
        s
    }
}

/// The text a word or pattern check reads: a string as is, a number or boolean as written,
/// a list of those one per line. Objects and null have no text.
fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::Array(_) => None,
                other => text_of(other),
            })
            .collect::<Option<Vec<_>>>()
            .map(|l| l.join("\n")),
        Value::Null | Value::Object(_) => None,
    }
}

/// JSON equality where numbers compare by value and strings optionally ignore case.
fn json_eq(a: &Value, b: &Value, ignore_case: bool) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::String(x), Value::String(y)) => {
            if ignore_case {
                x.to_lowercase() == y.to_lowercase()
            } else {
                x == y
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(i, j)| json_eq(i, j, ignore_case))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w, ignore_case)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(yaml: &str) -> Check {
        let spec: CheckSpec = serde_yaml::from_str(yaml).unwrap();
        Check::compile(&spec).unwrap()
    }

    fn passes(yaml: &str, reply: Value) -> bool {
        check(yaml).evaluate(&reply).passed
    }

    #[test]
    fn equals_compares_numbers_by_value_and_strings_exactly_unless_told() {
        assert!(passes("{at: /n, equals: 42}", json!({"n": 42.0})));
        assert!(!passes("{at: /n, equals: 42}", json!({"n": 42.5})));
        assert!(!passes("{at: /n, equals: 42}", json!({"n": "42"})));
        assert!(passes("{at: /s, equals: High}", json!({"s": "High"})));
        assert!(!passes("{at: /s, equals: High}", json!({"s": "high"})));
        assert!(passes(
            "{at: /s, equals: High, ignore_case: true}",
            json!({"s": "high"})
        ));
        assert!(passes("{at: /a, equals: [1, b]}", json!({"a": [1, "b"]})));
        assert!(!passes("{at: /a, equals: [1, b]}", json!({"a": ["b", 1]})));
        assert!(passes("{at: /x, equals: null}", json!({"x": null})));
        assert!(
            !passes("{at: /x, equals: null}", json!({})),
            "a missing value is not null"
        );
        let r = check("{at: /line, equals: 42}").evaluate(&json!({"line": 41}));
        assert_eq!(r.detail, "/line is 41, expected 42");
    }

    #[test]
    fn one_of_and_contains() {
        assert!(passes(
            "{at: /sev, one_of: [medium, high]}",
            json!({"sev": "high"})
        ));
        assert!(!passes(
            "{at: /sev, one_of: [medium, high]}",
            json!({"sev": "low"})
        ));
        assert!(passes(
            "{at: /t, contains: pool}",
            json!({"t": "db pool timeout"})
        ));
        assert!(!passes("{at: /t, contains: Pool}", json!({"t": "db pool"})));
        assert!(passes(
            "{at: /t, contains: Pool, ignore_case: true}",
            json!({"t": "db pool"})
        ));
        assert!(passes("{at: /l, contains: b}", json!({"l": ["a", "b"]})));
        assert!(
            !passes("{at: /l, contains: b}", json!({"l": ["a", "abc"]})),
            "a list contains elements, not substrings"
        );
        assert!(!passes("{at: /n, contains: 1}", json!({"n": 1})));
    }

    #[test]
    fn mentions_need_whole_words() {
        let c = "{at: /s, mentions_all: [disk, health check]}";
        assert!(passes(
            c,
            json!({"s": "Disk full; the Health  check missed it"})
        ));
        assert!(!passes(c, json!({"s": "diskette and health checks"})));
        assert!(passes(
            "{at: /s, mentions_any: [\"--config\", JSON]}",
            json!({"s": "the `--config` flag is gone"})
        ));
        assert!(passes(
            "{at: /s, mentions_none: [\"443\"]}",
            json!({"s": "port 8443"})
        ));
        assert!(!passes(
            "{at: /s, mentions_none: [\"443\"]}",
            json!({"s": "port 443"})
        ));
        assert!(passes(
            "{at: /l, mentions_all: [a, \"@org/tax\"]}",
            json!({"l": ["A thing", "owned by @org/tax"]})
        ));
        assert!(!passes(
            "{at: /o, mentions_any: [x]}",
            json!({"o": {"x": 1}})
        ));
        let r = check("{at: /s, mentions_all: [disk, cpu]}").evaluate(&json!({"s": "disk"}));
        assert_eq!(r.detail, "/s does not mention cpu");
    }

    #[test]
    fn matches_uses_a_regex_with_word_boundaries() {
        let c = r"{at: /a, matches: '\b8443\b'}";
        assert!(passes(c, json!({"a": "port 8443"})));
        assert!(passes(c, json!({"a": 8443})));
        assert!(!passes(c, json!({"a": "port 18443"})));
        assert!(!passes(c, json!({"a": null})));
    }

    #[test]
    fn range_and_length_are_inclusive() {
        let r = "{at: /c, range: {min: 0, max: 1}}";
        assert!(passes(r, json!({"c": 0})));
        assert!(passes(r, json!({"c": 1.0})));
        assert!(!passes(r, json!({"c": 1.0000001})));
        assert!(!passes(r, json!({"c": "0.5"})));
        let l = "{at: /l, length: {min: 2, max: 3}}";
        assert!(passes(l, json!({"l": [1, 2]})));
        assert!(passes(l, json!({"l": [1, 2, 3]})));
        assert!(!passes(l, json!({"l": [1]})));
        assert!(!passes(l, json!({"l": [1, 2, 3, 4]})));
        assert!(passes("{at: /s, length: {max: 3}}", json!({"s": "héé"})));
        assert!(!passes("{at: /s, length: {max: 3}}", json!({"s": {}})));
    }

    #[test]
    fn code_checks_read_tokens_not_substrings() {
        let no_any = "{at: /code, code: {language: typescript, rule: any-type, present: false}}";
        assert!(!passes(no_any, json!({"code": "let x: any = 1;"})));
        assert!(passes(
            no_any,
            json!({"code": "// any company\nconst company: string = 'any';"})
        ));
        assert!(!passes(no_any, json!({"code": 7})));
        let has_fn = "{at: /code, code: {language: rust, rule: defines-function, name: median}}";
        assert!(passes(has_fn, json!({"code": "pub fn median() {}"})));
        assert!(!passes(has_fn, json!({"code": "// fn median()"})));
    }

    #[test]
    fn pointers_reach_into_lists_and_escaped_keys() {
        assert!(passes(
            "{at: /items/1/q, equals: 10}",
            json!({"items": [{"q": 1}, {"q": 10}]})
        ));
        assert!(passes("{at: /a~1b, equals: 1}", json!({"a/b": 1})));
        assert!(passes("{at: '', length: {min: 1}}", json!([1])));
        let r = check("{at: /items/5, equals: 1}").evaluate(&json!({"items": []}));
        assert_eq!(r.detail, "nothing at /items/5");
        assert_eq!(pointer_tokens("/a~1b/~0c/0"), vec!["a/b", "~c", "0"]);
    }

    #[test]
    fn bad_checks_are_refused_with_the_reason() {
        for (yaml, why) in [
            ("{at: /a}", "needs one predicate"),
            ("{at: /a, equals: 1, one_of: [1]}", "has equals, one_of"),
            ("{at: a, equals: 1}", "must start with `/`"),
            ("{at: /a~2, equals: 1}", "followed by 0 or 1"),
            ("{at: /a, matches: '('}", "not a valid regular expression"),
            ("{at: /a, range: {min: 2, max: 1}}", "above max"),
            ("{at: /a, length: {}}", "needs `min`"),
            ("{at: /a, one_of: []}", "at least one"),
            ("{at: /a, mentions_any: ['  ']}", "empty word"),
            (
                "{at: /a, code: {language: rust, rule: balanced, present: false}}",
                "only be required",
            ),
            (
                "{at: /a, code: {language: rust, rule: any-type}}",
                "typescript only",
            ),
            ("{at: /a, equals: 1, fail: \"two\\nlines\"}", "one line"),
        ] {
            let spec: CheckSpec = serde_yaml::from_str(yaml).unwrap();
            let e = Check::compile(&spec).unwrap_err();
            assert!(e.contains(why), "{yaml}: {e}");
        }
        assert!(serde_yaml::from_str::<CheckSpec>("{at: /a, equal: 1}").is_err());
    }
}
