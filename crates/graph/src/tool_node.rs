//! Runs tools for workflows: `tool` nodes, and the tool calls models make from `llm` nodes.
//!
//! Every call goes through `ao-tools`' one policy gate with the project's policy. Per run it
//! keeps the changeset overlay (dry-run writes that later reads of the same run see), stores the
//! changeset with the run after every write, records every policy decision with the run, and
//! emits a `tool_call` event. Sub-runs share their top-level run's overlay, so a sub-workflow's
//! proposed edits are part of the run's one changeset.

use crate::engine::events::EventKind;
use crate::engine::host::{BoxFuture, NodeCall, NodeFailure, ToolRunner};
use crate::engine::store::{RunStore, StoreError, TaskKey};
use ao_core::redact::Redactor;
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

/// Stores each decision with the run and task that asked.
struct StoreDecisions {
    store: Arc<RunStore>,
    run_id: String,
    step: u64,
    node: String,
    index: Option<usize>,
}

impl DecisionRecorder for StoreDecisions {
    fn record(&self, record: &DecisionRecord) {
        let key = TaskKey {
            run_id: &self.run_id,
            step: self.step,
            node: &self.node,
            index: self.index,
        };
        let value = serde_json::to_value(record).unwrap_or(Value::Null);
        if let Err(e) = self.store.record_tool_call(&key, &value) {
            eprintln!(
                "warning: policy decision for `{}` in node `{}` not recorded: {e}",
                record.tool, self.node
            );
        }
    }
}

struct NoDecisions;

impl DecisionRecorder for NoDecisions {
    fn record(&self, _record: &DecisionRecord) {}
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
            Some(store) => match store.changeset(root_run)? {
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

    /// One tool call for a task: through the gate, recorded, its changeset kept. A denial is a
    /// normal result (the caller reads `decision` and `reason`).
    pub async fn call(
        &self,
        call: &NodeCall<'_>,
        tool: &str,
        args: Value,
    ) -> Result<Value, ToolError> {
        let root = match &self.store {
            Some(store) => store
                .root_run_id(call.run_id)
                .unwrap_or_else(|_| call.run_id.to_string()),
            None => call.run_id.to_string(),
        };
        let overlay = self.overlay(&root).map_err(|e| ToolError::Failed {
            tool: tool.to_string(),
            path: None,
            message: format!("cannot restore the run's changeset: {e}"),
        })?;
        let recorder: Arc<dyn DecisionRecorder> = match &self.store {
            Some(store) => Arc::new(StoreDecisions {
                store: store.clone(),
                run_id: call.run_id.to_string(),
                step: call.step,
                node: call.node.to_string(),
                index: call.index,
            }),
            None => Arc::new(NoDecisions),
        };
        let ctx = ToolContext::new(self.policy.clone(), recorder, self.redactor.clone())
            .with_overlay(overlay);
        let outcome = ToolRegistry::standard().call(tool, args, &ctx).await?;
        call.events.emit(EventKind::ToolCall {
            node: call.node.to_string(),
            tool: outcome.tool.clone(),
            decision: outcome.decision.as_str().to_string(),
        });
        if outcome.effect == Effect::Write
            && let Some(store) = &self.store
        {
            let mut changeset = serde_json::to_value(ctx.changeset()).unwrap_or(Value::Null);
            // Whether these changes are already on disk (`--apply`) or only proposed.
            changeset["applied"] = Value::Bool(self.policy.mode() == ao_tools::Mode::Apply);
            store
                .put_changeset(&root, &changeset)
                .map_err(|e| ToolError::Failed {
                    tool: tool.to_string(),
                    path: None,
                    message: format!(
                        "the write was made but the run's changeset could not be stored: {e}"
                    ),
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

/// How a tool error fails a `tool` node: bad arguments and tool failures are not retried
/// (they would fail the same way).
fn failure(e: &ToolError) -> NodeFailure {
    NodeFailure {
        message: e.to_string(),
        retryable: false,
        kind: if e.is_invalid_input() {
            "tool_input"
        } else {
            "tool"
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
