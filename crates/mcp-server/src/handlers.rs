//! One thin handler per tool: read the (already validated) arguments, call ao-orchestrator,
//! wrap its typed value. The only logic here is the protocol's: progress, cancellation, and
//! the write ceiling's message to the caller.

use crate::args::*;
use crate::catalog::ToolId;
use crate::outputs::*;
use crate::progress::{ProgressPump, PumpTarget};
use crate::server::{AoServer, Backend, Call, Failure};
use ao_core::run::RunStatus;
use ao_orchestrator::engine::{RunFilter, RunOptions, Workflow, render_json, render_mermaid};
use ao_orchestrator::interview::profiles;
use ao_orchestrator::{
    CancelResult as Cancelled, Error, ErrorKind, ResumeRequest, RootCheck, Service, Waited,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Who cancels when a client does, as the run records it.
const CLIENT: &str = "mcp client";
/// How long a cancel waits for the run's process to stop.
const CANCEL_WAIT: Duration = Duration::from_secs(10);

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let kind = e.kind();
        // The library says what failed; this adds what to do in this server's terms.
        let hint = match (&e, kind) {
            (Error::ModeChanged { applied: true, .. }, _) => {
                " (it continues only on a server that allows writes)"
            }
            (_, ErrorKind::AnswerRequired) => {
                "; pass `answer`, matching run.interrupt.schema (see ao_get_run)"
            }
            (_, ErrorKind::InvalidAnswer) => {
                "; the answer must match run.interrupt.schema (see ao_get_run)"
            }
            (_, ErrorKind::RunNotFound) => "; ao_list_runs lists the runs",
            (_, ErrorKind::WorkflowNotFound) => {
                "; ao_list_workflows lists the workflows this server can run"
            }
            (_, ErrorKind::InvalidInput) => {
                "; ao_describe_workflow shows the workflow's input schema"
            }
            (_, ErrorKind::OtherRoot) => {
                "; this server serves one project: use a server started in that project"
            }
            _ => "",
        };
        Failure(format!("{kind}: {e}{hint}"))
    }
}

fn parse<T: DeserializeOwned>(tool: &str, args: Value) -> Result<T, Failure> {
    // The arguments passed the schema; this only fails if a type and its schema disagree.
    serde_json::from_value(args)
        .map_err(|e| Failure(format!("invalid arguments for `{tool}`: {e}")))
}

fn object<T: Serialize>(v: &T) -> Result<Value, Failure> {
    serde_json::to_value(v).map_err(|e| Failure(format!("cannot render the result: {e}")))
}

/// A budget argument that cannot be a limit (zero, negative, not a number) is the caller's
/// mistake, named.
fn check_budget(budget: &ao_orchestrator::engine::Budget) -> Result<(), Failure> {
    if let Some(c) = budget.max_cost_usd
        && !(c.is_finite() && c > 0.0)
    {
        return Err(usage(format!(
            "argument `max_cost_usd`: give a positive number of dollars, not {c}"
        )));
    }
    for (name, value) in [
        ("max_tokens", budget.max_tokens),
        ("max_llm_calls", budget.max_llm_calls),
    ] {
        if value == Some(0) {
            return Err(usage(format!(
                "argument `{name}`: give a whole number of at least 1, not 0"
            )));
        }
    }
    Ok(())
}

fn usage(message: impl Into<String>) -> Failure {
    Failure(format!("usage: {}", message.into()))
}

