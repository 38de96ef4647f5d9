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
    /// Adds a file to the input field `context_files` (repeatable).
    #[arg(long = "context-file", value_name = "PATH")]
    pub context_files: Vec<String>,
    /// Sets the input field `no_interview` (leader-worker: workers without a current profile
    /// count as limited instead of being interviewed first).
    #[arg(long)]
    pub no_interview: bool,
    /// Let tools write files and run commands (default: dry-run; writes go to the run's
    /// changeset, commands are simulated).
    #[arg(long)]
    pub apply: bool,
    #[command(flatten)]
    pub budget: crate::input::BudgetArgs,
    #[command(flatten)]
    pub replay: crate::input::ReplayArgs,
}

pub async fn run(project: &Project, args: &RunArgs, ui: Ui) -> Result<u8, CliError> {
    let service = args.replay.apply(
        project
            .runner(args.apply)?
            .with_budget(args.budget.budget()?),
    )?;
    let wf = service.resolve(&args.workflow)?;
    service.preflight(&wf)?;
    let mut input = run_input(
        &args.inputs,
        args.input_json.as_deref(),
        &[("goal", args.goal.as_ref()), ("scope", args.scope.as_ref())],
    )?;
    if !args.context_files.is_empty() {
        input["context_files"] = serde_json::json!(args.context_files);
    }
    if args.no_interview {
        input["no_interview"] = serde_json::Value::Bool(true);
    }
    if project.redactor().redact_value(&input) != input {
        eprintln!(
            "warning: the input holds the value of a secret (an API key or a *KEY/*TOKEN/*SECRET/*PASSWORD \
             variable); the run gets `[REDACTED]` in its place, so the secret never reaches the run store. Give \
             secrets to commands through the environment instead ([policy] env_passthrough)."
        );
    }
    let report = wf.name() == "leader-worker";
    let show = |output: &serde_json::Value| match serde_json::from_value::<
        ao_core::types::LeaderWorkerReport,
    >(output.clone())
    {
        Ok(r) => print!("{}", render_leader_worker(&r)),
        Err(_) => crate::output::print_json(output),
    };
    drive_with(
        project.ui(ui),
        &service,
        |opts, sink| {
            let service = service.clone();
            async move { service.start(wf, input, opts, sink).await }
        },
        |service, outcome| print_run_with(service, outcome, report.then_some(&show as _)),
        None,
    )
    .await
}

/// A leader-worker report as a person reads it.
pub fn render_leader_worker(r: &ao_core::types::LeaderWorkerReport) -> String {
    let mut out = format!(
        "Goal: {}
Plan: {}

",
        r.goal.trim(),
        r.plan_summary.trim()
    );
    for s in &r.steps {
        let result = serde_json::to_value(s.result)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let who = if s.worker.is_empty() {
            String::new()
        } else {
            format!(" by {}", s.worker)
        };
        out.push_str(&format!(
            "[{}] {} — {result}{who}{}
",
            s.step_id,
            s.title.trim(),
            if s.attempts > 1 {
                format!(", {} attempts", s.attempts)
            } else {
                String::new()
            }
        ));
        if !s.summary.trim().is_empty() {
            out.push_str(&format!(
                "   {}
",
                s.summary.trim()
            ));
        } else if !s.routing_reason.is_empty() && s.worker.is_empty() {
            out.push_str(&format!(
                "   {}
",
                s.routing_reason.trim()
            ));
        }
        for n in &s.leader_notes {
            out.push_str(&format!(
                "   leader: {}
",
                n.trim()
            ));
        }
    }
    for v in &r.validation {
        let verdict = if v.passed {
            "passed".to_string()
        } else if v.decision == ao_core::types::PolicyDecision::Allowed {
            match v.exit_code {
                Some(code) => format!("failed (exit {code})"),
                None => "failed".to_string(),
            }
        } else {
            format!("not run: {}", v.reason.as_deref().unwrap_or("denied"))
        };
        out.push_str(&format!(
            "validation `{}`: {verdict}
",
            v.command
        ));
    }
    out.push_str(&format!(
        "Leader: {} after {} review(s) — {}
",
        r.decision.decision.as_str(),
        r.review_rounds,
        r.decision.reason.trim()
    ));
    out
}

/// Runs `start` with progress and Ctrl-C handling, prints the outcome, returns the exit code.
pub async fn drive<F, Fut>(ui: Ui, service: &Service, start: F) -> Result<u8, CliError>
where
    F: FnOnce(RunOptions, Option<SharedSink>) -> Fut,
    Fut: Future<Output = Result<RunView, Error>>,
{
    drive_with(ui, service, start, print_run, None).await
}

/// The human output of a run that stopped: the outcome, usage, warnings, proposed changes.
pub fn print_run(service: &Service, outcome: &RunView) {
    print_run_with(service, outcome, None);
}

