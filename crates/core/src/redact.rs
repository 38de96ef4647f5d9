//! Secret redaction, in one place for logs, events, stored exchanges, tool results and errors.
//!
//! A [`Redactor`] is built once per process from an environment snapshot plus the API keys
//! found in configuration. It replaces, with [`REDACTED`]:
//!
//! - the value of every environment variable whose name contains `KEY`, `TOKEN`, `SECRET` or
//!   `PASSWORD` (case-insensitive), when the value is at least [`MIN_SECRET_LEN`] characters
//!   long (shorter values such as `1` or `true` would shred ordinary text);
//! - every extra secret given explicitly (API keys from `ao.toml`), with the same length floor;
//! - credentials in `Authorization: Bearer …`/`Basic …` headers and bare `Bearer …` tokens.
//!
//! It is not a secret scanner: it does not guess at high-entropy strings it was not told about.
//! Cloning is cheap (an `Arc`), so every component can hold its own copy.
//!
//! ```
//! use std::collections::BTreeMap;
//! use ao_core::redact::Redactor;
//!
//! let env = BTreeMap::from([("OPENAI_API_KEY".to_string(), "sk-live-123456".to_string())]);
//! let redactor = Redactor::new(&env, ["config-key-abcdef"]);
//! assert_eq!(
//!     redactor.redact_str("key=sk-live-123456, other=config-key-abcdef"),
//!     "key=[REDACTED], other=[REDACTED]"
//! );
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use regex::Regex;
use serde_json::Value;

/// The text that replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

/// Secrets shorter than this are ignored: redacting `true` or `1` everywhere would destroy
/// ordinary text while protecting nothing.
pub const MIN_SECRET_LEN: usize = 6;

/// Name fragments that mark an environment variable as secret (matched case-insensitively).
pub const SECRET_NAME_MARKERS: [&str; 4] = ["KEY", "TOKEN", "SECRET", "PASSWORD"];

// `Authorization: Bearer x`, `authorization=Basic x`, `"Authorization": "Bearer x"` and bare
// `Bearer x` tokens. The scheme and separators are kept so the text stays readable.
static AUTH_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)(authorization["']?\s*[:=]\s*["']?(?:bearer|basic|token)\s+)[^\s"',;]+"#)
        .unwrap_or_else(|e| unreachable!("static regex: {e}"))
});
static BEARER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(bearer\s+)[A-Za-z0-9\-._~+/]{8,}=*")
        .unwrap_or_else(|e| unreachable!("static regex: {e}"))
});

/// True when an environment variable with this name holds a secret by policy.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_NAME_MARKERS.iter().any(|m| upper.contains(m))
}

/// Replaces known secrets with [`REDACTED`] in strings and JSON values. Cheap to clone.
#[derive(Clone, Default)]
pub struct Redactor {
    // Longest first, so a secret that contains another is replaced whole.
    secrets: Arc<Vec<String>>,
}

impl std::fmt::Debug for Redactor {
    // Never print the secrets themselves.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

impl Redactor {
    /// Builds a redactor from an environment snapshot and extra known secrets (API keys from
    /// configuration). Only variables whose name marks them as secret are used.
    pub fn new<'a, E, S>(env: E, extra_secrets: S) -> Self
    where
        E: IntoIterator<Item = (&'a String, &'a String)>,
        S: IntoIterator,
        S::Item: AsRef<str>,
    {
        Self::from_pairs(
            env.into_iter().map(|(k, v)| (k.as_str(), v.as_str())),
            extra_secrets,
        )
    }

    /// Like [`Redactor::new`], from any iterator of `(name, value)` pairs, e.g.
    /// `std::env::vars()` mapped to references.
    pub fn from_pairs<K, V, E, S>(env: E, extra_secrets: S) -> Self
    where
        K: AsRef<str>,
        V: AsRef<str>,
        E: IntoIterator<Item = (K, V)>,
        S: IntoIterator,
        S::Item: AsRef<str>,
    {
        let mut secrets: Vec<String> = env
            .into_iter()
            .filter(|(k, _)| is_secret_name(k.as_ref()))
            .map(|(_, v)| v.as_ref().to_string())
            .chain(extra_secrets.into_iter().map(|s| s.as_ref().to_string()))
            .map(|s| s.trim().to_string())
            .filter(|s| s.chars().count() >= MIN_SECRET_LEN)
            .collect();
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        Redactor {
            secrets: Arc::new(secrets),
        }
    }

    /// A redactor that knows the secrets of `self` plus `extra`.
    pub fn with_secrets<S>(&self, extra: S) -> Self
    where
        S: IntoIterator,
        S::Item: AsRef<str>,
    {
        let empty: BTreeMap<String, String> = BTreeMap::new();
        let mut all: Vec<String> = self.secrets.as_ref().clone();
        all.extend(extra.into_iter().map(|s| s.as_ref().to_string()));
        Self::new(&empty, all)
    }

    /// How many distinct secrets this redactor knows.
    pub fn secret_count(&self) -> usize {
        self.secrets.len()
    }