impl AoServer {
    pub(crate) async fn dispatch(
        &self,
        id: ToolId,
        args: Value,
        call: &Call,
    ) -> Result<Value, Failure> {
        let b = &self.backend;
        let tool = call.tool.as_str();
        match id {
            ToolId::Plan => b.plan(parse(tool, args)?, call).await,
            ToolId::RunWorkflow => b.run_workflow(parse(tool, args)?, call).await,
            ToolId::GetRun => b.get_run(parse(tool, args)?),
            ToolId::ListRuns => b.list_runs(parse(tool, args)?),
            ToolId::WaitForRun => b.wait_for_run(parse(tool, args)?, call).await,
            ToolId::ResumeRun => b.resume_run(parse(tool, args)?, call).await,
            ToolId::CancelRun => b.cancel_run(parse(tool, args)?).await,
            ToolId::ReviewDiff => b.review_diff(parse(tool, args)?, call).await,
            ToolId::FixError => b.fix_error(parse(tool, args)?, call).await,
            ToolId::GetChangeset => b.get_changeset(parse(tool, args)?),
            ToolId::ApplyChangeset => b.apply_changeset(parse(tool, args)?),
            ToolId::ListWorkflows => {
                let _: NoArgs = parse(tool, args)?;
                object(&ListWorkflowsResult {
                    workflows: b.modes.dry_run().list_workflows(),
                })
            }
            ToolId::DescribeWorkflow => b.describe_workflow(parse(tool, args)?),
            ToolId::ListModels => {
                let _: NoArgs = parse(tool, args)?;
                b.list_models().await
            }
            ToolId::InterviewWorker => b.interview_worker(parse(tool, args)?, call).await,
            ToolId::ListWorkers => {
                let _: NoArgs = parse(tool, args)?;
                let profiles = profiles::load_profiles(&b.state_dir)
                    .map_err(|e| Failure(format!("store: {e}")))?;
                object(&ListWorkersResult { profiles })
            }
            ToolId::GetWorkerProfile => b.get_worker_profile(parse(tool, args)?),
            ToolId::ListTools => {
                let _: NoArgs = parse(tool, args)?;
                object(&ListToolsResult {
                    tools: ao_orchestrator::tool_node::tool_list(),
                })
            }
            ToolId::Doctor => {
                let _: NoArgs = parse(tool, args)?;
                object(&ao_orchestrator::doctor::doctor(
                    &b.config,
                    &b.env,
                    &b.root,
                    &b.state_dir,
                    b.redactor.clone(),
                ))
            }
        }
    }
}

/// Puts `value` into `input` under `key` when it is given.
fn put<T: Serialize>(input: &mut Map<String, Value>, key: &str, value: Option<T>) {
    if let Some(v) = value.and_then(|v| serde_json::to_value(v).ok()) {
        input.insert(key.to_string(), v);
    }
}

fn seconds(s: u64) -> Duration {
    Duration::from_secs(s.min(MAX_WAIT_SECONDS))
}

impl Backend {
    /// The service for a new run: dry-run, or apply when asked and allowed.
    fn service_for(&self, apply: bool) -> Result<&Service, Failure> {
        if apply && !self.modes.writes_allowed() {
            return Err(Failure(format!(
                "config: `apply: true` is not allowed: this server's policy is dry-run ({}). Its operator enables writes by setting AO_DRY_RUN=false and AO_ALLOW_WRITE=true in the server's environment, or by starting it with `ao mcp serve --allow-apply`. Without `apply` the run is a dry-run: its file edits become a changeset to review with ao_get_changeset.",
                self.modes.ceiling_source()
            )));
        }
        Ok(self.modes.for_call(apply)?)
    }

    /// Starts a workflow in the background and waits up to `wait` for it (with progress),
    /// cancelling it if the client cancels the call.
    async fn start(
        &self,
        call: &Call,
        service: &Service,
        wf: Arc<Workflow>,
        input: Value,
        wait: Duration,
        budget: ao_orchestrator::engine::Budget,
    ) -> Result<Waited, Failure> {
        check_budget(&budget)?;
        let budgeted;
        let service = if budget.is_empty() {
            service
        } else {
            budgeted = service.clone().with_budget_cap(budget);
            &budgeted
        };
        service.preflight(&wf)?;
        let run_id = service
            .start_detached(wf, input, RunOptions::default(), &self.jobs)
            .await?;
        let pump = self.pump(call, service, &run_id, None);
        let waited = self
            .unless_cancelled(call, Some((service, &run_id)), async {
                Ok(service.wait_for_run(&run_id, wait, &self.jobs).await?)
            })
            .await;
        finish_pump(pump, waited.as_ref().ok()).await;
        waited
    }

    fn pump(
        &self,
        call: &Call,
        service: &Service,
        run_id: &str,
        after: Option<u64>,
    ) -> Option<ProgressPump> {
        let token = call.progress.clone()?;
        Some(ProgressPump::start(PumpTarget {
            service: service.clone(),
            run_id: run_id.to_string(),
            after,
            token,
            peer: call.peer.clone(),
            redactor: self.redactor.clone(),
        }))
    }

