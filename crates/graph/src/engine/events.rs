//! The typed event stream of a run.
//!
//! Events are stored with the run (so `ao runs events` can print them later, from any process)
//! and handed to an optional [`EventSink`] as they happen (progress display, MCP notifications).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    RunStarted {
        workflow: String,
        input: Value,
    },
    RunResumed {
        workflow: String,
        /// The checkpoint the run continues from.
        from_step: u64,
    },
    StepStarted {
        nodes: Vec<String>,
        tasks: usize,
    },
    TaskStarted {
        node: String,
        index: Option<usize>,
        attempt: u32,
    },
    TaskFinished {
        node: String,
        index: Option<usize>,
        attempt: u32,
        duration_ms: u64,
        /// The channels the task wrote.
        channels: Vec<String>,
    },
    TaskRetrying {
        node: String,
        index: Option<usize>,
        attempt: u32,
        delay_ms: u64,
        error: String,
    },
    TaskFailed {
        node: String,
        index: Option<usize>,
        attempts: u32,
        error: String,
    },
    Interrupted {
        node: String,
        prompt: String,
    },
    /// The answer given to an interrupt (redacted), as it was written: the audit trail of
    /// what a person decided.
    Answered {
        node: String,
        answer: Value,
    },
    CheckpointSaved {
        /// The nodes the next step will run.
        next: Vec<String>,
    },
    /// One model request (emitted by the host's `llm` node runner for every request it sent,
    /// answered or not, and once when a stored result is reused).
    LlmCall {
        node: String,
        role: String,
        /// The model asked (empty when a stored result was reused).
        model: String,
        input_tokens: u64,
        output_tokens: u64,
        latency_ms: u64,
        /// A completed call stored earlier was reused (nothing was sent, nothing paid).
        cached: bool,
        /// A replay cassette answered the call (nothing was sent, nothing paid).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        replayed: bool,
        /// Why the request was sent: `first`, `retry`, `fallback`, `step_down`, `repair`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<String>,
        /// What went wrong with this request, when it did not get a usable reply.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A tool call and the policy's decision (emitted by the host's tool runner).
    ToolCall {
        node: String,
        tool: String,
        decision: String,
    },
    /// Something a person should know that did not stop the run (a reply cut off at its token
    /// limit, a fallback model used, a record that could not be kept). Emitted by hosts.
    Warning {
        node: Option<String>,
        message: String,
    },
    RunFinished {
        status: String,
        error: Option<String>,
    },
}

/// One event: which run, its order within the run, when, at which step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub run_id: String,
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub ts_ms: u64,
    pub step: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Receives events as they happen. Must be quick; it is called on the engine's task.
pub trait EventSink: Send + Sync {
    fn event(&self, event: &Event);
}

impl<F: Fn(&Event) + Send + Sync> EventSink for F {
    fn event(&self, event: &Event) {
        self(event)
    }
}

pub type SharedSink = Arc<dyn EventSink>;

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
