//! The commands of the built-in workflows: `ao review`, `ao plan`, `ao fix`. Each maps its
//! arguments onto the workflow's input, runs it like `ao run`, and shows the typed result the
//! way a person reads it (`--json` prints the run object, as `ao run --json` does).

use crate::run_cmd::{drive_with, print_run_with};
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
    #[command(flatten)]
    pub budget: crate::input::BudgetArgs,
    #[command(flatten)]
    pub replay: crate::input::ReplayArgs,
}

pub async fn review(project: &Project, args: &ReviewArgs, ui: Ui) -> Result<u8, CliError> {
    let service = args
        .replay
        .apply(project.runner(false)?.with_budget(args.budget.budget()?))?;
    let mut input = json!({"fail_on": args.fail_on});
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
        |service, outcome| print_run_with(service, outcome, Some(&show)),
        Some(&exit),
    )
    .await
}

#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    /// What the plan should achieve.
    #[arg(long, value_name = "TEXT")]
    pub goal: String,
    /// A file the leader reads before planning (repeatable; read through the policy gate).
    #[arg(long = "context-file", value_name = "PATH")]
    pub context_files: Vec<String>,
    /// The part of the repository the plan is about (default: the whole root).
    #[arg(long, value_name = "PATH", default_value = ".")]
    pub scope: String,
    #[command(flatten)]
    pub budget: crate::input::BudgetArgs,
    #[command(flatten)]
    pub replay: crate::input::ReplayArgs,
}

pub async fn plan(project: &Project, args: &PlanArgs, ui: Ui) -> Result<u8, CliError> {
    if args.goal.trim().is_empty() {
        return Err(CliError::usage("--goal: say what the plan should achieve"));
    }
    let service = args
        .replay
        .apply(project.runner(false)?.with_budget(args.budget.budget()?))?;
    let wf = service.resolve("plan")?;
    service.preflight(&wf)?;
    let input =
        json!({"goal": args.goal, "context_files": args.context_files, "scope": args.scope});
    let show = |output: &Value| match serde_json::from_value::<ao_core::types::Plan>(output.clone())
    {
        Ok(plan) => print!("{}", render_plan(&plan)),
        Err(_) => crate::output::print_json(output),
    };
    drive_with(
        project.ui(ui),
        &service,
        |opts, sink| {
            let service = service.clone();
            async move { service.start(wf, input, opts, sink).await }
        },
        |service, outcome| print_run_with(service, outcome, Some(&show)),
        None,
    )
    .await
}

/// A plan as a person reads it: numbered steps with their worker, risks, validation commands.
pub fn render_plan(plan: &ao_core::types::Plan) -> String {
    let mut out = format!("Plan: {}\n\n", plan.summary.trim());
    for (i, step) in plan.steps.iter().enumerate() {
        let task = serde_json::to_value(step.task_type)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        out.push_str(&format!(
            "{}. [{}] {} ({task})\n",
            i + 1,
            step.id,
            step.title.trim()
        ));
        if let Some(a) = plan.assignments.iter().find(|a| a.step_id == step.id) {
            out.push_str(&format!("   worker: {} — {}\n", a.worker, a.reason.trim()));
        }
        for line in step.description.trim().lines() {
            out.push_str(&format!("   {line}\n"));
        }
        if !step.depends_on.is_empty() {
            out.push_str(&format!("   after: {}\n", step.depends_on.join(", ")));
        }
        for check in &step.acceptance_checks {
            out.push_str(&format!("   done when: {check}\n"));
        }
    }
    if !plan.risks.is_empty() {
        out.push_str("\nRisks:\n");
        for r in &plan.risks {
            out.push_str(&format!("- {r}\n"));
        }
    }
    if !plan.validation.is_empty() {
        out.push_str("\nValidation:\n");
        for v in &plan.validation {
            out.push_str(&format!("  $ {v}\n"));
        }
    }
    out
}

