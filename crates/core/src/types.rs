//! The typed results of the built-in workflows and of the model replies inside them, with their
//! JSON Schemas.
//!
//! An `llm` node can ask for one of these by name (`output: {type: Plan}`); the model's reply
//! is then validated against the type's schema. `ao schema NAME` prints the schemas.
//!
//! Two kinds of types live here:
//!
//! - **model replies** — what a model is asked to produce as structured output: [`Plan`]
//!   (leader), [`ReviewSummary`] (a worker's chunk review and the leader's merge),
//!   [`FixAnalysis`] (leader), [`WorkerStepReply`] (worker), [`LeaderDecision`] (leader);
//! - **workflow outputs** — what a run ends with, assembled by the workflow from model replies
//!   and what really happened (the changeset, the validation commands it ran): [`Plan`],
//!   [`LeaderWorkerReport`], [`ReviewSummary`], [`FixReport`], and their parts
//!   ([`ValidationResult`], [`StepOutcome`], [`UsageSummary`]).
//!
//! Every schema [`type_schema`] returns is self-contained (subschemas inlined, no `$ref`) and
//! uses only standard `format`s, so any endpoint can take it. It describes what is valid, with
//! optional fields optional: a reply that leaves out an empty list is fine. When the model
//! layer asks an endpoint for OpenAI's strict mode, it rewrites the schema into the strict
//! shape itself (every property required, optional ones nullable) and maps the nulls back
//! before validating against this schema.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A plan for reaching a goal: the `plan` workflow's output and the leader's first product in
/// `leader-worker`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// What the plan achieves and how, in a few sentences.
    pub summary: String,
    pub steps: Vec<PlanStep>,
    /// Which worker should take which step, and why.
    #[serde(default)]
    pub assignments: Vec<Assignment>,
    #[serde(default)]
    pub risks: Vec<String>,
    /// How to check the result: concrete commands (`cargo test -p x`).
    #[serde(default)]
    pub validation: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanStep {
    /// Short stable id (`s1`, `add-flag`), referenced by `depends_on`.
    pub id: String,
    pub title: String,
    pub description: String,
    pub task_type: TaskType,
    /// Ids of the steps that must be done before this one.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Checks that say the step is done.
    #[serde(default)]
    pub acceptance_checks: Vec<String>,
    /// How hard the step is (`low`, `medium`, `high`); routing gives harder steps only to
    /// workers measured fit for them. Unset counts as `medium`.
    #[serde(default)]
    pub complexity: Option<crate::profile::TaskComplexity>,
}

/// Kinds of work a step can be, which decide what worker may take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TaskType {
    Summarization,
    LogAnalysis,
    JsonExtraction,
    ReviewLite,
    Codegen,
    TestGeneration,
    Patch,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    pub step_id: String,
    /// A worker id, or `leader` when no worker qualifies.
    pub worker: String,
    pub reason: String,
}

/// How risky a change is, or how serious a finding is. Ordered: `low` < `medium` < `high`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum RiskLevel {
    Low,
    Medium,
    High,
}

impl RiskLevel {
    /// `low`, `medium` or `high`.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::Low => "low",
            RiskLevel::Medium => "medium",
            RiskLevel::High => "high",
        }
    }
}

impl std::fmt::Display for RiskLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RiskLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "low" => Ok(RiskLevel::Low),
            "medium" => Ok(RiskLevel::Medium),
            "high" => Ok(RiskLevel::High),
            other => Err(format!(
                "unknown level `{other}` (expected low, medium or high)"
            )),
        }
    }
}

/// The `review` workflow's output. Workers reviewing one chunk of a diff answer with one too;
/// the leader merges theirs into the final one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewSummary {
    /// What the change does and the reviewer's overall view, in a few sentences.
    pub summary: String,
    /// How the change affects the structure of the code base (boundaries, APIs, data flow);
    /// `none` when it does not.
    pub architecture_impact: String,
    /// Problems that must be fixed before the change is merged.
    #[serde(default)]
    pub must_fix: Vec<Finding>,
    /// Improvements worth making, not blocking.
    #[serde(default)]
    pub should_fix: Vec<Finding>,
    /// Behaviour the change introduces that no test covers.
    #[serde(default)]
    pub missing_tests: Vec<String>,
    /// The risk of merging the change as it is.
    pub risk_level: RiskLevel,
}

