//! `ao tools list|run` and `ao apply`: the deterministic tools and changesets, under the same
//! policy gate the workflows use.

use crate::input::json_arg;
use crate::output::print_json;
use crate::{CliError, Project, Ui};
use ao_orchestrator::tool_node::tool_list;
use serde_json::{Value, json};

#[derive(clap::Subcommand, Debug)]
pub enum ToolsCommand {
    /// Every tool with its effect class (read, write, exec).
    List,
    /// Run one tool under the policy (dry-run unless --apply).
    Run {
        /// The tool, e.g. fs.read.
        name: String,
        /// Its arguments as a JSON object, or @FILE (@- for stdin).
        #[arg(long, value_name = "JSON|@FILE")]
        args: String,
        /// Let a write or command really happen (still subject to the policy).
        #[arg(long)]
        apply: bool,
    },
}

pub async fn dispatch(project: &Project, cmd: &ToolsCommand, ui: Ui) -> Result<u8, CliError> {
    match cmd {
        ToolsCommand::List => {
            let tools = tool_list();
            if ui.json {
                print_json(&json!({ "tools": tools }));
            } else {
                for s in tools {
                    println!("{:<12} {:<6} {}", s.name, s.effect, s.description);
                }
            }
            Ok(0)
        }
        ToolsCommand::Run { name, args, apply } => {
            let service = project.runner(*apply)?;
            let args = json_arg("--args", args)?;
            let (outcome, changeset) = service.run_tool(name, args).await?;
            let mut doc = outcome.to_json();
            if !changeset.is_empty() {
                // What a dry-run write would have changed, so the command is never a silent no-op.
                doc["changeset"] = json!(changeset.to_unified_diff());
            }
            if ui.json {
                print_json(&doc);
            } else {
                println!(
                    "{} ({}): {}",
                    outcome.tool,
                    outcome.effect.as_str(),
                    outcome.decision.as_str()
                );
                if let Some(reason) = &outcome.reason {
                    println!("reason: {reason}");
                }
                if !outcome.output.is_null() {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&outcome.output).unwrap_or_default()
                    );
                }
                if let Some(diff) = doc.get("changeset").and_then(Value::as_str) {
                    println!("would change (dry-run; pass --apply to write):\n{diff}");
                }
            }
            Ok(0)
        }
    }
}

/// `ao apply RUN [--check]`: all files or none; exit 1 when refused.
pub fn apply(
    project: &Project,
    run_id: &str,
    check: bool,
    other_root: bool,
    ui: Ui,
) -> Result<u8, CliError> {
    let service = project.runner(false)?;
    let report = service.apply(run_id, check, crate::runs_cmd::root_check(other_root))?;
    let refused = report.is_refused();
    if ui.json {
        let mut doc = serde_json::to_value(&report).unwrap_or(Value::Null);
        doc["run_id"] = json!(run_id);
        doc["refused"] = json!(refused);
        print_json(&doc);
    } else {
        if report.files.is_empty() {
            println!("run {run_id} proposes no file changes");
        }
        for f in &report.files {
            let action = serde_json::to_value(f.action)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            match &f.problem {
                Some(p) => println!("  {:<8} {}  REFUSED: {p}", action, f.path),
                None => println!("  {:<8} {}", action, f.path),
            }
        }
        if refused {
            println!("nothing was written: the changeset is applied whole or not at all");
        } else if check {
            println!(
                "check only: {} file(s) would be written; run without --check to apply",
                report.files.len()
            );
        } else if !report.files.is_empty() {
            println!("applied {} file(s)", report.files.len());
        }
    }
    Ok(if refused { 1 } else { 0 })
}