/// [`print_run`], with a workflow command's own view of a completed run's output.
pub fn print_run_with(
    service: &Service,
    outcome: &RunView,
    show: Option<&dyn Fn(&serde_json::Value)>,
) {
    match (show, outcome.status, &outcome.output) {
        (Some(show), ao_core::run::RunStatus::Completed, Some(output)) => show(output),
        _ => print_outcome(outcome),
    }
    if let Some(line) = crate::output::usage_line(outcome) {
        println!("{line}");
    }
    print_warnings(service, &outcome.run_id);
    print_changeset_summary(service, &outcome.run_id);
}

/// The warnings a run's events carry.
pub fn print_warnings(service: &Service, run_id: &str) {
    for (node, message) in service.warnings(run_id).unwrap_or_default() {
        match node {
            Some(node) => println!("warning ({node}): {message}"),
            None => println!("warning: {message}"),
        }
    }
}

/// Like [`drive`], with the human output made by `render` (`--json` prints the run object).
pub async fn drive_with<F, Fut>(
    ui: Ui,
    service: &Service,
    start: F,
    render: impl FnOnce(&Service, &RunView),
    exit: Option<&dyn Fn(&RunView) -> u8>,
) -> Result<u8, CliError>
where
    F: FnOnce(RunOptions, Option<SharedSink>) -> Fut,
    Fut: Future<Output = Result<RunView, Error>>,
{
    let cancel = CancelToken::new();
    let on_signal = cancel.clone();
    // Ctrl-C (or SIGTERM) stops the run at its next safe point and leaves it resumable; a
    // second one exits at once (the run is then resumable like after a crash). Only
    // `ao runs cancel` makes a run final.
    let signalled = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(0));
    let seen = signalled.clone();
    // On its own thread (with its own small runtime), so a second signal exits at once even
    // while the run's thread is busy in a blocking call (a store waiting for a lock, say).
    let signals = SignalWatcher::start(move |code, again| {
        if again {
            std::process::exit(i32::from(code));
        }
        seen.store(code, std::sync::atomic::Ordering::SeqCst);
        eprintln!(
            "\nstopping at the next safe point; the run stays resumable (press Ctrl-C again to exit at once)"
        );
        on_signal.stop(if code == 130 { "ctrl-c" } else { "SIGTERM" });
    });
    let progress = Progress::for_ui(ui);
    if let Some(p) = progress.as_ref().filter(|p| p.is_live()) {
        service.stream_tokens(p.clone());
    }
    let opts = RunOptions {
        cancel,
        ..Default::default()
    };
    let result = start(opts, progress.as_ref().map(|p| p.sink())).await;
    drop(signals);
    if let Some(p) = &progress {
        p.finish();
    }
    let outcome = result?;
    if ui.json {
        print_doc(&outcome);
    } else {
        render(service, &outcome);
    }
    // A run stopped by a signal exits as a signalled program does (130 for Ctrl-C, 143 for
    // SIGTERM), so shells and scripts see the interruption.
    match signalled.load(std::sync::atomic::Ordering::SeqCst) {
        0 if outcome.status == ao_core::run::RunStatus::Completed => {
            Ok(exit.map_or(0, |exit| exit(&outcome)))
        }
        0 => Ok(exit_code(outcome.status)),
        code if outcome.status == ao_core::run::RunStatus::Failed => Ok(code),
        _ => Ok(exit_code(outcome.status)),
    }
}

/// Watches Ctrl-C and SIGTERM on a thread of its own until dropped; calls `on_signal(code,
/// again)` for each, `again` from the second on.
struct SignalWatcher {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl SignalWatcher {
    fn start(on_signal: impl Fn(u8, bool) + Send + 'static) -> Self {
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let watcher = std::thread::Builder::new()
            .name("ao-signals".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    let mut again = false;
                    loop {
                        tokio::select! {
                            _ = &mut stopped => return,
                            code = next_signal() => match code {
                                Some(code) => {
                                    on_signal(code, again);
                                    again = true;
                                }
                                None => return,
                            },
                        }
                    }
                });
            });
        // Without the thread signals keep their default effect (the process ends, resumable
        // like after a crash).
        Self {
            stop: watcher.is_ok().then_some(stop),
        }
    }
}

impl Drop for SignalWatcher {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Waits for Ctrl-C (130) or SIGTERM (143); `None` if signals cannot be watched.
async fn next_signal() -> Option<u8> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut int = signal(SignalKind::interrupt()).ok()?;
        let mut term = signal(SignalKind::terminate()).ok()?;
        tokio::select! {
            _ = int.recv() => Some(130),
            _ = term.recv() => Some(143),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.ok().map(|()| 130)
    }
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
