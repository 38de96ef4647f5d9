//! What the orchestration layer keeps with a run, in the engine store's generic records.
//!
//! The engine stores runs, task writes, checkpoints and events; everything about models and
//! tools is kept here, under record kinds of this layer's own, so the formats live in one
//! file:
//!
//! | kind | scope | seq | data |
//! |---|---|---|---|
//! | `llm_call` | task | model round | `{request, result, settings}`: a completed round, reused on resume; `settings` are the model settings it was asked with (what a cassette keys on besides the request) |
//! | `exchange` | task | appended | one HTTP attempt, redacted, with its `round` (and `replayed: true` when a cassette answered it) |
//! | `tool_call` | task | appended | one policy decision, redacted |
//! | `changeset_file` | top-level run | appended | one file's change after a write, and whether it was applied; the changeset is the last entry of each path |
//! | `changeset` | top-level run | 0 | (stores before per-file entries) the whole changeset |
//! | `usage` | run | 0 | usage totals of the run and its sub-runs |
//! | `resume_request` | run | appended | an answer given under a caller's request id: `{request_id, answer_sha256, result?}` (`result`: the run as the call returned it), or `{request_id, released: true}` once freed |
//!
//! Every write here is fail-closed: its error goes back to the caller, which fails the task.

use ao_graph::{RecordScope, Records, RunStore, StoreError, StoredRecord, TaskKey};
use ao_models::{Usage, UsageTotals};

use serde_json::{Value, json};

pub const LLM_CALL: &str = "llm_call";
pub const EXCHANGE: &str = "exchange";
pub const TOOL_CALL: &str = "tool_call";
pub const CHANGESET: &str = "changeset";
pub const CHANGESET_FILE: &str = "changeset_file";
pub const USAGE: &str = "usage";
pub const RESUME_REQUEST: &str = "resume_request";

/// A completed model round of a task: the redacted fingerprint of the request it answered,
/// and its result (`{answer}` or `{tool_calls, tool_results?}`).
pub fn stored_round(
    store: &RunStore,
    task: &TaskKey<'_>,
    round: u32,
) -> Result<Option<(String, Value)>, StoreError> {
    let Some(data) = store.record(RecordScope::Task(*task), LLM_CALL, round)? else {
        return Ok(None);
    };
    let request = data.get("request").and_then(Value::as_str);
    let result = data.get("result");
    match (request, result) {
        (Some(request), Some(result)) => Ok(Some((request.to_string(), result.clone()))),
        _ => Err(StoreError::Corrupt {
            context: "model call",
            detail: format!(
                "round {round} of node `{}` has no request or result",
                task.node
            ),
        }),
    }
}

/// A run's model usage: totals (overall and per role) and per node.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunUsage {
    #[serde(flatten)]
    pub totals: UsageTotals,
    /// Per node that called a model. A sub-run's nodes appear in its parent as
    /// `NODE/SUBNODE` (the parent's `workflow` node, then the sub-run's node).
    #[serde(default)]
    pub by_node: std::collections::BTreeMap<String, NodeUsage>,
    /// Model calls answered from a replay cassette: nothing was sent, so they are in no other
    /// count (calls, tokens, cost).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replayed: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The model requests of one node (all its tasks), and of each `for_each` task.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NodeUsage {
    pub calls: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub estimated: bool,
    /// Known only when every request's model has a price.
    pub cost_usd: Option<f64>,
    /// Wall time of the requests, summed.
    pub latency_ms: u64,
    /// Calls answered from a replay cassette (in no other count).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replayed: u64,
    /// Per `for_each` task, by index (empty for a node without `for_each`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tasks: std::collections::BTreeMap<usize, NodeUsage>,
}

