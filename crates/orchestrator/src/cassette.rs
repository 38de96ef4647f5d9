//! Cassettes: the model calls of a run written to a file, so the same workflow can be run again
//! with every call answered from the file instead of a model (record and replay, see
//! [`crate::replay`]).
//!
//! A cassette is versioned JSON ([`Cassette`], schema by [`cassette_schema`]). Each recorded
//! call is keyed by the node that made it (a sub-run's node as `NODE/SUBNODE`, or
//! `NODE[INDEX]/SUBNODE` when the parent task is a `for_each` task), the task index, the model
//! round (0, then one more per round of tool calls) and the SHA-256 of its normalised request.
//!
//! The normalised request ([`CallRequest`]) is what decides the reply: the role, the model
//! settings (model id, temperature, `max_tokens`), the messages, the node's `output` and the
//! tools offered (names, and a hash of their definitions). What legitimately varies between two
//! runs of the same workflow is left out or normalised: key order (the hash is over canonical
//! JSON), tool-call ids (renamed `call_0`, `call_1`, … in order of appearance), the base URL,
//! streaming, retries and the HTTP attempts themselves.
//!
//! Everything in a cassette comes from the run store, where it is kept redacted; it is redacted
//! again on the way out. No header is ever recorded, so no API key or `Authorization` value can
//! reach a cassette.
//!
//! A cassette read from a file is input from outside the process: it is bounded in size, read
//! strictly (unknown keys are errors, with file:line:col), and every recorded request's hash is
//! checked against the request. What a replayed reply may then do is what a model's reply may
//! do: its answer is checked against the node's output, its tool calls go through the policy
//! gate.

use crate::error::Error;
use crate::records;
use ao_core::redact::Redactor;
use ao_graph::{RunStore, StoredRecord};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::Path;

/// The version of the cassette format this build reads and writes.
pub const CASSETTE_VERSION: u32 = 1;

/// The largest cassette file read (bytes).
pub const MAX_CASSETTE_BYTES: u64 = 256 << 20;

/// The most calls one cassette may hold.
pub const MAX_CALLS: usize = 100_000;

/// The most tool calls one recorded reply may make.
pub const MAX_TOOL_CALLS: usize = 128;

/// The most HTTP exchanges kept with one recorded call.
pub const MAX_EXCHANGES: usize = 64;

/// The most bytes of one recorded reply (as JSON): what the model layer accepts of a reply.
pub const MAX_REPLY_BYTES: usize = ao_models::MAX_REPLY_BYTES;

/// A run's model calls, to be answered again without a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "ao cassette")]
pub struct Cassette {
    /// The version of the format: 1.
    pub ao_cassette: u32,
    /// The workflow the calls were recorded from (for the reader; not used to match).
    pub workflow: String,
    /// The run they were recorded from (for the reader; not used to match).
    pub run_id: String,
    /// The calls, by node, task index and round; calls with the same key in the order they
    /// were made (a node that ran again, in a loop).
    pub calls: Vec<RecordedCall>,
}

/// One model round of a task, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordedCall {
    /// The node that made the call; a sub-run's node as `NODE/SUBNODE` or
    /// `NODE[INDEX]/SUBNODE`.
    pub node: String,
    /// The `for_each` task index (`null` for a node without `for_each`).
    pub index: Option<usize>,
    /// The model round within the task: 0, then one more after each round of tool calls.
    pub round: u32,
    /// The step it ran at in the recorded run (for the reader; not used to match).
    pub step: u64,
    /// Lower-case hex SHA-256 of the canonical JSON of `request` (keys sorted, no spaces).
    pub request_sha256: String,
    /// The normalised request.
    pub request: CallRequest,
    /// What the model answered.
    pub reply: Reply,
    /// The HTTP attempts behind the reply, as stored with the run (redacted; no headers). For
    /// the reader and for the replayed run's records; not used to match.
    #[serde(default)]
    pub exchanges: Vec<Value>,
}

