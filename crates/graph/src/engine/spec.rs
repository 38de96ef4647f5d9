//! The workflow document as written in YAML: plain data, parsed strictly.
//!
//! These types mirror the YAML one to one (unknown keys are rejected by serde, so the error
//! carries the line and column). Meaning — which keys a node kind takes, whether a channel
//! exists, whether an expression compiles — is checked afterwards by [`super::compile`].
//! `ao schema workflow` is generated from these types, so the schema cannot drift from the
//! parser.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::collections::BTreeMap;

/// A whole workflow document.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "ao workflow")]
pub struct WorkflowSpec {
    /// `[a-z0-9][a-z0-9-]*`
    pub name: String,
    /// One paragraph saying what the workflow does.
    #[serde(default)]
    pub description: Option<String>,
    /// JSON Schema (an object schema) for the run input. `default`s are applied.
    #[serde(default)]
    pub input: Option<Value>,
    /// The state: one entry per channel.
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelSpec>,
    /// The nodes, by name (`[a-z0-9_-]+`; `START` and `END` are reserved).
    pub nodes: BTreeMap<String, NodeSpec>,
    /// Static, conditional and join edges.
    pub edges: Vec<EdgeSpec>,
    /// An expression, or a mapping of expressions, computing the run's output from the final
    /// state. Default: the whole state.
    #[serde(default)]
    pub output: Option<OutputSpec>,
    #[serde(default)]
    pub limits: LimitsSpec,
    /// The default retry policy of every node.
    #[serde(default)]
    pub retry: Option<RetrySpec>,
}

/// How writes to a channel combine with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reducer {
    /// The write replaces the value. Two nodes writing it in one step is an error.
    #[default]
    Replace,
    /// A list; a list write extends it, any other write is appended.
    Append,
    /// An object; a write (an object) is merged key by key, shallowly.
    Merge,
    /// A number; writes are added.
    Sum,
    /// A list without duplicates, in first-seen order.
    Union,
}

impl Reducer {
    pub fn as_str(self) -> &'static str {
        match self {
            Reducer::Replace => "replace",
            Reducer::Append => "append",
            Reducer::Merge => "merge",
            Reducer::Sum => "sum",
            Reducer::Union => "union",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    #[serde(default)]
    pub reducer: Reducer,
    /// JSON Schema checked on every write and on the reduced value.
    #[serde(default)]
    pub schema: Option<Value>,
    /// The value before anything is written. Without it: `null` for `replace`, `[]` for
    /// `append`/`union`, `{}` for `merge`, `0` for `sum`.
    #[serde(default)]
    pub default: Option<Value>,
    /// What the channel holds, for readers of the workflow (accepted and documented in the
    /// schema; the engine does not use it).
    #[serde(default)]
    #[allow(dead_code)]
    pub description: Option<String>,
}

/// The kinds of node a workflow may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKindName {
    Transform,
    Llm,
    Tool,
    Interrupt,
    Workflow,
    Builtin,
}

impl NodeKindName {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKindName::Transform => "transform",
            NodeKindName::Llm => "llm",
            NodeKindName::Tool => "tool",
            NodeKindName::Interrupt => "interrupt",
            NodeKindName::Workflow => "workflow",
            NodeKindName::Builtin => "builtin",
        }
    }
}