impl NodeUsage {
    fn add(&mut self, usage: &Usage, latency_ms: u64) {
        self.cost_usd = match (self.calls, self.cost_usd, usage.cost_usd) {
            (0, _, c) => c,
            (_, Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        self.calls += 1;
        self.prompt_tokens += usage.prompt_tokens;
        self.completion_tokens += usage.completion_tokens;
        self.estimated |= usage.estimated;
        self.latency_ms += latency_ms;
    }
}

/// What one sent request cost and took.
#[derive(Debug, Clone, Copy)]
pub struct RequestCost {
    pub usage: Usage,
    pub latency_ms: u64,
}

/// Adds the usage of a call's requests (one model call each) to the totals of the run and of
/// every run above it (a parent's usage includes its sub-runs'), inside the caller's
/// transaction. `lineage` is the run first, then its ancestors, each with the node of its
/// parent that started it.
fn add_usage(
    records: &Records<'_>,
    lineage: &[(String, Option<String>)],
    task: &TaskKey<'_>,
    role: &str,
    requests: &[RequestCost],
    replayed: bool,
) -> Result<(), StoreError> {
    let mut node_path = task.node.to_string();
    for (run, started_by) in lineage {
        let scope = RecordScope::Run(run);
        let mut usage: RunUsage = match records.get(scope, USAGE, 0)? {
            Some(v) => serde_json::from_value(v).map_err(|e| StoreError::Corrupt {
                context: "run usage",
                detail: e.to_string(),
            })?,
            None => RunUsage::default(),
        };
        let node = usage.by_node.entry(node_path.clone()).or_default();
        if replayed {
            usage.replayed += 1;
            node.replayed += 1;
            if let Some(i) = task.index.filter(|_| run == task.run_id) {
                node.tasks.entry(i).or_default().replayed += 1;
            }
        }
        for r in requests {
            usage.totals.add(role, &r.usage);
            node.add(&r.usage, r.latency_ms);
            if let Some(i) = task.index.filter(|_| run == task.run_id) {
                node.tasks.entry(i).or_default().add(&r.usage, r.latency_ms);
            }
        }
        records.put(scope, USAGE, 0, &to_value("run usage", &usage)?)?;
        if let Some(parent_node) = started_by {
            node_path = format!("{parent_node}/{node_path}");
        }
    }
    Ok(())
}

/// A value as stored, or an error: never `null` in place of a value.
pub fn to_value<T: serde::Serialize>(context: &'static str, v: &T) -> Result<Value, StoreError> {
    serde_json::to_value(v).map_err(|e| StoreError::Unserializable {
        context,
        detail: e.to_string(),
    })
}

/// One model request that was sent: its exchanges (HTTP attempts) and usage, and, when it
/// produced one, the round's result to reuse on resume — all in one transaction.
pub struct CallRecord<'a> {
    pub task: TaskKey<'a>,
    pub round: u32,
    pub role: &'a str,
    /// The redacted fingerprint and result of a completed round (`None` for a failed call).
    pub completed: Option<(&'a str, &'a Value)>,
    /// The model settings the round was asked with (see [`crate::cassette`]).
    pub settings: &'a Value,
    pub exchanges: &'a [Value],
    /// What each request that was sent cost (one model call each, answered or not).
    pub requests: &'a [RequestCost],
    /// A replay cassette answered the round (nothing was sent).
    pub replayed: bool,
}

pub fn store_call(store: &RunStore, call: &CallRecord<'_>) -> Result<(), StoreError> {
    let lineage = call_lineage(store, call)?;
    store.write_records("store model call", |records| {
        write_call(records, call, &lineage)
    })
}

/// The runs whose usage totals a call adds to (none when it sent no request).
pub fn call_lineage(
    store: &RunStore,
    call: &CallRecord<'_>,
) -> Result<Vec<(String, Option<String>)>, StoreError> {
    if call.requests.is_empty() && !call.replayed {
        Ok(Vec::new())
    } else {
        lineage_with_nodes(store, call.task.run_id)
    }
}

/// Writes a call's records inside the caller's transaction (`lineage`: [`call_lineage`]).
pub fn write_call(
    records: &Records<'_>,
    call: &CallRecord<'_>,
    lineage: &[(String, Option<String>)],
) -> Result<(), StoreError> {
    {
        let scope = RecordScope::Task(call.task);
        if let Some((request, result)) = call.completed {
            records.put(
                scope,
                LLM_CALL,
                call.round,
                &json!({"request": request, "result": result, "settings": call.settings}),
            )?;
        }
        for exchange in call.exchanges {
            records.append(scope, EXCHANGE, exchange)?;
        }
        if !call.requests.is_empty() || call.replayed {
            add_usage(
                records,
                lineage,
                &call.task,
                call.role,
                call.requests,
                call.replayed,
            )?;
        }
        Ok(())
    }
}

/// Replaces a stored round's result (to add the results of the tools it called, one by one).
pub fn update_round(
    store: &RunStore,
    task: &TaskKey<'_>,
    round: u32,
    request: &str,
    result: &Value,
    settings: &Value,
) -> Result<(), StoreError> {
    store.write_records("store tool results", |records| {
        records.put(
            RecordScope::Task(*task),
            LLM_CALL,
            round,
            &json!({"request": request, "result": result, "settings": settings}),
        )
    })
}

/// Records one policy decision (already redacted).
pub fn record_decision(
    store: &RunStore,
    task: &TaskKey<'_>,
    decision: &Value,
) -> Result<(), StoreError> {
    store.write_records("store tool call", |records| {
        records.append(RecordScope::Task(*task), TOOL_CALL, decision)?;
        Ok(())
    })
}

/// The changeset of a top-level run (`{files, applied}`), if it has one: each path's last
/// stored change, sorted by path. Storing it costs one entry per write, not the whole
/// changeset every time.
pub fn changeset(store: &RunStore, root_run: &str) -> Result<Option<Value>, StoreError> {
    let whole = store.record(RecordScope::Run(root_run), CHANGESET, 0)?;
    let entries = store.records(root_run, CHANGESET_FILE)?;
    if whole.is_none() && entries.is_empty() {
        return Ok(None);
    }
    let mut applied = whole
        .as_ref()
        .and_then(|w| w.get("applied"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut files: std::collections::BTreeMap<String, Value> = whole
        .as_ref()
        .and_then(|w| w.get("files"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| Some((f.get("path")?.as_str()?.to_string(), f.clone())))
        .collect();
    for e in entries {
        let path = e
            .data
            .get("file")
            .and_then(|f| f.get("path"))
            .and_then(Value::as_str)
            .ok_or_else(|| StoreError::Corrupt {
                context: "changeset",
                detail: "a stored file change has no path".into(),
            })?;
        applied = e
            .data
            .get("applied")
            .and_then(Value::as_bool)
            .unwrap_or(applied);
        files.insert(path.to_string(), e.data["file"].clone());
    }
    Ok(Some(
        json!({"files": files.into_values().collect::<Vec<_>>(), "applied": applied}),
    ))
}

/// Stores one file's change after a write (`file` is the overlay's entry for the path).
pub fn put_changed_file(
    store: &RunStore,
    root_run: &str,
    file: &Value,
    applied: bool,
) -> Result<(), StoreError> {
    store.write_records("store changeset", |records| {
        records.append(
            RecordScope::Run(root_run),
            CHANGESET_FILE,
            &json!({"file": file, "applied": applied}),
        )?;
        Ok(())
    })
}

/// The run and its ancestors, each with the node of its parent that started it (the engine
/// keys a sub-run's parent task as `STEP/NODE/INDEX`).
pub(crate) fn lineage_with_nodes(
    store: &RunStore,
    run_id: &str,
) -> Result<Vec<(String, Option<String>)>, StoreError> {
    Ok(store
        .lineage_links(run_id)?
        .into_iter()
        .map(|(id, task)| {
            let started_by = task.and_then(|t| t.split('/').nth(1).map(str::to_string));
            (id, started_by)
        })
        .collect())
}

/// The model usage of a run (its sub-runs included), if it made model calls.
pub fn usage(store: &RunStore, run_id: &str) -> Result<Option<RunUsage>, StoreError> {
    store
        .record(RecordScope::Run(run_id), USAGE, 0)?
        .map(|v| {
            serde_json::from_value(v).map_err(|e| StoreError::Corrupt {
                context: "run usage",
                detail: e.to_string(),
            })
        })
        .transpose()
}

/// A stored record as the front ends show it: `{step, node, index, data}`.
fn shown(r: StoredRecord) -> Value {
    json!({"step": r.step, "node": r.node, "index": r.index, "data": r.data})
}

/// The model exchanges (HTTP attempts) of a run, oldest first.
pub fn exchanges(store: &RunStore, run_id: &str) -> Result<Vec<Value>, StoreError> {
    Ok(store
        .records(run_id, EXCHANGE)?
        .into_iter()
        .map(shown)
        .collect())
}

/// The tool calls (with their policy decisions) of a run, oldest first.
pub fn tool_calls(store: &RunStore, run_id: &str) -> Result<Vec<Value>, StoreError> {
    Ok(store
        .records(run_id, TOOL_CALL)?
        .into_iter()
        .map(shown)
        .collect())
}

/// What reserving a resume request id found.
pub enum ResumeSlot {
    /// The id is new: reserved under this sequence number.
    New(u32),
    /// The id was used before (and not freed).
    Seen(SeenRequest),
}

/// A resume request id used before, as recorded.
pub struct SeenRequest {
    pub seq: u32,
    pub data: Value,
}

impl std::ops::Deref for SeenRequest {
    type Target = Value;
    fn deref(&self) -> &Value {
        &self.data
    }
}

/// Reserves `request_id` for an answer to `run_id`, in one transaction (so two processes
/// given the same id cannot both reserve it), or returns its earlier record.
pub fn reserve_resume_request(
    store: &RunStore,
    run_id: &str,
    request_id: &str,
    answer_sha256: &str,
) -> Result<ResumeSlot, StoreError> {
    store.write_records("reserve resume request", |records| {
        let scope = RecordScope::Run(run_id);
        let mut seq = 0u32;
        while let Some(data) = records.get(scope, RESUME_REQUEST, seq)? {
            let same = data.get("request_id").and_then(Value::as_str) == Some(request_id);
            let released = data.get("released").and_then(Value::as_bool) == Some(true);
            if same && !released {
                return Ok(ResumeSlot::Seen(SeenRequest { seq, data }));
            }
            seq = seq
                .checked_add(1)
                .ok_or_else(|| StoreError::Unserializable {
                    context: "resume request",
                    detail: "too many resume requests for one run".into(),
                })?;
        }
        records.put(
            scope,
            RESUME_REQUEST,
            seq,
            &json!({"request_id": request_id, "answer_sha256": answer_sha256}),
        )?;
        Ok(ResumeSlot::New(seq))
    })
}

/// Records the result of a reserved request (`data` replaces the reservation).
pub fn finish_resume_request(
    store: &RunStore,
    run_id: &str,
    seq: u32,
    data: &Value,
) -> Result<(), StoreError> {
    store.write_records("store resume result", |records| {
        records.put(RecordScope::Run(run_id), RESUME_REQUEST, seq, data)
    })
}

/// Frees a reserved request id whose call answered nothing.
pub fn release_resume_request(
    store: &RunStore,
    run_id: &str,
    seq: u32,
    request_id: &str,
) -> Result<(), StoreError> {
    finish_resume_request(
        store,
        run_id,
        seq,
        &json!({"request_id": request_id, "released": true}),
    )
}

/// One resume request record.
pub fn resume_request(
    store: &RunStore,
    run_id: &str,
    seq: u32,
) -> Result<Option<Value>, StoreError> {
    store.record(RecordScope::Run(run_id), RESUME_REQUEST, seq)
}