/// A model request, normalised: what decides the reply, and nothing that legitimately varies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallRequest {
    /// The model role asked (`leader`, `worker`, a worker's name).
    pub role: String,
    /// The role's model id.
    pub model: String,
    /// The role's temperature, if set.
    pub temperature: Option<f64>,
    /// The role's reply limit.
    pub max_tokens: u32,
    /// The conversation: system and user messages, earlier replies with their tool calls, tool
    /// results; tool-call ids renamed `call_0`, `call_1`, … in order of appearance.
    pub messages: Vec<Value>,
    /// The node's `output`: `"text"`, `{"schema": …}` or `{"type": NAME}`.
    pub output: Value,
    /// The tools the node offers, by name.
    pub tools: Vec<String>,
    /// SHA-256 of the canonical JSON of the tool definitions sent this round (`null` when none
    /// were sent).
    pub tool_specs_sha256: Option<String>,
}

/// What the model answered in one round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Reply {
    /// The final answer: a string for a text node, the validated JSON value for a node with an
    /// output schema.
    Answer(Value),
    /// Tool calls to make (they run again, under the policy), with the text written alongside.
    ToolCalls {
        calls: Vec<RecordedToolCall>,
        #[serde(default)]
        content: Option<String>,
    },
}

/// One tool call of a recorded reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordedToolCall {
    pub id: String,
    /// The tool's name as the model wrote it (`fs_read` or `fs.read`).
    pub name: String,
    /// The arguments as the model wrote them: a JSON text.
    pub arguments: String,
}

/// The JSON Schema of a cassette (`ao schema cassette`).
pub fn cassette_schema() -> Value {
    serde_json::to_value(schemars::schema_for!(Cassette)).unwrap_or(Value::Null)
}