/// One problem a review found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    /// Path of the file in the new version (the old path for a deleted file).
    pub file: String,
    /// 1-based line in the new version of the file, when the finding has one.
    #[serde(default)]
    pub line: Option<u64>,
    /// How serious the problem is.
    pub severity: RiskLevel,
    pub issue: String,
    pub why: String,
}

/// The leader's analysis of an error: the first product of `fix-error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FixAnalysis {
    /// The cause of the error, in a few sentences.
    pub root_cause: String,
    /// The places in the code (and the log) that show the cause.
    #[serde(default)]
    pub evidence: Vec<Evidence>,
    /// The candidate fix, step by step.
    pub fix_plan: Vec<String>,
}

/// The `fix-error` workflow's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FixReport {
    pub root_cause: String,
    #[serde(default)]
    pub evidence: Vec<Evidence>,
    /// The candidate fix, step by step.
    pub fix_plan: Vec<String>,
    /// The proposed change as a unified diff (empty when no change was proposed).
    #[serde(default)]
    pub changeset: String,
    /// The validation commands of the last attempt and what they gave.
    #[serde(default)]
    pub validation: Vec<ValidationResult>,
    /// What the leader decided about the proposed fix.
    pub decision: LeaderDecision,
    /// How many fix attempts ran (a `revise` starts another, up to the bound).
    #[serde(default)]
    pub attempts: u32,
    /// True when the change was written to the working tree (`--apply`); otherwise it is only
    /// in the run's changeset (`ao apply RUN`).
    #[serde(default)]
    pub applied: bool,
    #[serde(default)]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    pub file: String,
    #[serde(default)]
    pub line: Option<u64>,
    /// What at that place shows the cause.
    pub detail: String,
}

/// What the leader decides after reviewing workers' output (`leader-worker`) or a proposed fix
/// (`fix-error`).
///
/// One flat object rather than a tagged union, so it works as strict structured output; the
/// rules the schema cannot say are checked by [`LeaderDecision::check`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaderDecision {
    pub decision: DecisionKind,
    /// Why, in a few sentences.
    pub reason: String,
    /// With `revise`: the steps to do again and what to change. Empty otherwise.
    #[serde(default)]
    pub revisions: Vec<StepNote>,
    /// With `human-review`: the question for the human. Null otherwise.
    #[serde(default)]
    pub question: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DecisionKind {
    Approve,
    Revise,
    HumanReview,
}

impl DecisionKind {
    /// `approve`, `revise` or `human-review`.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Approve => "approve",
            DecisionKind::Revise => "revise",
            DecisionKind::HumanReview => "human-review",
        }
    }
}

/// The leader's notes on one step it sends back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepNote {
    pub step_id: String,
    /// What is wrong and what to do instead.
    pub notes: String,
}

impl LeaderDecision {
    /// Checks what the schema cannot: `revise` names at least one step, each one of
    /// `step_ids` (when given) and each with notes; `human-review` carries a question;
    /// `approve` carries neither. The error says which rule is broken.
    pub fn check(&self, step_ids: &[&str]) -> Result<(), String> {
        let question = self.question.as_deref().map(str::trim).unwrap_or("");
        match self.decision {
            DecisionKind::Approve => {
                if !self.revisions.is_empty() {
                    return Err("`approve` must not list revisions".into());
                }
            }
            DecisionKind::Revise => {
                if self.revisions.is_empty() {
                    return Err("`revise` must list the steps to do again in `revisions`".into());
                }
                for r in &self.revisions {
                    if !step_ids.is_empty() && !step_ids.contains(&r.step_id.as_str()) {
                        return Err(format!(
                            "`revise` names unknown step `{}` (steps: {})",
                            r.step_id,
                            step_ids.join(", ")
                        ));
                    }
                    if r.notes.trim().is_empty() {
                        return Err(format!("`revise` gives no notes for step `{}`", r.step_id));
                    }
                }
            }
            DecisionKind::HumanReview => {
                if question.is_empty() {
                    return Err("`human-review` must ask a `question`".into());
                }
            }
        }
        Ok(())
    }
}

