//! `ao run`, and the shared way a command drives a run to its end (progress, Ctrl-C, output,
//! exit code).

use crate::input::run_input;
use crate::output::{print_doc, print_outcome};
use crate::progress::Progress;
use crate::{CliError, Project, Ui};
use ao_orchestrator::engine::{CancelToken, RunOptions, SharedSink};
use ao_orchestrator::{Error, RootCheck, RunView, Service, exit_code};
use std::future::Future;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// A workflow file, a folder holding workflow.yaml, a name in <root>/workflows/, or a
    /// built-in name.
    pub workflow: String,
    /// An input field, KEY=VALUE (VALUE is parsed as JSON when it can be, else a string).
    #[arg(long = "input", value_name = "KEY=VALUE")]
    pub inputs: Vec<String>,
    /// The whole input as a JSON object, or @FILE (@- for stdin).
    #[arg(long, value_name = "JSON|@FILE")]
    pub input_json: Option<String>,
    /// Sets the input field `goal`.
    #[arg(long, value_name = "TEXT")]
    pub goal: Option<String>,
    /// Sets the input field `scope`.
    #[arg(long, value_name = "PATH")]
    pub scope: Option<String>,
    /// Let tools write files and run commands (default: dry-run; writes go to the run's
    /// changeset, commands are simulated).
    #[arg(long)]
    pub apply: bool,
}

pub async fn run(project: &Project, args: &RunArgs, ui: Ui) -> Result<u8, CliError> {
    let service = project.runner(args.apply)?;
    let wf = service.resolve(&args.workflow)?;
    service.preflight(&wf)?;
    let input = run_input(
        &args.inputs,
        args.input_json.as_deref(),
        &[("goal", args.goal.as_ref()), ("scope", args.scope.as_ref())],
    )?;
    if project.redactor().redact_value(&input) != input {
        eprintln!(
            "warning: the input holds the value of a secret (an API key or a *KEY/*TOKEN/*SECRET/*PASSWORD \
             variable); the run gets `[REDACTED]` in its place, so the secret never reaches the run store. Give \
             secrets to commands through the environment instead ([policy] env_passthrough)."
        );
    }
    drive(project.ui(ui), &service, |opts, sink| {
        let service = service.clone();
        async move { service.start(wf, input, opts, sink).await }
    })
    .await
}

/// Runs `start` with progress and Ctrl-C handling, prints the outcome, returns the exit code.
pub async fn drive<F, Fut>(ui: Ui, service: &Service, start: F) -> Result<u8, CliError>
where
    F: FnOnce(RunOptions, Option<SharedSink>) -> Fut,
    Fut: Future<Output = Result<RunView, Error>>,
{
    let cancel = CancelToken::new();
    let on_signal = cancel.clone();
    let signals = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ninterrupted: stopping at the next safe point (Ctrl-C again to abort)");
            on_signal.cancel("ctrl-c");
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    let progress = Progress::for_ui(ui);
    let opts = RunOptions {
        cancel,
        ..Default::default()
    };
    let result = start(opts, progress.as_ref().map(|p| p.sink())).await;
    signals.abort();
    if let Some(p) = &progress {
        p.finish();
    }
    let outcome = result?;
    if ui.json {
        print_doc(&outcome);
    } else {
        print_outcome(&outcome);
        print_changeset_summary(service, &outcome.run_id);
    }
    Ok(exit_code(outcome.status))
}

/// Dry-run is never a silent no-op: say what the run proposes and how to review and apply it.
pub fn print_changeset_summary(service: &Service, run_id: &str) {
    let Ok((changeset, applied)) = service.changeset(run_id, RootCheck::AnyRoot) else {
        return;
    };
    if changeset.is_empty() {
        return;
    }
    let n = changeset.files.len();
    let plural = if n == 1 { "" } else { "s" };
    if applied {
        println!("changes written (--apply, {n} file{plural}):");
    } else {
        println!("proposed changes, not written (dry-run, {n} file{plural}):");
    }
    for f in &changeset.files {
        let action = serde_json::to_value(f.action())
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        println!("  {action:<8} {}", f.path);
    }
    println!("review: ao runs show {run_id} --patch");
    if !applied {
        println!("apply:  ao apply {run_id}");
    }
}
