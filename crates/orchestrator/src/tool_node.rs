//! Runs tools for workflows: `tool` nodes, and the tool calls models make from `llm` nodes.
//!
//! Every call goes through `ao-tools`' one policy gate with the project's policy. Per run it
//! keeps the changeset overlay (dry-run writes that later reads of the same run see), stores the
//! changeset with the run after every write, records every policy decision with the run, and
//! emits a `tool_call` event. Sub-runs share their top-level run's overlay, so a sub-workflow's
//! proposed edits are part of the run's one changeset.
//!
//! Recording is fail-closed: a decision or a changeset that cannot be stored fails the call
//! ([`ToolCallError::Record`]), which fails the task; it never becomes a warning.

use crate::records;
use ao_core::redact::Redactor;
use ao_graph::{
    BoxFuture, EventKind, NodeCall, NodeFailure, RunStore, StoreError, TaskKey, ToolRunner,
};
use ao_tools::{
    Changeset, DecisionRecord, DecisionRecorder, Effect, Overlay, Policy, ToolContext, ToolError,
    ToolRegistry,
};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The tools of one project, under its policy.
pub struct ToolNodeRunner {
    policy: Arc<Policy>,
    redactor: Redactor,
    store: Option<Arc<RunStore>>,
    /// Top-level run id → its overlay.
    overlays: Mutex<HashMap<String, Overlay>>,
}

/// Why a tool call did not give a result.
#[derive(Debug, thiserror::Error)]
pub enum ToolCallError {
    /// The tool refused its input or failed doing allowed work: the caller (a model) can be
    /// told and try something else.
    #[error(transparent)]
    Tool(#[from] ToolError),
    /// The run's record of the call could not be kept: the task must stop.
    #[error("{0}")]
    Record(String),
}

/// Stores each decision with the run and task that asked (nothing without a store);
/// remembers the first failure so the caller fails the task.
pub struct StoreDecisions {
    store: Option<Arc<RunStore>>,
    run_id: String,
    step: u64,
    node: String,
    index: Option<usize>,
    failed: Mutex<Option<String>>,
}

impl StoreDecisions {
    /// Why a decision could not be recorded, if one could not.
    pub fn failure(&self) -> Option<String> {
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl DecisionRecorder for StoreDecisions {
    fn record(&self, record: &DecisionRecord) -> Result<(), String> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let key = TaskKey {
            run_id: &self.run_id,
            step: self.step,
            node: &self.node,
            index: self.index,
        };
        let stored = records::to_value("policy decision", record)
            .and_then(|value| records::record_decision(store, &key, &value));
        stored.map_err(|e| {
            let why = format!(
                "the policy decision for `{}` could not be recorded: {e}",
                record.tool
            );
            // Kept so the runner fails the task (not the model's turn) whatever the tool
            // makes of the error.
            self.failed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert_with(|| why.clone());
            why
        })
    }
}

impl ToolNodeRunner {
    pub fn new(policy: Arc<Policy>, redactor: Redactor, store: Option<Arc<RunStore>>) -> Self {
        ToolNodeRunner {
            policy,
            redactor,
            store,
            overlays: Mutex::new(HashMap::new()),
        }
    }

    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The overlay a run's tools see: its top-level run's, restored from the stored changeset
    /// the first time (so a resumed run still sees its earlier dry-run writes).
    fn overlay(&self, root_run: &str) -> Result<Overlay, StoreError> {
        let mut overlays = self.overlays.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(o) = overlays.get(root_run) {
            return Ok(o.clone());
        }
        let overlay = match &self.store {
            Some(store) => match records::changeset(store, root_run)? {
                Some(value) => {
                    let changeset: Changeset =
                        serde_json::from_value(value).map_err(|e| StoreError::Corrupt {
                            context: "changeset",
                            detail: e.to_string(),
                        })?;
                    Overlay::from_changeset(&changeset)
                }
                None => Overlay::new(),
            },
            None => Overlay::new(),
        };
        overlays.insert(root_run.to_string(), overlay.clone());
        Ok(overlay)
    }

    /// Drops a top-level run's overlay once its driver has stopped (it is restored from the
    /// store if the run is resumed), so a long-lived host does not keep every run's files.
    pub fn forget(&self, root_run: &str) {
        self.overlays
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(root_run);
    }

    /// A recorder that keeps a task's policy decisions with the run (for callers that run a
    /// tool themselves, like the validation node); check [`StoreDecisions::failure`] after.
    pub fn decisions_for(&self, call: &NodeCall<'_>) -> Arc<StoreDecisions> {
        Arc::new(StoreDecisions {
            store: self.store.clone(),
            run_id: call.run_id.to_string(),
            step: call.step,
            node: call.node.to_string(),
            index: call.index,
            failed: Mutex::new(None),
        })
    }

