//! Routing: which worker takes a task, decided from the saved capability profiles.
//!
//! [`route`] is pure (no I/O, the time is passed in). For a task type and complexity it
//! ranks the configured workers that qualify — best status first, then the score of the
//! capabilities the task type needs, then cost (unknown cost last), then id — and returns the
//! best, or says why there is none. Every routing flag of a profile is read here:
//! `requires_leader_review` (the assignment goes to leader review), `max_task_complexity`
//! (harder tasks are refused), `allow_codegen` (`codegen`, `test-generation` and `patch`),
//! `allow_patch` (`patch`).
//!
//! - A worker with no profile, an expired one, or one made with another suite hash is
//!   interviewed first ([`RouteOutcome::InterviewFirst`]) unless the caller skips interviews
//!   ([`InterviewPolicy::TreatAsLimited`]): it is then treated as `limited`.
//! - A `blocked` worker never gets work and is named in a warning. (A stale `blocked` profile
//!   is re-interviewed when interviews are allowed; otherwise it stays blocked.)
//! - A `limited` worker takes only low-risk task types at `low` complexity, and every output
//!   of its goes to leader review.
//! - With no qualified worker, the task goes to the leader or is unassigned, with the reason.

use std::cmp::Ordering;

use ao_core::profile::{
    TaskComplexity, WorkerCapabilityProfile, WorkerStatus, is_low_risk, required_capabilities,
    task_type_name,
};
use ao_core::timestamp::Timestamp;
use ao_core::types::TaskType;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A worker from the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfiguredWorker {
    /// `provider:model` or the configured name; profiles are matched by it.
    pub id: String,
    /// What the worker costs (any consistent unit, lower is cheaper); `None` when unknown.
    pub cost: Option<f64>,
}

/// What to do with a worker that has no current profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterviewPolicy {
    /// Interview it before it gets work (the default).
    InterviewFirst,
    /// Do not interview (`--no-interview`): treat it as `limited`.
    TreatAsLimited,
}

/// Where a task goes when no worker qualifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// The leader does it itself.
    Leader,
    /// It is reported unassigned.
    Unassigned,
}

/// Everything a routing decision depends on.
#[derive(Debug, Clone)]
pub struct RouteRequest<'a> {
    pub task_type: TaskType,
    pub complexity: TaskComplexity,
    pub workers: &'a [ConfiguredWorker],
    pub profiles: &'a [WorkerCapabilityProfile],
    /// The hash of the suite interviews run now; profiles from another are stale.
    pub suite_sha256: &'a str,
    pub now: Timestamp,
    pub interviews: InterviewPolicy,
    pub fallback: Fallback,
}

/// Why a worker's profile is not current.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ProfileState {
    Current,
    Missing,
    Expired,
    OtherSuite,
}

impl ProfileState {
    fn describe(self) -> &'static str {
        match self {
            ProfileState::Current => "current profile",
            ProfileState::Missing => "no profile",
            ProfileState::Expired => "expired profile",
            ProfileState::OtherSuite => "profile from another interview suite",
        }
    }
}

/// Whether a saved profile can be trusted at `now` by interviews made with the suite
/// `suite_sha256`.
pub fn profile_state(
    profile: Option<&WorkerCapabilityProfile>,
    now: Timestamp,
    suite_sha256: &str,
) -> ProfileState {
    match profile {
        None => ProfileState::Missing,
        Some(p) if p.is_expired(now) => ProfileState::Expired,
        Some(p) if p.suite.sha256 != suite_sha256 => ProfileState::OtherSuite,
        Some(_) => ProfileState::Current,
    }
}

/// A worker that may take the task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Candidate {
    pub worker_id: String,
    /// The status routing treats it with (`limited` for a worker without a current
    /// profile).
    pub status: WorkerStatus,
    /// The lowest score among the capabilities the task type needs (0 without a profile).
    pub score: f64,
    pub cost: Option<f64>,
    /// Its output must go to leader review.
    pub leader_review: bool,
    pub profile: ProfileState,
}

/// A worker that may not take the task, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Exclusion {
    pub worker_id: String,
    pub reason: String,
}

