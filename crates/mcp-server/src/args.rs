//! The arguments of every tool, as types: their JSON Schemas (descriptions, enums, defaults,
//! `additionalProperties: false`) are what `tools/list` shows, and calls are checked against
//! those schemas before they are read into these types.

use ao_core::run::RunStatus;
use ao_core::types::RiskLevel;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

/// The longest a call may wait for a run, in seconds.
pub const MAX_WAIT_SECONDS: u64 = 3600;

fn default_wait_for_run() -> u64 {
    30
}

fn default_limit() -> usize {
    20
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanArgs {
    /// What the plan should achieve, in a sentence or two.
    #[schemars(length(min = 1))]
    pub goal: String,
    /// Files (paths relative to the project root) the planner reads as context.
    #[serde(default)]
    pub context_files: Vec<String>,
    /// A folder under the project root the plan is limited to.
    pub scope: Option<String>,
    /// Seconds to wait for the run to finish (or stop at a question) before returning; 0
    /// returns at once with the run id (then use `ao_wait_for_run`).
    #[serde(default)]
    #[schemars(range(max = 3600))]
    pub wait_seconds: u64,
    /// The most model tokens (prompt + completion) the run may spend, sub-runs included; the
    /// run stops resumably when it would go beyond (error kind `budget_exceeded`).
    #[schemars(range(min = 1))]
    pub max_tokens: Option<u64>,
    /// The most US dollars the run may spend on models (needs a price for every model in use).
    #[schemars(range(min = 0.000001))]
    pub max_cost_usd: Option<f64>,
    /// The most model requests the run may send.
    #[schemars(range(min = 1))]
    pub max_llm_calls: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunWorkflowArgs {
    /// A workflow name (see `ao_list_workflows`) or the path of a workflow YAML file (or of a
    /// folder holding `workflow.yaml`) relative to the project root.
    #[schemars(length(min = 1))]
    pub workflow: String,
    /// The run's input: an object matching the workflow's input schema (see
    /// `ao_describe_workflow`).
    #[serde(default)]
    pub input: serde_json::Map<String, Value>,
    /// Let the run's tools write files and run commands. Only honoured when the server's
    /// policy allows writes; by default the run is a dry-run and its edits become a changeset
    /// to review (`ao_get_changeset`).
    #[serde(default)]
    pub apply: bool,
    /// Seconds to wait for the run to finish (or stop at a question) before returning; 0
    /// returns at once with the run id (then use `ao_wait_for_run`).
    #[serde(default)]
    #[schemars(range(max = 3600))]
    pub wait_seconds: u64,
    /// The most model tokens (prompt + completion) the run may spend, sub-runs included; the
    /// run stops resumably when it would go beyond (error kind `budget_exceeded`).
    #[schemars(range(min = 1))]
    pub max_tokens: Option<u64>,
    /// The most US dollars the run may spend on models (needs a price for every model in use).
    #[schemars(range(min = 0.000001))]
    pub max_cost_usd: Option<f64>,
    /// The most model requests the run may send.
    #[schemars(range(min = 1))]
    pub max_llm_calls: Option<u64>,
}

/// How much of a run to return.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Detail {
    /// Status, output, question, error and usage; `state` is null.
    #[default]
    Summary,
    /// Also the run's state (the values of all its channels).
    Full,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetRunArgs {
    /// The run's id (from `ao_run_workflow` or `ao_list_runs`).
    #[schemars(length(min = 1))]
    pub run_id: String,
    /// `summary` leaves the run's state out; `full` includes it.
    #[serde(default)]
    pub detail: Detail,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListRunsArgs {
    /// Only runs with this status.
    pub status: Option<RunStatus>,
    /// Only runs of this workflow (its name).
    pub workflow: Option<String>,
    /// At most this many runs, newest first.
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = 1000))]
    pub limit: usize,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitForRunArgs {
    #[schemars(length(min = 1))]
    pub run_id: String,
    /// Seconds to wait for the run to leave `running`; the run is returned as it is when they
    /// pass. Cancelling this call stops the wait, not the run.
    #[serde(default = "default_wait_for_run")]
    #[schemars(range(max = 3600))]
    pub wait_seconds: u64,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResumeRunArgs {
    #[schemars(length(min = 1))]
    pub run_id: String,
    /// The answer to the run's question: any JSON value matching `interrupt.schema` of the run
    /// (see `ao_get_run`). Leave it out to continue a failed or stopped run from its last
    /// checkpoint.
    pub answer: Option<Value>,
    /// An id of your choosing for this answer (e.g. a UUID). A call repeated with the same id
    /// answers nothing and returns the first call's result, so a retry never answers twice.
    #[schemars(length(min = 1, max = 200))]
    pub request_id: Option<String>,
    /// Seconds to wait for the run to finish (or stop at its next question) before returning.
    #[serde(default)]
    #[schemars(range(max = 3600))]
    pub wait_seconds: u64,
    /// A new token limit for the run (e.g. after it stopped at its budget): replaces the run's
    /// own, but never above the project's (the workflow's `limits`, ao.toml's `[budget]`).
    #[schemars(range(min = 1))]
    pub max_tokens: Option<u64>,
    /// A new cost limit in US dollars, under the same rule.
    #[schemars(range(min = 0.000001))]
    pub max_cost_usd: Option<f64>,
    /// A new limit on model requests, under the same rule.
    #[schemars(range(min = 1))]
    pub max_llm_calls: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRunArgs {
    #[schemars(length(min = 1))]
    pub run_id: String,
    /// Why, recorded with the run.
    #[schemars(length(max = 500))]
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewDiffArgs {
    /// A git range to review, e.g. `main...HEAD` or `HEAD~1`. Give exactly one of `range`,
    /// `diff` and `files`.
    #[schemars(length(min = 1))]
    pub range: Option<String>,
    /// A unified diff to review, as text.
    #[schemars(length(min = 1))]
    pub diff: Option<String>,
    /// Files (relative to the project root) to review whole.
    pub files: Option<Vec<String>>,
    /// Report whether a finding or the overall risk reaches this level (`verdict` in the
    /// result); the run itself completes either way.
    pub fail_on: Option<RiskLevel>,
    /// Seconds to wait for the review before returning; 0 returns at once with the run id.
    #[serde(default)]
    #[schemars(range(max = 3600))]
    pub wait_seconds: u64,
    /// The most model tokens (prompt + completion) the run may spend, sub-runs included; the
    /// run stops resumably when it would go beyond (error kind `budget_exceeded`).
    #[schemars(range(min = 1))]
    pub max_tokens: Option<u64>,
    /// The most US dollars the run may spend on models (needs a price for every model in use).
    #[schemars(range(min = 0.000001))]
    pub max_cost_usd: Option<f64>,
    /// The most model requests the run may send.
    #[schemars(range(min = 1))]
    pub max_llm_calls: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FixErrorArgs {
    /// The error output to fix (compiler, linter or test output), as text.
    #[schemars(length(min = 1))]
    pub log: String,
    /// A folder under the project root the fix is limited to.
    pub scope: Option<String>,
    /// A command that checks the fix, e.g. `cargo test -p mycrate`; it runs in a sandbox copy
    /// of the project under the policy.
    pub validate: Option<String>,
    /// How many fix attempts at most.
    #[schemars(range(min = 1, max = 10))]
    pub max_attempts: Option<u32>,
    /// Seconds to wait for the run before returning; 0 returns at once with the run id.
    #[serde(default)]
    #[schemars(range(max = 3600))]
    pub wait_seconds: u64,
    /// The most model tokens (prompt + completion) the run may spend, sub-runs included; the
    /// run stops resumably when it would go beyond (error kind `budget_exceeded`).
    #[schemars(range(min = 1))]
    pub max_tokens: Option<u64>,
    /// The most US dollars the run may spend on models (needs a price for every model in use).
    #[schemars(range(min = 0.000001))]
    pub max_cost_usd: Option<f64>,
    /// The most model requests the run may send.
    #[schemars(range(min = 1))]
    pub max_llm_calls: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunIdArgs {
    #[schemars(length(min = 1))]
    pub run_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyChangesetArgs {
    #[schemars(length(min = 1))]
    pub run_id: String,
    /// Only report what applying would do; write nothing.
    #[serde(default)]
    pub check: bool,
}

/// No arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DescribeWorkflowArgs {
    /// A workflow name (see `ao_list_workflows`) or a workflow file's path.
    #[schemars(length(min = 1))]
    pub workflow: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InterviewWorkerArgs {
    /// A configured worker's name (see `ao_list_models`). Give either `worker`, or
    /// `provider` and `model`.
    #[schemars(length(min = 1))]
    pub worker: Option<String>,
    /// The provider of a model that is not configured: `openai`, `litellm`,
    /// `openai-compatible`, `ollama`, `vllm`, `lmstudio`, `llamacpp`.
    #[schemars(length(min = 1))]
    pub provider: Option<String>,
    /// The model's id as its endpoint names it.
    #[schemars(length(min = 1))]
    pub model: Option<String>,
    /// The endpoint's base URL (`…/v1`).
    #[schemars(length(min = 1))]
    pub base_url: Option<String>,
    /// The name of the environment variable (of the server) holding the endpoint's key; never
    /// the key itself.
    #[schemars(length(min = 1))]
    pub api_key_env: Option<String>,
    /// Save the profile to the state directory's worker profiles.
    #[serde(default)]
    pub save: bool,
    /// How many times each case is asked.
    #[schemars(range(min = 1, max = 10))]
    pub trials: Option<u32>,
    /// Seconds to wait for the interview before returning; 0 returns at once with the run id.
    #[serde(default)]
    #[schemars(range(max = 3600))]
    pub wait_seconds: u64,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkerProfileArgs {
    /// The worker's id, as `ao_list_workers` shows it (e.g. `litellm:qwen3-coder`).
    #[schemars(length(min = 1))]
    pub worker_id: String,
}

/// The spending limits a run-starting tool takes (`max_tokens`, `max_cost_usd`,
/// `max_llm_calls`); over the workflow's own `limits` and `ao.toml`'s `[budget]`.
pub trait BudgetArgs {
    fn limits(&self) -> (Option<u64>, Option<f64>, Option<u64>);

    fn budget(&self) -> ao_orchestrator::engine::Budget {
        let (max_tokens, max_cost_usd, max_llm_calls) = self.limits();
        ao_orchestrator::engine::Budget {
            max_tokens,
            max_cost_usd,
            max_llm_calls,
        }
    }
}

impl BudgetArgs for PlanArgs {
    fn limits(&self) -> (Option<u64>, Option<f64>, Option<u64>) {
        (self.max_tokens, self.max_cost_usd, self.max_llm_calls)
    }
}

impl BudgetArgs for RunWorkflowArgs {
    fn limits(&self) -> (Option<u64>, Option<f64>, Option<u64>) {
        (self.max_tokens, self.max_cost_usd, self.max_llm_calls)
    }
}

impl BudgetArgs for ReviewDiffArgs {
    fn limits(&self) -> (Option<u64>, Option<f64>, Option<u64>) {
        (self.max_tokens, self.max_cost_usd, self.max_llm_calls)
    }
}

impl BudgetArgs for FixErrorArgs {
    fn limits(&self) -> (Option<u64>, Option<f64>, Option<u64>) {
        (self.max_tokens, self.max_cost_usd, self.max_llm_calls)
    }
}

impl BudgetArgs for ResumeRunArgs {
    fn limits(&self) -> (Option<u64>, Option<f64>, Option<u64>) {
        (self.max_tokens, self.max_cost_usd, self.max_llm_calls)
    }
}
