//! What ships inside `ao`: the built-in workflows (YAML compiled into the binary) and the
//! `builtin` nodes every host gets.
//!
//! Builtin nodes available to any workflow:
//! - `sleep` (`with: {ms: N}`): waits N milliseconds (at most ten minutes) and writes N. Useful
//!   to pace a loop, and to make concurrency visible.

use ao_graph::{BoxFuture, BuiltinNode, Host, NodeCall, NodeFailure};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Built-in workflows: (name, YAML), compiled into the binary.
pub const WORKFLOWS: &[(&str, &str)] = &[
    ("fix-error", include_str!("../workflows/fix-error.yaml")),
    (
        "leader-worker",
        include_str!("../workflows/leader-worker.yaml"),
    ),
    ("plan", include_str!("../workflows/plan.yaml")),
    ("review", include_str!("../workflows/review.yaml")),
    (
        "worker-interview",
        include_str!("../workflows/worker-interview.yaml"),
    ),
];

/// Seed names accepted for the built-in workflows: (alias, name).
pub const ALIASES: &[(&str, &str)] = &[
    ("planning-workflow", "plan"),
    ("leader-worker-workflow", "leader-worker"),
    ("leader-worker-basic", "leader-worker"),
    ("review-workflow", "review"),
    ("fix-error-workflow", "fix-error"),
    ("worker-interview-workflow", "worker-interview"),
];

/// Inputs of built-in workflows that name the model role doing the workers' part: (workflow,
/// field). When a run of the built-in leaves one out, the orchestration layer fills it with
/// the role workers get by default ([`crate::Service::worker_role`]), so every front end runs
/// a project that has only a leader the same way.
pub const WORKER_ROLE_INPUTS: &[(&str, &str)] = &[("review", "reviewer"), ("fix-error", "fixer")];

/// The built-in name an alias stands for (a name stands for itself).
pub fn canonical_name(name: &str) -> Option<&'static str> {
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map(|(_, n)| *n)
        .or_else(|| WORKFLOWS.iter().find(|(n, _)| *n == name).map(|(n, _)| *n))
}

pub fn workflow_source(name: &str) -> Option<&'static str> {
    let name = canonical_name(name)?;
    WORKFLOWS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// A host with the builtin nodes registered.
pub fn host() -> Host {
    crate::workflows::nodes::register(Host::default().with_builtin("sleep", Arc::new(Sleep)))
}

struct Sleep;

const MAX_SLEEP_MS: u64 = 600_000;

impl BuiltinNode for Sleep {
    fn call<'a>(
        &'a self,
        _call: NodeCall<'a>,
        with: Value,
    ) -> BoxFuture<'a, Result<Value, NodeFailure>> {
        Box::pin(async move {
            let ms = with
                .get("ms")
                .and_then(Value::as_u64)
                .ok_or_else(|| NodeFailure::permanent(format!("builtin `sleep` needs `with: {{ms: N}}` (a whole number of milliseconds), got {with}")))?;
            if ms > MAX_SLEEP_MS {
                return Err(NodeFailure::permanent(format!(
                    "builtin `sleep`: {ms} ms is more than the limit of {MAX_SLEEP_MS} ms"
                )));
            }
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(Value::from(ms))
        })
    }
}
