//! What the embedding application plugs into the engine: `builtin` nodes, the runners of `llm`
//! and `tool` nodes, and the resolver of sub-workflow names.
//!
//! The engine knows nothing about models or tools; it renders a node's templates and hands the
//! result to the runner registered here. A node whose runner is missing fails with a clear
//! "not available" error.

use super::events::EventKind;
use super::graph::Workflow;
use super::store::{Records, StoreError};
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why one attempt of a node failed.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeFailure {
    pub message: String,
    /// Whether another attempt could succeed (a network fault) or not (bad arguments).
    pub retryable: bool,
    /// A stable word for the failure (`node`, `not_available`, `expression`, …).
    pub kind: &'static str,
}

impl NodeFailure {
    pub fn retryable(message: impl Into<String>) -> Self {
        NodeFailure {
            message: message.into(),
            retryable: true,
            kind: "node",
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        NodeFailure {
            message: message.into(),
            retryable: false,
            kind: "node",
        }
    }
}

/// Records a host keeps with a run, handed to the engine to write in the transaction that
/// stores the end of the task that made them ([`EventEmitter::with_task_end`]).
pub struct TaskRecords {
    /// The task they belong to (its node and `for_each` index).
    pub node: String,
    pub index: Option<usize>,
    /// What they are, for the error when they cannot be written ("the model's answer").
    pub what: String,
    /// Writes them (called again if a commit is retried).
    pub write: WriteRecords,
}

/// Writes a task's host records inside the engine's transaction.
pub type WriteRecords = Box<dyn Fn(&Records<'_>) -> Result<(), StoreError> + Send + Sync>;

/// Emits host events (LLM calls, tool calls) into the run's event stream.
pub trait EventEmitter: Send + Sync {
    fn emit(&self, kind: EventKind);

    /// Writes `records` with the end of their task instead of in a transaction of their own:
    /// they are committed no later than the task's end (in the same transaction, or in an
    /// earlier group commit of the run), and lost with it if the process dies first. For
    /// records nothing else waits for — e.g. a model's final answer, whose only use is the
    /// task's result. If they cannot be written, the task's end is not stored either and the
    /// run fails with a `store` error naming the node (it can be resumed; the task runs again).
    /// Gives them back when the emitter cannot (no store): the caller writes them itself.
    fn with_task_end(&self, records: TaskRecords) -> Result<(), TaskRecords> {
        Err(records)
    }
}

/// One call into a host-provided node.
pub struct NodeCall<'a> {
    pub run_id: &'a str,
    pub step: u64,
    pub node: &'a str,
    pub index: Option<usize>,
    pub attempt: u32,
    pub events: &'a dyn EventEmitter,
}

/// A `builtin` node: gets its evaluated `with` mapping, returns the value written to `writes`.
pub trait BuiltinNode: Send + Sync {
    fn call<'a>(
        &'a self,
        call: NodeCall<'a>,
        with: Value,
    ) -> BoxFuture<'a, Result<Value, NodeFailure>>;
}

/// An `llm` node's rendered request.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmRequest {
    pub role: String,
    pub system: Option<String>,
    pub prompt: String,
    /// `"text"`, `{"schema": …}` or `{"type": NAME}`.
    pub output: Value,
    pub tools: Vec<String>,
}

pub trait LlmRunner: Send + Sync {
    fn run<'a>(
        &'a self,
        call: NodeCall<'a>,
        request: LlmRequest,
    ) -> BoxFuture<'a, Result<Value, NodeFailure>>;
}

pub trait ToolRunner: Send + Sync {
    fn run<'a>(
        &'a self,
        call: NodeCall<'a>,
        tool: &'a str,
        args: Value,
    ) -> BoxFuture<'a, Result<Value, NodeFailure>>;
}

/// Finds the workflow a `workflow` node names (`relative_to`: the folder of the calling file).
pub trait WorkflowResolver: Send + Sync {
    fn resolve(&self, name: &str, relative_to: Option<&Path>) -> Result<Arc<Workflow>, String>;
}

/// The plug-ins of one engine.
#[derive(Clone, Default)]
pub struct Host {
    pub builtins: BTreeMap<String, Arc<dyn BuiltinNode>>,
    pub llm: Option<Arc<dyn LlmRunner>>,
    pub tools: Option<Arc<dyn ToolRunner>>,
    pub resolver: Option<Arc<dyn WorkflowResolver>>,
    /// Redacts secrets from the error messages and prompts the engine stores and emits.
    pub redactor: Option<ao_core::redact::Redactor>,
}

impl Host {
    pub fn with_builtin(mut self, name: &str, node: Arc<dyn BuiltinNode>) -> Self {
        self.builtins.insert(name.to_string(), node);
        self
    }
}

/// A builtin made from an async closure, for hosts and tests.
pub struct FnBuiltin<F>(pub F);

impl<F, Fut> BuiltinNode for FnBuiltin<F>
where
    F: Fn(Value) -> Fut + Send + Sync,
    Fut: Future<Output = Result<Value, NodeFailure>> + Send + 'static,
{
    fn call<'a>(
        &'a self,
        _call: NodeCall<'a>,
        with: Value,
    ) -> BoxFuture<'a, Result<Value, NodeFailure>> {
        Box::pin((self.0)(with))
    }
}
