//! Replay: answering a run's model calls from a cassette ([`crate::cassette`]) instead of a
//! model.
//!
//! A [`Replay`] is consulted by the `llm` node runner before each model round (after a round
//! stored with the run is reused, before the budget): a call is looked up by its node, task
//! index and round; among the recorded calls for that key, the first not yet used whose request
//! hash matches answers it (so a node that runs again — a loop, a retry — gets its recorded
//! calls in order). When none matches, the call is a *miss*: an error that names the node and
//! says what differs from the recorded call, or — when misses may go live — a request to the
//! configured model like any other.
//!
//! A replayed answer is recorded with the run like a live one (its round, its exchanges marked
//! `replayed`), so a replayed run resumes, shows and exports like any other; it counts as
//! `replayed` in the usage and spends nothing (no calls, tokens or cost).

use crate::cassette::{self, CallRequest, Cassette, RecordedCall};
use crate::error::Error;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

/// The failure kind of a call the cassette does not answer.
pub const REPLAY_MISMATCH: &str = "replay_mismatch";

/// The failure kind of a recorded reply that the node cannot take (an answer that does not
/// match its output, tool calls for a node without tools).
pub const INVALID_REPLAY: &str = "invalid_cassette";

/// What happens to a call the cassette does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplayMiss {
    /// The run fails, naming the node and what differs (the default).
    #[default]
    Fail,
    /// That request goes to the configured model.
    Live,
}

/// A cassette being replayed: its calls, which of them were used, and what a miss does.
#[derive(Debug)]
pub struct Replay {
    /// Where the calls came from (a file), for messages.
    source: String,
    calls: Vec<RecordedCall>,
    /// Indices into `calls` per (node, index, round), in recorded order.
    by_key: HashMap<(String, Option<usize>, u32), Vec<usize>>,
    used: Mutex<Vec<bool>>,
    miss: ReplayMiss,
}

/// The answer to a lookup.
pub enum Lookup<'a> {
    /// A recorded call answers it.
    Hit(&'a RecordedCall),
    /// None does: why (what differs).
    Miss(String),
}

impl Replay {
    /// Reads the cassette at `path` (see [`cassette::read`]).
    pub fn load(path: &Path, miss: ReplayMiss) -> Result<Self, Error> {
        Ok(Replay::new(
            cassette::read(path)?,
            path.display().to_string(),
            miss,
        ))
    }

