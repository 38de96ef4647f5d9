//! The builtin nodes of worker interviews and of routing, registered on the engine's host by
//! [`register`] once the configuration is known.
//!
//! ## The `worker-interview` workflow's nodes
//!
//! - `interview_prepare` (`with: {input: <the run input>}`): resolves who is interviewed (a
//!   configured worker, or an endpoint named by `provider` and `model`) and loads the suite
//!   (built in, or `suite`: a file); writes the [`InterviewPlan`], whose `items` are the
//!   (case, trial) pairs to ask, trial-major. The same checks run before a run starts
//!   ([`plan_interview`]), so a front end reports a bad request without starting a run.
//! - `interview_ask` (`for_each` over the items; `with: {endpoint, suite, case, trial}`):
//!   asks one trial of one case and writes its [`TrialRecord`] (a reply, or an inconclusive
//!   harness failure). Each completed task is kept by the engine, so a resumed interview asks
//!   only what is missing; the call itself is kept with the task (exchanges, usage, the
//!   record), so even a task stopped between its call and its completion is not asked again.
//! - `interview_score` (`with: {plan, records}`): judges the records and writes the
//!   [`InterviewReport`] (the profile and the per-case detail). An interview whose endpoint
//!   failed too often fails this node (kind `endpoint`) with a message naming the endpoint;
//!   nothing after it runs, so nothing is saved.
//! - `interview_save` (`with: {profile}`): merges the profile into
//!   `<state dir>/worker-profiles.json` and writes the file's path.
//!
//! ## `route_steps`
//!
//! Decides who takes each step of a plan, from the saved profiles and the configured workers
//! (see [`crate::routing`] for the rules). Every decision reads the profiles as they are when
//! the node runs, against the built-in suite's hash.
//!
//! `with:`
//!
//! ```yaml
//! steps: "state.plan.steps"   # [{id, task_type, complexity?}, …]; other fields are ignored.
//!                             # complexity: low | medium | high, default medium
//! no_interview: "input.no_interview"   # optional bool (null = false): treat workers without a
//!                                      # current profile as limited instead of asking for
//!                                      # their interview
//! fallback: "'leader'"                 # optional: leader (default) | unassigned, where a step
//!                                      # goes that no worker qualifies for
//! ```
//!
//! It writes:
//!
//! ```json
//! {
//!   "steps": [
//!     {"step_id": "s1", "task_type": "codegen", "complexity": "medium",
//!      "decision": "assign", "worker_id": "qwen", "leader_review": false,
//!      "candidates": [{"worker_id", "status", "score", "cost", "leader_review", "profile"}],
//!      "excluded": [{"worker_id", "reason"}]},
//!     {"step_id": "s2", …, "decision": "leader", "reason": "no worker qualifies for patch …"},
//!     {"step_id": "s3", …, "decision": "unassigned", "reason": "…"},
//!     {"step_id": "s4", …, "decision": "interview-first", "worker_ids": ["local"]}
//!   ],
//!   "interview": [{"worker_id": "local", "why": "missing"}],
//!   "warnings": ["worker old is blocked by its interview of … and gets no work"],
//!   "suite": {"name": "worker-interview", "version": "…", "sha256": "…"}
//! }
//! ```
//!
//! `interview` lists (once each) the workers to interview before routing again (`why`:
//! `missing`, `expired`, `other-suite`); it is empty with `no_interview`. A workflow
//! interviews them (the `worker-interview` workflow with `{worker: ID, save: true}`) and calls
//! `route_steps` again. `warnings` name blocked and misconfigured workers; each is also emitted
//! as a run warning.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ao_core::config::Config;
use ao_core::profile::{SuiteRef, TaskComplexity, WorkerCapabilityProfile};
use ao_core::redact::Redactor;
use ao_core::timestamp::Timestamp;
use ao_core::types::TaskType;
use ao_graph::{BoxFuture, BuiltinNode, EventKind, Host, NodeCall, NodeFailure, RunStore, TaskKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::endpoint::{Endpoint, EndpointFields, EndpointModel, ResolvedEndpoint};
use super::profiles::{load_profiles, profiles_path, save_profile};
use super::runner::{CaseRequest, DEFAULT_TRIALS};
use super::score::{InterviewOutcome, InterviewReport, WorkerIdentity, score_interview};
use super::suite::Suite;
use super::trial::{TrialOutcome, TrialRecord};
use super::workers::configured_workers;
use crate::error::Error;
use crate::model_node::PendingExchanges;
use crate::records::{self, CallRecord};
use crate::routing::{
    Candidate, Exclusion, Fallback, InterviewNeed, InterviewPolicy, RouteOutcome, RouteRequest,
    route,
};

pub const PREPARE: &str = "interview_prepare";
pub const ASK: &str = "interview_ask";
pub const SCORE: &str = "interview_score";
pub const SAVE: &str = "interview_save";
pub const ROUTE_STEPS: &str = "route_steps";

/// The most trials an interview asks per case.
pub const MAX_TRIALS: u32 = 20;

/// What the nodes need from the host: the configuration and environment (the workers and
/// their keys), the state dir (saved profiles, learned modes), the run store (each ask's
/// record) and the redactor.
#[derive(Clone)]
pub struct NodeContext {
    config: Arc<Config>,
    env: Arc<BTreeMap<String, String>>,
    state_dir: PathBuf,
    store: Option<Arc<RunStore>>,
    redactor: Redactor,
}

impl NodeContext {
    pub fn new(
        config: &Config,
        env: &BTreeMap<String, String>,
        state_dir: &Path,
        store: Option<Arc<RunStore>>,
        redactor: Redactor,
    ) -> Self {
        NodeContext {
            config: Arc::new(config.clone()),
            env: Arc::new(env.clone()),
            state_dir: state_dir.to_path_buf(),
            store,
            redactor,
        }
    }
}

/// Registers the interview nodes and `route_steps` on `host`.
pub fn register(host: &mut Host, ctx: NodeContext) {
    let suites = Arc::new(SuiteCache::default());
    host.builtins.insert(
        PREPARE.into(),
        Arc::new(Prepare {
            ctx: ctx.clone(),
            suites: suites.clone(),
        }),
    );
    host.builtins.insert(
        ASK.into(),
        Arc::new(Ask {
            ctx: ctx.clone(),
            suites: suites.clone(),
            models: Mutex::new(HashMap::new()),
        }),
    );
    host.builtins.insert(
        SCORE.into(),
        Arc::new(Score {
            suites: suites.clone(),
        }),
    );
    host.builtins
        .insert(SAVE.into(), Arc::new(Save { ctx: ctx.clone() }));
    host.builtins
        .insert(ROUTE_STEPS.into(), Arc::new(RouteSteps { ctx }));
}

// ------------------------------------------------------------------------------------------
// The plan

/// Who is interviewed, as the profile will name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedWorker {
    pub worker_id: String,
    pub provider: String,
    pub model: String,
    /// Without credentials.
    pub base_url: Option<String>,
}

