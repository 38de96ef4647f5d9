//! `ao-orchestrator`: the layer between `ao`'s front ends (the CLI, the MCP server) and its
//! libraries (the engine, the model layer, the tools).
//!
//! It holds what both front ends need and neither should write twice: the service (open a
//! project, start, resume, inspect, cancel runs), the runners of `llm` and `tool` nodes, the
//! built-in workflows and builtin nodes, and the front-end contract (the run view, error kinds
//! with their exit codes).

pub mod workflows;