/// A worker to interview before routing again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InterviewNeed {
    pub worker_id: String,
    pub why: ProfileState,
}

/// What routing decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum RouteOutcome {
    /// Give the task to this worker.
    Assign {
        worker_id: String,
        leader_review: bool,
    },
    /// Interview these workers, save their profiles, and route again.
    InterviewFirst { worker_ids: Vec<String> },
    /// No worker qualifies: the leader does it.
    Leader { reason: String },
    /// No worker qualifies and the leader does not take it.
    Unassigned { reason: String },
}

/// The decision with everything that led to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RouteDecision {
    pub outcome: RouteOutcome,
    /// Qualified workers, best first.
    pub candidates: Vec<Candidate>,
    pub interview: Vec<InterviewNeed>,
    pub excluded: Vec<Exclusion>,
    /// For the run's record: blocked workers, named.
    pub warnings: Vec<String>,
}

fn complexity_name(c: TaskComplexity) -> &'static str {
    match c {
        TaskComplexity::Low => "low",
        TaskComplexity::Medium => "medium",
        TaskComplexity::High => "high",
    }
}

/// The score a profile earns for a task type: its weakest needed capability.
fn task_score(profile: &WorkerCapabilityProfile, task_type: TaskType) -> f64 {
    required_capabilities(task_type)
        .iter()
        .map(|c| profile.capabilities.get(c).map_or(0.0, |s| s.score))
        .fold(f64::INFINITY, f64::min)
        .clamp(0.0, 1.0)
}

/// Why a profile (taken at face value) may not take the task, or `None` when it may.
fn refusal(p: &WorkerCapabilityProfile, req: &RouteRequest<'_>, limited: bool) -> Option<String> {
    let t = req.task_type;
    let name = task_type_name(t);
    if limited && !is_low_risk(t) {
        return Some(format!(
            "limited workers take only low-risk task types, and {name} is not one"
        ));
    }
    if !p.is_qualified_for(t) {
        return Some(format!("not qualified for {name}"));
    }
    let needs_codegen = matches!(
        t,
        TaskType::Codegen | TaskType::TestGeneration | TaskType::Patch
    );
    if needs_codegen && !p.routing_policy.allow_codegen {
        return Some(format!("{name} needs codegen, and allow_codegen is false"));
    }
    if t == TaskType::Patch && !p.routing_policy.allow_patch {
        return Some("allow_patch is false".into());
    }
    let max = if limited {
        TaskComplexity::Low.min(p.routing_policy.max_task_complexity)
    } else {
        p.routing_policy.max_task_complexity
    };
    if req.complexity > max {
        return Some(format!(
            "the task is {} complexity, above its max_task_complexity {}",
            complexity_name(req.complexity),
            complexity_name(max)
        ));
    }
    None
}