/// A worker's structured reply after doing one step. The edits themselves are not in it: the
/// worker makes them through the file tools, so they pass the policy gate and land in the run's
/// changeset; this reply says what was done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkerStepReply {
    /// How far the worker got.
    pub status: WorkStatus,
    /// What the worker did, in a few sentences.
    pub summary: String,
    /// Paths of the files the worker changed or created (relative to the project root).
    #[serde(default)]
    pub files_touched: Vec<String>,
    /// How sure the worker is that the step is done right.
    pub confidence: Confidence,
    /// Caveats, open questions, what the reviewer should look at.
    #[serde(default)]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WorkStatus {
    Done,
    Partial,
    Blocked,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    Low,
    Medium,
    High,
}

/// One validation command and what it gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidationResult {
    /// The command as given (`cargo test -p x`).
    pub command: String,
    /// What the policy decided: `allowed` (it ran) or `denied` (it did not; see `reason`).
    pub decision: PolicyDecision,
    /// Why it was denied, or why it could not run or finish; null otherwise.
    #[serde(default)]
    pub reason: Option<String>,
    /// True when it ran and exited with status 0.
    pub passed: bool,
    /// The exit status; null when it did not run, was killed, or timed out.
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub timed_out: bool,
    /// Standard output, redacted and capped by the policy's output cap.
    #[serde(default)]
    pub stdout: String,
    /// Standard error, redacted and capped by the policy's output cap.
    #[serde(default)]
    pub stderr: String,
    /// True when `stdout` or `stderr` was cut at the cap.
    #[serde(default)]
    pub truncated: bool,
    #[serde(default)]
    pub duration_ms: u64,
    /// Where it ran (or would have run): a disposable sandbox holding the run's changeset, or
    /// the project root (apply mode).
    pub ran_in: ValidationPlace,
    /// The kernel confinement it ran under (Landlock ABI, what was enforced and what not, the
    /// resource limits; as `ao doctor` shows it); null when it did not run.
    #[serde(default)]
    pub confinement: Option<serde_json::Value>,
}

/// The policy gate's answer to a call, as the tools report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PolicyDecision {
    Allowed,
    Simulated,
    Denied,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ValidationPlace {
    Sandbox,
    Root,
}

/// The `leader-worker` workflow's output: the final report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaderWorkerReport {
    pub goal: String,
    /// The summary of the leader's plan.
    pub plan_summary: String,
    /// Every step of the plan, in plan order, with what became of it.
    pub steps: Vec<StepOutcome>,
    /// The leader's last decision.
    pub decision: LeaderDecision,
    /// How many times the leader reviewed the workers' output.
    #[serde(default)]
    pub review_rounds: u32,
    /// A person's answer to the leader's `human-review` question, when one was asked: true
    /// accepted the change (`decision` is then `approve`), false did not (`decision` stays
    /// `human-review`).
    #[serde(default)]
    pub human_answer: Option<bool>,
    /// The proposed change as a unified diff (empty when no step changed a file).
    #[serde(default)]
    pub changeset: String,
    /// True when the change was written to the working tree (`--apply`); otherwise it is only
    /// in the run's changeset (`ao apply RUN`).
    #[serde(default)]
    pub applied: bool,
    #[serde(default)]
    pub validation: Vec<ValidationResult>,
    #[serde(default)]
    pub warnings: Vec<String>,
    pub usage: UsageSummary,
}

/// What became of one plan step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepOutcome {
    pub step_id: String,
    pub title: String,
    /// The worker that did the step (its id), or `leader`; empty when none did.
    pub worker: String,
    /// Why that worker was chosen (or why none was).
    pub routing_reason: String,
    pub result: StepResult,
    /// The worker's account of what it did (its last reply), empty when it did not run.
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub files_touched: Vec<String>,
    #[serde(default)]
    pub confidence: Option<Confidence>,
    /// The worker's notes.
    #[serde(default)]
    pub notes: Vec<String>,
    /// The leader's `revise` notes on this step, one per round that sent it back.
    #[serde(default)]
    pub leader_notes: Vec<String>,
    /// How many times a worker ran the step.
    #[serde(default)]
    pub attempts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StepResult {
    /// The worker finished the step.
    Done,
    /// The worker did part of it.
    Partial,
    /// The worker could not do it and said why.
    Blocked,
    /// The worker's task failed (model or tool errors after retries).
    Failed,
    /// Never given to a worker: no qualified worker, or a step it depends on did not finish.
    Skipped,
}