    /// Runs `work` unless the client cancels the call first. A client's cancel cancels
    /// `run` for good (recorded as cancelled by the MCP client, with its reason); the server
    /// shutting down leaves runs to the shutdown (which stops them, resumable).
    async fn unless_cancelled<T>(
        &self,
        call: &Call,
        run: Option<(&Service, &str)>,
        work: impl Future<Output = Result<T, Failure>>,
    ) -> Result<T, Failure> {
        tokio::select! {
            biased;
            _ = call.ct.cancelled() => {
                if let (Some((service, run_id)), Some(reason)) = (run, self.cancel_reason(&call.id).await) {
                    let why = format!("cancelled the {} request ({reason})", call.tool);
                    if let Err(e) = service.cancel_run(run_id, CLIENT, Some(&why), CANCEL_WAIT, &self.jobs).await {
                        eprintln!("ao mcp serve: cannot cancel run {run_id}: {e}");
                    }
                }
                // The client does not read this: a cancelled request gets no response.
                Err(Failure("cancelled: the request was cancelled".into()))
            }
            result = work => result,
        }
    }

    fn run_result(&self, waited: Waited, mode: WriteMode) -> Result<Value, Failure> {
        let next = next_step(&waited.run.run, waited.abandoned);
        object(&RunResult {
            run: without_state(waited.run),
            mode,
            next,
        })
    }

    /// A built-in workflow (always a dry-run), by its fixed name and input.
    async fn start_builtin(
        &self,
        call: &Call,
        name: &str,
        input: Map<String, Value>,
        wait_seconds: u64,
        budget: ao_orchestrator::engine::Budget,
    ) -> Result<Waited, Failure> {
        let service = self.modes.dry_run();
        let wf = service.resolve(name)?;
        self.start(
            call,
            service,
            wf,
            Value::Object(input),
            seconds(wait_seconds),
            budget,
        )
        .await
    }

    async fn plan(&self, a: PlanArgs, call: &Call) -> Result<Value, Failure> {
        let budget = a.budget();
        let mut input = Map::new();
        input.insert("goal".into(), json!(a.goal));
        put(
            &mut input,
            "context_files",
            Some(a.context_files).filter(|f| !f.is_empty()),
        );
        put(&mut input, "scope", a.scope);
        let waited = self
            .start_builtin(call, "plan", input, a.wait_seconds, budget)
            .await?;
        self.run_result(waited, WriteMode::DryRun)
    }

    async fn run_workflow(&self, a: RunWorkflowArgs, call: &Call) -> Result<Value, Failure> {
        let service = self.service_for(a.apply)?;
        let wf = service.resolve(&a.workflow)?;
        let budget = a.budget();
        let waited = self
            .start(
                call,
                service,
                wf,
                Value::Object(a.input),
                seconds(a.wait_seconds),
                budget,
            )
            .await?;
        let mode = if a.apply {
            WriteMode::Apply
        } else {
            WriteMode::DryRun
        };
        self.run_result(waited, mode)
    }

    fn get_run(&self, a: GetRunArgs) -> Result<Value, Failure> {
        let detail = self.modes.dry_run().view(&a.run_id)?;
        let next = next_step(&detail.run, false);
        let run = match a.detail {
            Detail::Full => detail,
            Detail::Summary => without_state(detail),
        };
        object(&GetRunResult { run, next })
    }

    fn list_runs(&self, a: ListRunsArgs) -> Result<Value, Failure> {
        let runs = self.modes.dry_run().list(&RunFilter {
            status: a.status,
            workflow: a.workflow,
            limit: Some(a.limit),
            include_children: false,
        })?;
        object(&ListRunsResult { runs })
    }

    async fn wait_for_run(&self, a: WaitForRunArgs, call: &Call) -> Result<Value, Failure> {
        let service = self.modes.dry_run();
        // Progress from now on: what happened before is in ao_get_run.
        let after = service
            .store()
            .last_event_seq(&a.run_id)
            .map_err(Error::from)?;
        service.record(&a.run_id)?;
        let pump = self.pump(call, service, &a.run_id, after);
        // Cancelling a wait stops the wait, not the run.
        let waited = self
            .unless_cancelled(call, None, async {
                Ok(service
                    .wait_for_run(&a.run_id, seconds(a.wait_seconds), &self.jobs)
                    .await?)
            })
            .await;
        finish_pump(pump, waited.as_ref().ok()).await;
        let waited = waited?;
        let next = next_step(&waited.run.run, waited.abandoned);
        object(&WaitResult {
            timed_out: waited.run.run.status == RunStatus::Running && !waited.abandoned,
            abandoned: waited.abandoned,
            run: without_state(waited.run),
            next,
        })
    }

