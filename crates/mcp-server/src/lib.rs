//! `ao-mcp-server`: `ao mcp serve`, the MCP server coding agents drive `ao` with, on stdio.
//!
//! It serves both the current protocol revision (2026-07-28: `server/discover`, per-request
//! `_meta`) and the legacy `initialize` handshake, through rmcp. Every tool (see
//! [`tool_definitions`]) is a thin handler over `ao_orchestrator`: the same calls the CLI
//! makes, returning the same typed values the CLI prints with `--json` (the run view, run
//! summaries, models, workflows, profiles, the doctor report), wrapped so
//! `structuredContent` is always an object. Arguments are checked against each tool's input
//! schema before anything runs; failures are `isError` results that say what to do; unknown
//! tools are protocol errors.
//!
//! Runs started here go on in the background of the server and live in the project's store,
//! where the CLI sees them. A call can wait for its run (with progress notifications);
//! cancelling the call cancels the run. When the client goes away, the runs still going are
//! stopped at a safe point and stay resumable.
//!
//! The write ceiling is the server's own configuration: a caller can always ask for a
//! dry-run, never for more than the server allows.
//!
//! Nothing but protocol messages goes to stdout; the few log lines go to stderr.
//!
//! ```no_run
//! # async fn demo(setup: ao_mcp_server::Setup) -> Result<(), String> {
//! let server = ao_mcp_server::AoServer::new(setup).map_err(|e| e.to_string())?;
//! let stopped = server.serve_stdio().await?;
//! eprintln!("{stopped:?}");
//! # Ok(()) }
//! ```

mod args;
mod catalog;
mod handlers;
mod outputs;
mod progress;
mod schema;
mod server;

pub use server::{AoServer, Setup, Stopped};

/// The definitions `tools/list` gives (as JSON, in order): every tool, or with `read_only`
/// only those whose `readOnlyHint` is true. `writes_allowed` is the server's write ceiling,
/// which `ao_run_workflow`'s `destructiveHint` follows.
pub fn tool_definitions(read_only: bool, writes_allowed: bool) -> Vec<serde_json::Value> {
    catalog::catalog(writes_allowed)
        .iter()
        .filter(|d| !read_only || d.is_read_only())
        .map(|d| serde_json::to_value(&d.tool).unwrap_or_default())
        .collect()
}

impl AoServer {
    /// The definitions this server lists (see [`tool_definitions`]).
    pub fn definitions(&self) -> Vec<serde_json::Value> {
        self.tools()
            .map(|d| serde_json::to_value(&d.tool).unwrap_or_default())
            .collect()
    }
}
