//! The typed results of the built-in workflows, with their JSON Schemas.
//!
//! An `llm` node can ask for one of these by name (`output: {type: Plan}`); the model's reply
//! is then validated against the type's schema. `ao schema NAME` prints the schemas.

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
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Checks that say the step is done.
    #[serde(default)]
    pub acceptance_checks: Vec<String>,
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

/// How risky a change is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum RiskLevel {
    Low,
    Medium,
    High,
}

/// The `review` workflow's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewSummary {
    pub summary: String,
    pub architecture_impact: String,
    #[serde(default)]
    pub must_fix: Vec<Finding>,
    #[serde(default)]
    pub should_fix: Vec<Finding>,
    #[serde(default)]
    pub missing_tests: Vec<String>,
    pub risk_level: RiskLevel,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    pub file: String,
    /// 1-based line in the new version of the file, when the finding has one.
    #[serde(default)]
    pub line: Option<u64>,
    pub issue: String,
    pub why: String,
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
    /// What the leader decided about the proposed fix.
    pub decision: String,
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

/// Names `output: {type: NAME}` accepts.
pub const TYPE_NAMES: &[&str] = &[
    "FixReport",
    "Plan",
    "ReviewSummary",
    "WorkerCapabilityProfile",
];

/// The JSON Schema of a built-in type, by name.
pub fn type_schema(name: &str) -> Option<Value> {
    let schema = match name {
        "Plan" => schemars::schema_for!(Plan),
        "ReviewSummary" => schemars::schema_for!(ReviewSummary),
        "FixReport" => schemars::schema_for!(FixReport),
        "WorkerCapabilityProfile" => {
            schemars::schema_for!(crate::profile::WorkerCapabilityProfile)
        }
        _ => return None,
    };
    serde_json::to_value(schema).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_type_has_a_schema_that_accepts_an_instance() {
        for name in TYPE_NAMES {
            assert!(type_schema(name).is_some(), "{name}");
        }
        assert!(type_schema("Nope").is_none());
        let plan = serde_json::json!({
            "summary": "s",
            "steps": [{"id": "s1", "title": "t", "description": "d", "task_type": "codegen"}]
        });
        let schema = type_schema("Plan").unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        assert!(
            validator.is_valid(&plan),
            "a minimal plan matches the Plan schema"
        );
        let bad = serde_json::json!({"summary": "s", "steps": [{"id": "s1", "title": "t", "description": "d", "task_type": "poetry"}]});
        assert!(
            !validator.is_valid(&bad),
            "an unknown task type is rejected"
        );
        let parsed: Plan = serde_json::from_value(plan).unwrap();
        assert_eq!(parsed.steps[0].task_type, TaskType::Codegen);
    }
}
