//! What the tools return: the orchestrator's typed values (the same the CLI prints with
//! `--json`), wrapped so `structuredContent` is always an object, plus a `next` line that
//! tells an agent what it can do with the result.

use ao_core::profile::WorkerCapabilityProfile;
use ao_core::run::RunStatus;
use ao_core::types::RiskLevel;
use ao_orchestrator::models::ModelInfo;
use ao_orchestrator::tool_node::ToolInfo;
use ao_orchestrator::{RunDetail, RunSummary, RunView, WorkflowInfo};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The write mode a run's tools work in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// Writes go to the run's changeset, commands are simulated.
    DryRun,
    /// Writes hit the disk, allowed commands run.
    Apply,
}

/// A run that was started (or continued), as it was when the call returned.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RunResult {
    /// The run (`state` is null; `ao_get_run` with `detail: full` has it).
    pub run: RunDetail,
    pub mode: WriteMode,
    /// What to do next with this run.
    pub next: String,
}

/// A review run, with the verdict when `fail_on` was given and the review is done.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ReviewResult {
    #[serde(flatten)]
    pub result: RunResult,
    /// Whether the review reaches the `fail_on` level, and why.
    pub verdict: Option<Verdict>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Verdict {
    pub threshold: RiskLevel,
    /// A finding or the overall risk is at or above the threshold.
    pub fails: bool,
    pub reasons: Vec<String>,
}

/// One run as stored.
#[derive(Debug, Serialize, JsonSchema)]
pub struct GetRunResult {
    /// The run; `state` is null unless `detail` was `full`.
    pub run: RunDetail,
    pub next: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ListRunsResult {
    /// Newest first.
    pub runs: Vec<RunSummary>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct WaitResult {
    /// The run (`state` is null).
    pub run: RunDetail,
    /// The wait ended because its time was up; the run is still running.
    pub timed_out: bool,
    /// The run shows `running` but no process drives it any more (its process died); resume
    /// it with `ao_resume_run` (no answer).
    pub abandoned: bool,
    pub next: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ResumeResult {
    /// The run as the call that gave the answer left it (`state` is null).
    pub run: RunDetail,
    /// This `request_id` was used before: nothing was answered now; `run` is the first call's
    /// result (`ao_get_run` shows the run as it is now).
    pub replayed: bool,
    pub next: String,
}

/// What cancelling did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancelOutcome {
    /// The run is cancelled.
    Cancelled,
    /// The process driving the run was asked to stop; it stops at its next safe point.
    Requested,
    /// It was cancelled before; nothing changed.
    AlreadyCancelled,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CancelResult {
    pub run_id: String,
    pub result: CancelOutcome,
    /// The run after the cancel (`state` is null).
    pub run: RunDetail,
}

/// One file of a changeset.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ChangedFile {
    /// Relative to the project root.
    pub path: String,
    /// `create`, `modify`, `delete` or `unchanged`.
    pub action: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ChangesetResult {
    pub run_id: String,
    /// The run ran in apply mode and wrote these changes as it ran (nothing is left to apply).
    pub applied: bool,
    pub files: Vec<ChangedFile>,
    /// The changes as a unified diff (`git apply` accepts it); empty when there are none.
    pub patch: String,
}

/// What applying did (or would do) to one file.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct FileApplyStatus {
    pub path: String,
    /// `create`, `modify`, `delete` or `unchanged`.
    pub action: String,
    /// Why it cannot be applied, if it cannot.
    #[serde(default)]
    pub problem: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ApplyResult {
    pub run_id: String,
    /// Only checked (`check: true`): nothing was written.
    pub check: bool,
    /// The files were written.
    pub applied: bool,
    /// A file cannot be applied (see `problem`), so nothing was written: a changeset is
    /// applied whole or not at all.
    pub refused: bool,
    pub files: Vec<FileApplyStatus>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ListWorkflowsResult {
    pub workflows: Vec<WorkflowInfo>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ListModelsResult {
    /// The leader and the workers; never a key (`api_key` is `set` or `unset`).
    pub models: Vec<ModelInfo>,
    pub leader_configured: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ListWorkersResult {
    /// The saved capability profiles, in file order.
    pub profiles: Vec<WorkerCapabilityProfile>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct WorkerProfileResult {
    pub profile: WorkerCapabilityProfile,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ListToolsResult {
    /// The deterministic tools workflows use, with their effect class (`read`, `write`,
    /// `exec`) and schemas.
    pub tools: Vec<ToolInfo>,
}

/// The run without its state (which can be large): what every call but `ao_get_run` with
/// `detail: full` returns.
pub fn without_state(mut run: RunDetail) -> RunDetail {
    run.run.state = Value::Null;
    run
}

/// What an agent can do next with a run in this status.
pub fn next_step(run: &RunView, abandoned: bool) -> String {
    let id = &run.run_id;
    if abandoned {
        return format!(
            "run {id} shows running, but the process that drove it is gone: continue it with ao_resume_run (run_id {id}, no answer), or cancel it with ao_cancel_run"
        );
    }
    match run.status {
        RunStatus::Running => format!(
            "run {id} is still running: wait for it with ao_wait_for_run (run_id {id}), or cancel it with ao_cancel_run"
        ),
        RunStatus::Interrupted => {
            let node = run
                .interrupt
                .as_ref()
                .map(|i| i.node.as_str())
                .unwrap_or("?");
            format!(
                "run {id} waits for an answer at `{node}`: answer with ao_resume_run (run_id {id}, answer matching run.interrupt.schema, and a request_id so a retry never answers twice)"
            )
        }
        RunStatus::Completed => format!(
            "run {id} completed: its result is run.output; ao_get_changeset (run_id {id}) shows the file changes it proposes, if any"
        ),
        RunStatus::Failed if run.error.as_ref().is_some_and(|e| e.kind == "stopped") => format!(
            "run {id} was stopped before it finished; completed tasks are kept: continue it with ao_resume_run (run_id {id}, no answer)"
        ),
        RunStatus::Failed => format!(
            "run {id} failed (see run.error); completed tasks are kept: after fixing the cause, continue it with ao_resume_run (run_id {id}, no answer)"
        ),
        RunStatus::Cancelled => {
            format!("run {id} was cancelled; it cannot continue: start a new run")
        }
    }
}