impl From<&PlannedWorker> for WorkerIdentity {
    fn from(w: &PlannedWorker) -> Self {
        WorkerIdentity {
            worker_id: w.worker_id.clone(),
            provider: w.provider.clone(),
            model: w.model.clone(),
            base_url: w.base_url.clone(),
        }
    }
}

/// The suite an interview runs: its identity, and where it is read from (`file: null` for
/// the built-in one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedSuite {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub file: Option<String>,
}

impl PlannedSuite {
    fn origin(&self) -> &str {
        self.file.as_deref().unwrap_or("the built-in suite")
    }
}

/// One ask: a case and a trial (1-based).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanItem {
    pub case: String,
    pub trial: u32,
}

/// What `interview_prepare` writes: everything the other nodes need, and no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterviewPlan {
    pub worker: PlannedWorker,
    pub endpoint: Endpoint,
    pub suite: PlannedSuite,
    pub trials: u32,
    pub save: bool,
    pub items: Vec<PlanItem>,
}

/// The `worker-interview` workflow's input.
#[derive(Debug, Clone, Default, Deserialize)]
struct InterviewInput {
    #[serde(flatten)]
    endpoint: EndpointFields,
    #[serde(default)]
    save: Option<bool>,
    #[serde(default)]
    suite: Option<String>,
    #[serde(default)]
    trials: Option<u32>,
}

