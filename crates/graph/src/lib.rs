//! `ao-graph`: the workflow engine and the workflows.
//!
//! Workflows are explicit state graphs written in YAML: typed channels with reducers, nodes
//! (`transform`, `llm`, `tool`, `interrupt`, `workflow`, `builtin`), and static, conditional
//! and join edges. The [`engine`] compiles them strictly, runs them in deterministic
//! supersteps, persists every completed task in an embedded SQLite store, and resumes runs
//! after a crash or a human answer. The engine knows nothing about models or tools; hosts plug
//! those in through [`engine::host::Host`].
//!
//! ```
//! use ao_graph::engine::{compile::load_str, host::Host, scheduler::{Engine, RunOptions}};
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

pub mod builtins;
pub mod engine;
pub mod model_node;
pub mod service;
pub mod tool_node;
