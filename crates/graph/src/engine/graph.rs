//! The compiled workflow: what the scheduler runs. Built only by [`super::compile`], so every
//! name in it resolves, every expression compiled, and every schema is a valid JSON Schema.

use super::expr::{Expr, Templates};
use super::spec::{NodeKindName, Reducer};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A compiled JSON Schema together with its source.
pub struct Schema {
    pub source: Value,
    pub validator: jsonschema::Validator,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Schema({})", self.source)
    }
}

impl Schema {
    pub fn compile(source: &Value) -> Result<Self, String> {
        let validator =
            jsonschema::validator_for(source).map_err(|e| format!("invalid JSON Schema: {e}"))?;
        Ok(Schema {
            source: source.clone(),
            validator,
        })
    }

    /// Every violation, each prefixed with where in the value it is (`/steps/0/id: ...`).
    pub fn errors(&self, value: &Value) -> Vec<String> {
        self.validator
            .iter_errors(value)
            .map(|e| {
                let at = e.instance_path().to_string();
                let at = if at.is_empty() { "/".to_string() } else { at };
                format!("{at}: {e}")
            })
            .collect()
    }
}

#[derive(Debug)]
pub struct Channel {
    pub name: String,
    pub reducer: Reducer,
    pub schema: Option<Schema>,
    pub default: Value,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (attempt counts from 1): exponential, capped, with
    /// full jitter so that retries of many tasks do not fire together.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let exp = self
            .backoff
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(20)));
        let cap = exp.min(self.max_backoff);
        let millis = cap.as_millis() as u64;
        Duration::from_millis(if millis == 0 {
            0
        } else {
            fastrand::u64(0..=millis)
        })
    }
}

#[derive(Debug)]
pub struct Limits {
    pub max_steps: u64,
    pub concurrency: usize,
    pub timeout: Option<Duration>,
    /// The run's budget as the workflow declares it; the host enforces it (the engine does not
    /// know what a model costs).
    pub budget: Budget,
}

/// What a run may spend on models (`limits.max_tokens`, `max_cost_usd`, `max_llm_calls`).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Budget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_llm_calls: Option<u64>,
}

impl Budget {
    /// `self`, with what `over` sets taking its place.
    pub fn overridden_by(self, over: Budget) -> Budget {
        Budget {
            max_tokens: over.max_tokens.or(self.max_tokens),
            max_cost_usd: over.max_cost_usd.or(self.max_cost_usd),
            max_llm_calls: over.max_llm_calls.or(self.max_llm_calls),
        }
    }

    /// Each limit the lower of the two where both set one, else whichever is set: `over` can
    /// only lower `self`'s limits or add missing ones, never raise one.
    pub fn tightened_by(self, over: Budget) -> Budget {
        fn lower<T: PartialOrd + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
            match (a, b) {
                (Some(x), Some(y)) => Some(if y < x { y } else { x }),
                (x, y) => x.or(y),
            }
        }
        Budget {
            max_tokens: lower(self.max_tokens, over.max_tokens),
            max_cost_usd: lower(self.max_cost_usd, over.max_cost_usd),
            max_llm_calls: lower(self.max_llm_calls, over.max_llm_calls),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Budget::default()
    }
}

/// A tool argument: a literal, a template rendered to text, or a lone `{{ expr }}` evaluated
/// to a typed value (so `paths: "{{ state.files }}"` passes a list, not its text).
#[derive(Debug)]
pub enum ArgValue {
    Literal(Value),
    Template(String),
    Expr(Expr),
    List(Vec<ArgValue>),
    Map(BTreeMap<String, ArgValue>),
}

#[derive(Debug)]
pub struct LlmNode {
    pub role: Role,
    pub system: Option<String>,
    pub prompt: String,
    /// `"text"`, `{"schema": …}` or `{"type": NAME}`, as written.
    pub output: Value,
    pub tools: Vec<String>,
    pub writes: Option<String>,
}

/// Which model an `llm` node calls: a role named in the workflow, or one a template chooses per
/// task at run time (`role: "{{ item.worker }}"`, e.g. the worker routing picked for a step).
#[derive(Debug, Clone, PartialEq)]
pub enum Role {
    Fixed(String),
    /// The key of the template that renders the role.
    Template(String),
}

#[derive(Debug)]
pub enum NodeKind {
    Transform {
        set: Vec<(String, Expr)>,
    },
    Interrupt {
        /// Template key of the prompt.
        prompt: String,
        schema: Arc<Schema>,
        writes: String,
    },
    Workflow {
        workflow: String,
        input: Vec<(String, Expr)>,
        writes: Option<String>,
    },
    Builtin {
        name: String,
        with: Vec<(String, Expr)>,
        writes: Option<String>,
    },
    Llm(LlmNode),
    Tool {
        tool: String,
        args: ArgValue,
        writes: Option<String>,
    },
}

