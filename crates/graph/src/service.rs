//! The orchestration calls the CLI and the MCP server share: open a project's run store, find
//! workflows, start, resume, inspect and cancel runs.
//!
//! Both front ends are thin adapters over [`Service`]; nothing here parses arguments or
//! renders output.

use crate::builtins;
use crate::engine::compile::load_str;
use crate::engine::error::EngineError;
use crate::engine::events::{Event, SharedSink};
use crate::engine::graph::NodeKind;
use crate::engine::graph::Workflow;
use crate::engine::host::{Host, WorkflowResolver};
use crate::engine::scheduler::{
    Engine, RunOptions, RunOutcome, is_active, load_path, process_alive,
};
use crate::engine::store::{RunEnd, RunFilter, RunRecord, RunStore, StoreError};
use crate::model_node::ModelRunner;
use crate::tool_node::ToolNodeRunner;
use ao_core::config::{Config, ConfigError};
use ao_core::redact::Redactor;
use ao_core::run::RunStatus;
use ao_models::ModelClient;
use ao_tools::{
    ApplyReport, Changeset, NoopRecorder, Policy, PolicyError, PolicyInput, ToolContext, ToolError,
    ToolOutcome, ToolRegistry, apply_changeset,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A workflow that can be named: from `<root>/workflows/`, or built in.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowInfo {
    pub name: String,
    pub description: Option<String>,
    /// The file, or `builtin:NAME`.
    pub origin: String,
}

/// What `cancel` did.
#[derive(Debug, Clone, PartialEq)]
pub enum CancelResult {
    /// The run was waiting (interrupted, failed or abandoned) and is now cancelled.
    Cancelled,
    /// The run's process was asked to stop and did.
    Stopped,
    /// The run's process was asked to stop and has not yet (it stops at its next safe point).
    Requested,
    /// It was cancelled before; nothing changed.
    AlreadyCancelled,
}

/// One project: its root, its run store, and the host the engine runs with.
#[derive(Clone)]
pub struct Service {
    root: PathBuf,
    state_dir: PathBuf,
    store: Arc<RunStore>,
    host: Host,
    /// The model roles `llm` nodes can use, or why there are none.
    models: Result<Vec<String>, String>,
    tools: Option<Arc<ToolNodeRunner>>,
}

impl Service {
    /// Opens the project at `root` with its state under `state_dir` (created if needed).
    pub fn open(root: &Path, state_dir: &Path) -> Result<Self, StoreError> {
        let store = Arc::new(RunStore::open(state_dir)?);
        let mut service = Service {
            root: root.to_path_buf(),
            state_dir: state_dir.to_path_buf(),
            store,
            host: builtins::host(),
            models: Err("no model configuration was loaded".into()),
            tools: None,
        };
        service.host.resolver = Some(Arc::new(ProjectResolver {
            root: root.to_path_buf(),
        }));
        Ok(service)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    pub fn store(&self) -> &Arc<RunStore> {
        &self.store
    }

    /// Plugs in the tools (under the project's policy) and the model layer from the effective
    /// configuration. A policy that cannot be built (e.g. `AO_DRY_RUN=maybe`) is an error;
    /// a missing model is not (workflows without `llm` nodes still run), it is reported by
    /// [`Service::preflight`] for the workflows that need one.
    pub fn configure(
        &mut self,
        config: &Config,
        env: &BTreeMap<String, String>,
        apply: bool,
        redactor: Redactor,
    ) -> Result<(), PolicyError> {
        // The policy settings were typed and layered when the configuration was loaded; the
        // real environment supplies the children's PATH, HOME, ….
        let policy = Policy::new(PolicyInput {
            root: &self.root,
            state_dir: Some(&self.state_dir),
            config: &config.policy,
            policy_env: &config.policy_env,
            env,
            apply_flag: apply,
        })?;
        self.host.redactor = Some(redactor.clone());
        let tools = Arc::new(ToolNodeRunner::new(
            Arc::new(policy),
            redactor.clone(),
            Some(self.store.clone()),
        ));
        self.host.tools = Some(tools.clone());
        self.tools = Some(tools.clone());
        match ModelClient::new(config) {
            Ok(client) => {
                self.models = Ok(client.roles());
                let runner =
                    ModelRunner::new(client, Some(self.store.clone()), redactor).with_tools(tools);
                self.host.llm = Some(Arc::new(runner));
            }
            Err(e) => self.models = Err(e.to_string()),
        }
        Ok(())
    }

    /// The tool runner (and through it the policy), once configured.
    pub fn tools(&self) -> Option<&Arc<ToolNodeRunner>> {
        self.tools.as_ref()
    }

    /// A run keeps the mode it wrote in: switching between dry-run and `--apply` half-way
    /// would leave some proposed edits unwritten and the rest written, with no whole changeset
    /// to review or apply.
    fn check_mode_unchanged(&self, run_id: &str) -> Result<(), EngineError> {
        let Some(tools) = &self.tools else {
            return Ok(());
        };
        let (changeset, applied) = self.changeset(run_id)?;
        if changeset.is_empty() {
            return Ok(());
        }
        let applying = tools.policy().mode() == ao_tools::Mode::Apply;
        if applied == applying {
            return Ok(());
        }
        let reason = if applied {
            "wrote its changes with --apply; resume it with --apply too"
        } else {
            "proposed its changes in dry-run; resume it without --apply, then review with `ao runs show --patch` and write them with `ao apply`"
        };
        Err(EngineError::NotResumable {
            run_id: run_id.to_string(),
            reason: reason.to_string(),
        })
    }

    /// What a run's driver held in memory is let go once it stops (see [`ToolNodeRunner::forget`]).
    fn release(&self, run_id: &str) {
        if let Some(tools) = &self.tools {
            tools.forget(run_id);
        }
    }

    fn tool_runner(&self) -> Result<&Arc<ToolNodeRunner>, EngineError> {
        self.tools
            .as_ref()
            .ok_or_else(|| EngineError::NotConfigured("no tool policy is configured".into()))
    }

    /// Runs one tool outside any run (`ao tools run`), under the same policy. In dry-run the
    /// writes land in a throwaway overlay; the changeset they would make is returned.
    pub async fn run_tool(
        &self,
        name: &str,
        args: Value,
    ) -> Result<Result<(ToolOutcome, Changeset), ToolError>, EngineError> {
        let tools = self.tool_runner()?;
        let ctx = ToolContext::new(
            tools.policy().clone(),
            Arc::new(NoopRecorder),
            tools.redactor().clone(),
        );
        Ok(ToolRegistry::standard()
            .call(name, args, &ctx)
            .await
            .map(|outcome| (outcome, ctx.changeset())))
    }

    /// The changeset a run proposes (empty when it wrote nothing), and whether the run
    /// already wrote it to disk itself (it ran with `--apply`).
    pub fn changeset(&self, run_id: &str) -> Result<(Changeset, bool), EngineError> {
        self.record(run_id)?;
        let root = self.store.root_run_id(run_id)?;
        match self.store.changeset(&root)? {
            Some(v) => {
                let applied = v.get("applied").and_then(Value::as_bool).unwrap_or(false);
                let changeset = serde_json::from_value(v).map_err(|e| EngineError::Changeset {
                    run_id: run_id.to_string(),
                    message: format!("the stored changeset is unreadable: {e}"),
                })?;
                Ok((changeset, applied))
            }
            None => Ok((Changeset::default(), false)),
        }
    }

    /// Writes a finished run's changeset to the working tree: all files or none. Refused (in
    /// the report) when a file changed since the run read it or a path is not writable;
    /// `check` only reports.
    pub fn apply(&self, run_id: &str, check: bool) -> Result<ApplyReport, EngineError> {
        let record = self.record(run_id)?;
        if matches!(record.status, RunStatus::Running | RunStatus::Interrupted) {
            return Err(EngineError::Changeset {
                run_id: run_id.to_string(),
                message: format!(
                    "is {}; apply its changeset once it has finished (it may still change)",
                    record.status
                ),
            });
        }
        let (changeset, applied) = self.changeset(run_id)?;
        if applied {
            return Err(EngineError::Changeset {
                run_id: run_id.to_string(),
                message: "ran with --apply: its changes were written as it ran; there is nothing left to apply".into(),
            });
        }
        let tools = self.tool_runner()?;
        apply_changeset(&changeset, tools.policy(), check).map_err(|e| EngineError::Changeset {
            run_id: run_id.to_string(),
            message: e.to_string(),
        })
    }

    /// Checks before a run that what its `llm` nodes need is configured, so a missing model
    /// is a configuration error (nothing runs), not a failed run.
    pub fn preflight(&self, wf: &Workflow) -> Result<(), EngineError> {
        for node in wf.nodes.values() {
            let NodeKind::Llm(llm) = &node.kind else {
                continue;
            };
            let roles = self.models.as_ref().map_err(|why| {
                EngineError::NotConfigured(format!("node `{}` needs a model: {why}", node.name))
            })?;
            let role = if llm.role == "worker" {
                ao_core::config::DEFAULT_WORKER
            } else {
                llm.role.as_str()
            };
            if !roles.iter().any(|r| r == role) {
                let why = if role == "leader" {
                    ConfigError::MissingLeader.to_string()
                } else {
                    format!(
                        "no worker `{role}` is configured (configured roles: {}); add it to ao.toml as [workers.{role}] or set WORKER_MODEL_*",
                        if roles.is_empty() {
                            "none".into()
                        } else {
                            roles.join(", ")
                        }
                    )
                };
                return Err(EngineError::NotConfigured(format!(
                    "node `{}` (role {}) needs a model: {why}",
                    node.name, llm.role
                )));
            }
        }
        Ok(())
    }

    /// Lets the embedding program add node runners (models, tools) or builtins.
    pub fn host_mut(&mut self) -> &mut Host {
        &mut self.host
    }

    pub fn engine(&self, sink: Option<SharedSink>) -> Engine {
        let engine = Engine::durable(self.host.clone(), self.store.clone());
        match sink {
            Some(s) => engine.with_sink(s),
            None => engine,
        }
    }

    /// Finds a workflow: a path (file, or folder with `workflow.yaml`), else
    /// `<root>/workflows/NAME.yaml`, else a built-in name or alias.
    pub fn resolve(&self, name: &str) -> Result<Arc<Workflow>, EngineError> {
        resolve_in(&self.root, name, None)
    }

    /// Workflows that can be run by name.
    pub fn list_workflows(&self) -> Vec<WorkflowInfo> {
        let mut out = Vec::new();
        let dir = self.root.join("workflows");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.sort();
        for path in files {
            let is_yaml = matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            );
            if !is_yaml {
                continue;
            }
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            let description = load_path(&path).ok().and_then(|w| w.description.clone());
            out.push(WorkflowInfo {
                name,
                description,
                origin: path.display().to_string(),
            });
        }
        for (name, source) in builtins::WORKFLOWS {
            if out.iter().any(|w| w.name == *name) {
                continue;
            }
            let description = load_str(source, &format!("builtin:{name}"))
                .ok()
                .and_then(|w| w.description.clone());
            out.push(WorkflowInfo {
                name: name.to_string(),
                description,
                origin: format!("builtin:{name}"),
            });
        }
        out
    }

    pub async fn start(
        &self,
        wf: Arc<Workflow>,
        input: Value,
        opts: RunOptions,
        sink: Option<SharedSink>,
    ) -> Result<RunOutcome, EngineError> {
        let outcome = self.engine(sink).start(wf, input, opts).await?;
        self.release(&outcome.run_id);
        Ok(outcome)
    }

    pub async fn resume(
        &self,
        run_id: &str,
        answer: Option<Value>,
        opts: RunOptions,
        sink: Option<SharedSink>,
    ) -> Result<RunOutcome, EngineError> {
        self.check_mode_unchanged(run_id)?;
        let outcome = self.engine(sink).resume(run_id, answer, opts).await?;
        self.release(&outcome.run_id);
        Ok(outcome)
    }

    pub fn record(&self, run_id: &str) -> Result<RunRecord, EngineError> {
        self.store
            .run(run_id)?
            .ok_or_else(|| EngineError::RunNotFound(run_id.to_string()))
    }

    /// A stored run with its state rebuilt.
    pub fn outcome(&self, run_id: &str) -> Result<(RunRecord, RunOutcome), EngineError> {
        let record = self.record(run_id)?;
        let outcome = self.engine(None).outcome_of(&record)?;
        Ok((record, outcome))
    }

    pub fn list(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, EngineError> {
        Ok(self.store.list_runs(filter)?)
    }

    pub fn events(&self, run_id: &str, after: Option<u64>) -> Result<Vec<Event>, EngineError> {
        self.record(run_id)?;
        Ok(self.store.events(run_id, after)?)
    }

    /// Cancels a run: a waiting one at once; a running one by asking its process, waiting up
    /// to `wait` for it to stop. Cancelling twice is not an error.
    pub async fn cancel(
        &self,
        run_id: &str,
        by: &str,
        wait: Duration,
    ) -> Result<CancelResult, EngineError> {
        let record = self.record(run_id)?;
        let not = |reason: &str| EngineError::NotResumable {
            run_id: run_id.to_string(),
            reason: reason.to_string(),
        };
        match record.status {
            RunStatus::Cancelled => return Ok(CancelResult::AlreadyCancelled),
            RunStatus::Completed => {
                return Err(not("is already completed; there is nothing to cancel"));
            }
            RunStatus::Running => {
                // Driven by a live process (this one included): ask it to stop.
                let alive = record.owner_pid.is_some_and(|pid| {
                    if pid == std::process::id() {
                        is_active(run_id)
                    } else {
                        process_alive(pid)
                    }
                });
                if alive {
                    self.store.request_cancel(run_id, by)?;
                    let deadline = tokio::time::Instant::now() + wait;
                    while tokio::time::Instant::now() < deadline {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        if self.record(run_id)?.status != RunStatus::Running {
                            return Ok(CancelResult::Stopped);
                        }
                    }
                    return Ok(CancelResult::Requested);
                }
            }
            RunStatus::Interrupted | RunStatus::Failed => {}
        }
        self.store.request_cancel(run_id, by)?;
        let end = RunEnd {
            error: Some(crate::engine::error::RunError {
                node: None,
                kind: "cancelled".into(),
                message: format!("cancelled by {by}"),
            }),
            ..Default::default()
        };
        self.store
            .set_status(run_id, RunStatus::Cancelled, &end, &[])?;
        // Its waiting sub-runs go with it (an interrupted parent waits on an interrupted child).
        for child in self.store.child_runs(run_id)? {
            if !child.status.is_terminal() {
                Box::pin(self.cancel(&child.id, by, wait)).await?;
            }
        }
        Ok(CancelResult::Cancelled)
    }
}

/// Resolves workflow names for one project root.
struct ProjectResolver {
    root: PathBuf,
}

impl WorkflowResolver for ProjectResolver {
    fn resolve(&self, name: &str, relative_to: Option<&Path>) -> Result<Arc<Workflow>, String> {
        resolve_in(&self.root, name, relative_to).map_err(|e| e.to_string())
    }
}

fn resolve_in(
    root: &Path,
    name: &str,
    relative_to: Option<&Path>,
) -> Result<Arc<Workflow>, EngineError> {
    let looks_like_path = name.contains('/')
        || name.ends_with(".yaml")
        || name.ends_with(".yml")
        || Path::new(name).is_dir();
    let mut candidates: Vec<PathBuf> = Vec::new();
    if looks_like_path {
        if let Some(dir) = relative_to {
            candidates.push(dir.join(name));
        }
        candidates.push(root.join(name));
        candidates.push(PathBuf::from(name));
    } else {
        candidates.push(root.join("workflows").join(format!("{name}.yaml")));
        candidates.push(root.join("workflows").join(format!("{name}.yml")));
        candidates.push(root.join("workflows").join(name).join("workflow.yaml"));
    }
    for path in &candidates {
        if path.is_file() || path.join("workflow.yaml").is_file() {
            return Ok(Arc::new(load_path(path)?));
        }
    }
    if !looks_like_path && let Some(source) = builtins::workflow_source(name) {
        let canonical = builtins::canonical_name(name).unwrap_or(name);
        return Ok(Arc::new(load_str(source, &format!("builtin:{canonical}"))?));
    }
    if let Some(dir) = candidates.iter().find(|p| p.is_dir()) {
        return Err(EngineError::WorkflowNotFound {
            name: name.to_string(),
            detail: format!("{} is a folder without a workflow.yaml", dir.display()),
        });
    }
    let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    Err(EngineError::WorkflowNotFound {
        name: name.to_string(),
        detail: format!(
            "looked for {}{}",
            tried.join(", "),
            if looks_like_path {
                String::new()
            } else {
                " and the built-in workflows".into()
            }
        ),
    })
}
