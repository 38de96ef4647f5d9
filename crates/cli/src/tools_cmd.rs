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
                    println!(
                        "{:<12} {:<6} args: {}",
                        "",
                        "",
                        argument_names(&s.input_schema)
                    );
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
                print_tool_output(&outcome.output);
                if let Some(diff) = doc.get("changeset").and_then(Value::as_str) {
                    println!("would change (dry-run; pass --apply to write):\n{diff}");
                }
            }
            Ok(0)
        }
    }
}

/// A tool's output for a person: its fields one per line, and text it carries (a file's
/// content, a diff, a command's output) as the text itself, not a JSON string.
fn print_tool_output(output: &Value) {
    const TEXT_FIELDS: [&str; 4] = ["content", "diff", "stdout", "stderr"];
    let Some(fields) = output.as_object() else {
        if !output.is_null() {
            println!(
                "{}",
                serde_json::to_string_pretty(output).unwrap_or_default()
            );
        }
        return;
    };
    for (k, v) in fields {
        if TEXT_FIELDS.contains(&k.as_str()) && v.is_string() {
            continue;
        }
        let shown = match v {
            Value::String(s) => s.clone(),
            other => serde_json::to_string(other).unwrap_or_default(),
        };
        println!("{k}: {shown}");
    }
    for k in TEXT_FIELDS {
        if let Some(text) = fields.get(k).and_then(Value::as_str) {
            if fields.len() > 1 {
                println!("--- {k} ---");
            }
            print!("{text}");
            if !text.is_empty() && !text.ends_with('\n') {
                println!();
            }
        }
    }
}

/// A tool's arguments as `path, offset?, limit?` (optional ones marked).
fn argument_names(schema: &Value) -> String {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let names: Vec<String> = schema["properties"]
        .as_object()
        .map(|props| {
            props
                .keys()
                .map(|k| {
                    if required.contains(&k.as_str()) {
                        k.clone()
                    } else {
                        format!("{k}?")
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
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