impl NodeKind {
    pub fn name(&self) -> NodeKindName {
        match self {
            NodeKind::Transform { .. } => NodeKindName::Transform,
            NodeKind::Interrupt { .. } => NodeKindName::Interrupt,
            NodeKind::Workflow { .. } => NodeKindName::Workflow,
            NodeKind::Builtin { .. } => NodeKindName::Builtin,
            NodeKind::Llm(_) => NodeKindName::Llm,
            NodeKind::Tool { .. } => NodeKindName::Tool,
        }
    }
}

#[derive(Debug)]
pub struct Node {
    pub name: String,
    pub description: Option<String>,
    pub kind: NodeKind,
    pub for_each: Option<Expr>,
    pub retry: RetryPolicy,
    pub timeout: Option<Duration>,
    /// The channels this node may write.
    pub writes: Vec<String>,
    /// `key:` — each task writes `{KEY: result}` to its (merge) channel.
    pub key: Option<Expr>,
}

/// Where an edge leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Node(String),
    End,
}

impl Target {
    pub fn label(&self) -> &str {
        match self {
            Target::Node(n) => n,
            Target::End => "END",
        }
    }
}

#[derive(Debug)]
pub struct Branch {
    /// `None` for the `else` branch.
    pub condition: Option<Expr>,
    pub to: Target,
}

#[derive(Debug)]
pub enum Edge {
    Static { from: String, to: Target },
    Conditional { from: String, branches: Vec<Branch> },
    Join { from: Vec<String>, to: Target },
}

#[derive(Debug)]
pub enum Output {
    Expr(Expr),
    Map(Vec<(String, Expr)>),
}

/// A loaded, checked workflow.
#[derive(Debug)]
pub struct Workflow {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    /// The YAML text it was compiled from (stored with each run, so a resume runs the same
    /// graph even if the file changed since).
    pub(crate) source: Arc<str>,
    /// Where it came from: a file path, or `builtin:NAME`.
    pub(crate) origin: String,
    /// The folder relative paths of sub-workflows resolve against.
    pub(crate) dir: Option<PathBuf>,
    pub(crate) input_schema: Option<Schema>,
    pub(crate) channels: BTreeMap<String, Channel>,
    pub(crate) nodes: BTreeMap<String, Node>,
    pub(crate) edges: Vec<Edge>,
    /// Node → indexes of its outgoing edges.
    pub(crate) outgoing: BTreeMap<String, Vec<usize>>,
    /// Nodes triggered by `START`, sorted.
    pub(crate) entry: Vec<String>,
    pub(crate) output: Option<Output>,
    pub(crate) limits: Limits,
    pub(crate) templates: Templates,
}

impl Workflow {
    /// The workflow's name (`[a-z0-9][a-z0-9-]*`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its one-paragraph description, if it has one.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// Where it came from: a file path, or `builtin:NAME`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The YAML text it was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The JSON Schema of its input, if it declares one.
    pub fn input_schema(&self) -> Option<&Value> {
        self.input_schema.as_ref().map(|s| &s.source)
    }

    /// The budget its `limits` declare.
    pub fn budget(&self) -> Budget {
        self.limits.budget
    }

    /// Its node names, sorted.
    pub fn node_names(&self) -> impl Iterator<Item = &str> {
        self.nodes.keys().map(String::as_str)
    }

    /// How many edges it has (entry edges from `START` included).
    pub fn edge_count(&self) -> usize {
        self.edges.len() + self.entry.len()
    }

    /// Its `llm` nodes as (node, role), sorted by node name: what a host checks before a run
    /// that the models these nodes need are configured. The role is `None` when a template
    /// chooses it at run time.
    pub fn llm_nodes(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.nodes.values().filter_map(|n| match &n.kind {
            NodeKind::Llm(llm) => Some((
                n.name.as_str(),
                match &llm.role {
                    Role::Fixed(r) => Some(r.as_str()),
                    Role::Template(_) => None,
                },
            )),
            _ => None,
        })
    }

    /// The edges leaving `node` (joins included) with their indexes, in document order.
    pub fn edges_from<'a>(&'a self, node: &str) -> impl Iterator<Item = (usize, &'a Edge)> + 'a {
        self.outgoing
            .get(node)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|&i| (i, &self.edges[i]))
    }

    /// Builds the node → outgoing edge index (called once by the compiler).
    pub(crate) fn index_edges(edges: &[Edge]) -> BTreeMap<String, Vec<usize>> {
        let mut out: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, e) in edges.iter().enumerate() {
            match e {
                Edge::Static { from, .. } | Edge::Conditional { from, .. } => {
                    out.entry(from.clone()).or_default().push(i)
                }
                Edge::Join { from, .. } => {
                    for f in from {
                        out.entry(f.clone()).or_default().push(i);
                    }
                }
            }
        }
        out
    }
}