/// Checks an interview request and plans it: the endpoint resolves (a named key variable is
/// set), the suite loads, the trials are in range. A relative suite path is taken from the
/// project root. This is what `interview_prepare` runs; front ends call it first, so a bad
/// request is reported before any run starts.
pub fn plan_interview(
    config: &Config,
    env: &BTreeMap<String, String>,
    input: &Value,
) -> Result<(InterviewPlan, ResolvedEndpoint), Error> {
    let input: InterviewInput = serde_json::from_value(input.clone())
        .map_err(|e| Error::Usage(format!("the interview request is malformed: {e}")))?;
    let endpoint = Endpoint::from_fields(&input.endpoint)?;
    let resolved = endpoint.resolve(config, env)?;
    let trials = input.trials.unwrap_or(DEFAULT_TRIALS);
    if !(1..=MAX_TRIALS).contains(&trials) {
        return Err(Error::Usage(format!(
            "trials must be between 1 and {MAX_TRIALS}, not {trials}"
        )));
    }
    let (suite, file) = match input.suite.as_deref().filter(|s| !s.trim().is_empty()) {
        None => (Suite::builtin(), None),
        Some(path) => {
            let path = config.root.join(path);
            let suite = Suite::from_file(&path);
            let shown = std::fs::canonicalize(&path).unwrap_or(path);
            (suite, Some(shown.display().to_string()))
        }
    };
    let suite = suite.map_err(|e| Error::Usage(e.to_string()))?;
    let items = (1..=trials)
        .flat_map(|trial| {
            suite.cases().iter().map(move |c| PlanItem {
                case: c.id().to_string(),
                trial,
            })
        })
        .collect();
    let plan = InterviewPlan {
        worker: PlannedWorker {
            worker_id: resolved.identity.worker_id.clone(),
            provider: resolved.identity.provider.clone(),
            model: resolved.identity.model.clone(),
            base_url: resolved.identity.base_url.clone(),
        },
        endpoint,
        suite: PlannedSuite {
            name: suite.name().to_string(),
            version: suite.version().to_string(),
            sha256: suite.sha256().to_string(),
            file,
        },
        trials,
        save: input.save.unwrap_or(false),
        items,
    };
    Ok((plan, resolved))
}

/// The suites the nodes of this host have loaded, by where they come from.
#[derive(Default)]
struct SuiteCache(Mutex<HashMap<Option<String>, Arc<Suite>>>);

impl SuiteCache {
    /// The planned suite, read again if need be; refused when its content is no longer what
    /// the interview started with (its replies would be judged by other rules).
    fn get(&self, planned: &PlannedSuite) -> Result<Arc<Suite>, NodeFailure> {
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(hit) = cache.get(&planned.file)
            && hit.sha256() == planned.sha256
        {
            return Ok(hit.clone());
        }
        let suite = match &planned.file {
            None => Suite::builtin(),
            Some(file) => Suite::from_file(Path::new(file)),
        }
        .map_err(|e| NodeFailure::permanent(e.to_string()))?;
        if suite.sha256() != planned.sha256 {
            return Err(NodeFailure::permanent(format!(
                "the interview suite ({}) is no longer the one this interview started with: its \
                 content hash is {} now, {} then; start a new interview",
                planned.origin(),
                suite.sha256(),
                planned.sha256
            )));
        }
        let suite = Arc::new(suite);
        cache.insert(planned.file.clone(), suite.clone());
        Ok(suite)
    }
}

fn bad_with(node: &str, e: impl std::fmt::Display) -> NodeFailure {
    NodeFailure::permanent(format!("builtin `{node}`: unexpected `with`: {e}"))
}

fn to_json(node: &str, v: &impl Serialize) -> Result<Value, NodeFailure> {
    serde_json::to_value(v).map_err(|e| {
        NodeFailure::permanent(format!("builtin `{node}`: cannot write its result: {e}"))
    })
}

// ------------------------------------------------------------------------------------------
// interview_prepare

struct Prepare {
    ctx: NodeContext,
    suites: Arc<SuiteCache>,
}

