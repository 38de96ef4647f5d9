//! The `validate` builtin: runs validation commands against the project as the run has changed
//! it, and reports each as a `ValidationResult`.
//!
//! `with: {commands: [TEXT…], user: TEXT}` — each command is split into words (no shell) and
//! run through `cmd.run`. In dry-run they run in a validation sandbox (`ao_tools::sandbox`): a
//! copy of the project with the run's changeset applied, removed afterwards, so the working
//! tree is never touched. In apply mode the changes are already on disk and the commands run
//! in the root. `user` is the person's own validation command (`ao fix --validate`): it may run
//! even if the allowlist lacks it (in the sandbox only; in apply mode the allowlist decides),
//! and its decision is recorded like any other. A command off the allowlist is reported as
//! denied, not run.

use crate::records;
use crate::tool_node::ToolNodeRunner;
use ao_graph::{BoxFuture, BuiltinNode, Host, NodeCall, NodeFailure, RunStore};
use ao_tools::sandbox::Sandbox;
use ao_tools::{Changeset, Mode, ToolContext, ToolRegistry};
use serde_json::{Value, json};
use std::sync::Arc;

struct Validate {
    store: Arc<RunStore>,
    tools: Arc<ToolNodeRunner>,
}

/// Adds `validate` to `host` (it needs the run store and the project's tools).
pub fn register(host: Host, store: &Arc<RunStore>, tools: &Arc<ToolNodeRunner>) -> Host {
    host.with_builtin(
        "validate",
        Arc::new(Validate {
            store: store.clone(),
            tools: tools.clone(),
        }),
    )
}

fn result(command: &str, decision: &str, reason: Option<String>, ran_in: &str) -> Value {
    json!({
        "command": command, "decision": decision, "reason": reason, "passed": false,
        "exit_code": null, "timed_out": false, "stdout": "", "stderr": "", "truncated": false,
        "duration_ms": 0, "ran_in": ran_in, "confinement": null,
    })
}

impl Validate {
    async fn run(&self, call: &NodeCall<'_>, with: Value) -> Result<Value, NodeFailure> {
        let commands: Vec<String> = match with.get("commands") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(c)) => c
                .iter()
                .map(|c| {
                    c.as_str().map(str::to_string).ok_or_else(|| {
                        NodeFailure::permanent(format!(
                            "builtin `validate`: `with.commands` must be a list of command lines, got {c}"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(NodeFailure::permanent(format!(
                    "builtin `validate`: `with.commands` must be a list of command lines, got {other}"
                )));
            }
        };
        let commands: Vec<String> = commands
            .into_iter()
            .filter(|c| !c.trim().is_empty())
            .collect();
        if commands.is_empty() {
            return Ok(json!([]));
        }
        let user = with
            .get("user")
            .and_then(Value::as_str)
            .filter(|u| !u.trim().is_empty())
            .map(str::to_string);
        let project = self.tools.policy().clone();
        let apply = project.mode() == Mode::Apply;
        let ran_in = if apply { "root" } else { "sandbox" };
        let user_argv = user.as_deref().and_then(|u| shell_words::split(u).ok());
        // Dry-run: one sandbox for all the commands, holding the run's changeset.
        let sandbox = if apply {
            None
        } else {
            let top = self.store.root_run_id(call.run_id).map_err(store_failure)?;
            let changeset: Changeset =
                match records::changeset(&self.store, &top).map_err(store_failure)? {
                    Some(v) => serde_json::from_value(v).map_err(|e| {
                        NodeFailure::permanent(format!("the run's changeset is unreadable: {e}"))
                    })?,
                    None => Changeset::default(),
                };
            let project = project.clone();
            let user_argv = user_argv.clone();
            let made = tokio::task::spawn_blocking(move || {
                Sandbox::create(&project, &changeset, user_argv.as_deref())
            })
            .await
            .map_err(|e| NodeFailure::retryable(format!("the sandbox task failed: {e}")))?;
            Some(made.map_err(|e| {
                NodeFailure::retryable(format!("cannot make the validation sandbox: {e}"))
            })?)
        };
        let mut results = Vec::with_capacity(commands.len());
        for command in &commands {
            let argv = match shell_words::split(command) {
                Ok(a) if !a.is_empty() => a,
                Ok(_) => continue,
                Err(e) => {
                    results.push(result(
                        command,
                        "denied",
                        Some(format!("cannot split the command into words: {e}")),
                        ran_in,
                    ));
                    continue;
                }
            };
            let policy = match &sandbox {
                Some(s) => Arc::new(s.policy().clone()),
                None => project.clone(),
            };
            let decisions = self.tools.decisions_for(call);
            let ctx = ToolContext::new(policy, decisions.clone(), self.tools.redactor().clone());
            let outcome = ToolRegistry::standard()
                .call("cmd.run", json!({"argv": argv}), &ctx)
                .await;
            if let Some(why) = decisions.failure() {
                return Err(NodeFailure {
                    message: why,
                    retryable: true,
                    kind: "store",
                });
            }
            let outcome = match outcome {
                Ok(o) => o,
                Err(e) => {
                    results.push(result(command, "denied", Some(e.to_string()), ran_in));
                    continue;
                }
            };
            let o = &outcome.output;
            let decision = outcome.decision.as_str();
            let exit_code = o.get("exit_code").and_then(Value::as_i64);
            results.push(json!({
                "command": command,
                "decision": decision,
                "reason": outcome.reason,
                "passed": decision == "allowed" && exit_code == Some(0),
                "exit_code": exit_code,
                "timed_out": o.get("timed_out").and_then(Value::as_bool).unwrap_or(false),
                "stdout": o.get("stdout").and_then(Value::as_str).unwrap_or(""),
                "stderr": o.get("stderr").and_then(Value::as_str).unwrap_or(""),
                "truncated": o.get("stdout_truncated").and_then(Value::as_bool).unwrap_or(false)
                    || o.get("stderr_truncated").and_then(Value::as_bool).unwrap_or(false),
                "duration_ms": o.get("duration_ms").and_then(Value::as_u64).unwrap_or(0),
                "ran_in": ran_in,
                "confinement": o.get("confinement").cloned().unwrap_or(Value::Null),
            }));
        }
        drop(sandbox);
        Ok(Value::Array(results))
    }
}

fn store_failure(e: ao_graph::StoreError) -> NodeFailure {
    NodeFailure {
        message: format!("cannot read the run's records: {e}"),
        retryable: true,
        kind: "store",
    }
}

impl BuiltinNode for Validate {
    fn call<'a>(
        &'a self,
        call: NodeCall<'a>,
        with: Value,
    ) -> BoxFuture<'a, Result<Value, NodeFailure>> {
        Box::pin(async move { self.run(&call, with).await })
    }
}
