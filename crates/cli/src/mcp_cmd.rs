//! `ao mcp serve|list-tools`: the MCP server on stdio, and the tools it offers.

use crate::output::print_json;
use crate::{CliError, Project, Ui};
use ao_mcp_server::{AoServer, Setup, Stopped};
use serde_json::Value;

#[derive(clap::Subcommand, Debug)]
pub enum McpCommand {
    /// Serve MCP on stdin/stdout for a coding agent (stdout carries only protocol messages).
    Serve(ServeArgs),
    /// The tools `ao mcp serve` offers: names, titles and annotations (--json: the full
    /// definitions, as `tools/list` gives them).
    ListTools(ServeArgs),
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Serve only the tools that change nothing (readOnlyHint true). Also AO_MCP_READ_ONLY=true.
    #[arg(long)]
    pub read_only: bool,
    /// Let clients ask for writes (`apply: true`), which the policy otherwise allows only with
    /// AO_DRY_RUN=false and AO_ALLOW_WRITE=true. Calls are dry-runs unless they ask.
    #[arg(long)]
    pub allow_apply: bool,
}

pub async fn dispatch(project: &Project, cmd: &McpCommand, ui: Ui) -> Result<u8, CliError> {
    let (args, serving) = match cmd {
        McpCommand::Serve(args) => (args, true),
        McpCommand::ListTools(args) => (args, false),
    };
    let read_only = args.read_only || env_flag(project, "AO_MCP_READ_ONLY")?;
    let server = AoServer::new(Setup {
        root: project.root.clone(),
        state_dir: project.state_dir.clone(),
        config: project.config.clone(),
        env: project.env.clone(),
        redactor: project.redactor(),
        read_only,
        allow_apply: args.allow_apply,
    })?;
    if !serving {
        list_tools(&server.definitions(), ui);
        return Ok(0);
    }
    let stopped = server.serve_stdio().await.map_err(CliError::failed)?;
    Ok(match stopped {
        Stopped::Disconnected => 0,
        Stopped::Signal(code) => code,
    })
}

/// `true`/`false` (also `1`/`0`/`yes`/`no`); unset is false; anything else is an error.
fn env_flag(project: &Project, name: &str) -> Result<bool, CliError> {
    let Some(value) = project.env.get(name) else {
        return Ok(false);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" | "" => Ok(false),
        _ => Err(CliError {
            code: 2,
            kind: "config",
            message: format!("{name}={value}: expected true or false (also 1/0, yes/no)"),
        }),
    }
}

fn list_tools(tools: &[Value], ui: Ui) {
    if ui.json {
        print_json(&serde_json::json!({ "tools": tools }));
        return;
    }
    println!(
        "{:<24} {:<28} {:<10} {:<12} {:<11} OPEN-WORLD",
        "TOOL", "TITLE", "READ-ONLY", "DESTRUCTIVE", "IDEMPOTENT"
    );
    for t in tools {
        let hint = |k: &str| match t["annotations"][k].as_bool() {
            Some(true) => "yes",
            Some(false) => "no",
            None => "-",
        };
        println!(
            "{:<24} {:<28} {:<10} {:<12} {:<11} {}",
            t["name"].as_str().unwrap_or(""),
            t["title"].as_str().unwrap_or(""),
            hint("readOnlyHint"),
            hint("destructiveHint"),
            hint("idempotentHint"),
            hint("openWorldHint"),
        );
    }
}