/// Decides who takes a task (see the module doc for the rules).
pub fn route(req: &RouteRequest<'_>) -> RouteDecision {
    let mut candidates = Vec::new();
    let mut interview = Vec::new();
    let mut excluded = Vec::new();
    let mut warnings = Vec::new();
    let name = task_type_name(req.task_type);

    for w in req.workers {
        let profile = req.profiles.iter().rev().find(|p| p.worker_id == w.id);
        let state = profile_state(profile, req.now, req.suite_sha256);
        let exclude = |excluded: &mut Vec<Exclusion>, reason: String| {
            excluded.push(Exclusion {
                worker_id: w.id.clone(),
                reason,
            })
        };
        if state != ProfileState::Current && req.interviews == InterviewPolicy::InterviewFirst {
            interview.push(InterviewNeed {
                worker_id: w.id.clone(),
                why: state,
            });
            exclude(
                &mut excluded,
                format!("{}: interview it first", state.describe()),
            );
            continue;
        }
        if let Some(p) = profile
            && p.status == WorkerStatus::Blocked
        {
            warnings.push(format!(
                "worker {} is blocked by its interview of {} and gets no work",
                w.id, p.evaluated_at
            ));
            exclude(&mut excluded, "blocked".into());
            continue;
        }
        let limited = state != ProfileState::Current
            || profile.is_some_and(|p| p.status == WorkerStatus::Limited);
        let (score, leader_review) = match profile {
            // Without a profile the worker is unknown: low-risk, low-complexity work only.
            None => {
                if !is_low_risk(req.task_type) {
                    exclude(
                        &mut excluded,
                        format!(
                            "no profile (treated as limited), and {name} is not a low-risk task type"
                        ),
                    );
                    continue;
                }
                if req.complexity > TaskComplexity::Low {
                    exclude(
                        &mut excluded,
                        format!(
                            "no profile (treated as limited), and the task is {} complexity",
                            complexity_name(req.complexity)
                        ),
                    );
                    continue;
                }
                (0.0, true)
            }
            Some(p) => {
                if let Some(why) = refusal(p, req, limited) {
                    let why = if state == ProfileState::Current {
                        why
                    } else {
                        format!("{} (treated as limited): {why}", state.describe())
                    };
                    exclude(&mut excluded, why);
                    continue;
                }
                (
                    task_score(p, req.task_type),
                    limited || p.routing_policy.requires_leader_review,
                )
            }
        };
        candidates.push(Candidate {
            worker_id: w.id.clone(),
            status: if limited {
                WorkerStatus::Limited
            } else {
                WorkerStatus::Active
            },
            score,
            cost: w.cost,
            leader_review,
            profile: state,
        });
    }

    candidates.sort_by(|a, b| {
        a.status
            .cmp(&b.status)
            .then(b.score.partial_cmp(&a.score).unwrap_or(Ordering::Equal))
            .then(match (a.cost, b.cost) {
                (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            })
            .then(a.worker_id.cmp(&b.worker_id))
    });

    let outcome = if !interview.is_empty() {
        RouteOutcome::InterviewFirst {
            worker_ids: interview.iter().map(|i| i.worker_id.clone()).collect(),
        }
    } else if let Some(best) = candidates.first() {
        RouteOutcome::Assign {
            worker_id: best.worker_id.clone(),
            leader_review: best.leader_review,
        }
    } else {
        let reason = if req.workers.is_empty() {
            format!("no worker qualifies for {name}: no workers are configured")
        } else {
            let each: Vec<String> = excluded
                .iter()
                .map(|e| format!("{}: {}", e.worker_id, e.reason))
                .collect();
            format!(
                "no worker qualifies for {name} at {} complexity ({})",
                complexity_name(req.complexity),
                each.join("; ")
            )
        };
        match req.fallback {
            Fallback::Leader => RouteOutcome::Leader { reason },
            Fallback::Unassigned => RouteOutcome::Unassigned { reason },
        }
    };
    RouteDecision {
        outcome,
        candidates,
        interview,
        excluded,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ao_core::profile::{
        ALL_TASK_TYPES, Capability, CapabilityScore, ProfileMetrics, RoutingPolicy, SuiteRef,
    };
    use std::collections::BTreeMap;

    const SUITE: &str = "current-suite-hash";

    fn now() -> Timestamp {
        "2025-03-10T00:00:00Z".parse().unwrap()
    }

    /// An active profile qualified for everything, scoring `score` on every capability.
    fn profile(id: &str, score: f64) -> WorkerCapabilityProfile {
        let capabilities = Capability::ALL
            .iter()
            .map(|c| {
                (
                    *c,
                    CapabilityScore {
                        score,
                        cases: 3,
                        trials: 9,
                        pass_rate: 1.0,
                        consistency: 1.0,
                    },
                )
            })
            .collect::<BTreeMap<_, _>>();
        WorkerCapabilityProfile {
            worker_id: id.into(),
            provider: "litellm".into(),
            model: id.into(),
            base_url_host: None,
            status: WorkerStatus::Active,
            capabilities,
            metrics: ProfileMetrics {
                validity: 1.0,
                schema_compliance: 1.0,
                correctness: 1.0,
                brier: Some(0.01),
                latency_p50_ms: 1,
                latency_p95_ms: 1,
                tokens: None,
            },
            qualified_task_types: ALL_TASK_TYPES.to_vec(),
            routing_policy: RoutingPolicy {
                requires_leader_review: false,
                max_task_complexity: TaskComplexity::High,
                allow_codegen: true,
                allow_patch: true,
            },
            reasons: Vec::new(),
            recommended_actions: Vec::new(),
            suite: SuiteRef {
                name: "worker-interview".into(),
                version: "1".into(),
                sha256: SUITE.into(),
            },
            evaluated_at: "2025-03-01T00:00:00Z".parse().unwrap(),
            expires_at: "2025-03-31T00:00:00Z".parse().unwrap(),
            inconclusive: 0,
        }
    }

    fn worker(id: &str, cost: Option<f64>) -> ConfiguredWorker {
        ConfiguredWorker {
            id: id.into(),
            cost,
        }
    }

    fn decide(
        task_type: TaskType,
        complexity: TaskComplexity,
        workers: &[ConfiguredWorker],
        profiles: &[WorkerCapabilityProfile],
        interviews: InterviewPolicy,
    ) -> RouteDecision {
        route(&RouteRequest {
            task_type,
            complexity,
            workers,
            profiles,
            suite_sha256: SUITE,
            now: now(),
            interviews,
            fallback: Fallback::Leader,
        })
    }

    fn assigned(d: &RouteDecision) -> Option<(&str, bool)> {
        match &d.outcome {
            RouteOutcome::Assign {
                worker_id,
                leader_review,
            } => Some((worker_id.as_str(), *leader_review)),
            _ => None,
        }
    }

    use InterviewPolicy::{InterviewFirst, TreatAsLimited};
    use TaskComplexity::{High, Low, Medium};

    #[test]
    fn candidates_rank_by_status_then_score_then_cost() {
        let mut limited = profile("limited", 0.99);
        limited.status = WorkerStatus::Limited;
        let profiles = [
            profile("cheap", 0.8),
            profile("dear", 0.8),
            profile("best", 0.9),
            profile("unpriced", 0.8),
            limited,
        ];
        let workers = [
            worker("unpriced", None),
            worker("dear", Some(10.0)),
            worker("limited", Some(0.0)),
            worker("cheap", Some(1.0)),
            worker("best", Some(50.0)),
        ];
        let d = decide(
            TaskType::Summarization,
            Low,
            &workers,
            &profiles,
            InterviewFirst,
        );
        let order: Vec<&str> = d.candidates.iter().map(|c| c.worker_id.as_str()).collect();
        assert_eq!(order, ["best", "cheap", "dear", "unpriced", "limited"]);
        assert_eq!(assigned(&d), Some(("best", false)));
    }

    #[test]
    fn blocked_workers_never_get_work_and_are_named() {
        let mut blocked = profile("bad", 1.0);
        blocked.status = WorkerStatus::Blocked;
        let d = decide(
            TaskType::Summarization,
            Low,
            &[worker("bad", Some(0.0)), worker("ok", Some(9.0))],
            &[blocked.clone(), profile("ok", 0.5)],
            InterviewFirst,
        );
        assert_eq!(assigned(&d), Some(("ok", false)));
        assert_eq!(d.warnings.len(), 1);
        assert!(
            d.warnings[0].contains("worker bad is blocked"),
            "{:?}",
            d.warnings
        );
        let alone = decide(
            TaskType::Summarization,
            Low,
            &[worker("bad", None)],
            &[blocked],
            TreatAsLimited,
        );
        match &alone.outcome {
            RouteOutcome::Leader { reason } => assert!(reason.contains("bad: blocked"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn limited_workers_get_only_low_risk_types_and_always_review() {
        let mut p = profile("lim", 0.9);
        p.status = WorkerStatus::Limited;
        p.routing_policy.requires_leader_review = false; // the status alone forces review
        let d = decide(
            TaskType::LogAnalysis,
            Low,
            &[worker("lim", None)],
            &[p.clone()],
            InterviewFirst,
        );
        assert_eq!(assigned(&d), Some(("lim", true)));
        let d = decide(
            TaskType::Codegen,
            Low,
            &[worker("lim", None)],
            &[p.clone()],
            InterviewFirst,
        );
        assert_eq!(assigned(&d), None);
        assert!(
            d.excluded[0].reason.contains("low-risk"),
            "{:?}",
            d.excluded
        );
        let d = decide(
            TaskType::LogAnalysis,
            Medium,
            &[worker("lim", None)],
            &[p],
            InterviewFirst,
        );
        assert_eq!(
            assigned(&d),
            None,
            "limited workers take low complexity only"
        );
    }

    #[test]
    fn an_unknown_worker_is_interviewed_first_unless_told_not_to() {
        let d = decide(
            TaskType::Summarization,
            Low,
            &[worker("new", None), worker("known", None)],
            &[profile("known", 0.9)],
            InterviewFirst,
        );
        assert_eq!(
            d.outcome,
            RouteOutcome::InterviewFirst {
                worker_ids: vec!["new".into()]
            }
        );
        assert_eq!(d.interview[0].why, ProfileState::Missing);
        let d = decide(
            TaskType::Summarization,
            Low,
            &[worker("new", None)],
            &[],
            TreatAsLimited,
        );
        assert_eq!(assigned(&d), Some(("new", true)));
        assert_eq!(d.candidates[0].status, WorkerStatus::Limited);
        let d = decide(
            TaskType::Patch,
            Low,
            &[worker("new", None)],
            &[],
            TreatAsLimited,
        );
        assert_eq!(assigned(&d), None, "an unknown worker gets no risky work");
    }

    #[test]
    fn expired_or_other_suite_profiles_are_re_interviewed() {
        let expired = {
            let mut p = profile("old", 0.9);
            p.expires_at = now();
            p
        };
        let other = {
            let mut p = profile("other", 0.9);
            p.suite.sha256 = "another-hash".into();
            p
        };
        let workers = [worker("old", None), worker("other", None)];
        let profiles = [expired, other];
        let d = decide(
            TaskType::Summarization,
            Low,
            &workers,
            &profiles,
            InterviewFirst,
        );
        let whys: Vec<_> = d
            .interview
            .iter()
            .map(|i| (i.worker_id.as_str(), i.why))
            .collect();
        assert_eq!(
            whys,
            [
                ("old", ProfileState::Expired),
                ("other", ProfileState::OtherSuite)
            ]
        );
        // Without interviews, stale profiles count as limited: low-risk only, with review.
        let d = decide(
            TaskType::Summarization,
            Low,
            &workers,
            &profiles,
            TreatAsLimited,
        );
        assert_eq!(d.candidates.len(), 2);
        assert!(
            d.candidates
                .iter()
                .all(|c| c.leader_review && c.status == WorkerStatus::Limited)
        );
        let d = decide(TaskType::Codegen, Low, &workers, &profiles, TreatAsLimited);
        assert_eq!(assigned(&d), None);
    }

    #[test]
    fn every_routing_flag_changes_a_decision() {
        let w = [worker("w", None)];
        // requires_leader_review
        let mut p = profile("w", 0.9);
        assert_eq!(
            assigned(&decide(
                TaskType::Summarization,
                Low,
                &w,
                &[p.clone()],
                InterviewFirst
            )),
            Some(("w", false))
        );
        p.routing_policy.requires_leader_review = true;
        assert_eq!(
            assigned(&decide(
                TaskType::Summarization,
                Low,
                &w,
                &[p],
                InterviewFirst
            )),
            Some(("w", true))
        );
        // max_task_complexity
        let mut p = profile("w", 0.9);
        assert!(
            assigned(&decide(
                TaskType::ReviewLite,
                High,
                &w,
                &[p.clone()],
                InterviewFirst
            ))
            .is_some()
        );
        p.routing_policy.max_task_complexity = Medium;
        let d = decide(TaskType::ReviewLite, High, &w, &[p.clone()], InterviewFirst);
        assert!(assigned(&d).is_none());
        assert!(
            d.excluded[0]
                .reason
                .contains("above its max_task_complexity medium")
        );
        assert!(
            assigned(&decide(
                TaskType::ReviewLite,
                Medium,
                &w,
                &[p],
                InterviewFirst
            ))
            .is_some()
        );
        // allow_codegen: keeps codegen (and test generation, and patches) away
        let mut p = profile("w", 0.9);
        assert!(
            assigned(&decide(
                TaskType::Codegen,
                Low,
                &w,
                &[p.clone()],
                InterviewFirst
            ))
            .is_some()
        );
        p.routing_policy.allow_codegen = false;
        for t in [TaskType::Codegen, TaskType::TestGeneration, TaskType::Patch] {
            let d = decide(t, Low, &w, &[p.clone()], InterviewFirst);
            assert!(assigned(&d).is_none(), "{t:?}");
            assert!(d.excluded[0].reason.contains("allow_codegen is false"));
        }
        assert!(
            assigned(&decide(
                TaskType::Summarization,
                Low,
                &w,
                &[p],
                InterviewFirst
            ))
            .is_some()
        );
        // allow_patch
        let mut p = profile("w", 0.9);
        assert!(
            assigned(&decide(
                TaskType::Patch,
                Low,
                &w,
                &[p.clone()],
                InterviewFirst
            ))
            .is_some()
        );
        p.routing_policy.allow_patch = false;
        let d = decide(TaskType::Patch, Low, &w, &[p.clone()], InterviewFirst);
        assert!(assigned(&d).is_none());
        assert!(d.excluded[0].reason.contains("allow_patch is false"));
        assert!(assigned(&decide(TaskType::Codegen, Low, &w, &[p], InterviewFirst)).is_some());
    }

    #[test]
    fn an_unqualified_task_type_is_refused_even_for_an_active_worker() {
        let mut p = profile("w", 0.9);
        p.qualified_task_types
            .retain(|t| *t != TaskType::LogAnalysis);
        let d = decide(
            TaskType::LogAnalysis,
            Low,
            &[worker("w", None)],
            &[p],
            InterviewFirst,
        );
        assert!(assigned(&d).is_none());
        assert!(
            d.excluded[0]
                .reason
                .contains("not qualified for log-analysis")
        );
    }

    #[test]
    fn no_qualified_worker_goes_to_the_leader_or_is_unassigned_with_the_reason() {
        let mut p = profile("w", 0.9);
        p.routing_policy.allow_codegen = false;
        let workers = [worker("w", None)];
        let profiles = [p];
        let mut req = RouteRequest {
            task_type: TaskType::Codegen,
            complexity: Low,
            workers: &workers,
            profiles: &profiles,
            suite_sha256: SUITE,
            now: now(),
            interviews: InterviewFirst,
            fallback: Fallback::Leader,
        };
        match route(&req).outcome {
            RouteOutcome::Leader { reason } => {
                assert_eq!(
                    reason,
                    "no worker qualifies for codegen at low complexity (w: codegen needs \
                     codegen, and allow_codegen is false)"
                );
            }
            other => panic!("{other:?}"),
        }
        req.fallback = Fallback::Unassigned;
        assert!(matches!(
            route(&req).outcome,
            RouteOutcome::Unassigned { .. }
        ));
        req.workers = &[];
        match route(&req).outcome {
            RouteOutcome::Unassigned { reason } => {
                assert!(reason.contains("no workers are configured"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_score_is_that_of_the_weakest_needed_capability() {
        let mut a = profile("a", 0.9);
        a.capabilities.get_mut(&Capability::Review).unwrap().score = 0.1;
        let b = profile("b", 0.5);
        let workers = [worker("a", None), worker("b", None)];
        let profiles = [a, b];
        // Review-lite needs review: a's weak review ranks it below b.
        let d = decide(
            TaskType::ReviewLite,
            Low,
            &workers,
            &profiles,
            InterviewFirst,
        );
        assert_eq!(assigned(&d), Some(("b", false)));
        // Log analysis does not: a wins.
        let d = decide(
            TaskType::LogAnalysis,
            Low,
            &workers,
            &profiles,
            InterviewFirst,
        );
        assert_eq!(assigned(&d), Some(("a", false)));
    }
}