/// Model usage of a run, as reports show it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageSummary {
    pub llm_calls: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// True when some counts are estimates (a server sent none).
    #[serde(default)]
    pub estimated: bool,
    /// US dollars, when every model that answered has a known price.
    #[serde(default)]
    pub cost_usd: Option<f64>,
    /// Wall time of the run, in milliseconds.
    #[serde(default)]
    pub wall_ms: u64,
}

/// Names `output: {type: NAME}` and `ao schema NAME` accept.
pub const TYPE_NAMES: &[&str] = &[
    "FixAnalysis",
    "FixReport",
    "LeaderDecision",
    "LeaderWorkerReport",
    "Plan",
    "ReviewSummary",
    "ValidationResult",
    "WorkerCapabilityProfile",
    "WorkerStepReply",
];

/// The output type of each built-in workflow that has one, by workflow name: `ao schema`
/// accepts the workflow name too.
pub const WORKFLOW_OUTPUT_TYPES: &[(&str, &str)] = &[
    ("fix-error", "FixReport"),
    ("leader-worker", "LeaderWorkerReport"),
    ("plan", "Plan"),
    ("review", "ReviewSummary"),
    ("worker-interview", "WorkerCapabilityProfile"),
];

/// The JSON Schema of a built-in type, by type name (`Plan`) or by the name of the workflow
/// that outputs it (`plan`). See the module documentation for the shape it takes.
/// A value of a built-in type with every optional field filled in with its default (an empty
/// list, `null`), as the Rust type reads it: a model may leave out what the schema does not
/// require, and a workflow's expressions then find every field there. `None` for a name that is
/// not a built-in type; `Err` when the value is not of the type.
pub fn normalize(name: &str, value: &Value) -> Option<Result<Value, String>> {
    fn via<T: serde::de::DeserializeOwned + Serialize>(v: &Value) -> Result<Value, String> {
        let typed: T = read(v)?;
        serde_json::to_value(typed).map_err(|e| e.to_string())
    }
    let name = WORKFLOW_OUTPUT_TYPES
        .iter()
        .find(|(workflow, _)| *workflow == name)
        .map_or(name, |(_, ty)| ty);
    Some(match name {
        "FixAnalysis" => via::<FixAnalysis>(value),
        "FixReport" => via::<FixReport>(value),
        "LeaderDecision" => via::<LeaderDecision>(value),
        "LeaderWorkerReport" => via::<LeaderWorkerReport>(value),
        "Plan" => via::<Plan>(value),
        "ReviewSummary" => via::<ReviewSummary>(value),
        "ValidationResult" => via::<ValidationResult>(value),
        "WorkerStepReply" => via::<WorkerStepReply>(value),
        "WorkerCapabilityProfile" => via::<crate::profile::WorkerCapabilityProfile>(value),
        _ => return None,
    })
}

/// Checks a value of a built-in type against the rules its schema cannot say.
pub type TypeCheck = fn(&Value) -> Result<(), String>;