    /// Replays `cassette`; `source` names it in messages.
    pub fn new(cassette: Cassette, source: String, miss: ReplayMiss) -> Self {
        let mut by_key: HashMap<_, Vec<usize>> = HashMap::new();
        for (i, c) in cassette.calls.iter().enumerate() {
            by_key
                .entry((c.node.clone(), c.index, c.round))
                .or_default()
                .push(i);
        }
        Replay {
            source,
            used: Mutex::new(vec![false; cassette.calls.len()]),
            calls: cassette.calls,
            by_key,
            miss,
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn miss(&self) -> ReplayMiss {
        self.miss
    }

    /// The recorded call that answers `request` of `node` (its task `index`, model `round`),
    /// marked used; or why none does.
    pub fn lookup(
        &self,
        node: &str,
        index: Option<usize>,
        round: u32,
        request: &CallRequest,
    ) -> Lookup<'_> {
        let Some(candidates) = self.by_key.get(&(node.to_string(), index, round)) else {
            let recorded = self.calls.iter().filter(|c| c.node == node).count();
            return Lookup::Miss(if recorded == 0 {
                "the cassette has no call of this node".to_string()
            } else {
                format!(
                    "the cassette has no call of this node for {} (it has {recorded} other call{} of it)",
                    describe_key(index, round),
                    if recorded == 1 { "" } else { "s" }
                )
            });
        };
        let sha = request.sha256();
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        // The first unused call that matches; else a used one that matches (the same call
        // asked again, e.g. by a retried task that the recording did not retry).
        let fresh = candidates
            .iter()
            .find(|&&i| !used[i] && self.calls[i].request_sha256 == sha);
        let again = || {
            candidates
                .iter()
                .find(|&&i| self.calls[i].request_sha256 == sha)
        };
        if let Some(&i) = fresh.or_else(again) {
            used[i] = true;
            return Lookup::Hit(&self.calls[i]);
        }
        // What differs, from the call that would have answered.
        let nearest = candidates
            .iter()
            .find(|&&i| !used[i])
            .or(candidates.last())
            .map(|&i| &self.calls[i]);
        Lookup::Miss(match nearest {
            Some(recorded) => difference(&recorded.request, request),
            None => "the cassette has no call for it".into(),
        })
    }
}

fn describe_key(index: Option<usize>, round: u32) -> String {
    match index {
        Some(i) => format!("task {i}, round {round}"),
        None => format!("round {round}"),
    }
}

/// What differs between a recorded request and a new one, in words.
pub fn difference(recorded: &CallRequest, now: &CallRequest) -> String {
    if recorded.role != now.role {
        return format!(
            "the model role changed (recorded `{}`, now `{}`)",
            recorded.role, now.role
        );
    }
    if recorded.model != now.model {
        return format!(
            "the model changed (recorded `{}`, now `{}`)",
            recorded.model, now.model
        );
    }
    if recorded.temperature != now.temperature {
        return format!(
            "the temperature changed (recorded {}, now {})",
            show_opt(recorded.temperature),
            show_opt(now.temperature)
        );
    }
    if recorded.max_tokens != now.max_tokens {
        return format!(
            "max_tokens changed (recorded {}, now {})",
            recorded.max_tokens, now.max_tokens
        );
    }
    if recorded.output != now.output {
        return "the output (schema or type) changed".into();
    }
    if recorded.tools != now.tools {
        return format!(
            "the tools offered changed (recorded: {}; now: {})",
            names(&recorded.tools),
            names(&now.tools)
        );
    }
    if recorded.tool_specs_sha256 != now.tool_specs_sha256 {
        return "the definitions of the tools offered changed".into();
    }
    for (i, (a, b)) in recorded.messages.iter().zip(&now.messages).enumerate() {
        if a != b {
            return format!(
                "{} changed (message {} differs{})",
                what_message(a, b),
                i + 1,
                first_difference(a, b)
            );
        }
    }
    if recorded.messages.len() != now.messages.len() {
        return format!(
            "the conversation changed ({} messages recorded, {} now)",
            recorded.messages.len(),
            now.messages.len()
        );
    }
    "the request differs".into()
}

fn show_opt(v: Option<f64>) -> String {
    v.map_or("none".into(), |t| t.to_string())
}

fn names(tools: &[String]) -> String {
    if tools.is_empty() {
        "none".into()
    } else {
        tools.join(", ")
    }
}

fn what_message(a: &Value, b: &Value) -> &'static str {
    let role = |m: &Value| m.get("role").and_then(Value::as_str).map(str::to_string);
    match (role(a).as_deref(), role(b).as_deref()) {
        (Some("system"), Some("system")) => "the system prompt",
        (Some("user"), Some("user")) => "the prompt",
        (Some("tool"), Some("tool")) => "a tool result",
        (Some("assistant"), Some("assistant")) => "an earlier reply of the model",
        _ => "the conversation",
    }
}