impl BuiltinNode for Prepare {
    fn call<'a>(
        &'a self,
        _call: NodeCall<'a>,
        with: Value,
    ) -> BoxFuture<'a, Result<Value, NodeFailure>> {
        Box::pin(async move {
            let input = with.get("input").cloned().unwrap_or(Value::Null);
            let (plan, _) = plan_interview(&self.ctx.config, &self.ctx.env, &input)
                .map_err(|e| NodeFailure::permanent(e.to_string()))?;
            // Loaded once here; the asks reuse it.
            self.suites.get(&plan.suite)?;
            to_json(PREPARE, &plan)
        })
    }
}

// ------------------------------------------------------------------------------------------
// interview_ask

struct Ask {
    ctx: NodeContext,
    suites: Arc<SuiteCache>,
    /// One client per endpoint, shared by the run's asks (connections, learned modes).
    models: Mutex<HashMap<String, (Arc<EndpointModel>, String)>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AskWith {
    endpoint: Endpoint,
    suite: PlannedSuite,
    case: String,
    trial: u32,
}

/// A record of the task that could not be kept: the task stops (another attempt may work).
fn record_failure(e: impl std::fmt::Display) -> NodeFailure {
    NodeFailure {
        message: format!("the interview call could not be recorded with the run: {e}"),
        retryable: true,
        kind: "store",
    }
}

impl Ask {
    fn model(&self, endpoint: &Endpoint) -> Result<(Arc<EndpointModel>, String), NodeFailure> {
        let key = serde_json::to_string(endpoint).unwrap_or_default();
        let mut models = self.models.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = models.get(&key) {
            return Ok((m.0.clone(), m.1.clone()));
        }
        let resolved = endpoint
            .resolve(&self.ctx.config, &self.ctx.env)
            .map_err(|e| NodeFailure::permanent(e.to_string()))?;
        let model = EndpointModel::new(&resolved, &self.ctx.redactor, Some(&self.ctx.state_dir))
            .map_err(|e| NodeFailure::permanent(e.to_string()))?;
        let entry = (Arc::new(model), resolved.identity.worker_id);
        models.insert(key, entry.clone());
        Ok(entry)
    }
}

impl BuiltinNode for Ask {
    fn call<'a>(
        &'a self,
        call: NodeCall<'a>,
        with: Value,
    ) -> BoxFuture<'a, Result<Value, NodeFailure>> {
        Box::pin(async move {
            let w: AskWith = serde_json::from_value(with).map_err(|e| bad_with(ASK, e))?;
            let suite = self.suites.get(&w.suite)?;
            let case = suite.case(&w.case).ok_or_else(|| {
                NodeFailure::permanent(format!(
                    "case `{}` is not in the interview suite ({})",
                    w.case,
                    w.suite.origin()
                ))
            })?;
            let key = TaskKey {
                run_id: call.run_id,
                step: call.step,
                node: call.node,
                index: call.index,
            };
            let fingerprint = json!({
                "endpoint": w.endpoint, "suite": w.suite.sha256, "case": w.case, "trial": w.trial,
            })
            .to_string();
            // A call completed by an earlier attempt of this task whose completion was not
            // recorded: its record is the task's result; the endpoint is not asked again.
            if let Some(store) = &self.ctx.store
                && call.attempt == 1
                && let Some((stored, result)) =
                    records::stored_round(store, &key, 0).map_err(record_failure)?
                && stored == fingerprint
            {
                call.events.emit(EventKind::LlmCall {
                    node: call.node.to_string(),
                    role: String::new(),
                    model: String::new(),
                    input_tokens: 0,
                    output_tokens: 0,
                    latency_ms: 0,
                    cached: true,
                    replayed: false,
                    request: None,
                    error: None,
                });
                return Ok(result);
            }
            let (model, worker_id) = self.model(&w.endpoint)?;
            let recorder = PendingExchanges::new(model.redactor());
            let request = CaseRequest {
                case_id: case.id(),
                capability: case.capability(),
                trial: w.trial,
                messages: case.messages(),
                output_schema: case.output_schema(),
            };
            let record = TrialRecord {
                case_id: w.case.clone(),
                trial: w.trial,
                result: match model.ask_recorded(request, &recorder).await {
                    Ok(reply) => TrialOutcome::Reply(reply),
                    Err(e) => TrialOutcome::Inconclusive(e),
                },
            };
            let value = to_json(ASK, &record)?;
            let sent = recorder.take_sent();
            if let Some(store) = &self.ctx.store {
                let exchanges = recorder.take().map_err(record_failure)?;
                let requests: Vec<records::RequestCost> = sent
                    .iter()
                    .map(|r| records::RequestCost {
                        usage: r.usage,
                        latency_ms: r.latency_ms,
                    })
                    .collect();
                records::store_call(
                    store,
                    &CallRecord {
                        task: key,
                        round: 0,
                        role: &worker_id,
                        completed: Some((&fingerprint, &value)),
                        // Interview asks are not replayed: no model settings to key on.
                        settings: &Value::Null,
                        exchanges: &exchanges,
                        requests: &requests,
                        replayed: false,
                    },
                )
                .map_err(record_failure)?;
            }
            for r in sent {
                call.events.emit(EventKind::LlmCall {
                    node: call.node.to_string(),
                    role: worker_id.clone(),
                    model: r.model,
                    input_tokens: r.usage.prompt_tokens,
                    output_tokens: r.usage.completion_tokens,
                    latency_ms: r.latency_ms,
                    cached: false,
                    replayed: false,
                    request: Some(r.kind),
                    error: r.error,
                });
            }
            Ok(value)
        })
    }
}