    async fn resume_run(&self, a: ResumeRunArgs, call: &Call) -> Result<Value, Failure> {
        // A run continues in the mode it started in (apply only while the server allows it).
        let service = self.modes.for_run(&a.run_id)?;
        let budget = a.budget();
        check_budget(&budget)?;
        let budgeted;
        let service = if budget.is_empty() {
            service
        } else {
            budgeted = service.clone().with_budget_cap(budget);
            &budgeted
        };
        let after = service
            .store()
            .last_event_seq(&a.run_id)
            .map_err(Error::from)?;
        let pump = self.pump(call, service, &a.run_id, after);
        let outcome = self
            .unless_cancelled(call, Some((service, &a.run_id)), async {
                Ok(service
                    .resume_once(
                        ResumeRequest {
                            run_id: &a.run_id,
                            answer: a.answer,
                            request_id: a.request_id.as_deref(),
                            opts: RunOptions::default(),
                            root_check: RootCheck::SameRoot,
                            wait: seconds(a.wait_seconds),
                        },
                        &self.jobs,
                    )
                    .await?)
            })
            .await;
        match pump {
            Some(p) if outcome.is_ok() => p.finish().await,
            Some(p) => p.abort(),
            None => {}
        }
        let outcome = outcome?;
        let next = next_step(&outcome.run.run, false);
        object(&ResumeResult {
            run: without_state(outcome.run),
            replayed: outcome.replayed,
            next,
        })
    }

    async fn cancel_run(&self, a: CancelRunArgs) -> Result<Value, Failure> {
        let service = self.modes.dry_run();
        let result = service
            .cancel_run(
                &a.run_id,
                CLIENT,
                a.reason.as_deref(),
                CANCEL_WAIT,
                &self.jobs,
            )
            .await?;
        let result = match result {
            Cancelled::Cancelled | Cancelled::Stopped => CancelOutcome::Cancelled,
            Cancelled::Requested => CancelOutcome::Requested,
            Cancelled::AlreadyCancelled => CancelOutcome::AlreadyCancelled,
        };
        object(&CancelResult {
            run: without_state(service.view(&a.run_id)?),
            run_id: a.run_id,
            result,
        })
    }

