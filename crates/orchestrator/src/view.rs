//! The run as the front ends show it: one typed value, with a JSON Schema, that the CLI prints
//! with `--json` and the MCP server returns.

use crate::error::ErrorKind;
use crate::records::{NodeUsage, RunUsage};
use ao_core::run::RunStatus;
use ao_graph::{RunOutcome, RunRecord};
use ao_models::Usage;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// One run: what `ao run --json`, `ao runs resume --json` and the workflow commands print,
/// and what the MCP tools return.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunView {
    pub run_id: String,
    pub workflow: String,
    pub status: RunStatus,
    /// The channels' values.
    pub state: Value,
    /// The workflow's typed result (null until the run completes).
    pub output: Option<Value>,
    /// Steps completed so far.
    pub steps: u64,
    /// The question a run waits on (status `interrupted`).
    pub interrupt: Option<InterruptView>,
    /// Why the run failed or was cancelled.
    pub error: Option<RunErrorView>,
    /// Model calls, tokens and cost of the run and its sub-runs (null when it made none).
    pub usage: Option<UsageView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InterruptView {
    pub node: String,
    pub prompt: String,
    /// The JSON Schema the answer must match.
    pub schema: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunErrorView {
    /// The node that failed, when one did.
    pub node: Option<String>,
    /// A stable word: `node`, `model`, `tool`, `channel`, `conflict`, `max_steps`, `timeout`,
    /// `expression`, `not_available`, `store`, `cancelled`, …
    pub kind: String,
    pub message: String,
}

impl std::fmt::Display for RunErrorView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.node {
            Some(node) => write!(f, "node `{node}`: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Tokens and cost of some model calls.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TokenUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Some counts were estimated (~4 characters per token) because a server sent none.
    pub estimated: bool,
    /// US dollars, when every call's model has a price.
    pub cost_usd: Option<f64>,
}

impl From<&Usage> for TokenUsage {
    fn from(u: &Usage) -> Self {
        TokenUsage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            estimated: u.estimated,
            cost_usd: u.cost_usd,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UsageView {
    /// Model requests sent (answered or not: a failed request is counted too).
    pub calls: u64,
    pub total: TokenUsage,
    pub by_role: BTreeMap<String, TokenUsage>,
    /// Per node that called a model; a sub-run's nodes as `NODE/SUBNODE`.
    pub by_node: BTreeMap<String, NodeUsageView>,
    /// Calls answered from a replay cassette: nothing was sent, so they are in no other count
    /// (calls, tokens, cost).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replayed: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The model requests of one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NodeUsageView {
    pub calls: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub estimated: bool,
    pub cost_usd: Option<f64>,
    /// Wall time of its requests, summed.
    pub latency_ms: u64,
    /// Calls answered from a replay cassette (in no other count).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replayed: u64,
    /// Per `for_each` task, by index (absent for a node without `for_each`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tasks: BTreeMap<usize, TaskUsageView>,
}

/// The model requests of one `for_each` task of a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskUsageView {
    pub calls: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub estimated: bool,
    pub cost_usd: Option<f64>,
    pub latency_ms: u64,
    /// Calls answered from a replay cassette (in no other count).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replayed: u64,
}

impl From<&NodeUsage> for NodeUsageView {
    fn from(n: &NodeUsage) -> Self {
        NodeUsageView {
            calls: n.calls,
            prompt_tokens: n.prompt_tokens,
            completion_tokens: n.completion_tokens,
            estimated: n.estimated,
            cost_usd: n.cost_usd,
            latency_ms: n.latency_ms,
            replayed: n.replayed,
            tasks: n
                .tasks
                .iter()
                .map(|(i, t)| {
                    (
                        *i,
                        TaskUsageView {
                            calls: t.calls,
                            prompt_tokens: t.prompt_tokens,
                            completion_tokens: t.completion_tokens,
                            estimated: t.estimated,
                            cost_usd: t.cost_usd,
                            latency_ms: t.latency_ms,
                            replayed: t.replayed,
                        },
                    )
                })
                .collect(),
        }
    }
}

impl From<&RunUsage> for UsageView {
    fn from(u: &RunUsage) -> Self {
        let t = &u.totals;
        UsageView {
            calls: t.calls,
            total: (&t.total).into(),
            by_role: t
                .by_role
                .iter()
                .map(|(k, v)| (k.clone(), v.into()))
                .collect(),
            by_node: u
                .by_node
                .iter()
                .map(|(k, v)| (k.clone(), v.into()))
                .collect(),
            replayed: u.replayed,
        }
    }
}

impl RunView {
    pub fn new(o: &RunOutcome, usage: Option<&RunUsage>) -> Self {
        RunView {
            run_id: o.run_id.clone(),
            workflow: o.workflow.clone(),
            status: o.status,
            state: o.state.clone(),
            output: o.output.clone(),
            steps: o.steps,
            interrupt: o.interrupt.as_ref().map(|i| InterruptView {
                node: i.node.clone(),
                prompt: i.prompt.clone(),
                schema: i.schema.clone(),
            }),
            error: o.error.as_ref().map(|e| RunErrorView {
                node: e.node.clone(),
                kind: e.kind.clone(),
                message: e.message.clone(),
            }),
            usage: usage.map(UsageView::from),
        }
    }
}

/// A run with where it sits and when: `ao runs show --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: RunView,
    /// The run that started this one (a `workflow` node), if any.
    pub parent_id: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub created_ms: u64,
    pub updated_ms: u64,
}

/// One line of a run listing (`ao runs list`, `ao_list_runs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunSummary {
    pub run_id: String,
    pub workflow: String,
    pub status: RunStatus,
    pub steps: u64,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub parent_id: Option<String>,
    pub error: Option<RunErrorView>,
}

impl From<&RunRecord> for RunSummary {
    fn from(r: &RunRecord) -> Self {
        RunSummary {
            run_id: r.id.clone(),
            workflow: r.workflow.clone(),
            status: r.status,
            steps: r.step,
            created_ms: r.created_ms,
            updated_ms: r.updated_ms,
            parent_id: r.parent_id.clone(),
            error: r.error.as_ref().map(|e| RunErrorView {
                node: e.node.clone(),
                kind: e.kind.clone(),
                message: e.message.clone(),
            }),
        }
    }
}

/// What a command that failed before producing its result prints with `--json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorView {
    pub kind: ErrorKind,
    pub message: String,
}

/// The exit code a run's status maps to: 0 completed, 3 interrupted (waits for an answer),
/// 1 otherwise.
pub fn exit_code(status: RunStatus) -> u8 {
    match status {
        RunStatus::Completed => 0,
        RunStatus::Interrupted => 3,
        RunStatus::Failed | RunStatus::Cancelled | RunStatus::Running => 1,
    }
}

/// The JSON Schema of [`RunView`]: the run object `--json` prints and MCP tools return.
pub fn run_view_schema() -> Value {
    serde_json::to_value(schemars::schema_for!(RunView)).unwrap_or(Value::Null)
}