// ------------------------------------------------------------------------------------------
// interview_score

struct Score {
    suites: Arc<SuiteCache>,
}

#[derive(Deserialize)]
struct ScoreWith {
    plan: InterviewPlan,
    #[serde(default)]
    records: Option<Vec<TrialRecord>>,
}

impl BuiltinNode for Score {
    fn call<'a>(
        &'a self,
        _call: NodeCall<'a>,
        with: Value,
    ) -> BoxFuture<'a, Result<Value, NodeFailure>> {
        Box::pin(async move {
            let w: ScoreWith = serde_json::from_value(with).map_err(|e| bad_with(SCORE, e))?;
            let suite = self.suites.get(&w.plan.suite)?;
            let records = w.records.unwrap_or_default();
            let worker = WorkerIdentity::from(&w.plan.worker);
            match score_interview(&suite, &worker, &records, Timestamp::now()) {
                InterviewOutcome::Profiled(report) => to_json(SCORE, &*report),
                InterviewOutcome::HarnessFailure(failure) => Err(NodeFailure {
                    message: failure.to_string(),
                    retryable: false,
                    kind: "endpoint",
                }),
            }
        })
    }
}

/// The report a completed interview wrote (its `report` channel), if `state` holds one.
pub fn report_of(state: &Value) -> Option<InterviewReport> {
    serde_json::from_value(state.get("report")?.clone()).ok()
}

// ------------------------------------------------------------------------------------------
// interview_save

struct Save {
    ctx: NodeContext,
}

#[derive(Deserialize)]
struct SaveWith {
    profile: WorkerCapabilityProfile,
}

impl BuiltinNode for Save {
    fn call<'a>(
        &'a self,
        _call: NodeCall<'a>,
        with: Value,
    ) -> BoxFuture<'a, Result<Value, NodeFailure>> {
        Box::pin(async move {
            let w: SaveWith = serde_json::from_value(with).map_err(|e| bad_with(SAVE, e))?;
            let dir = self.ctx.state_dir.clone();
            let path = profiles_path(&dir);
            tokio::task::spawn_blocking(move || save_profile(&dir, &w.profile))
                .await
                .map_err(|e| NodeFailure::permanent(format!("saving the profile stopped: {e}")))?
                .map_err(|e| NodeFailure::permanent(e.to_string()))?;
            Ok(Value::String(path.display().to_string()))
        })
    }
}

// ------------------------------------------------------------------------------------------
// route_steps

struct RouteSteps {
    ctx: NodeContext,
}