    /// The effect class of a tool, by the name a node or a model uses (`fs.read`/`fs_read`).
    pub fn effect_of(&self, name: &str) -> Option<Effect> {
        ToolRegistry::standard().get(name).map(|s| s.effect)
    }

    /// One tool call for a task: through the gate, recorded, its changeset kept. A denial is a
    /// normal result (the caller reads `decision` and `reason`).
    pub async fn call(
        &self,
        call: &NodeCall<'_>,
        tool: &str,
        args: Value,
    ) -> Result<Value, ToolCallError> {
        let root = match &self.store {
            Some(store) => store.root_run_id(call.run_id).map_err(|e| {
                ToolCallError::Record(format!("cannot read the run's lineage: {e}"))
            })?,
            None => call.run_id.to_string(),
        };
        let overlay = self.overlay(&root).map_err(|e| {
            ToolCallError::Record(format!("cannot restore the run's changeset: {e}"))
        })?;
        let decisions = self.decisions_for(call);
        let ctx = ToolContext::new(
            self.policy.clone(),
            decisions.clone(),
            self.redactor.clone(),
        )
        .with_overlay(overlay);
        let outcome = ToolRegistry::standard().call(tool, args, &ctx).await;
        if let Some(why) = decisions.failure() {
            return Err(ToolCallError::Record(why));
        }
        let outcome = outcome?;
        call.events.emit(EventKind::ToolCall {
            node: call.node.to_string(),
            tool: outcome.tool.clone(),
            decision: outcome.decision.as_str().to_string(),
        });
        if outcome.effect == Effect::Write
            && let Some(store) = &self.store
        {
            // The file this write changed, as the overlay now holds it: one entry per write.
            let path = outcome.output.get("path").and_then(Value::as_str);
            let stored = match path.and_then(|p| ctx.overlay().file(p)) {
                Some(file) => records::to_value("changeset", &file).and_then(|file| {
                    // Whether the change is already on disk (`--apply`) or only proposed.
                    let applied = self.policy.mode() == ao_tools::Mode::Apply;
                    records::put_changed_file(store, &root, &file, applied)
                }),
                // A write that changed nothing (denied, refused) has nothing to store.
                None => Ok(()),
            };
            stored.map_err(|e| {
                ToolCallError::Record(format!(
                    "`{tool}` was carried out but the run's changeset could not be stored: {e}"
                ))
            })?;
        }
        Ok(outcome.to_json())
    }

    /// The tool specs a model may be given, by the names a node lists (`fs.read` or `fs_read`).
    pub fn specs_for(&self, names: &[String]) -> Result<Vec<ao_models::ToolSpec>, String> {
        names
            .iter()
            .map(|name| {
                let spec = ToolRegistry::standard().get(name).ok_or_else(|| {
                    format!("unknown tool `{name}` (tools: {})", tool_names().join(", "))
                })?;
                Ok(ao_models::ToolSpec {
                    name: spec.function_name(),
                    description: Some(spec.description.to_string()),
                    parameters: spec.input_schema.clone(),
                })
            })
            .collect()
    }
}

/// Every tool's dotted name, in registry order.
pub fn tool_names() -> Vec<&'static str> {
    ToolRegistry::standard().specs().map(|s| s.name).collect()
}

/// How a failed call fails a `tool` node: bad arguments and tool failures are not retried
/// (they would fail the same way); a record that could not be kept may be, on another attempt.
fn failure(e: &ToolCallError) -> NodeFailure {
    match e {
        ToolCallError::Tool(t) => NodeFailure {
            message: t.to_string(),
            retryable: false,
            kind: if t.is_invalid_input() {
                "tool_input"
            } else {
                "tool"
            },
        },
        ToolCallError::Record(message) => NodeFailure {
            message: message.clone(),
            retryable: true,
            kind: "store",
        },
    }
}

impl ToolRunner for ToolNodeRunner {
    fn run<'a>(
        &'a self,
        call: NodeCall<'a>,
        tool: &'a str,
        args: Value,
    ) -> BoxFuture<'a, Result<Value, NodeFailure>> {
        Box::pin(async move { self.call(&call, tool, args).await.map_err(|e| failure(&e)) })
    }
}

/// One deterministic tool as the front ends list it.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct ToolInfo {
    pub name: String,
    pub description: String,
    /// `read`, `write` or `exec`.
    pub effect: String,
    pub input_schema: Value,
    pub output_schema: Value,
}

/// Every tool, in registry order.
pub fn tool_list() -> Vec<ToolInfo> {
    ToolRegistry::standard()
        .specs()
        .map(|s| ToolInfo {
            name: s.name.to_string(),
            description: s.description.to_string(),
            effect: s.effect.as_str().to_string(),
            input_schema: s.input_schema.clone(),
            output_schema: s.output_schema.clone(),
        })
        .collect()
}
