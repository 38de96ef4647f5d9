//! What an onboarding interview found out about a worker, and what it may therefore be given.
//!
//! A [`WorkerCapabilityProfile`] is the product of `ao worker interview`: per-capability
//! scores, the overall metrics (validity, schema compliance, correctness, calibration,
//! latency, tokens), a status, the task types the worker qualified for and the routing policy
//! that follows. It is saved in `<state dir>/worker-profiles.json` and read by routing. This
//! module holds the data and the fixed vocabulary shared by the scorer and the router (which
//! capabilities a task type needs, which task types are low-risk); it computes nothing from
//! interview replies.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::timestamp::Timestamp;
use crate::types::TaskType;

/// What an interview measures. Every suite has cases for each of these.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    InstructionFollowing,
    StructuredOutput,
    Summarization,
    LogAnalysis,
    CodeUnderstanding,
    Codegen,
    Review,
    ConfidenceCalibration,
}

impl Capability {
    pub const ALL: [Capability; 8] = [
        Capability::InstructionFollowing,
        Capability::StructuredOutput,
        Capability::Summarization,
        Capability::LogAnalysis,
        Capability::CodeUnderstanding,
        Capability::Codegen,
        Capability::Review,
        Capability::ConfidenceCalibration,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Capability::InstructionFollowing => "instruction-following",
            Capability::StructuredOutput => "structured-output",
            Capability::Summarization => "summarization",
            Capability::LogAnalysis => "log-analysis",
            Capability::CodeUnderstanding => "code-understanding",
            Capability::Codegen => "codegen",
            Capability::Review => "review",
            Capability::ConfidenceCalibration => "confidence-calibration",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Capability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Capability::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Capability::ALL.iter().map(|c| c.as_str()).collect();
                format!("unknown capability `{s}` (known: {})", names.join(", "))
            })
    }
}

/// Every task type, in a fixed order.
pub const ALL_TASK_TYPES: [TaskType; 7] = [
    TaskType::Summarization,
    TaskType::LogAnalysis,
    TaskType::JsonExtraction,
    TaskType::ReviewLite,
    TaskType::Codegen,
    TaskType::TestGeneration,
    TaskType::Patch,
];

/// Task types whose output cannot change the project by itself: a `limited` worker may be
/// given only these (and always under leader review).
pub const LOW_RISK_TASK_TYPES: [TaskType; 4] = [
    TaskType::Summarization,
    TaskType::LogAnalysis,
    TaskType::JsonExtraction,
    TaskType::ReviewLite,
];

pub fn is_low_risk(task_type: TaskType) -> bool {
    LOW_RISK_TASK_TYPES.contains(&task_type)
}

/// The capabilities a worker must have passed to qualify for a task type.
pub fn required_capabilities(task_type: TaskType) -> &'static [Capability] {
    use Capability as C;
    match task_type {
        TaskType::Summarization => &[C::Summarization, C::InstructionFollowing],
        TaskType::LogAnalysis => &[C::LogAnalysis],
        TaskType::JsonExtraction => &[C::StructuredOutput, C::InstructionFollowing],
        TaskType::ReviewLite => &[C::Review, C::CodeUnderstanding],
        TaskType::Codegen => &[C::Codegen, C::InstructionFollowing],
        TaskType::TestGeneration => &[C::Codegen, C::CodeUnderstanding],
        TaskType::Patch => &[C::Codegen, C::CodeUnderstanding, C::Review],
    }
}

/// The kebab-case name of a task type, as in the profile and the plan.
pub fn task_type_name(task_type: TaskType) -> &'static str {
    match task_type {
        TaskType::Summarization => "summarization",
        TaskType::LogAnalysis => "log-analysis",
        TaskType::JsonExtraction => "json-extraction",
        TaskType::ReviewLite => "review-lite",
        TaskType::Codegen => "codegen",
        TaskType::TestGeneration => "test-generation",
        TaskType::Patch => "patch",
    }
}

/// What a worker may be given.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum WorkerStatus {
    /// Qualified for the task types it passed.
    Active,
    /// Qualified only for low-risk task types; every output goes to leader review.
    Limited,
    /// Never given work; routing names it in a warning.
    Blocked,
}

impl WorkerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerStatus::Active => "active",
            WorkerStatus::Limited => "limited",
            WorkerStatus::Blocked => "blocked",
        }
    }
}

impl fmt::Display for WorkerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How hard a task may be. Ordered: `low < medium < high`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum TaskComplexity {
    Low,
    Medium,
    High,
}