#[derive(Deserialize)]
struct StepIn {
    id: String,
    task_type: TaskType,
    #[serde(default)]
    complexity: Option<TaskComplexity>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum FallbackName {
    Leader,
    Unassigned,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteWith {
    steps: Vec<StepIn>,
    #[serde(default)]
    no_interview: Option<bool>,
    #[serde(default)]
    fallback: Option<FallbackName>,
}

/// The decision for one step (`route_steps`' output).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoutedStep {
    pub step_id: String,
    pub task_type: TaskType,
    pub complexity: TaskComplexity,
    #[serde(flatten)]
    pub outcome: RouteOutcome,
    pub candidates: Vec<Candidate>,
    pub excluded: Vec<Exclusion>,
}

/// `route_steps`' output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoutedPlan {
    pub steps: Vec<RoutedStep>,
    pub interview: Vec<InterviewNeed>,
    pub warnings: Vec<String>,
    pub suite: SuiteRef,
}

/// The complexity a step without one is routed at: not the easiest, so a limited worker does
/// not get a step nobody judged.
pub const DEFAULT_STEP_COMPLEXITY: TaskComplexity = TaskComplexity::Medium;

fn route_plan(
    config: &Config,
    profiles: &[WorkerCapabilityProfile],
    suite: SuiteRef,
    steps: &[StepIn],
    interviews: InterviewPolicy,
    fallback: Fallback,
    now: Timestamp,
) -> RoutedPlan {
    let workers = configured_workers(config);
    let mut warnings: Vec<String> = config
        .model_problems
        .iter()
        .filter(|(role, _)| *role != ao_core::config::LEADER)
        .map(|(role, problem)| {
            format!("worker {role} is misconfigured and gets no work: {problem}")
        })
        .collect();
    let mut interview: Vec<InterviewNeed> = Vec::new();
    let mut routed = Vec::with_capacity(steps.len());
    for step in steps {
        let complexity = step.complexity.unwrap_or(DEFAULT_STEP_COMPLEXITY);
        let decision = route(&RouteRequest {
            task_type: step.task_type,
            complexity,
            workers: &workers,
            profiles,
            suite_sha256: &suite.sha256,
            now,
            interviews,
            fallback,
        });
        for w in decision.warnings {
            if !warnings.contains(&w) {
                warnings.push(w);
            }
        }
        for need in decision.interview {
            if !interview.iter().any(|i| i.worker_id == need.worker_id) {
                interview.push(need);
            }
        }
        routed.push(RoutedStep {
            step_id: step.id.clone(),
            task_type: step.task_type,
            complexity,
            outcome: decision.outcome,
            candidates: decision.candidates,
            excluded: decision.excluded,
        });
    }
    RoutedPlan {
        steps: routed,
        interview,
        warnings,
        suite,
    }
}

impl BuiltinNode for RouteSteps {
    fn call<'a>(
        &'a self,
        call: NodeCall<'a>,
        with: Value,
    ) -> BoxFuture<'a, Result<Value, NodeFailure>> {
        Box::pin(async move {
            let w: RouteWith =
                serde_json::from_value(with).map_err(|e| bad_with(ROUTE_STEPS, e))?;
            let suite = Suite::builtin()
                .map_err(|e| NodeFailure::permanent(e.to_string()))?
                .suite_ref();
            let dir = self.ctx.state_dir.clone();
            let profiles = tokio::task::spawn_blocking(move || load_profiles(&dir))
                .await
                .map_err(|e| NodeFailure::permanent(format!("reading the profiles stopped: {e}")))?
                .map_err(|e| NodeFailure::permanent(e.to_string()))?;
            let plan = route_plan(
                &self.ctx.config,
                &profiles,
                suite,
                &w.steps,
                if w.no_interview.unwrap_or(false) {
                    InterviewPolicy::TreatAsLimited
                } else {
                    InterviewPolicy::InterviewFirst
                },
                match w.fallback.unwrap_or(FallbackName::Leader) {
                    FallbackName::Leader => Fallback::Leader,
                    FallbackName::Unassigned => Fallback::Unassigned,
                },
                Timestamp::now(),
            );
            for warning in &plan.warnings {
                call.events.emit(EventKind::Warning {
                    node: Some(call.node.to_string()),
                    message: warning.clone(),
                });
            }
            to_json(ROUTE_STEPS, &plan)
        })
    }
}