/// Reads a value as a built-in type. A number the schema calls an integer may come as `12.0`
/// (JSON Schema counts it as one); it is read as the integer it is.
fn read<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, String> {
    fn integral(v: &mut Value) {
        match v {
            Value::Number(n) => {
                if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    && n.as_i64().is_none()
                    && n.as_u64().is_none()
                {
                    *v = Value::from(f as i64);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(integral),
            Value::Object(fields) => fields.values_mut().for_each(integral),
            _ => {}
        }
    }
    let mut v = v.clone();
    integral(&mut v);
    serde_json::from_value(v).map_err(|e| e.to_string())
}

/// The check of a built-in type's value that already matches its schema: that the type reads
/// it (so a reply the schema lets through but the type cannot hold is repaired, not a failed
/// run), and the rules the schema cannot say (`Err` names the broken one). `None` for a name
/// that is not a built-in type.
pub fn type_check(name: &str) -> Option<TypeCheck> {
    let name = WORKFLOW_OUTPUT_TYPES
        .iter()
        .find(|(workflow, _)| *workflow == name)
        .map_or(name, |(_, ty)| ty);
    match name {
        "LeaderDecision" => Some(|v| read::<LeaderDecision>(v)?.check(&[])),
        "Plan" => Some(|v| read::<Plan>(v)?.check()),
        "FixAnalysis" => Some(|v| read::<FixAnalysis>(v).map(drop)),
        "FixReport" => Some(|v| read::<FixReport>(v).map(drop)),
        "LeaderWorkerReport" => Some(|v| read::<LeaderWorkerReport>(v).map(drop)),
        "ReviewSummary" => Some(|v| read::<ReviewSummary>(v).map(drop)),
        "ValidationResult" => Some(|v| read::<ValidationResult>(v).map(drop)),
        "WorkerStepReply" => Some(|v| read::<WorkerStepReply>(v).map(drop)),
        "WorkerCapabilityProfile" => {
            Some(|v| read::<crate::profile::WorkerCapabilityProfile>(v).map(drop))
        }
        _ => None,
    }
}

/// The most steps a plan may have: a plan longer than this is not a plan a reviewer can check.
pub const MAX_PLAN_STEPS: usize = 30;

impl Plan {
    /// Checks what the schema cannot: at least one step, step ids unique and not blank, and
    /// every `depends_on` naming another step of the plan.
    pub fn check(&self) -> Result<(), String> {
        if self.steps.is_empty() {
            return Err("the plan has no `steps`".into());
        }
        if self.steps.len() > MAX_PLAN_STEPS {
            return Err(format!(
                "the plan has {} steps; give at most {MAX_PLAN_STEPS} (merge small steps)",
                self.steps.len()
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for s in &self.steps {
            if s.id.trim().is_empty() {
                return Err(format!("step \"{}\" has an empty `id`", s.title));
            }
            if !seen.insert(s.id.as_str()) {
                return Err(format!(
                    "two steps have the id `{}`; ids must be unique",
                    s.id
                ));
            }
        }
        for s in &self.steps {
            for d in &s.depends_on {
                if d == &s.id {
                    return Err(format!("step `{}` depends on itself", s.id));
                }
                if !seen.contains(d.as_str()) {
                    return Err(format!(
                        "step `{}` depends on `{d}`, which is not a step of the plan (steps: {})",
                        s.id,
                        seen.iter().copied().collect::<Vec<_>>().join(", ")
                    ));
                }
            }
        }
        Ok(())
    }
}

pub fn type_schema(name: &str) -> Option<Value> {
    let name = WORKFLOW_OUTPUT_TYPES
        .iter()
        .find(|(workflow, _)| *workflow == name)
        .map_or(name, |(_, ty)| ty);
    let schema = match name {
        "FixAnalysis" => schema_of::<FixAnalysis>(),
        "FixReport" => schema_of::<FixReport>(),
        "LeaderDecision" => schema_of::<LeaderDecision>(),
        "LeaderWorkerReport" => schema_of::<LeaderWorkerReport>(),
        "Plan" => schema_of::<Plan>(),
        "ReviewSummary" => schema_of::<ReviewSummary>(),
        "ValidationResult" => schema_of::<ValidationResult>(),
        "WorkerStepReply" => schema_of::<WorkerStepReply>(),
        "WorkerCapabilityProfile" => schema_of::<crate::profile::WorkerCapabilityProfile>(),
        _ => return None,
    };
    let mut value = serde_json::to_value(schema).ok()?;
    drop_nonstandard_formats(&mut value);
    Some(value)
}

fn schema_of<T: JsonSchema>() -> schemars::Schema {
    schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator()
        .into_root_schema_for::<T>()
}

/// String formats every JSON Schema consumer understands; others (`uint64`, `double`, which
/// the schema generator adds for Rust integer types) are dropped.
const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "time",
    "date",
    "duration",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "uuid",
];

fn drop_nonstandard_formats(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map
                .get("format")
                .and_then(Value::as_str)
                .is_some_and(|f| !STANDARD_FORMATS.contains(&f))
            {
                map.remove("format");
            }
            map.values_mut().for_each(drop_nonstandard_formats);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nonstandard_formats),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validator(name: &str) -> jsonschema::Validator {
        let schema = type_schema(name).unwrap_or_else(|| panic!("no schema for {name}"));
        jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn full_plan() -> serde_json::Value {
        serde_json::json!({
            "summary": "s",
            "steps": [{"id": "s1", "title": "t", "description": "d", "task_type": "codegen",
                       "depends_on": [], "acceptance_checks": []}],
            "assignments": [], "risks": [], "validation": ["cargo test"]
        })
    }

    #[test]
    fn every_named_type_has_a_schema_and_the_workflow_names_resolve() {
        for name in TYPE_NAMES {
            validator(name);
        }
        assert!(type_schema("Nope").is_none());
        for (workflow, ty) in WORKFLOW_OUTPUT_TYPES {
            assert_eq!(type_schema(workflow), type_schema(ty), "{workflow}");
            assert!(TYPE_NAMES.contains(ty));
        }
    }

    #[test]
    fn plan_schema_accepts_a_plan_and_rejects_unknown_task_types_and_missing_fields() {
        let v = validator("Plan");
        assert!(
            v.is_valid(&full_plan()),
            "a full plan matches the Plan schema"
        );
        let mut bad = full_plan();
        bad["steps"][0]["task_type"] = "poetry".into();
        assert!(!v.is_valid(&bad), "an unknown task type is rejected");
        let mut lenient = full_plan();
        lenient.as_object_mut().unwrap().remove("risks");
        assert!(v.is_valid(&lenient), "an optional list may be left out");
        let mut missing = full_plan();
        missing.as_object_mut().unwrap().remove("summary");
        assert!(!v.is_valid(&missing), "a required field may not");
        let parsed: Plan = serde_json::from_value(full_plan()).unwrap();
        assert_eq!(parsed.steps[0].task_type, TaskType::Codegen);
    }

    /// Walks a schema and reports `$ref`s and nonstandard formats.
    fn portability_problems(schema: &Value, path: &str, out: &mut Vec<String>) {
        match schema {
            Value::Object(map) => {
                if map.contains_key("$ref") {
                    out.push(format!("{path}: has `$ref`"));
                }
                if let Some(f) = map.get("format").and_then(Value::as_str)
                    && !STANDARD_FORMATS.contains(&f)
                {
                    out.push(format!("{path}: format `{f}`"));
                }
                for (k, v) in map {
                    portability_problems(v, &format!("{path}/{k}"), out);
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    portability_problems(item, &format!("{path}/{i}"), out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn every_schema_is_self_contained_with_standard_formats() {
        for name in TYPE_NAMES {
            let schema = type_schema(name).unwrap();
            assert_eq!(schema["type"], "object", "{name}: the root is an object");
            let mut out = Vec::new();
            portability_problems(&schema, name, &mut out);
            assert!(out.is_empty(), "{name}:\n{}", out.join("\n"));
        }
        let mut out = Vec::new();
        portability_problems(
            &serde_json::json!({"properties": {"a": {"format": "uint64", "$ref": "#/x"}}}),
            "t",
            &mut out,
        );
        assert_eq!(out.len(), 2, "{out:?}");
    }

    fn sample_decision() -> LeaderDecision {
        LeaderDecision {
            decision: DecisionKind::Revise,
            reason: "s2 misses the error path".into(),
            revisions: vec![StepNote {
                step_id: "s2".into(),
                notes: "handle the empty file".into(),
            }],
            question: None,
        }
    }

    fn sample_validation() -> ValidationResult {
        ValidationResult {
            command: "cargo test".into(),
            decision: PolicyDecision::Allowed,
            reason: None,
            passed: false,
            exit_code: Some(101),
            timed_out: false,
            stdout: "test a ... FAILED".into(),
            stderr: String::new(),
            truncated: false,
            duration_ms: 1200,
            ran_in: ValidationPlace::Sandbox,
            confinement: None,
        }
    }

    /// Every output the workflows build validates against its own schema, so what a run
    /// outputs is what `ao schema NAME` documents.
    #[test]
    fn serialized_values_of_every_type_validate_against_their_schemas() {
        let usage = UsageSummary {
            llm_calls: 3,
            prompt_tokens: 100,
            completion_tokens: 50,
            estimated: false,
            cost_usd: Some(0.01),
            wall_ms: 900,
        };
        let samples: Vec<(&str, Value)> = vec![
            (
                "FixAnalysis",
                serde_json::to_value(FixAnalysis {
                    root_cause: "off by one".into(),
                    evidence: vec![Evidence {
                        file: "src/a.rs".into(),
                        line: Some(3),
                        detail: "i <= n".into(),
                    }],
                    fix_plan: vec!["use <".into()],
                })
                .unwrap(),
            ),
            (
                "FixReport",
                serde_json::to_value(FixReport {
                    root_cause: "off by one".into(),
                    evidence: vec![Evidence {
                        file: "src/a.rs".into(),
                        line: None,
                        detail: "d".into(),
                    }],
                    fix_plan: vec!["use <".into()],
                    changeset: "--- a/src/a.rs\n+++ b/src/a.rs\n".into(),
                    validation: vec![sample_validation()],
                    decision: sample_decision(),
                    attempts: 2,
                    applied: false,
                    warnings: vec![],
                })
                .unwrap(),
            ),
            (
                "LeaderDecision",
                serde_json::to_value(sample_decision()).unwrap(),
            ),
            (
                "LeaderWorkerReport",
                serde_json::to_value(LeaderWorkerReport {
                    goal: "g".into(),
                    plan_summary: "p".into(),
                    steps: vec![StepOutcome {
                        step_id: "s1".into(),
                        title: "t".into(),
                        worker: "qwen".into(),
                        routing_reason: "profile allows codegen".into(),
                        result: StepResult::Done,
                        summary: "added the flag".into(),
                        files_touched: vec!["src/cli.rs".into()],
                        confidence: Some(Confidence::High),
                        notes: vec![],
                        leader_notes: vec!["name it --verbose".into()],
                        attempts: 2,
                    }],
                    decision: LeaderDecision {
                        decision: DecisionKind::Approve,
                        reason: "ok".into(),
                        revisions: vec![],
                        question: None,
                    },
                    review_rounds: 2,
                    human_answer: None,
                    changeset: String::new(),
                    applied: false,
                    validation: vec![sample_validation()],
                    warnings: vec!["worker x has no profile".into()],
                    usage: usage.clone(),
                })
                .unwrap(),
            ),
            ("Plan", full_plan()),
            (
                "ReviewSummary",
                serde_json::to_value(ReviewSummary {
                    summary: "s".into(),
                    architecture_impact: "none".into(),
                    must_fix: vec![Finding {
                        file: "src/a.rs".into(),
                        line: Some(12),
                        severity: RiskLevel::High,
                        issue: "i".into(),
                        why: "w".into(),
                    }],
                    should_fix: vec![],
                    missing_tests: vec!["t".into()],
                    risk_level: RiskLevel::Medium,
                })
                .unwrap(),
            ),
            (
                "ValidationResult",
                serde_json::to_value(ValidationResult {
                    decision: PolicyDecision::Denied,
                    reason: Some("`rm` is not in the allowlist".into()),
                    exit_code: None,
                    ..sample_validation()
                })
                .unwrap(),
            ),
            (
                "WorkerCapabilityProfile",
                serde_json::to_value(crate::profile::tests::sample()).unwrap(),
            ),
            (
                "WorkerStepReply",
                serde_json::to_value(WorkerStepReply {
                    status: WorkStatus::Partial,
                    summary: "s".into(),
                    files_touched: vec![],
                    confidence: Confidence::Low,
                    notes: vec!["n".into()],
                })
                .unwrap(),
            ),
        ];
        let covered: Vec<&str> = samples.iter().map(|(n, _)| *n).collect();
        assert_eq!(covered, TYPE_NAMES, "one sample per named type");
        for (name, value) in samples {
            let v = validator(name);
            let errors: Vec<String> = v.iter_errors(&value).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{name}: {errors:?}\n{value:#}");
        }
    }

    #[test]
    fn decision_kinds_and_levels_have_their_wire_names() {
        let v = validator("LeaderDecision");
        let human = serde_json::json!({"decision": "human-review", "reason": "r",
                                       "revisions": [], "question": "Which API?"});
        assert!(v.is_valid(&human));
        let parsed: LeaderDecision = serde_json::from_value(human).unwrap();
        assert_eq!(parsed.decision, DecisionKind::HumanReview);
        assert_eq!(parsed.decision.as_str(), "human-review");
        assert!(
            !v.is_valid(&serde_json::json!({"decision": "maybe", "reason": "r",
                                                "revisions": [], "question": null}))
        );
        assert_eq!("medium".parse::<RiskLevel>(), Ok(RiskLevel::Medium));
        assert!(
            "severe"
                .parse::<RiskLevel>()
                .unwrap_err()
                .contains("low, medium or high")
        );
        assert!(RiskLevel::Low < RiskLevel::Medium && RiskLevel::Medium < RiskLevel::High);
    }

    #[test]
    fn leader_decision_check_enforces_what_the_schema_cannot() {
        let steps = ["s1", "s2"];
        assert_eq!(sample_decision().check(&steps), Ok(()));
        let unknown = LeaderDecision {
            revisions: vec![StepNote {
                step_id: "s9".into(),
                notes: "n".into(),
            }],
            ..sample_decision()
        };
        assert!(
            unknown
                .check(&steps)
                .unwrap_err()
                .contains("unknown step `s9`")
        );
        assert_eq!(unknown.check(&[]), Ok(()), "no step list: any id goes");
        let empty = LeaderDecision {
            revisions: vec![],
            ..sample_decision()
        };
        assert!(empty.check(&steps).unwrap_err().contains("revisions"));
        let blank_notes = LeaderDecision {
            revisions: vec![StepNote {
                step_id: "s1".into(),
                notes: "  ".into(),
            }],
            ..sample_decision()
        };
        assert!(blank_notes.check(&steps).unwrap_err().contains("no notes"));
        let human = LeaderDecision {
            decision: DecisionKind::HumanReview,
            revisions: vec![],
            question: Some(" ".into()),
            ..sample_decision()
        };
        assert!(human.check(&steps).unwrap_err().contains("question"));
        let approve = LeaderDecision {
            decision: DecisionKind::Approve,
            ..sample_decision()
        };
        assert!(approve.check(&steps).unwrap_err().contains("approve"));
    }

    #[test]
    fn a_plan_needs_unique_ids_and_dependencies_it_has() {
        let step = |id: &str, deps: &[&str]| PlanStep {
            id: id.into(),
            title: format!("t{id}"),
            description: "d".into(),
            task_type: TaskType::Codegen,
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            acceptance_checks: Vec::new(),
            complexity: None,
        };
        let plan = |steps: Vec<PlanStep>| Plan {
            summary: "s".into(),
            steps,
            assignments: Vec::new(),
            risks: Vec::new(),
            validation: Vec::new(),
        };
        assert_eq!(
            plan(vec![step("a", &[]), step("b", &["a"])]).check(),
            Ok(())
        );
        let err = |p: Plan| p.check().unwrap_err();
        assert!(err(plan(vec![])).contains("no `steps`"));
        assert!(
            err(plan(vec![step("a", &[]), step("a", &[])])).contains("two steps have the id `a`")
        );
        assert!(err(plan(vec![step(" ", &[])])).contains("empty `id`"));
        assert!(err(plan(vec![step("a", &["a"])])).contains("depends on itself"));
        assert!(err(plan(vec![step("a", &["zz"])])).contains("`zz`, which is not a step"));
        // Through the type's check, as the model layer calls it.
        let check = type_check("plan").unwrap();
        let bad = serde_json::to_value(plan(vec![step("a", &["b"])])).unwrap();
        assert!(check(&bad).is_err());
        let decision = type_check("LeaderDecision").unwrap();
        assert!(
            decision(&serde_json::json!({"decision": "revise", "reason": "r", "revisions": []}))
                .is_err()
        );
        assert!(decision(&serde_json::json!({"decision": "approve", "reason": "r"})).is_ok());
        // Every built-in type is checked by reading it; an integral float is an integer.
        let review = serde_json::json!({"summary": "s", "architecture_impact": "none",
            "must_fix": [{"file": "a.rs", "line": 12.0, "issue": "i", "why": "w", "severity": "high"}],
            "should_fix": [], "missing_tests": [], "risk_level": "high"});
        assert_eq!(type_check("review").unwrap()(&review), Ok(()));
        let normal = normalize("ReviewSummary", &review).unwrap().unwrap();
        assert_eq!(normal["must_fix"][0]["line"], serde_json::json!(12));
        let broken = serde_json::json!({"summary": "s", "architecture_impact": "none",
            "must_fix": [{"file": "a.rs", "line": 12.5, "issue": "i", "why": "w", "severity": "high"}],
            "should_fix": [], "missing_tests": [], "risk_level": "high"});
        assert!(type_check("review").unwrap()(&broken).is_err());
        let long = plan(
            (0..=MAX_PLAN_STEPS)
                .map(|i| step(&format!("s{i}"), &[]))
                .collect(),
        );
        assert!(err(long).contains("at most"));
    }
}