    /// Returns `text` with every known secret and authorization credential replaced.
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut out: Cow<'t, str> = Cow::Borrowed(text);
        for secret in self.secrets.iter() {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
            }
        }
        if let Cow::Owned(s) = AUTH_HEADER.replace_all(&out, format!("${{1}}{REDACTED}")) {
            out = Cow::Owned(s);
        }
        if let Cow::Owned(s) = BEARER.replace_all(&out, format!("${{1}}{REDACTED}")) {
            out = Cow::Owned(s);
        }
        out
    }

    /// [`Redactor::redact`] into an owned `String`.
    pub fn redact_str(&self, text: &str) -> String {
        self.redact(text).into_owned()
    }

    /// Redacts every string (and object key) inside `value`, recursively.
    pub fn redact_value(&self, value: &Value) -> Value {
        let mut v = value.clone();
        self.redact_value_in_place(&mut v);
        v
    }

    /// Like [`Redactor::redact_value`], modifying `value` in place.
    pub fn redact_value_in_place(&self, value: &mut Value) {
        match value {
            Value::String(s) => {
                if let Cow::Owned(r) = self.redact(s) {
                    *s = r;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.redact_value_in_place(i)),
            Value::Object(map) => {
                let needs_key_change = map.keys().any(|k| matches!(self.redact(k), Cow::Owned(_)));
                if needs_key_change {
                    let old = std::mem::take(map);
                    for (k, mut v) in old {
                        self.redact_value_in_place(&mut v);
                        map.insert(self.redact_str(&k), v);
                    }
                } else {
                    map.values_mut().for_each(|v| self.redact_value_in_place(v));
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn redacts_values_of_secret_named_variables_case_insensitively() {
        let e = env(&[
            ("OPENAI_API_KEY", "sk-abcdef123456"),
            ("github_token", "ghp_zzzzzzzz"),
            ("Db_Password", "hunter2hunter2"),
            ("MY_SECRET_THING", "s3cr3t-value"),
            ("HOME", "/home/someone"),
        ]);
        let r = Redactor::new(&e, Vec::<String>::new());
        assert_eq!(r.secret_count(), 4);
        let text =
            "a sk-abcdef123456 b ghp_zzzzzzzz c hunter2hunter2 d s3cr3t-value e /home/someone";
        assert_eq!(
            r.redact_str(text),
            "a [REDACTED] b [REDACTED] c [REDACTED] d [REDACTED] e /home/someone"
        );
    }

    #[test]
    fn ignores_short_values_and_non_secret_names() {
        let e = env(&[
            ("SOME_KEY", "1"),
            ("TOKEN_FLAG", "true"),
            ("USER", "longusername"),
        ]);
        let r = Redactor::new(&e, ["abc"]);
        assert_eq!(r.secret_count(), 0);
        assert_eq!(
            r.redact_str("1 true longusername abc"),
            "1 true longusername abc"
        );
    }

    #[test]
    fn extra_secrets_are_redacted_and_longest_wins() {
        let r = Redactor::new(&env(&[]), ["secret-abcdef", "secret-abcdef-longer"]);
        assert_eq!(
            r.redact_str("x secret-abcdef-longer y secret-abcdef"),
            "x [REDACTED] y [REDACTED]"
        );
        let r2 = r.with_secrets(["another-one-here"]);
        assert_eq!(r2.redact_str("another-one-here"), REDACTED);
        // The original is unchanged.
        assert_eq!(r.redact_str("another-one-here"), "another-one-here");
    }

    #[test]
    fn redacts_authorization_headers_and_bearer_tokens() {
        let r = Redactor::default();
        assert_eq!(
            r.redact_str("Authorization: Bearer abc.def.ghi123"),
            "Authorization: Bearer [REDACTED]"
        );
        assert_eq!(
            r.redact_str(r#"{"authorization": "Basic dXNlcjpwYXNz"}"#),
            r#"{"authorization": "Basic [REDACTED]"}"#
        );
        assert_eq!(
            r.redact_str("curl -H 'x' bearer eyJhbGciOiJIUzI1NiJ9.payload"),
            "curl -H 'x' bearer [REDACTED]"
        );
        // Ordinary prose mentioning the word is left alone.
        assert_eq!(r.redact_str("the bearer of news"), "the bearer of news");
    }

    #[test]
    fn redacts_json_values_recursively_including_keys() {
        let r = Redactor::new(&env(&[("API_TOKEN", "tok-999999")]), Vec::<String>::new());
        let v = json!({
            "a": "tok-999999",
            "b": [1, "x tok-999999 y", {"c": "tok-999999"}],
            "tok-999999": true,
            "n": null
        });
        let out = r.redact_value(&v);
        assert_eq!(
            out,
            json!({
                "a": "[REDACTED]",
                "b": [1, "x [REDACTED] y", {"c": "[REDACTED]"}],
                "[REDACTED]": true,
                "n": null
            })
        );
        assert!(!out.to_string().contains("tok-999999"));
    }

    #[test]
    fn debug_output_never_contains_secrets() {
        let r = Redactor::new(
            &env(&[("X_KEY", "very-secret-value")]),
            Vec::<String>::new(),
        );
        assert!(!format!("{r:?}").contains("very-secret-value"));
    }

    #[test]
    fn from_pairs_accepts_borrowed_pairs() {
        let r = Redactor::from_pairs([("A_PASSWORD", "pw-123456")], [""]);
        assert_eq!(r.redact_str("pw-123456"), REDACTED);
    }
}