/// `v` with every object's keys in sorted order, so equal values serialize to equal text.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<&String, Value> =
                m.iter().map(|(k, v)| (k, canonical(v))).collect();
            let mut out = Map::new();
            for (k, v) in sorted {
                out.insert(k.clone(), v);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// Hex SHA-256 of the canonical JSON of `v`.
pub fn canonical_sha256(v: &Value) -> String {
    ao_tools::sha256_hex(canonical(v).to_string().as_bytes())
}

impl CallRequest {
    /// The hash a recorded call is keyed by.
    pub fn sha256(&self) -> String {
        canonical_sha256(&serde_json::to_value(self).unwrap_or(Value::Null))
    }
}

/// The model settings a round is asked with, as kept with the round in the store: the role's
/// model id, temperature and reply limit, and a hash of the tool definitions sent.
pub(crate) fn call_settings(
    config: Option<&ao_core::config::ModelConfig>,
    tools: &[ao_models::ToolSpec],
) -> Value {
    let tool_specs = (!tools.is_empty())
        .then(|| serde_json::to_value(tools).ok())
        .flatten()
        .map(|v| canonical_sha256(&v));
    json!({
        "model": config.map(|c| c.model.value.clone()),
        "temperature": config.and_then(|c| c.temperature.as_ref().map(|t| t.value)),
        "max_tokens": config.map_or(ao_core::config::DEFAULT_MAX_TOKENS, |c| c.max_tokens.value),
        "tool_specs_sha256": tool_specs,
    })
}

/// The normalised request of a round, from its stored fingerprint (the redacted JSON of
/// `{role, messages, output, tools}`) and its settings ([`call_settings`]).
pub(crate) fn call_request(fingerprint: &str, settings: &Value) -> Result<CallRequest, String> {
    let f: Value = serde_json::from_str(fingerprint)
        .map_err(|e| format!("the stored request is not JSON: {e}"))?;
    let role = f
        .get("role")
        .and_then(Value::as_str)
        .ok_or("the stored request has no role")?
        .to_string();
    let messages = f
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("the stored request has no messages")?;
    let tools = f
        .get("tools")
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let model = settings
        .get("model")
        .and_then(Value::as_str)
        .ok_or("the round was stored without its model settings (an interview ask, or a run stored by an earlier version of ao), so it cannot be replayed")?
        .to_string();
    Ok(CallRequest {
        role,
        model,
        temperature: settings.get("temperature").and_then(Value::as_f64),
        max_tokens: settings
            .get("max_tokens")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(ao_core::config::DEFAULT_MAX_TOKENS),
        messages: normalise_tool_ids(messages),
        output: f.get("output").cloned().unwrap_or(Value::Null),
        tools,
        tool_specs_sha256: settings
            .get("tool_specs_sha256")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// Messages with their tool-call ids renamed `call_0`, `call_1`, … in order of appearance (an
/// id is the server's or generated, and says nothing about the request).
fn normalise_tool_ids(messages: &[Value]) -> Vec<Value> {
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    let mut rename = |id: &str| -> String {
        let next = format!("call_{}", ids.len());
        ids.entry(id.to_string()).or_insert(next).clone()
    };
    messages
        .iter()
        .map(|m| {
            let mut m = m.clone();
            if let Some(calls) = m.get_mut("tool_calls").and_then(Value::as_array_mut) {
                for c in calls {
                    if let Some(id) = c.get("id").and_then(Value::as_str).map(str::to_string) {
                        c["id"] = Value::String(rename(&id));
                    }
                }
            }
            if let Some(id) = m
                .get("tool_call_id")
                .and_then(Value::as_str)
                .map(str::to_string)
            {
                m["tool_call_id"] = Value::String(rename(&id));
            }
            m
        })
        .collect()
}

impl Reply {
    /// The reply of a stored round's result (`{answer}` or `{tool_calls, content}`; the tool
    /// results stored with it are left out: the tools run again).
    pub(crate) fn from_result(result: &Value) -> Result<Reply, String> {
        if let Some(calls) = result.get("tool_calls") {
            let calls: Vec<RecordedToolCall> = serde_json::from_value(calls.clone())
                .map_err(|e| format!("its tool calls are unreadable: {e}"))?;
            let content = result
                .get("content")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .map(str::to_string);
            return Ok(Reply::ToolCalls { calls, content });
        }
        match result.get("answer") {
            Some(answer) => Ok(Reply::Answer(answer.clone())),
            None => Err("it has neither an answer nor tool calls".into()),
        }
    }

    /// The round's result as the store keeps it.
    pub(crate) fn to_result(&self) -> Value {
        match self {
            Reply::Answer(answer) => json!({"answer": answer}),
            Reply::ToolCalls { calls, content } => json!({
                "tool_calls": calls,
                "content": content.clone().unwrap_or_default(),
            }),
        }
    }
}

/// Where a sub-run's nodes sit in its top-level run: `""` for the top-level run itself, else
/// the path of its parent's node, `NODE/` or `NODE[INDEX]/` (outermost first).
pub(crate) fn node_prefix(store: &RunStore, run_id: &str, top: &str) -> Result<String, Error> {
    let mut parts = Vec::new();
    let mut current = run_id.to_string();
    // Bounded: sub-runs nest at most as deep as the engine allows.
    for _ in 0..64 {
        if current == top {
            break;
        }
        let Some(record) = store.run(&current)? else {
            break;
        };
        let (Some(parent), Some(task)) = (record.parent_id, record.parent_task) else {
            break;
        };
        parts.push(parent_node(&task));
        current = parent;
    }
    parts.reverse();
    Ok(parts.iter().map(|p| format!("{p}/")).collect())
}

/// A sub-run's parent task (`STEP/NODE/INDEX`, index -1 for none) as `NODE` or `NODE[INDEX]`.
fn parent_node(task: &str) -> String {
    let mut parts = task.splitn(3, '/');
    let _step = parts.next();
    let node = parts.next().unwrap_or(task);
    match parts.next().and_then(|i| i.parse::<i64>().ok()) {
        Some(i) if i >= 0 => format!("{node}[{i}]"),
        _ => node.to_string(),
    }
}

/// The cassette of a stored run and its sub-runs: every completed model round with its
/// exchanges, redacted again by `redactor`. Rounds that never completed (a call that failed,
/// a run stopped while it waited) are not in it.
pub fn from_store(
    store: &RunStore,
    run_id: &str,
    redactor: Option<&Redactor>,
) -> Result<Cassette, Error> {
    let top = store
        .run(run_id)?
        .ok_or_else(|| ao_graph::EngineError::RunNotFound(run_id.to_string()))?;
    let mut runs = vec![top.clone()];
    let mut i = 0;
    while i < runs.len() {
        let mut children = store.child_runs(&runs[i].id)?;
        children.sort_by(|a, b| a.id.cmp(&b.id));
        runs.extend(children);
        i += 1;
    }
    // Each call with where it came from: (run, step), for the order below.
    let mut calls: Vec<((usize, u64), RecordedCall)> = Vec::new();
    for (position, run) in runs.iter().enumerate() {
        let prefix = node_prefix(store, &run.id, &top.id)?;
        let rounds = store.records(&run.id, records::LLM_CALL)?;
        let mut exchanges: BTreeMap<(u64, String, Option<usize>, u32), Vec<Value>> =
            BTreeMap::new();
        for e in store.records(&run.id, records::EXCHANGE)? {
            // Exchanges stored before they carried their round go with the task's first.
            let round = e
                .data
                .get("round")
                .and_then(Value::as_u64)
                .and_then(|r| u32::try_from(r).ok())
                .unwrap_or(0);
            exchanges
                .entry((e.step, e.node.clone(), e.index, round))
                .or_default()
                .push(e.data);
        }
        for r in rounds {
            let call = recorded_call(&prefix, &r, &mut exchanges, redactor).map_err(|why| {
                Error::Cassette {
                    path: format!("run {}", run.id),
                    message: format!(
                        "node `{}`{} round {}: {why}",
                        r.node,
                        r.index.map(|i| format!(" task {i}")).unwrap_or_default(),
                        r.seq
                    ),
                }
            })?;
            calls.push(((position, r.step), call));
        }
    }
    // A deterministic order, whatever order concurrent tasks finished in: by node, task and
    // round, and for the same key in the order it was asked (a node that ran again).
    calls.sort_by(|(a_at, a), (b_at, b)| {
        (&a.node, a.index, a.round, a_at).cmp(&(&b.node, b.index, b.round, b_at))
    });
    Ok(Cassette {
        ao_cassette: CASSETTE_VERSION,
        workflow: top.workflow.clone(),
        run_id: top.id.clone(),
        calls: calls.into_iter().map(|(_, c)| c).collect(),
    })
}

fn recorded_call(
    prefix: &str,
    r: &StoredRecord,
    exchanges: &mut BTreeMap<(u64, String, Option<usize>, u32), Vec<Value>>,
    redactor: Option<&Redactor>,
) -> Result<RecordedCall, String> {
    let fingerprint = r
        .data
        .get("request")
        .and_then(Value::as_str)
        .ok_or("the stored round has no request")?;
    let settings = r.data.get("settings").cloned().unwrap_or(Value::Null);
    let result = r
        .data
        .get("result")
        .ok_or("the stored round has no result")?;
    let mut request = call_request(fingerprint, &settings)?;
    let mut reply = Reply::from_result(result)?;
    let mut exchanges = exchanges
        .remove(&(r.step, r.node.clone(), r.index, r.seq))
        .unwrap_or_default();
    if let Some(redactor) = redactor {
        let mut v = serde_json::to_value(&request).map_err(|e| e.to_string())?;
        redactor.redact_value_in_place(&mut v);
        request = serde_json::from_value(v).map_err(|e| e.to_string())?;
        let mut v = serde_json::to_value(&reply).map_err(|e| e.to_string())?;
        redactor.redact_value_in_place(&mut v);
        reply = serde_json::from_value(v).map_err(|e| e.to_string())?;
        for e in &mut exchanges {
            redactor.redact_value_in_place(e);
        }
    }
    for e in &mut exchanges {
        if let Some(m) = e.as_object_mut() {
            // Where the exchange came from is the cassette's business, not the call's.
            m.remove("replayed");
            m.remove("round");
        }
    }
    Ok(RecordedCall {
        node: format!("{prefix}{}", r.node),
        index: r.index,
        round: r.seq,
        step: r.step,
        request_sha256: request.sha256(),
        request,
        reply,
        exchanges,
    })
}

/// Writes a cassette to `path` atomically (a temporary file beside it, renamed over it).
pub fn write(path: &Path, cassette: &Cassette) -> Result<(), String> {
    use std::io::Write;
    let bytes = serde_json::to_vec_pretty(cassette).map_err(|e| e.to_string())?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".ao-cassette-")
        .tempfile_in(dir)
        .map_err(|e| format!("cannot create a file in {}: {e}", dir.display()))?;
    tmp.write_all(&bytes)
        .and_then(|()| tmp.write_all(b"\n"))
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| e.to_string())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Meant to be read and committed like any source file (it holds nothing secret).
        let _ = tmp
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644));
    }
    tmp.persist(path).map_err(|e| e.error.to_string())?;
    Ok(())
}