/// One node. The keys a node may carry depend on its `kind`; the compiler rejects keys that do
/// not belong to the kind (with their line and column), so this flat shape loses no strictness.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub kind: NodeKindName,
    #[serde(default)]
    pub description: Option<String>,
    /// Expression yielding a list: one task per item, with `item` and `index` in scope.
    #[serde(default)]
    pub for_each: Option<ExprSource>,
    #[serde(default)]
    pub retry: Option<RetrySpec>,
    /// Time limit of one attempt, in seconds.
    #[serde(default)]
    pub timeout_s: Option<f64>,

    /// transform: `CHANNEL: EXPRESSION`.
    #[serde(default)]
    pub set: Option<BTreeMap<String, ExprSource>>,

    /// llm: `leader`, `worker`, or a worker id.
    #[serde(default)]
    pub role: Option<String>,
    /// llm: system prompt template.
    #[serde(default)]
    pub system: Option<String>,
    /// llm and interrupt: prompt template.
    #[serde(default)]
    pub prompt: Option<String>,
    /// llm: `text`, `{schema: JSON-Schema}` or `{type: NAME}`.
    #[serde(default)]
    pub output: Option<Value>,
    /// llm: tool names the model may call.
    #[serde(default)]
    pub tools: Option<Vec<String>>,

    /// tool: the tool's name. The node writes the call's result as one object:
    /// `{tool, effect, decision, output}` (plus `reason` when the gate denied or simulated it),
    /// where `decision` is `allowed`, `simulated` or `denied` and `output` is what the tool
    /// returned (null when it did not run). Read a tool's fields under `output`:
    /// `state.found.output.matches`, not `state.found.matches`.
    #[serde(default)]
    pub tool: Option<String>,
    /// tool: arguments; string values are templates.
    #[serde(default)]
    pub args: Option<Value>,

    /// interrupt: JSON Schema of the answer.
    #[serde(default)]
    pub schema: Option<Value>,

    /// workflow: a workflow name or a path (relative to this file).
    #[serde(default)]
    pub workflow: Option<String>,
    /// workflow: the sub-run's input, `KEY: EXPRESSION`.
    #[serde(default)]
    pub input: Option<BTreeMap<String, ExprSource>>,

    /// builtin: the registered node's name.
    #[serde(default)]
    pub name: Option<String>,
    /// builtin: arguments, `KEY: EXPRESSION`.
    #[serde(default)]
    pub with: Option<BTreeMap<String, ExprSource>>,

    /// The channel this node's result is written to (llm, tool, interrupt, workflow, builtin).
    /// A `tool` node's result is `{tool, effect, decision, output, reason?}` (see `tool`); an
    /// `llm` node's is the model's answer (text, or the validated JSON of its `output`).
    #[serde(default)]
    pub writes: Option<String>,
    /// With a `merge` channel in `writes` (llm, tool, workflow, builtin): each task writes
    /// `{KEY: result}`, KEY being this expression's value for the task (text or a number), so
    /// the tasks of a `for_each` land under their own keys (`key: item.id`).
    #[serde(default)]
    pub key: Option<ExprSource>,
}

/// The source text of an expression. YAML scalars that are not strings (`0`, `true`) are taken
/// as the expression with that text, so `set: {count: 0}` means what it looks like.
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[schemars(transparent)]
pub struct ExprSource(pub String);

impl<'de> Deserialize<'de> for ExprSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Scalar {
            Str(String),
            Int(i64),
            Float(f64),
            Bool(bool),
        }
        let text = match Scalar::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected an expression (a string, number or boolean)")
        })? {
            Scalar::Str(s) => s,
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => format!("{f:?}"),
            Scalar::Bool(b) => b.to_string(),
        };
        Ok(ExprSource(text))
    }
}

/// One edge: `{from, to}`, `{from, when: [...]}`, or a join `{from: [A, B], to}`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EdgeSpec {
    pub from: EdgeFrom,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub when: Option<Vec<BranchSpec>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum EdgeFrom {
    One(String),
    Many(Vec<String>),
}

/// One branch of a conditional edge: `{if: EXPR, to: NODE}` or `{else: NODE}`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BranchSpec {
    #[serde(default, rename = "if")]
    pub condition: Option<ExprSource>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default, rename = "else")]
    pub otherwise: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OutputSpec {
    Expr(ExprSource),
    Map(BTreeMap<String, ExprSource>),
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Supersteps before the run fails (default 100).
    #[serde(default)]
    pub max_steps: Option<u64>,
    /// Tasks running at once (default 8).
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// Time limit of the whole run, in seconds.
    #[serde(default)]
    pub timeout_s: Option<f64>,
    /// Budget: model tokens (in + out) the run may spend, sub-runs included. Reaching it stops
    /// the run resumably (error kind `budget_exceeded`).
    #[serde(default)]
    pub max_tokens: Option<u64>,
    /// Budget: US dollars the run may spend on models, sub-runs included (needs a price for
    /// every model the run uses).
    #[serde(default)]
    pub max_cost_usd: Option<f64>,
    /// Budget: model requests the run may send, sub-runs included.
    #[serde(default)]
    pub max_llm_calls: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Attempts in all (default 1 for transform/interrupt, 3 for llm/tool).
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// First delay between attempts, in milliseconds (doubles each attempt; jitter always on).
    #[serde(default)]
    pub backoff_ms: Option<u64>,
    #[serde(default)]
    pub max_backoff_ms: Option<u64>,
}

/// The JSON Schema of the workflow format (`ao schema workflow`).
pub fn workflow_schema() -> Value {
    let schema = schemars::schema_for!(WorkflowSpec);
    serde_json::to_value(schema).unwrap_or(Value::Null)
}
