//! `ao-graph`: the workflow engine.
//!
//! Workflows are explicit state graphs written in YAML: typed channels with reducers, nodes
//! (`transform`, `llm`, `tool`, `interrupt`, `workflow`, `builtin`), and static, conditional
//! and join edges. The engine compiles them strictly ([`load_str`], [`load_path`]), runs them
//! in deterministic supersteps ([`Engine`]), persists every completed task in an embedded
//! SQLite store ([`RunStore`]), and resumes runs after a crash or a human answer.
//!
//! The engine knows nothing about models or tools, and this crate cannot reach them: it
//! depends on neither. Hosts plug node runners in through [`Host`] (`llm` and `tool` nodes,
//! `builtin` nodes, sub-workflow names) and keep what those runners must persist in the
//! store's generic records ([`RunStore::write_records`]).
//!
//! ```
//! use ao_graph::{Engine, Host, RunOptions, load_str};
//! use std::sync::Arc;
//!
//! let wf = load_str(r#"
//! name: count
//! channels:
//!   n: {default: 0}
//! nodes:
//!   inc: {kind: transform, set: {n: "state.n + 1"}}
//! edges:
//!   - {from: START, to: inc}
//!   - from: inc
//!     when: [{if: "state.n < 3", to: inc}]
//! "#, "count.yaml").unwrap();
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! let out = rt.block_on(Engine::in_memory(Host::default())
//!     .start(Arc::new(wf), serde_json::json!({}), RunOptions::default())).unwrap();
//! assert_eq!(out.state["n"], 3);
//! ```

mod engine;

pub use engine::cancel::CancelToken;
pub use engine::compile::load_str;
pub use engine::error::{EngineError, LoadError, LoadIssue, RunError};
pub use engine::events::{Event, EventKind, EventSink, SharedSink, now_ms};
pub use engine::graph::{Budget, Workflow};
pub use engine::host::{
    BoxFuture, BuiltinNode, EventEmitter, FnBuiltin, Host, LlmRequest, LlmRunner, NodeCall,
    NodeFailure, TaskRecords, ToolRunner, WorkflowResolver, WriteRecords,
};
pub use engine::render::{json as render_json, mermaid as render_mermaid, text as render_text};
pub use engine::scheduler::{
    Engine, MAX_SUBRUN_DEPTH, RunOptions, RunOutcome, is_active, load_path, process_alive,
};
pub use engine::spec::workflow_schema;
pub use engine::store::{
    InterruptInfo, RecordScope, Records, RunEnd, RunFilter, RunRecord, RunStore, StoreError,
    StoredRecord, TaskKey,
};

/// Finding where a value sits in YAML text (line and column of a path like
/// `nodes.ask.prompt`), for errors about documents that parsed but do not make sense.
pub mod yaml {
    pub use crate::engine::locate::{Pos, Seg, locate};
}
