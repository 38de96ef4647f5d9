//! `ao-orchestrator`: the layer between `ao`'s front ends (the CLI, the MCP server) and its
//! libraries (the engine, the model layer, the tools).
//!
//! It holds what both front ends need and neither should write twice:
//! - [`Service`]: open a project, find workflows, start, resume, inspect, follow and cancel
//!   runs, run one tool, show and apply changesets;
//! - runs that outlive the call that started them ([`Jobs`]: start or resume in the
//!   background, long-poll, answer once per request id, cancel with a reason) and the write
//!   ceiling of a long-lived server ([`Modes`]);
//! - the runners of `llm` ([`model_node`]) and `tool` ([`tool_node`]) nodes and what they
//!   keep with a run ([`records`]), all fail-closed;
//! - the built-in workflows and builtin nodes ([`builtins`]);
//! - what the built-in workflows compute without a model ([`workflows`]: log locations, diff
//!   chunks, repository maps, review verdicts);
//! - worker interviews ([`interview`]) and the routing of steps to workers by their
//!   capability profiles ([`routing`]);
//! - the configuration check both front ends show ([`doctor`]);
//! - the front-end contract: the run as shown ([`RunView`], with a JSON Schema), error kinds
//!   with their exit codes ([`ErrorKind`]), the configured models and their check
//!   ([`models`]).
//!
//! Messages here say what failed and where; a front end adds how to fix it in its own terms.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ao_orchestrator::Error> {
//! use ao_orchestrator::Service;
//! let root = std::path::Path::new(".");
//! let service = Service::open(root, &root.join(".ao"))?;
//! let wf = service.resolve("examples/hello-graph.yaml")?;
//! let run = service
//!     .start(wf, serde_json::json!({"n": 1}), Default::default(), None)
//!     .await?;
//! println!("{} is {}", run.run_id, run.status);
//! # Ok(()) }
//! ```

pub mod budget;
pub mod builtins;
pub mod cassette;
pub mod doctor;
mod error;
mod files;
pub mod interview;
mod jobs;
pub mod model_node;
pub mod models;
pub mod records;
pub mod replay;
pub mod routing;
mod service;
pub mod tool_node;
mod view;
pub mod workflows;

pub use error::{Error, ErrorKind};
pub use jobs::{Jobs, Modes, ResumeOutcome, ResumeRequest, Waited};
pub use service::{
    CancelResult, EventFollower, GC_DEFAULT_KEEP, GcPolicy, GcReport, RootCheck, Service,
    WorkflowInfo,
};
pub use view::{
    ErrorView, InterruptView, NodeUsageView, RunDetail, RunErrorView, RunSummary, RunView,
    TokenUsage, UsageView, exit_code, run_view_schema,
};

/// The engine's types the front ends handle (options, events, filters, rendering), so a front
/// end needs this crate only.
pub mod engine {
    pub use ao_graph::{
        Budget, CancelToken, Event, EventKind, EventSink, RunFilter, RunOptions, SharedSink,
        Workflow, load_path, render_json, render_mermaid, render_text, workflow_schema,
    };
}
