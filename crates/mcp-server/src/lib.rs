//! `ao-mcp-server`: the MCP adapter (`ao mcp serve`) over the same library calls the CLI uses.
//!
//! Not built yet. It will hold a stdio MCP server (rmcp 3.x) whose tools (`ao_run_workflow`,
//! `ao_get_run`, `ao_list_runs`, …, see the product specification) are thin handlers over
//! `ao_orchestrator::Service`: argument validation against each tool's input schema,
//! structured results, progress notifications from the run's event stream, and cancellation.
//! It must never grow logic of its own that the CLI would also need.
