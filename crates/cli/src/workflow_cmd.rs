//! The commands of the built-in workflows: `ao review`, `ao plan`, `ao fix`. Each maps its
//! arguments onto the workflow's input, runs it like `ao run`, and shows the typed result the
//! way a person reads it (`--json` prints the run object, as `ao run --json` does).

use crate::run_cmd::{Rendering, drive_with};
use crate::{CliError, Project, Ui};
use ao_core::types::{ReviewSummary, RiskLevel};
use ao_orchestrator::workflows::review_report::{render_markdown, render_text};
use serde_json::{Value, json};

/// Reads a file argument, or stdin for `-`.
fn read_text(flag: &str, path: &str) -> Result<String, CliError> {
    if path == "-" {
        let mut buf = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut buf)
            .map_err(|e| CliError::usage(format!("{flag} -: cannot read stdin: {e}")))?;
        return Ok(buf);
    }
    std::fs::read_to_string(path)
        .map_err(|e| CliError::usage(format!("{flag} {path}: cannot read the file: {e}")))
}

#[derive(clap::Args, Debug)]
pub struct ReviewArgs {
    /// A git revision or range to review, e.g. `main...HEAD` (read with the read-only git tool).
    #[arg(long, value_name = "RANGE", conflicts_with_all = ["diff_file", "file"])]
    pub diff: Option<String>,
    /// A unified diff to review, from a file or `-` for stdin.
    #[arg(long, value_name = "PATH|-", conflicts_with = "file")]
    pub diff_file: Option<String>,
    /// Files to review whole (repeatable).
    #[arg(long, value_name = "PATH")]
    pub file: Vec<String>,
    /// Exit 1 when a finding or the overall risk reaches this level.
    #[arg(long, value_parser = ["low", "medium", "high"])]
    pub fail_on: Option<String>,
    /// How to show the review: text, json (the ReviewSummary alone), or markdown (fit to paste
    /// as a pull-request comment).
    #[arg(long, default_value = "text", value_parser = ["text", "json", "markdown"])]
    pub format: String,
}

pub async fn review(project: &Project, args: &ReviewArgs, ui: Ui) -> Result<u8, CliError> {
    let service = project.runner(false)?;
    let mut input = json!({"fail_on": args.fail_on, "reviewer": service.worker_role()});
    match (&args.diff, &args.diff_file, args.file.is_empty()) {
        (Some(range), _, _) => input["range"] = json!(range),
        (None, Some(path), _) => input["diff"] = json!(read_text("--diff-file", path)?),
        (None, None, false) => input["files"] = json!(args.file),
        (None, None, true) => {
            return Err(CliError::usage(
                "nothing to review: give --diff RANGE, --diff-file PATH (or - for stdin), or --file PATH",
            ));
        }
    }
    let wf = service.resolve("review")?;
    service.preflight(&wf)?;
    let threshold: Option<RiskLevel> = args.fail_on.as_deref().and_then(|t| t.parse().ok());
    let format = args.format.clone();
    let show = move |output: &Value| match serde_json::from_value::<ReviewSummary>(output.clone()) {
        Ok(summary) => match format.as_str() {
            "json" => crate::output::print_json(output),
            "markdown" => print!("{}", render_markdown(&summary, threshold)),
            _ => print!("{}", render_text(&summary, threshold)),
        },
        Err(_) => crate::output::print_json(output),
    };
    let exit =
        |run: &ao_orchestrator::RunView| -> u8 { u8::from(run.state["verdict"]["fails"] == true) };
    drive_with(
        project.ui(ui),
        &service,
        |opts, sink| {
            let service = service.clone();
            async move { service.start(wf, input, opts, sink).await }
        },
        Rendering {
            output: Some(&show),
            exit: Some(&exit),
        },
    )
    .await
}
