//! The orchestration calls the CLI and the MCP server share: open a project's run store, find
//! workflows, start, resume, inspect and cancel runs, run one tool, show and apply changesets.
//!
//! Both front ends are thin adapters over [`Service`]; nothing here parses arguments or
//! renders output, and no message names a front end's flag.

use crate::builtins;
use crate::cassette::{self, Cassette};
use crate::error::Error;
use crate::model_node::ModelRunner;
use crate::records;
use crate::replay::Replay;
use crate::tool_node::ToolNodeRunner;
use crate::view::{RunDetail, RunSummary, RunView};
use ao_core::config::{Config, ConfigError};
use ao_core::redact::Redactor;
use ao_core::run::RunStatus;
use ao_graph::{
    EngineError, Event, Host, RunEnd, RunError, RunFilter, RunOptions, RunOutcome, RunRecord,
    RunStore, SharedSink, Workflow, WorkflowResolver, is_active, load_path, load_str,
    process_alive,
};
use ao_models::ModelClient;
use ao_tools::{
    ApplyReport, Changeset, NoopRecorder, Policy, PolicyInput, ToolContext, ToolOutcome,
    ToolRegistry, apply_changeset,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A workflow that can be named: from `<root>/workflows/`, or built in.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct WorkflowInfo {
    pub name: String,
    pub description: Option<String>,
    /// The file, or `builtin:NAME`.
    pub origin: String,
    /// Other names a built-in workflow answers to (`leader-worker-basic`).
    pub aliases: Vec<String>,
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

/// Whether a call may act on a run made in another project (the run records its root).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RootCheck {
    /// Refuse a run whose recorded root is not this project's (the default).
    #[default]
    SameRoot,
    /// The caller said explicitly that the run's changes belong here.
    AnyRoot,
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
    /// The runner of `llm` nodes, once models are configured.
    llm: Option<Arc<ModelRunner>>,
    /// Budget limits the caller sets for the runs it starts or resumes, over the workflow's.
    budget: ao_graph::Budget,
    /// The caller may only lower the project's limits (an MCP client), not raise them.
    budget_lowers_only: bool,
    /// The project's default budget limits (ao.toml `[budget]`), under the workflow's.
    default_budget: ao_graph::Budget,
    /// The configured roles' prices (for checking a cost budget can be kept).
    unpriced_roles: Vec<String>,
    /// The cassette that answers the model calls of the runs this service starts or resumes.
    replay: Option<Arc<Replay>>,
    /// Where the cassette of the runs this service starts or resumes is written once they stop.
    record_to: Option<PathBuf>,
}

impl Service {
    /// Opens the project at `root` with its state under `state_dir` (created if needed).
    pub fn open(root: &Path, state_dir: &Path) -> Result<Self, Error> {
        let store = Arc::new(RunStore::open(state_dir)?);
        // Runs record their project by its real path, so `--root ./x` and `--root /abs/x`
        // name the same project.
        let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        let mut service = Service {
            root: root.clone(),
            state_dir: state_dir.to_path_buf(),
            host: crate::workflows::run_nodes::register(builtins::host(), &store),
            store,
            models: Err("no model configuration was loaded".into()),
            tools: None,
            llm: None,
            budget: ao_graph::Budget::default(),
            budget_lowers_only: false,
            default_budget: ao_graph::Budget::default(),
            unpriced_roles: Vec::new(),
            replay: None,
            record_to: None,
        };
        service.host.resolver = Some(Arc::new(ProjectResolver { root }));
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
    ) -> Result<(), Error> {
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
        crate::interview::nodes::register(
            &mut self.host,
            crate::interview::nodes::NodeContext::new(
                config,
                env,
                &self.state_dir,
                Some(self.store.clone()),
                redactor.clone(),
            ),
        );
        let tools = Arc::new(ToolNodeRunner::new(
            Arc::new(policy),
            redactor.clone(),
            Some(self.store.clone()),
        ));
        self.host.tools = Some(tools.clone());
        self.tools = Some(tools.clone());
        self.host = crate::workflows::validate::register(
            std::mem::take(&mut self.host),
            &self.store,
            &tools,
        );
        self.default_budget = ao_graph::Budget {
            max_tokens: config.budget.max_tokens.map(|n| n.get()),
            max_cost_usd: config.budget.max_cost_usd,
            max_llm_calls: config.budget.max_llm_calls.map(|n| n.get()),
        };
        self.unpriced_roles = config
            .model_roles()
            .filter(|m| m.price.is_none())
            .map(|m| format!("{} (model {})", m.role, m.model.value))
            .collect();
        match ModelClient::new(config) {
            Ok(client) => {
                self.models = Ok(client.roles());
                let runner = ModelRunner::new(
                    client,
                    Some(self.store.clone()),
                    redactor,
                    Some(&self.state_dir),
                )
                .with_tools(tools);
                let runner = Arc::new(runner);
                self.host.llm = Some(runner.clone());
                self.llm = Some(runner);
            }
            Err(e) => self.models = Err(e.to_string()),
        }
        Ok(())
    }

    /// The role a workflow gives worker tasks when it does not route them one by one: the
    /// default worker (`WORKER_MODEL_*`) if configured, else the first named worker, else the
    /// leader (a project with only a leader still runs every workflow).
    pub fn worker_role(&self) -> String {
        let roles = self.models.as_ref().map(Vec::as_slice).unwrap_or_default();
        if roles.iter().any(|r| r == ao_core::config::DEFAULT_WORKER) {
            return "worker".into();
        }
        roles
            .iter()
            .find(|r| *r != ao_core::config::LEADER)
            .cloned()
            .unwrap_or_else(|| ao_core::config::LEADER.into())
    }

    /// Streams the replies of `llm` nodes to `sink` (a progress display) from now on.
    pub fn stream_tokens(&self, sink: Arc<dyn crate::model_node::TokenSink>) {
        if let Some(llm) = &self.llm {
            llm.stream_to(sink);
        }
    }

    /// The warnings a run's events carry (a reply cut off, a fallback used, …), oldest first.
    pub fn warnings(&self, run_id: &str) -> Result<Vec<(Option<String>, String)>, Error> {
        Ok(self
            .events(run_id, None)?
            .into_iter()
            .filter_map(|e| match e.kind {
                ao_graph::EventKind::Warning { node, message } => Some((node, message)),
                _ => None,
            })
            .collect())
    }

    /// The tool runner (and through it the policy), once configured.
    pub fn tools(&self) -> Option<&Arc<ToolNodeRunner>> {
        self.tools.as_ref()
    }

    fn tool_runner(&self) -> Result<&Arc<ToolNodeRunner>, Error> {
        self.tools
            .as_ref()
            .ok_or_else(|| Error::NotConfigured("no tool policy is configured".into()))
    }

    /// Sets budget limits (`--max-tokens`, `--max-cost`, `--max-llm-calls`) for the runs this
    /// service starts or resumes; they override the workflow's `limits`.
    pub fn with_budget(mut self, budget: ao_graph::Budget) -> Self {
        self.budget = budget;
        self.budget_lowers_only = false;
        self
    }

    /// Like [`Service::with_budget`] for a caller the project does not trust with its money (an
    /// MCP client): each limit can only lower what the workflow's `limits` and ao.toml's
    /// `[budget]` allow, or set one they leave open; on resume it replaces the run's stored limit
    /// but never goes above the project's.
    pub fn with_budget_cap(mut self, budget: ao_graph::Budget) -> Self {
        self.budget = budget;
        self.budget_lowers_only = true;
        self
    }

    /// Answers the model calls of the runs this service starts or resumes (their sub-runs
    /// included) from `replay` instead of the models.
    pub fn with_replay(mut self, replay: Arc<Replay>) -> Self {
        self.replay = Some(replay);
        self
    }

    /// Writes the cassette of each run this service starts or resumes to `path` once the run
    /// stops (completed, failed or waiting): every model call it made so far.
    pub fn with_record(mut self, path: PathBuf) -> Self {
        self.record_to = Some(path);
        self
    }

    /// The cassette of a stored run (its sub-runs included): every completed model call, as
    /// stored, redacted again on the way out.
    pub fn cassette(&self, run_id: &str) -> Result<Cassette, Error> {
        self.record(run_id)?;
        cassette::from_store(&self.store, run_id, self.host.redactor.as_ref())
    }

    /// Writes the cassette of a stored run to `path`; returns how many calls it holds.
    pub fn export_cassette(&self, run_id: &str, path: &Path) -> Result<usize, Error> {
        let cassette = self.cassette(run_id)?;
        cassette::write(path, &cassette).map_err(|message| Error::CassetteNotWritten {
            run_id: run_id.to_string(),
            path: path.display().to_string(),
            message,
        })?;
        Ok(cassette.calls.len())
    }

    /// While a top-level run is driven: its calls answered from the replay cassette, if any.
    fn replaying(&self, top_run: &str) -> Option<crate::model_node::ReplayGuard> {
        let (replay, llm) = (self.replay.as_ref()?, self.llm.as_ref()?);
        Some(llm.replay_run(top_run, replay.clone()))
    }

    /// Once a run stops: its cassette written, if one was asked for.
    fn recorded(&self, view: RunView) -> Result<RunView, Error> {
        if let Some(path) = &self.record_to {
            let top = self.store.root_run_id(&view.run_id)?;
            self.export_cassette(&top, path)?;
        }
        Ok(view)
    }

    /// What a new run records about where it belongs (the project root, the mode) and what it
    /// may spend: each budget limit from the caller if it sets one, else from the workflow's
    /// `limits`, else from the project's defaults (ao.toml `[budget]`).
    fn run_meta(&self, wf: &Workflow) -> Value {
        let mut meta = json!({
            "root": self.root.display().to_string(),
            "mode": self.tools.as_ref().map(|t| t.policy().mode()),
        });
        let project = self.default_budget.overridden_by(wf.budget());
        let budget = if self.budget_lowers_only {
            project.tightened_by(self.budget)
        } else {
            project.overridden_by(self.budget)
        };
        if !budget.is_empty() {
            meta[crate::budget::META_KEY] = json!(budget);
        }
        meta
    }

    /// A cost budget can only be kept when every model the run may use has a price.
    fn check_cost_budget(&self, budget: &ao_graph::Budget) -> Result<(), Error> {
        if budget.max_cost_usd.is_some() && !self.unpriced_roles.is_empty() {
            return Err(Error::NotConfigured(format!(
                "a cost budget (max_cost_usd) needs a price for every model the run may use; without one: {}. Set `price = {{ input = …, output = … }}` (dollars per million tokens) for them in ao.toml",
                self.unpriced_roles.join(", ")
            )));
        }
        Ok(())
    }

    /// Refuses to act on a run made in another project, unless the caller says so: with a
    /// shared state dir, one project's changeset must not be written into another.
    fn check_root(&self, run_id: &str, check: RootCheck) -> Result<(), Error> {
        if check == RootCheck::AnyRoot {
            return Ok(());
        }
        let top = self.store.root_run_id(run_id)?;
        let record = self.record(&top)?;
        // Runs stored before runs recorded their root carry no meta: nothing to compare.
        let Some(recorded) = record
            .meta
            .as_ref()
            .and_then(|m| m.get("root"))
            .and_then(Value::as_str)
        else {
            return Ok(());
        };
        if Path::new(recorded) == self.root {
            return Ok(());
        }
        Err(Error::OtherRoot {
            run_id: run_id.to_string(),
            recorded: recorded.to_string(),
            here: self.root.display().to_string(),
        })
    }

    /// A run keeps the mode it wrote in: switching between dry-run and apply half-way would
    /// leave some proposed edits unwritten and the rest written, with no whole changeset to
    /// review or apply.
    fn check_mode_unchanged(&self, run_id: &str) -> Result<(), Error> {
        let Some(tools) = &self.tools else {
            return Ok(());
        };
        let (changeset, applied) = self.changeset_unchecked(run_id)?;
        if changeset.is_empty() {
            return Ok(());
        }
        let applying = tools.policy().mode() == ao_tools::Mode::Apply;
        if applied == applying {
            return Ok(());
        }
        Err(Error::ModeChanged {
            run_id: run_id.to_string(),
            applied,
        })
    }

    /// What a run's driver held in memory is let go once it stops (see [`ToolNodeRunner::forget`]).
    fn release(&self, run_id: &str) {
        if let Some(tools) = &self.tools {
            tools.forget(run_id);
        }
    }

    /// Runs one tool outside any run (`ao tools run`), under the same policy. In dry-run the
    /// writes land in a throwaway overlay; the changeset they would make is returned.
    pub async fn run_tool(
        &self,
        name: &str,
        args: Value,
    ) -> Result<(ToolOutcome, Changeset), Error> {
        let tools = self.tool_runner()?;
        let ctx = ToolContext::new(
            tools.policy().clone(),
            Arc::new(NoopRecorder),
            tools.redactor().clone(),
        );
        let mut outcome = ToolRegistry::standard().call(name, args, &ctx).await?;
        let changeset = ctx.changeset();
        if outcome.decision == ao_tools::Decision::Simulated && !changeset.is_empty() {
            // A single tool call has no run: nothing can `ao apply` it later.
            outcome.reason = Some(
                "dry-run: not written (a single tool call keeps no changeset to apply later); \
                 call it again in apply mode (`--apply`) to write it"
                    .into(),
            );
        }
        Ok((outcome, changeset))
    }

    fn changeset_unchecked(&self, run_id: &str) -> Result<(Changeset, bool), Error> {
        self.record(run_id)?;
        let root = self.store.root_run_id(run_id)?;
        match records::changeset(&self.store, &root)? {
            Some(v) => {
                let applied = v.get("applied").and_then(Value::as_bool).unwrap_or(false);
                let changeset = serde_json::from_value(v).map_err(|e| Error::Changeset {
                    run_id: run_id.to_string(),
                    message: format!("the stored changeset is unreadable: {e}"),
                })?;
                Ok((changeset, applied))
            }
            None => Ok((Changeset::default(), false)),
        }
    }

    /// The changeset a run proposes (empty when it wrote nothing), and whether the run
    /// already wrote it to disk itself (it ran in apply mode).
    pub fn changeset(&self, run_id: &str, check: RootCheck) -> Result<(Changeset, bool), Error> {
        let found = self.changeset_unchecked(run_id)?;
        self.check_root(run_id, check)?;
        Ok(found)
    }

    /// Writes a finished run's changeset to the working tree: all files or none. Refused (in
    /// the report) when a file changed since the run read it or a path is not writable;
    /// `check_only` only reports.
    pub fn apply(
        &self,
        run_id: &str,
        check_only: bool,
        root_check: RootCheck,
    ) -> Result<ApplyReport, Error> {
        let record = self.record(run_id)?;
        if matches!(record.status, RunStatus::Running | RunStatus::Interrupted) {
            return Err(Error::Changeset {
                run_id: run_id.to_string(),
                message: format!(
                    "is {}; apply its changeset once it has finished (it may still change)",
                    record.status
                ),
            });
        }
        let (changeset, applied) = self.changeset(run_id, root_check)?;
        if applied {
            return Err(Error::Changeset {
                run_id: run_id.to_string(),
                message: "ran in apply mode: its changes were written as it ran; there is nothing left to apply".into(),
            });
        }
        let tools = self.tool_runner()?;
        let report = apply_changeset(&changeset, tools.policy(), check_only).map_err(|e| {
            Error::Changeset {
                run_id: run_id.to_string(),
                message: e.to_string(),
            }
        })?;
        if report.is_already_applied() {
            let n = report.files.iter().filter(|f| f.already_applied).count();
            return Err(Error::Changeset {
                run_id: run_id.to_string(),
                message: format!(
                    "is already applied: the working tree already holds its change to {n} file{}; nothing to do",
                    if n == 1 { "" } else { "s" }
                ),
            });
        }
        Ok(report)
    }

    /// Checks before a run that what its `llm` nodes need is configured, so a missing model
    /// is a configuration error (nothing runs), not a failed run.
    pub fn preflight(&self, wf: &Workflow) -> Result<(), Error> {
        for (node, role) in wf.llm_nodes() {
            let roles = self.models.as_ref().map_err(|why| {
                Error::NotConfigured(format!("node `{node}` needs a model: {why}"))
            })?;
            // A role chosen at run time (a template) is checked when the node runs; what can
            // be checked now is that there is a model at all.
            let Some(role) = role else {
                if roles.is_empty() {
                    return Err(Error::NotConfigured(format!(
                        "node `{node}` needs a model: {}",
                        ConfigError::MissingLeader
                    )));
                }
                continue;
            };
            let wanted = if role == "worker" {
                ao_core::config::DEFAULT_WORKER
            } else {
                role
            };
            if !roles.iter().any(|r| r == wanted) {
                let why = if wanted == "leader" {
                    ConfigError::MissingLeader.to_string()
                } else {
                    format!(
                        "no worker `{wanted}` is configured (configured roles: {}); add it to ao.toml as [workers.{wanted}] or set WORKER_MODEL_*",
                        if roles.is_empty() {
                            "none".into()
                        } else {
                            roles.join(", ")
                        }
                    )
                };
                return Err(Error::NotConfigured(format!(
                    "node `{node}` (role {role}) needs a model: {why}"
                )));
            }
        }
        Ok(())
    }

    /// Lets the embedding program add node runners (models, tools) or builtins.
    pub fn host_mut(&mut self) -> &mut Host {
        &mut self.host
    }

    pub fn engine(&self, sink: Option<SharedSink>) -> ao_graph::Engine {
        let engine = ao_graph::Engine::durable(self.host.clone(), self.store.clone());
        match sink {
            Some(s) => engine.with_sink(s),
            None => engine,
        }
    }

    /// Finds a workflow: a path (file, or folder with `workflow.yaml`), else
    /// `<root>/workflows/NAME.yaml`, else a built-in name or alias.
    pub fn resolve(&self, name: &str) -> Result<Arc<Workflow>, Error> {
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
            let description = load_path(&path)
                .ok()
                .and_then(|w| w.description().map(str::to_string));
            out.push(WorkflowInfo {
                name,
                description,
                origin: path.display().to_string(),
                aliases: Vec::new(),
            });
        }
        for (name, source) in builtins::WORKFLOWS {
            if out.iter().any(|w| w.name == *name) {
                continue;
            }
            let description = load_str(source, &format!("builtin:{name}"))
                .ok()
                .and_then(|w| w.description().map(str::to_string));
            out.push(WorkflowInfo {
                name: name.to_string(),
                description,
                origin: format!("builtin:{name}"),
                aliases: builtins::ALIASES
                    .iter()
                    .filter(|(_, n)| n == name)
                    .map(|(a, _)| a.to_string())
                    .collect(),
            });
        }
        out
    }

    pub async fn start(
        &self,
        wf: Arc<Workflow>,
        mut input: Value,
        mut opts: RunOptions,
        sink: Option<SharedSink>,
    ) -> Result<RunView, Error> {
        if wf.origin().starts_with("builtin:") {
            for (name, field) in builtins::WORKER_ROLE_INPUTS {
                if wf.name() == *name
                    && let Some(fields) = input.as_object_mut()
                    && !fields.contains_key(*field)
                {
                    fields.insert(field.to_string(), Value::String(self.worker_role()));
                }
            }
        }
        let meta = self.run_meta(&wf);
        // Read as the model runner reads a stored run's budget (`budget::stored_budget`).
        let budget: ao_graph::Budget = meta
            .get(crate::budget::META_KEY)
            .and_then(|b| serde_json::from_value(b.clone()).ok())
            .unwrap_or_default();
        self.check_cost_budget(&budget)?;
        opts.meta = Some(meta);
        // The run's id is known before it starts, so its calls can be replayed.
        let run_id = opts
            .run_id
            .get_or_insert_with(|| ao_core::ids::RunId::new().to_string())
            .clone();
        let replaying = self.replaying(&run_id);
        let fresh = self.llm.as_ref().map(|llm| llm.fresh_run(&run_id, budget));
        let outcome = self.engine(sink).start(wf, input, opts).await;
        drop(fresh);
        drop(replaying);
        self.recorded(self.finish(outcome)?)
    }

    pub async fn resume(
        &self,
        run_id: &str,
        answer: Option<Value>,
        opts: RunOptions,
        sink: Option<SharedSink>,
        root_check: RootCheck,
    ) -> Result<RunView, Error> {
        self.record(run_id)?;
        self.check_root(run_id, root_check)?;
        self.check_mode_unchanged(run_id)?;
        self.raise_budget(run_id)?;
        let top = self.store.root_run_id(run_id)?;
        let replaying = self.replaying(&top);
        let outcome = self.engine(sink).resume(run_id, answer, opts).await;
        drop(replaying);
        self.recorded(self.finish(outcome)?)
    }

    /// On resume: the caller's budget limits replace the run's stored ones (how a run stopped
    /// by its budget continues).
    fn raise_budget(&self, run_id: &str) -> Result<(), Error> {
        if self.budget.is_empty() {
            return Ok(());
        }
        let top = self.store.root_run_id(run_id)?;
        let record = self.record(&top)?;
        let mut meta = record.meta.unwrap_or_else(|| json!({}));
        let stored: ao_graph::Budget = meta
            .get(crate::budget::META_KEY)
            .and_then(|b| serde_json::from_value(b.clone()).ok())
            .unwrap_or_default();
        let mut budget = stored.overridden_by(self.budget);
        if self.budget_lowers_only {
            let ceiling = self
                .default_budget
                .overridden_by(self.current_workflow_of(&top)?.budget());
            budget = budget.tightened_by(ceiling);
        }
        self.check_cost_budget(&budget)?;
        meta[crate::budget::META_KEY] = json!(budget);
        self.store.set_meta(&top, &meta)?;
        Ok(())
    }

    /// The current definition of the workflow a run was started with (its file as it is now,
    /// or the built-in of that name): what `resume` continues with when asked to reload.
    pub fn current_workflow_of(&self, run_id: &str) -> Result<Arc<Workflow>, Error> {
        let top = self.store.root_run_id(run_id)?;
        let record = self.record(&top)?;
        match record.origin.strip_prefix("builtin:") {
            Some(name) => {
                let source =
                    builtins::workflow_source(name).ok_or_else(|| Error::WorkflowNotFound {
                        name: name.to_string(),
                        detail: "this version of ao has no such built-in workflow".into(),
                    })?;
                Ok(Arc::new(load_str(source, &record.origin)?))
            }
            None => Ok(Arc::new(load_path(Path::new(&record.origin))?)),
        }
    }

    fn finish(&self, outcome: Result<RunOutcome, EngineError>) -> Result<RunView, Error> {
        let outcome = outcome?;
        self.release(&outcome.run_id);
        let usage = self.usage(&outcome.run_id)?;
        Ok(RunView::new(&outcome, usage.as_ref()))
    }

    pub fn record(&self, run_id: &str) -> Result<RunRecord, Error> {
        self.store
            .run(run_id)?
            .ok_or_else(|| EngineError::RunNotFound(run_id.to_string()).into())
    }

    /// A run's model usage (its sub-runs included), if it made model calls.
    pub fn usage(&self, run_id: &str) -> Result<Option<records::RunUsage>, Error> {
        Ok(records::usage(&self.store, run_id)?)
    }

    /// A stored run with its state rebuilt.
    pub fn view(&self, run_id: &str) -> Result<RunDetail, Error> {
        let record = self.record(run_id)?;
        let outcome = self.engine(None).outcome_of(&record)?;
        let usage = self.usage(run_id)?;
        Ok(RunDetail {
            run: RunView::new(&outcome, usage.as_ref()),
            parent_id: record.parent_id.clone(),
            created_ms: record.created_ms,
            updated_ms: record.updated_ms,
        })
    }

    pub fn list(&self, filter: &RunFilter) -> Result<Vec<RunSummary>, Error> {
        Ok(self
            .store
            .list_runs(filter)?
            .iter()
            .map(RunSummary::from)
            .collect())
    }

    pub fn events(&self, run_id: &str, after: Option<u64>) -> Result<Vec<Event>, Error> {
        self.record(run_id)?;
        Ok(self.store.events(run_id, after)?)
    }

    /// Follows a run's events: `next` gives the events stored since the last call, waiting
    /// for new ones while the run is running; `None` once the run has stopped and every
    /// event has been given.
    pub fn follow(&self, run_id: &str) -> Result<EventFollower, Error> {
        self.record(run_id)?;
        Ok(EventFollower {
            service: self.clone(),
            run_id: run_id.to_string(),
            last: None,
            done: false,
        })
    }

    /// The model exchanges (HTTP attempts, redacted) of a run, oldest first.
    pub fn exchanges(&self, run_id: &str) -> Result<Vec<Value>, Error> {
        self.record(run_id)?;
        Ok(records::exchanges(&self.store, run_id)?)
    }

    /// The tool calls (with their policy decisions) of a run, oldest first.
    pub fn tool_calls(&self, run_id: &str) -> Result<Vec<Value>, Error> {
        self.record(run_id)?;
        Ok(records::tool_calls(&self.store, run_id)?)
    }

    /// Cancels a run: a waiting one at once; a running one by asking its process, waiting up
    /// to `wait` for it to stop. Cancelling twice is not an error.
    pub async fn cancel(
        &self,
        run_id: &str,
        by: &str,
        wait: Duration,
    ) -> Result<CancelResult, Error> {
        let record = self.record(run_id)?;
        let not = |reason: &str| -> Error {
            EngineError::NotResumable {
                run_id: run_id.to_string(),
                reason: reason.to_string(),
            }
            .into()
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
            error: Some(RunError {
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

/// A run's event stream, read from the store ([`Service::follow`]): works from any process,
/// while the run is driven by another.
pub struct EventFollower {
    service: Service,
    run_id: String,
    last: Option<u64>,
    done: bool,
}

/// How often a follower looks for new events of a running run.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

impl EventFollower {
    /// The next batch of events (never empty), or `None` when the run has stopped and all its
    /// events have been given.
    pub async fn next(&mut self) -> Result<Option<Vec<Event>>, Error> {
        while !self.done {
            let events = self.service.events(&self.run_id, self.last)?;
            if let Some(e) = events.last() {
                self.last = Some(e.seq);
                return Ok(Some(events));
            }
            if self.service.record(&self.run_id)?.status != RunStatus::Running {
                // One last read: events written between the two queries.
                self.done = true;
                let events = self.service.events(&self.run_id, self.last)?;
                if let Some(e) = events.last() {
                    self.last = Some(e.seq);
                    return Ok(Some(events));
                }
                return Ok(None);
            }
            tokio::time::sleep(FOLLOW_POLL).await;
        }
        Ok(None)
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

fn resolve_in(root: &Path, name: &str, relative_to: Option<&Path>) -> Result<Arc<Workflow>, Error> {
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
        return Err(Error::WorkflowNotFound {
            name: name.to_string(),
            detail: format!("{} is a folder without a workflow.yaml", dir.display()),
        });
    }
    let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    Err(Error::WorkflowNotFound {
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

/// Which finished runs `Service::gc` deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcPolicy {
    /// Keep at least this many of the newest finished top-level runs.
    pub keep: usize,
    /// Delete only runs last updated more than this many days ago.
    pub older_than_days: Option<u64>,
}

/// The runs kept when `ao runs gc` is given no `--keep`.
pub const GC_DEFAULT_KEEP: usize = 100;

/// What `Service::gc` did.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct GcReport {
    /// The top-level runs deleted (their sub-runs went with them).
    pub deleted: Vec<String>,
    /// The database's size before and after, in bytes.
    pub bytes_before: u64,
    pub bytes_after: u64,
}

impl Service {
    /// Deletes finished runs (completed, failed, cancelled) and everything kept with them,
    /// beyond the newest `keep` and, if given, older than `older_than_days`; never a running
    /// or interrupted run. The space is given back to the file system.
    pub fn gc(&self, policy: GcPolicy) -> Result<GcReport, Error> {
        let runs = self.store.list_runs(&RunFilter::default())?;
        let cutoff = policy
            .older_than_days
            .map(|days| ao_graph::now_ms().saturating_sub(days.saturating_mul(86_400_000)));
        let doomed: Vec<String> = runs
            .iter()
            .filter(|r| {
                matches!(
                    r.status,
                    RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled
                )
            })
            .skip(policy.keep)
            .filter(|r| cutoff.is_none_or(|c| r.updated_ms < c))
            .map(|r| r.id.clone())
            .collect();
        let bytes_before = self.store.compacted_size()?;
        if !doomed.is_empty() {
            self.store.delete_runs(&doomed)?;
            self.store.reclaim_space()?;
        }
        let bytes_after = self.store.compacted_size()?;
        Ok(GcReport {
            deleted: doomed,
            bytes_before,
            bytes_after,
        })
    }
}