/// Reads and checks a cassette file: bounded in size, strict JSON with file:line:col on error,
/// a known version, every call well-formed and its hash matching its request.
pub fn read(path: &Path) -> Result<Cassette, Error> {
    let shown = path.display().to_string();
    let bad = |message: String| Error::Cassette {
        path: shown.clone(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, MAX_CASSETTE_BYTES + 1),
        &mut bytes,
    )
    .map_err(|e| bad(format!("cannot read it: {e}")))?;
    if bytes.len() as u64 > MAX_CASSETTE_BYTES {
        return Err(bad(format!(
            "it is larger than {} MiB, the most a cassette may be",
            MAX_CASSETTE_BYTES >> 20
        )));
    }
    parse(&bytes).map_err(|message| Error::Cassette {
        path: shown,
        message,
    })
}

/// [`read`] on bytes: the error is what follows the file name.
pub fn parse(bytes: &[u8]) -> Result<Cassette, String> {
    #[derive(Deserialize)]
    struct Version {
        ao_cassette: Option<Value>,
    }
    let at = |e: &serde_json::Error| format!("{}:{}: {e}", e.line(), e.column());
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(
            "1:1: not a cassette: a JSON object with `ao_cassette` was expected".to_string(),
        );
    }
    // The version first, so a cassette of another version says so instead of failing on a
    // field this build does not know.
    let version: Version = serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => format!(
            "{} (not a cassette: a JSON object with `ao_cassette` was expected)",
            at(&e)
        ),
        _ => at(&e),
    })?;
    match version.ao_cassette {
        Some(Value::Number(n)) if n.as_u64() == Some(u64::from(CASSETTE_VERSION)) => {}
        Some(Value::Number(n)) => {
            return Err(format!(
                "format version {n} is not one this version of ao reads (it reads version {CASSETTE_VERSION}); record the cassette again"
            ));
        }
        _ => {
            return Err(format!(
                "not a cassette: it has no `ao_cassette` version number (expected {CASSETTE_VERSION})"
            ));
        }
    }
    let cassette: Cassette = serde_json::from_slice(bytes).map_err(|e| at(&e))?;
    if cassette.calls.len() > MAX_CALLS {
        return Err(format!(
            "it holds {} calls, more than the {MAX_CALLS} a cassette may hold",
            cassette.calls.len()
        ));
    }
    for (i, call) in cassette.calls.iter().enumerate() {
        check_call(call).map_err(|why| {
            format!(
                "calls[{i}] (node `{}`{}, round {}): {why}",
                call.node,
                call.index.map(|i| format!(" task {i}")).unwrap_or_default(),
                call.round
            )
        })?;
    }
    Ok(cassette)
}