/// The measurements of one capability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CapabilityScore {
    /// Mean partial credit over conclusive trials (schema compliance and each check count one
    /// part), 0..1.
    pub score: f64,
    /// Cases of this capability in the suite.
    pub cases: u32,
    /// Conclusive trials (inconclusive ones are not counted).
    pub trials: u32,
    /// Share of conclusive trials that parsed, matched the schema and passed every check.
    pub pass_rate: f64,
    /// Share of cases whose conclusive trials all reached the same verdict.
    pub consistency: f64,
}

/// Overall measurements, over all conclusive trials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileMetrics {
    /// Share of replies that parsed as JSON at all.
    pub validity: f64,
    /// Share of replies that matched the case's output schema.
    pub schema_compliance: f64,
    /// Share of replies that passed every deterministic check.
    pub correctness: f64,
    /// Brier score of stated confidence against correctness (0 is perfect, lower is better);
    /// null when no reply stated a usable confidence.
    pub brier: Option<f64>,
    pub latency_p50_ms: u64,
    pub latency_p95_ms: u64,
    /// Mean tokens (prompt + completion) per reply; null when the endpoint reported none.
    pub tokens: Option<u64>,
}

/// What routing must respect for this worker. Every flag is read by the router.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutingPolicy {
    /// Every output of this worker goes to leader review before it is accepted.
    pub requires_leader_review: bool,
    /// The most complex task it may be given.
    pub max_task_complexity: TaskComplexity,
    /// It may be given `codegen` and `test-generation` tasks.
    pub allow_codegen: bool,
    /// It may be given `patch` tasks.
    pub allow_patch: bool,
}

/// Which suite produced a profile. A profile from another suite hash is stale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuiteRef {
    pub name: String,
    pub version: String,
    /// Hex SHA-256 of the suite's content.
    pub sha256: String,
}

/// The result of a worker's onboarding interview (`ao schema profile`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkerCapabilityProfile {
    /// `provider:model`, or the worker's name in `ao.toml`.
    pub worker_id: String,
    pub provider: String,
    pub model: String,
    /// Host (and port) of the endpoint, without scheme, path or credentials.
    pub base_url_host: Option<String>,
    pub status: WorkerStatus,
    pub capabilities: BTreeMap<Capability, CapabilityScore>,
    pub metrics: ProfileMetrics,
    pub qualified_task_types: Vec<TaskType>,
    pub routing_policy: RoutingPolicy,
    /// Why the status is what it is, one line each.
    pub reasons: Vec<String>,
    pub recommended_actions: Vec<String>,
    pub suite: SuiteRef,
    pub evaluated_at: Timestamp,
    /// After this, routing treats the worker as not interviewed.
    pub expires_at: Timestamp,
    /// Trials that could not be judged because the endpoint failed (connection refused,
    /// timeout, 5xx or 429 after retries); they count neither for nor against the worker.
    pub inconclusive: u32,
}

impl WorkerCapabilityProfile {
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }

    pub fn is_qualified_for(&self, task_type: TaskType) -> bool {
        self.qualified_task_types.contains(&task_type)
    }

    /// The block printed for people when the worker is not `active`; `None` when it is.
    pub fn warning(&self) -> Option<String> {
        if self.status == WorkerStatus::Active {
            return None;
        }
        let mut out = format!(
            "Worker {} failed onboarding evaluation.\n\nStatus: {}\n",
            self.worker_id, self.status
        );
        if !self.reasons.is_empty() {
            out.push_str("\nReasons:\n");
            for r in &self.reasons {
                out.push_str(&format!("- {r}\n"));
            }
        }
        if !self.recommended_actions.is_empty() {
            out.push_str("\nRecommended action:\n");
            for a in &self.recommended_actions {
                out.push_str(&format!("- {a}\n"));
            }
        }
        Some(out)
    }
}

