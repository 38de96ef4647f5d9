//! The record of one HTTP attempt, handed to the caller so it can store it with the run, and
//! the local redaction applied to everything recorded or put in an error.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::structured::StructuredMode;
use crate::usage::Usage;

/// Why an HTTP request of a call was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptKind {
    /// The first request of the call.
    First,
    /// After a failure, to the same model (counts against the retry budget).
    Retry,
    /// After a failure, to a fallback model (counts against the retry budget).
    Fallback,
    /// After the endpoint rejected the structured-output mode, in a weaker one (counts against
    /// the retry budget).
    StepDown,
    /// After a reply that did not match the schema, with its validation errors (bounded by
    /// `max_repairs`).
    Repair,
}

/// One HTTP attempt against a chat-completions endpoint. Bodies are redacted: no API key value
/// and no `Bearer …` token appears in them. Headers are not recorded at all.
#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    pub role: String,
    /// The model id this attempt asked for (the primary or a fallback).
    pub model: String,
    pub base_url: String,
    /// 1-based attempt number within one `complete` call (counts retries, fallbacks, repairs).
    pub attempt: u32,
    /// Why this request was sent.
    pub kind: AttemptKind,
    pub started_at: SystemTime,
    /// The JSON request body.
    pub request: serde_json::Value,
    /// HTTP status, when the server answered.
    pub status: Option<u16>,
    /// The raw response body (for streams, the raw event stream), when one was read.
    pub response: Option<String>,
    /// What went wrong, when the attempt failed (transport error, timeout, bad reply).
    pub error: Option<String>,
    #[serde(with = "duration_ms")]
    pub latency: Duration,
    pub streamed: bool,
    /// The structured-output mode of this attempt, when a schema was asked for.
    pub structured_mode: Option<StructuredMode>,
    /// Tokens (and cost, where priced) of this request, when it got a reply; estimated when
    /// the server sent no counts. Every request that got a reply has one, whether the call
    /// succeeded or not, so a caller can count what a failed call cost.
    pub usage: Option<Usage>,
    /// The reply's `finish_reason`, when it got one.
    pub finish_reason: Option<String>,
}

mod duration_ms {
    use serde::Serializer;
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1000.0)
    }
}

/// Receives every [`Exchange`]. Implemented for closures `Fn(Exchange)`.
pub trait ExchangeRecorder: Send + Sync {
    fn record(&self, exchange: Exchange);
}

impl<F> ExchangeRecorder for F
where
    F: Fn(Exchange) + Send + Sync,
{
    fn record(&self, exchange: Exchange) {
        self(exchange)
    }
}

/// A recorder that drops everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiscardExchanges;

impl ExchangeRecorder for DiscardExchanges {
    fn record(&self, _exchange: Exchange) {}
}

/// A recorder that keeps exchanges in memory.
#[derive(Debug, Default)]
pub struct MemoryRecorder {
    exchanges: Mutex<Vec<Exchange>>,
}

impl MemoryRecorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything recorded so far, in order.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.exchanges
            .lock()
            .map(|v| v.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }
}

impl ExchangeRecorder for MemoryRecorder {
    fn record(&self, exchange: Exchange) {
        match self.exchanges.lock() {
            Ok(mut v) => v.push(exchange),
            Err(poisoned) => poisoned.into_inner().push(exchange),
        }
    }
}

/// Replaces known secret values and `Bearer` tokens with `[REDACTED]`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Redactor {
    secrets: Vec<String>,
}

pub(crate) const REDACTED: &str = "[REDACTED]";

impl Redactor {
    pub(crate) fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            // Very short values would redact ordinary words; keys are never that short.
            .filter(|s| s.len() >= 4)
            .collect();
        // Longest first, so a key that contains another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    pub(crate) fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        redact_bearer(&out)
    }

    pub(crate) fn redact_json(&self, value: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(s) => Value::String(self.redact(s)),
            Value::Array(a) => Value::Array(a.iter().map(|v| self.redact_json(v)).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| {
                        let v = if k.eq_ignore_ascii_case("authorization")
                            || k.eq_ignore_ascii_case("api_key")
                        {
                            Value::String(REDACTED.into())
                        } else {
                            self.redact_json(v)
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// `Bearer abc123` → `Bearer [REDACTED]` (case-insensitive `bearer`).
fn redact_bearer(text: &str) -> String {
    const WORD: &str = "bearer ";
    let lower = text.to_ascii_lowercase();
    if !lower.contains(WORD) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    let mut search = 0;
    while let Some(pos) = lower[search..].find(WORD) {
        let token_start = search + pos + WORD.len();
        let token_end = text[token_start..]
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ',')
            .map_or(text.len(), |i| token_start + i);
        out.push_str(&text[rest..token_start]);
        if token_end > token_start {
            out.push_str(REDACTED);
        }
        rest = token_end;
        search = token_end.max(token_start);
        if search >= text.len() {
            break;
        }
    }
    out.push_str(&text[rest..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_key_values_and_bearer_tokens() {
        let r = Redactor::new(["sk-secret-123".to_string(), "ab".to_string()]);
        let out = r.redact("key sk-secret-123 in Authorization: Bearer sk-other, about");
        assert_eq!(
            out,
            "key [REDACTED] in Authorization: Bearer [REDACTED], about"
        );
        let v = r.redact_json(&serde_json::json!({"a": ["x sk-secret-123"], "Authorization": "t"}));
        assert_eq!(
            v,
            serde_json::json!({"a": ["x [REDACTED]"], "Authorization": "[REDACTED]"})
        );
    }

    #[test]
    fn bearer_at_end_and_unicode_are_safe() {
        assert_eq!(redact_bearer("é bearer tok"), "é bearer [REDACTED]");
        assert_eq!(redact_bearer("Bearer "), "Bearer ");
        assert_eq!(redact_bearer("no token here"), "no token here");
    }
}