    async fn review_diff(&self, a: ReviewDiffArgs, call: &Call) -> Result<Value, Failure> {
        let budget = a.budget();
        let given = [a.range.is_some(), a.diff.is_some(), a.files.is_some()];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(usage(
                "give exactly one of `range` (a git range such as `main...HEAD`), `diff` (a unified diff as text) or `files`",
            ));
        }
        if a.files.as_ref().is_some_and(Vec::is_empty) {
            return Err(usage("`files` is empty: name at least one file to review"));
        }
        let mut input = Map::new();
        put(&mut input, "range", a.range);
        put(&mut input, "diff", a.diff);
        put(&mut input, "files", a.files);
        put(&mut input, "fail_on", a.fail_on);
        let waited = self
            .start_builtin(call, "review", input, a.wait_seconds, budget)
            .await?;
        let verdict = match (a.fail_on, &waited.run.run.output) {
            (Some(threshold), Some(output)) if waited.run.run.status == RunStatus::Completed => {
                let summary: ao_core::types::ReviewSummary = serde_json::from_value(output.clone())
                    .map_err(|e| {
                        Failure(format!("the review's output is not a ReviewSummary: {e}"))
                    })?;
                let v = ao_orchestrator::workflows::review_report::fail_on(&summary, threshold);
                Some(Verdict {
                    threshold: v.threshold,
                    fails: v.fails,
                    reasons: v.reasons,
                })
            }
            _ => None,
        };
        let next = next_step(&waited.run.run, waited.abandoned);
        object(&ReviewResult {
            result: RunResult {
                run: without_state(waited.run),
                mode: WriteMode::DryRun,
                next,
            },
            verdict,
        })
    }

    async fn fix_error(&self, a: FixErrorArgs, call: &Call) -> Result<Value, Failure> {
        let budget = a.budget();
        let mut input = Map::new();
        input.insert("log".into(), json!(a.log));
        put(&mut input, "scope", a.scope);
        put(&mut input, "validate", a.validate);
        put(&mut input, "max_attempts", a.max_attempts);
        let waited = self
            .start_builtin(call, "fix-error", input, a.wait_seconds, budget)
            .await?;
        self.run_result(waited, WriteMode::DryRun)
    }

    fn get_changeset(&self, a: RunIdArgs) -> Result<Value, Failure> {
        let (changeset, applied) = self
            .modes
            .dry_run()
            .changeset(&a.run_id, RootCheck::SameRoot)?;
        let files = changeset
            .files
            .iter()
            .map(|f| ChangedFile {
                path: f.path.clone(),
                action: serde_json::to_value(f.action())
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
            })
            .collect();
        object(&ChangesetResult {
            run_id: a.run_id,
            applied,
            files,
            patch: changeset.to_unified_diff(),
        })
    }

    fn apply_changeset(&self, a: ApplyChangesetArgs) -> Result<Value, Failure> {
        let service = if a.check {
            self.modes.dry_run()
        } else if self.modes.writes_allowed() {
            self.modes.apply()?
        } else {
            return Err(Failure(format!(
                "config: writing a changeset is not allowed: this server's policy is dry-run ({}). Its operator enables writes by setting AO_DRY_RUN=false and AO_ALLOW_WRITE=true in the server's environment, or by starting it with `ao mcp serve --allow-apply`. `check: true` reports what applying would do; a person can apply it with `ao apply {}`.",
                self.modes.ceiling_source(),
                a.run_id
            )));
        };
        let report = service.apply(&a.run_id, a.check, RootCheck::SameRoot)?;
        let refused = report.is_refused();
        let mut v = object(&report)?;
        let files: Vec<FileApplyStatus> = serde_json::from_value(v["files"].take())
            .map_err(|e| Failure(format!("cannot render the apply report: {e}")))?;
        object(&ApplyResult {
            run_id: a.run_id,
            check: v["check"].as_bool().unwrap_or(a.check),
            applied: v["applied"].as_bool().unwrap_or(false),
            refused,
            files,
        })
    }

    fn describe_workflow(&self, a: DescribeWorkflowArgs) -> Result<Value, Failure> {
        let wf = self.modes.dry_run().resolve(&a.workflow)?;
        let mut v = render_json(&wf);
        v["mermaid"] = json!(render_mermaid(&wf));
        Ok(v)
    }

    async fn list_models(&self) -> Result<Value, Failure> {
        self.config
            .check_models()
            .map_err(|e| Failure(format!("config: {e}")))?;
        let models =
            ao_orchestrator::models::list_models(&self.config, &self.state_dir, false).await?;
        object(&ListModelsResult {
            models,
            leader_configured: self.config.leader_config.is_some(),
        })
    }

    async fn interview_worker(
        &self,
        a: InterviewWorkerArgs,
        call: &Call,
    ) -> Result<Value, Failure> {
        let adhoc = a.provider.is_some() || a.model.is_some() || a.base_url.is_some();
        match (&a.worker, adhoc) {
            (Some(_), true) => {
                return Err(usage(
                    "give either `worker` (a configured worker) or `provider` and `model` (with `base_url`), not both",
                ));
            }
            (None, _) if a.provider.is_none() || a.model.is_none() => {
                return Err(usage(
                    "name the worker to interview: `worker` (a configured worker, see ao_list_models), or `provider` and `model` (with `base_url`)",
                ));
            }
            _ => {}
        }
        let mut input = Map::new();
        put(&mut input, "worker", a.worker);
        put(&mut input, "provider", a.provider);
        put(&mut input, "model", a.model);
        put(&mut input, "base_url", a.base_url);
        put(&mut input, "api_key_env", a.api_key_env);
        input.insert("save".into(), json!(a.save));
        put(&mut input, "trials", a.trials);
        let waited = self
            .start_builtin(
                call,
                "worker-interview",
                input,
                a.wait_seconds,
                ao_orchestrator::engine::Budget::default(),
            )
            .await?;
        self.run_result(waited, WriteMode::DryRun)
    }

    fn get_worker_profile(&self, a: WorkerProfileArgs) -> Result<Value, Failure> {
        let profile = profiles::find_profile(&self.state_dir, &a.worker_id)
            .map_err(|e| Failure(format!("store: {e}")))?
            .ok_or_else(|| {
                Failure(format!(
                    "not_found: no saved profile for worker `{}`; ao_list_workers lists the saved ones, and ao_interview_worker with `save: true` makes one",
                    a.worker_id
                ))
            })?;
        object(&WorkerProfileResult { profile })
    }
}

/// Ends a progress pump: after a last read when the wait ended normally, at once otherwise.
async fn finish_pump(pump: Option<ProgressPump>, waited: Option<&Waited>) {
    match (pump, waited) {
        (Some(p), Some(_)) => p.finish().await,
        (Some(p), None) => p.abort(),
        (None, _) => {}
    }
}
