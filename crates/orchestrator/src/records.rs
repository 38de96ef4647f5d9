//! What the orchestration layer keeps with a run, in the engine store's generic records.
//!
//! The engine stores runs, task writes, checkpoints and events; everything about models and
//! tools is kept here, under record kinds of this layer's own, so the formats live in one
//! file:
//!
//! | kind | scope | seq | data |
//! |---|---|---|---|
//! | `llm_call` | task | model round | `{request, result}`: a completed round, reused on resume |
//! | `exchange` | task | appended | one HTTP attempt, redacted |
//! | `tool_call` | task | appended | one policy decision, redacted |
//! | `changeset` | top-level run | 0 | the run's changeset (and whether it was applied) |
//! | `usage` | run | 0 | usage totals of the run and its sub-runs |
//!
//! Every write here is fail-closed: its error goes back to the caller, which fails the task.

use ao_graph::{RecordScope, Records, RunStore, StoreError, StoredRecord, TaskKey};
use ao_models::{Usage, UsageTotals};
use serde_json::{Value, json};

pub const LLM_CALL: &str = "llm_call";
pub const EXCHANGE: &str = "exchange";
pub const TOOL_CALL: &str = "tool_call";
pub const CHANGESET: &str = "changeset";
pub const USAGE: &str = "usage";

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

/// Adds the usage of a call's requests (one model call each) to the totals of the run and of every run above it (a
/// parent's usage includes its sub-runs'), inside the caller's transaction.
fn add_usage(
    records: &Records<'_>,
    lineage: &[String],
    role: &str,
    usages: &[Usage],
) -> Result<(), StoreError> {
    for run in lineage {
        let scope = RecordScope::Run(run);
        let mut totals: UsageTotals = match records.get(scope, USAGE, 0)? {
            Some(v) => serde_json::from_value(v).map_err(|e| StoreError::Corrupt {
                context: "run usage",
                detail: e.to_string(),
            })?,
            None => UsageTotals::default(),
        };
        for usage in usages {
            totals.add(role, usage);
        }
        records.put(scope, USAGE, 0, &to_value("run usage", &totals)?)?;
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
    pub exchanges: &'a [Value],
    /// What each request that was sent cost (one model call each, answered or not).
    pub usages: &'a [Usage],
}

pub fn store_call(store: &RunStore, call: &CallRecord<'_>) -> Result<(), StoreError> {
    let lineage = call_lineage(store, call)?;
    store.write_records("store model call", |records| {
        write_call(records, call, &lineage)
    })
}

/// The runs whose usage totals a call adds to (none when it sent no request).
pub fn call_lineage(store: &RunStore, call: &CallRecord<'_>) -> Result<Vec<String>, StoreError> {
    if call.usages.is_empty() {
        Ok(Vec::new())
    } else {
        store.lineage(call.task.run_id)
    }
}

/// Writes a call's records inside the caller's transaction (`lineage`: [`call_lineage`]).
pub fn write_call(
    records: &Records<'_>,
    call: &CallRecord<'_>,
    lineage: &[String],
) -> Result<(), StoreError> {
    {
        let scope = RecordScope::Task(call.task);
        if let Some((request, result)) = call.completed {
            records.put(
                scope,
                LLM_CALL,
                call.round,
                &json!({"request": request, "result": result}),
            )?;
        }
        for exchange in call.exchanges {
            records.append(scope, EXCHANGE, exchange)?;
        }
        if !call.usages.is_empty() {
            add_usage(records, lineage, call.role, call.usages)?;
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
) -> Result<(), StoreError> {
    store.write_records("store tool results", |records| {
        records.put(
            RecordScope::Task(*task),
            LLM_CALL,
            round,
            &json!({"request": request, "result": result}),
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

/// The changeset of a top-level run, if it has one.
pub fn changeset(store: &RunStore, root_run: &str) -> Result<Option<Value>, StoreError> {
    store.record(RecordScope::Run(root_run), CHANGESET, 0)
}

pub fn put_changeset(store: &RunStore, root_run: &str, data: &Value) -> Result<(), StoreError> {
    store.write_records("store changeset", |records| {
        records.put(RecordScope::Run(root_run), CHANGESET, 0, data)
    })
}

/// The usage totals of a run (its sub-runs included), if it made model calls.
pub fn usage(store: &RunStore, run_id: &str) -> Result<Option<UsageTotals>, StoreError> {
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