#[derive(clap::Args, Debug)]
pub struct FixArgs {
    /// The error output to fix: a file, or `-` for stdin.
    #[arg(long, value_name = "PATH|-")]
    pub error: String,
    /// Only files under this path are read and changed.
    #[arg(long, value_name = "PATH", default_value = ".")]
    pub scope: String,
    /// A command that passes once the error is fixed (e.g. "cargo build"); run in a sandbox in
    /// dry-run, in the root with --apply.
    #[arg(long, value_name = "CMD")]
    pub validate: Option<String>,
    /// Fix attempts before the loop stops.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub max_attempts: u32,
    /// Write the fix to the working tree (default: dry-run, the fix goes to the run's changeset).
    #[arg(long)]
    pub apply: bool,
    #[command(flatten)]
    pub budget: crate::input::BudgetArgs,
    #[command(flatten)]
    pub replay: crate::input::ReplayArgs,
}

pub async fn fix(project: &Project, args: &FixArgs, ui: Ui) -> Result<u8, CliError> {
    if !(1..=10).contains(&args.max_attempts) {
        return Err(CliError::usage("--max-attempts: between 1 and 10"));
    }
    let log = read_text("--error", &args.error)?;
    if log.trim().is_empty() {
        return Err(CliError::usage(format!(
            "--error {}: the log is empty; there is nothing to fix",
            args.error
        )));
    }
    let service = args.replay.apply(
        project
            .runner(args.apply)?
            .with_budget(args.budget.budget()?),
    )?;
    let wf = service.resolve("fix-error")?;
    service.preflight(&wf)?;
    let input = json!({
        "log": log,
        "scope": args.scope,
        "validate": args.validate.clone().unwrap_or_default(),
        "max_attempts": args.max_attempts,
    });
    // A completed run exits 0 whatever the leader decided (product.md); the decision is in the
    // report.
    let show = |output: &Value| print!("{}", render_fix(output));
    drive_with(
        project.ui(ui),
        &service,
        |opts, sink| {
            let service = service.clone();
            async move { service.start(wf, input, opts, sink).await }
        },
        |service, outcome| print_run_with(service, outcome, Some(&show)),
        None,
    )
    .await
}

/// A fix report as a person reads it.
fn render_fix(report: &Value) -> String {
    let mut out = format!(
        "Root cause: {}\n",
        report["root_cause"].as_str().unwrap_or("").trim()
    );
    if let Some(evidence) = report["evidence"].as_array().filter(|e| !e.is_empty()) {
        out.push_str("Evidence:\n");
        for e in evidence {
            let at = match e["line"].as_u64() {
                Some(l) => format!("{}:{l}", e["file"].as_str().unwrap_or("")),
                None => e["file"].as_str().unwrap_or("").to_string(),
            };
            out.push_str(&format!("  {at}: {}\n", e["detail"].as_str().unwrap_or("")));
        }
    }
    if let Some(plan) = report["fix_plan"].as_array() {
        out.push_str("Fix:\n");
        for (i, s) in plan.iter().enumerate() {
            out.push_str(&format!("  {}. {}\n", i + 1, s.as_str().unwrap_or("")));
        }
    }
    for v in report["validation"].as_array().into_iter().flatten() {
        let verdict = if v["passed"] == true {
            "passed".to_string()
        } else if v["decision"] == "allowed" {
            format!("failed (exit {})", v["exit_code"])
        } else {
            format!("not run: {}", v["reason"].as_str().unwrap_or(""))
        };
        out.push_str(&format!(
            "Validation `{}` in the {}: {verdict}\n",
            v["command"].as_str().unwrap_or(""),
            v["ran_in"].as_str().unwrap_or("")
        ));
    }
    out.push_str(&format!(
        "Decision: {} after {} attempt(s) — {}\n",
        report["decision"]["decision"].as_str().unwrap_or(""),
        report["attempts"],
        report["decision"]["reason"].as_str().unwrap_or("").trim()
    ));
    out
}