/// The host (and port) of a base URL, for the profile: no scheme, no path, and never the
/// user or password a URL may carry. `None` when no host can be found.
pub fn base_url_host(url: &str) -> Option<String> {
    let rest = url.trim();
    let rest = match rest.find("://") {
        Some(i) => &rest[i + 3..],
        None => rest,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.rfind('@') {
        Some(i) => &authority[i + 1..],
        None => authority,
    };
    if host.is_empty() {
        None
    } else {
        Some(host.to_ascii_lowercase())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> WorkerCapabilityProfile {
        let mut capabilities = BTreeMap::new();
        for c in Capability::ALL {
            capabilities.insert(
                c,
                CapabilityScore {
                    score: 0.9,
                    cases: 3,
                    trials: 9,
                    pass_rate: 0.89,
                    consistency: 1.0,
                },
            );
        }
        WorkerCapabilityProfile {
            worker_id: "litellm:qwen3-coder".into(),
            provider: "litellm".into(),
            model: "qwen3-coder".into(),
            base_url_host: Some("localhost:4000".into()),
            status: WorkerStatus::Limited,
            capabilities,
            metrics: ProfileMetrics {
                validity: 1.0,
                schema_compliance: 0.78,
                correctness: 0.7,
                brier: Some(0.21),
                latency_p50_ms: 800,
                latency_p95_ms: 2100,
                tokens: Some(640),
            },
            qualified_task_types: vec![TaskType::Summarization, TaskType::LogAnalysis],
            routing_policy: RoutingPolicy {
                requires_leader_review: true,
                max_task_complexity: TaskComplexity::Low,
                allow_codegen: false,
                allow_patch: false,
            },
            reasons: vec!["structured-output: 2/9 replies failed schema validation".into()],
            recommended_actions: vec!["Do not assign codegen tasks.".into()],
            suite: SuiteRef {
                name: "worker-interview".into(),
                version: "1".into(),
                sha256: "ab".repeat(32),
            },
            evaluated_at: "2025-03-01T12:00:00Z".parse().unwrap(),
            expires_at: "2025-03-31T12:00:00Z".parse().unwrap(),
            inconclusive: 0,
        }
    }

    #[test]
    fn the_profile_round_trips_and_matches_its_schema() {
        let p = sample();
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["status"], "limited");
        assert_eq!(json["capabilities"]["structured-output"]["trials"], 9);
        assert_eq!(json["qualified_task_types"][1], "log-analysis");
        assert_eq!(json["routing_policy"]["max_task_complexity"], "low");
        assert_eq!(json["evaluated_at"], "2025-03-01T12:00:00Z");
        let back: WorkerCapabilityProfile = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, p);

        let schema = serde_json::to_value(schemars::schema_for!(WorkerCapabilityProfile)).unwrap();
        let v = jsonschema::validator_for(&schema).unwrap();
        assert!(v.is_valid(&json));
        let mut bad = json.clone();
        bad["status"] = "trusted".into();
        assert!(!v.is_valid(&bad), "an unknown status is refused");
        let mut bad = json.clone();
        bad["capabilities"]["poetry"] = json["capabilities"]["codegen"].clone();
        assert!(!v.is_valid(&bad), "an unknown capability is refused");
        let mut bad = json;
        bad["extra"] = 1.into();
        assert!(serde_json::from_value::<WorkerCapabilityProfile>(bad).is_err());
    }

    #[test]
    fn expiry_is_inclusive_of_the_expiry_instant() {
        let p = sample();
        assert!(!p.is_expired(Timestamp::from_unix_seconds(
            p.expires_at.unix_seconds() - 1
        )));
        assert!(p.is_expired(p.expires_at));
    }

    #[test]
    fn the_warning_block_lists_status_reasons_and_actions_only_when_not_active() {
        let mut p = sample();
        let w = p.warning().unwrap();
        assert!(w.starts_with("Worker litellm:qwen3-coder failed onboarding evaluation.\n"));
        assert!(w.contains("\nStatus: limited\n"));
        assert!(
            w.contains("Reasons:\n- structured-output: 2/9 replies failed schema validation\n")
        );
        assert!(w.contains("Recommended action:\n- Do not assign codegen tasks.\n"));
        p.status = WorkerStatus::Active;
        assert!(p.warning().is_none());
    }

    #[test]
    fn every_task_type_needs_known_capabilities_and_risk_is_fixed() {
        for t in ALL_TASK_TYPES {
            assert!(!required_capabilities(t).is_empty());
            let name = serde_json::to_value(t).unwrap();
            assert_eq!(name, task_type_name(t));
        }
        assert!(is_low_risk(TaskType::ReviewLite));
        assert!(!is_low_risk(TaskType::Codegen));
        assert!(!is_low_risk(TaskType::Patch));
        assert!(!is_low_risk(TaskType::TestGeneration));
    }

    #[test]
    fn capability_names_parse_back() {
        for c in Capability::ALL {
            assert_eq!(c.as_str().parse::<Capability>().unwrap(), c);
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
        assert!(
            "poetry"
                .parse::<Capability>()
                .unwrap_err()
                .contains("known: instruction-following")
        );
    }

    #[test]
    fn base_url_host_keeps_host_and_port_and_drops_credentials() {
        assert_eq!(
            base_url_host("http://user:s3cret@LocalHost:4000/v1?x=1").as_deref(),
            Some("localhost:4000")
        );
        assert_eq!(
            base_url_host("https://api.example.com/v1").as_deref(),
            Some("api.example.com")
        );
        assert_eq!(
            base_url_host("api.example.com").as_deref(),
            Some("api.example.com")
        );
        assert_eq!(base_url_host("http:///v1"), None);
    }
}