/// `: recorded "…", now "…"` around the first character where two messages' texts differ.
fn first_difference(a: &Value, b: &Value) -> String {
    let text = |m: &Value| -> String {
        match m.get("content") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => m.to_string(),
        }
    };
    let (a, b) = (text(a), text(b));
    let at = a
        .char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map(|((i, _), _)| i)
        .unwrap_or_else(|| a.len().min(b.len()));
    let excerpt = |s: &str| -> String {
        let start = s[..at.min(s.len())]
            .char_indices()
            .rev()
            .nth(15)
            .map_or(0, |(i, _)| i);
        let piece: String = s[start..].chars().take(40).collect();
        let more = s[start..].chars().count() > 40;
        format!(
            "{}{piece}{}",
            if start > 0 { "…" } else { "" },
            if more { "…" } else { "" }
        )
    };
    if !a.is_char_boundary(at) || !b.is_char_boundary(at) {
        return String::new();
    }
    format!(": recorded {:?}, now {:?}", excerpt(&a), excerpt(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cassette::{CASSETTE_VERSION, Reply};
    use serde_json::json;

    fn request(prompt: &str) -> CallRequest {
        CallRequest {
            role: "leader".into(),
            model: "m".into(),
            temperature: None,
            max_tokens: 100,
            messages: vec![
                json!({"role": "system", "content": "be brief"}),
                json!({"role": "user", "content": prompt}),
            ],
            output: json!("text"),
            tools: vec![],
            tool_specs_sha256: None,
        }
    }

    fn call(node: &str, index: Option<usize>, prompt: &str, answer: &str) -> RecordedCall {
        let request = request(prompt);
        RecordedCall {
            node: node.into(),
            index,
            round: 0,
            step: 1,
            request_sha256: request.sha256(),
            request,
            reply: Reply::Answer(json!(answer)),
            exchanges: vec![],
        }
    }

    fn replay(calls: Vec<RecordedCall>) -> Replay {
        Replay::new(
            Cassette {
                ao_cassette: CASSETTE_VERSION,
                workflow: "w".into(),
                run_id: "r".into(),
                calls,
            },
            "c.json".into(),
            ReplayMiss::Fail,
        )
    }

    fn answer(l: Lookup<'_>) -> Result<Value, String> {
        match l {
            Lookup::Hit(c) => match &c.reply {
                Reply::Answer(a) => Ok(a.clone()),
                Reply::ToolCalls { .. } => Err("tools".into()),
            },
            Lookup::Miss(why) => Err(why),
        }
    }

    #[test]
    fn calls_are_answered_by_key_and_hash_in_recorded_order() {
        let r = replay(vec![
            call("a", Some(0), "x", "first"),
            call("a", Some(1), "y", "other task"),
            call("a", Some(0), "x", "second"),
        ]);
        let x = request("x");
        assert_eq!(answer(r.lookup("a", Some(0), 0, &x)).unwrap(), "first");
        assert_eq!(answer(r.lookup("a", Some(0), 0, &x)).unwrap(), "second");
        // All used: the same call asked again gets the last recorded answer again.
        assert!(answer(r.lookup("a", Some(0), 0, &x)).is_ok());
        assert_eq!(
            answer(r.lookup("a", Some(1), 0, &request("y"))).unwrap(),
            "other task"
        );
        let why = answer(r.lookup("a", Some(1), 0, &request("y!"))).unwrap_err();
        assert!(
            why.contains("the prompt changed (message 2 differs"),
            "{why}"
        );
        assert!(why.contains("now \"y!\""), "{why}");
        let why = answer(r.lookup("a", Some(5), 0, &x)).unwrap_err();
        assert!(why.contains("task 5, round 0"), "{why}");
        let why = answer(r.lookup("b", None, 0, &x)).unwrap_err();
        assert!(why.contains("no call of this node"), "{why}");
    }

    #[test]
    fn differences_are_named() {
        let a = request("x");
        let mut b = request("x");
        b.model = "other".into();
        assert!(difference(&a, &b).contains("the model changed"));
        let mut b = request("x");
        b.messages[0] = json!({"role": "system", "content": "be long"});
        assert!(difference(&a, &b).starts_with("the system prompt changed (message 1 differs"));
        let mut b = request("x");
        b.output = json!({"type": "Plan"});
        assert!(difference(&a, &b).contains("output"));
        let mut b = request("x");
        b.tools = vec!["fs.read".into()];
        assert!(difference(&a, &b).contains("tools offered changed"));
        let long = "é".repeat(100);
        let mut b = request(&format!("{long}a"));
        let c = request(&format!("{long}b"));
        b.messages.truncate(2);
        let why = difference(&b, &c);
        assert!(why.contains('…'), "{why}");
    }
}
