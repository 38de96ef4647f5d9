//! `builtin` nodes that read what the run itself has done, so a workflow's report can carry
//! it: the changeset its tools proposed, its model usage, the warnings it collected.
//!
//! | name | `with:` | writes |
//! |---|---|---|
//! | `run_changeset` | — | `{patch, files: [{path, action}], applied}` of the top-level run |
//! | `run_usage` | — | a `UsageSummary` (calls, tokens, cost, wall time so far) |
//! | `run_warnings` | — | the messages of the run's `warning` events, oldest first |

use crate::records;
use ao_graph::{BoxFuture, BuiltinNode, EventKind, Host, NodeCall, NodeFailure, RunStore};
use ao_tools::Changeset;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Clone, Copy)]
enum What {
    Changeset,
    Usage,
    Warnings,
}

struct RunNode {
    store: Arc<RunStore>,
    what: What,
}

/// Adds the nodes that read the run to `host`.
pub fn register(host: Host, store: &Arc<RunStore>) -> Host {
    [
        ("run_changeset", What::Changeset),
        ("run_usage", What::Usage),
        ("run_warnings", What::Warnings),
    ]
    .into_iter()
    .fold(host, |host, (name, what)| {
        host.with_builtin(
            name,
            Arc::new(RunNode {
                store: store.clone(),
                what,
            }),
        )
    })
}

fn failed(e: impl std::fmt::Display) -> NodeFailure {
    NodeFailure {
        message: format!("cannot read the run's records: {e}"),
        retryable: true,
        kind: "store",
    }
}

impl RunNode {
    fn read(&self, call: &NodeCall<'_>) -> Result<Value, NodeFailure> {
        let top = self.store.root_run_id(call.run_id).map_err(failed)?;
        match self.what {
            What::Changeset => {
                let Some(stored) = records::changeset(&self.store, &top).map_err(failed)? else {
                    return Ok(json!({"patch": "", "files": [], "applied": false}));
                };
                let applied = stored["applied"].as_bool().unwrap_or(false);
                let changeset: Changeset = serde_json::from_value(stored).map_err(failed)?;
                let files: Vec<Value> = changeset
                    .files
                    .iter()
                    .map(|f| json!({"path": f.path, "action": f.action()}))
                    .collect();
                Ok(
                    json!({"patch": changeset.to_unified_diff(), "files": files, "applied": applied}),
                )
            }
            What::Usage => {
                let totals = records::usage(&self.store, &top)
                    .map_err(failed)?
                    .unwrap_or_default();
                let started = self
                    .store
                    .run(&top)
                    .map_err(failed)?
                    .map_or(0, |r| r.created_ms);
                Ok(json!({
                    "llm_calls": totals.calls,
                    "prompt_tokens": totals.total.prompt_tokens,
                    "completion_tokens": totals.total.completion_tokens,
                    "estimated": totals.total.estimated,
                    "cost_usd": totals.total.cost_usd,
                    "wall_ms": ao_graph::now_ms().saturating_sub(started),
                }))
            }
            What::Warnings => {
                let mut out = Vec::new();
                for run in std::iter::once(top.clone()).chain(
                    self.store
                        .child_runs(&top)
                        .map_err(failed)?
                        .into_iter()
                        .map(|r| r.id),
                ) {
                    for e in self.store.events(&run, None).map_err(failed)? {
                        if let EventKind::Warning { node, message } = e.kind {
                            out.push(Value::String(match node {
                                Some(n) => format!("{n}: {message}"),
                                None => message,
                            }));
                        }
                    }
                }
                Ok(Value::Array(out))
            }
        }
    }
}

impl BuiltinNode for RunNode {
    fn call<'a>(
        &'a self,
        call: NodeCall<'a>,
        _with: Value,
    ) -> BoxFuture<'a, Result<Value, NodeFailure>> {
        let result = self.read(&call);
        Box::pin(async move { result })
    }
}