fn check_call(call: &RecordedCall) -> Result<(), String> {
    if call.node.is_empty() || call.node.len() > 1024 {
        return Err("the node name is empty or longer than 1024 bytes".into());
    }
    let sha = call.request.sha256();
    if call.request_sha256 != sha {
        return Err(format!(
            "request_sha256 is {}, but its request hashes to {sha}: the request was edited; record the cassette again",
            call.request_sha256
        ));
    }
    let size = serde_json::to_vec(&call.reply).map_or(usize::MAX, |b| b.len());
    if size > MAX_REPLY_BYTES {
        return Err(format!(
            "the reply is larger than {} MiB, the most a model reply may be",
            MAX_REPLY_BYTES >> 20
        ));
    }
    if let Reply::ToolCalls { calls, .. } = &call.reply {
        if calls.is_empty() {
            return Err("the reply makes an empty list of tool calls".into());
        }
        if calls.len() > MAX_TOOL_CALLS {
            return Err(format!(
                "the reply makes {} tool calls, more than {MAX_TOOL_CALLS}",
                calls.len()
            ));
        }
    }
    if call.exchanges.len() > MAX_EXCHANGES {
        return Err(format!(
            "it has {} exchanges, more than {MAX_EXCHANGES}",
            call.exchanges.len()
        ));
    }
    if call.exchanges.iter().any(|e| !e.is_object()) {
        return Err("an exchange is not a JSON object".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> CallRequest {
        CallRequest {
            role: "leader".into(),
            model: "m".into(),
            temperature: None,
            max_tokens: 100,
            messages: vec![json!({"role": "user", "content": "hi"})],
            output: json!("text"),
            tools: vec![],
            tool_specs_sha256: None,
        }
    }

    fn cassette() -> Cassette {
        let request = request();
        Cassette {
            ao_cassette: CASSETTE_VERSION,
            workflow: "w".into(),
            run_id: "r".into(),
            calls: vec![RecordedCall {
                node: "n".into(),
                index: None,
                round: 0,
                step: 1,
                request_sha256: request.sha256(),
                request,
                reply: Reply::Answer(json!("hello")),
                exchanges: vec![],
            }],
        }
    }

    #[test]
    fn the_hash_ignores_key_order_and_tool_call_ids_but_not_content() {
        let a = canonical_sha256(&json!({"a": 1, "b": {"c": 2, "d": 3}}));
        let b = canonical_sha256(&json!({"b": {"d": 3, "c": 2}, "a": 1}));
        assert_eq!(a, b);
        let msgs = |id: &str, result: &str| {
            vec![
                json!({"role": "assistant", "content": null, "tool_calls": [{"id": id, "name": "fs_read", "arguments": "{}"}]}),
                json!({"role": "tool", "tool_call_id": id, "content": result}),
            ]
        };
        assert_eq!(
            normalise_tool_ids(&msgs("xyz-1", "ok")),
            normalise_tool_ids(&msgs("call_abc", "ok"))
        );
        assert_ne!(
            normalise_tool_ids(&msgs("xyz-1", "ok")),
            normalise_tool_ids(&msgs("xyz-1", "changed"))
        );
        let mut other = request();
        other.messages[0]["content"] = json!("hi!");
        assert_ne!(request().sha256(), other.sha256());
        let mut other = request();
        other.temperature = Some(0.5);
        assert_ne!(request().sha256(), other.sha256());
    }

    #[test]
    fn a_cassette_round_trips_and_bad_ones_say_where_and_what() {
        let text = serde_json::to_string_pretty(&cassette()).unwrap();
        assert_eq!(parse(text.as_bytes()).unwrap(), cassette());

        let err = parse(b"{\n  \"ao_cassette\": 1,\n  oops\n}").unwrap_err();
        assert!(err.starts_with("3:"), "{err}");
        let err = parse(
            text.replace("\"ao_cassette\": 1", "\"ao_cassette\": 9")
                .as_bytes(),
        )
        .unwrap_err();
        assert!(err.contains("version 9"), "{err}");
        let err = parse(b"[1, 2]").unwrap_err();
        assert!(err.contains("not a cassette"), "{err}");
        let err = parse(text.replace("\"workflow\"", "\"workflo\"").as_bytes()).unwrap_err();
        assert!(err.contains("workflo"), "{err}");
        // An edited request no longer matches its hash.
        let err = parse(text.replace("\"hi\"", "\"bye\"").as_bytes()).unwrap_err();
        assert!(
            err.contains("calls[0] (node `n`, round 0)") && err.contains("edited"),
            "{err}"
        );
        // Deeply nested input is an error, not a stack overflow.
        let deep = format!(
            "{{\"ao_cassette\": 1, \"x\": {}{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(parse(deep.as_bytes()).is_err());
        let mut many = cassette();
        many.calls[0].reply = Reply::ToolCalls {
            calls: vec![],
            content: None,
        };
        let err = parse(serde_json::to_string(&many).unwrap().as_bytes()).unwrap_err();
        assert!(err.contains("empty list of tool calls"), "{err}");
    }

    #[test]
    fn parent_tasks_name_their_node_and_index() {
        assert_eq!(parent_node("3/review/2"), "review[2]");
        assert_eq!(parent_node("3/sub/-1"), "sub");
    }
}
