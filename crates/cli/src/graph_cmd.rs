//! `ao graph`: list, show (Mermaid, JSON, text), validate.

use crate::output::print_json;
use crate::{CliError, Project, Ui};
use ao_orchestrator::engine::{load_path, render_json, render_mermaid, render_text};
use std::path::Path;

#[derive(clap::Subcommand, Debug)]
pub enum GraphCommand {
    /// Workflows that can be run by name.
    List,
    /// Render a workflow.
    Show {
        workflow: String,
        #[arg(long, default_value = "text", value_parser = ["mermaid", "json", "text"])]
        format: String,
    },
    /// Load and check a workflow file; exit 2 with every problem found.
    Validate { file: String },
}

pub fn dispatch(project: &Project, cmd: &GraphCommand, ui: Ui) -> Result<u8, CliError> {
    match cmd {
        GraphCommand::List => {
            let service = project.service()?;
            let list = service.list_workflows();
            if ui.json {
                let items: Vec<_> = list
                    .iter()
                    .map(|w| serde_json::json!({"name": w.name, "description": w.description, "origin": w.origin, "aliases": w.aliases}))
                    .collect();
                print_json(&serde_json::json!({"workflows": items}));
            } else if list.is_empty() {
                println!(
                    "no workflows: add YAML files to {}",
                    project.root.join("workflows").display()
                );
            } else {
                for w in &list {
                    println!(
                        "{:<24} {}",
                        w.name,
                        w.description
                            .as_deref()
                            .unwrap_or("")
                            .lines()
                            .next()
                            .unwrap_or("")
                    );
                    if !w.aliases.is_empty() {
                        println!("{:<24} also: {}", "", w.aliases.join(", "));
                    }
                }
            }
            Ok(0)
        }
        GraphCommand::Show { workflow, format } => {
            let service = project.service()?;
            let wf = service.resolve(workflow)?;
            if ui.json || format == "json" {
                print_json(&render_json(&wf));
            } else if format == "mermaid" {
                print!("{}", render_mermaid(&wf));
            } else {
                print!("{}", render_text(&wf));
            }
            Ok(0)
        }
        GraphCommand::Validate { file } => {
            let wf = load_path(Path::new(file)).map_err(ao_orchestrator::Error::from)?;
            if ui.json {
                print_json(
                    &serde_json::json!({"valid": true, "name": wf.name(), "nodes": wf.node_names().count(), "edges": wf.edge_count()}),
                );
            } else {
                println!(
                    "{file}: ok (workflow `{}`, {} nodes)",
                    wf.name(),
                    wf.node_names().count()
                );
            }
            Ok(0)
        }
    }
}
