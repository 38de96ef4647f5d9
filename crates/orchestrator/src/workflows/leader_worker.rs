//! The deterministic pieces of the `leader-worker` workflow, as `builtin` nodes any workflow
//! may use:
//!
//! | name | `with:` | writes |
//! |---|---|---|
//! | `assign_steps` | `plan` (a `Plan`), `routing` (a `route_steps` output) | `{steps, skipped, assignments}` |
//! | `leader_worker_report` | see [`ReportWith`] | a `LeaderWorkerReport` |
//!
//! `assign_steps` joins a plan's steps with routing's decision for each: every step that
//! someone takes gets the `role` an `llm` node calls for it (`role: "{{ item.role }}"`: the
//! worker's id, or `leader`), `leader_review` and the `routing_reason`. A step nobody takes
//! (routing left it unassigned, or still waits for an interview) is `skipped` with the reason,
//! and so is every step that depends on a skipped one, directly or not. Two steps with the same
//! id: the second is renamed (`s1-2`) with a warning, so `depends_on` stays unambiguous.

use super::nodes::{bad, short};
use ao_core::types::{
    Confidence, LeaderDecision, LeaderWorkerReport, Plan, PlanStep, StepOutcome, StepResult,
    UsageSummary, ValidationResult, WorkStatus, WorkerStepReply,
};
use ao_graph::{EventKind, NodeCall, NodeFailure};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// `assign_steps`: see the module's documentation.
pub fn assign_steps_node(call: &NodeCall<'_>, with: &Value) -> Result<Value, NodeFailure> {
    const NODE: &str = "assign_steps";
    let plan: Plan = serde_json::from_value(with.get("plan").cloned().unwrap_or_default())
        .map_err(|e| bad(NODE, format!("`with.plan` is not a Plan: {e}")))?;
    let routed = with
        .get("routing")
        .and_then(|r| r.get("steps"))
        .and_then(Value::as_array)
        .ok_or_else(|| {
            bad(
                NODE,
                format!(
                    "`with.routing` must be a route_steps output (with `steps`), got {}",
                    short(with.get("routing"))
                ),
            )
        })?;
    let mut by_id: BTreeMap<&str, &Value> = BTreeMap::new();
    for r in routed {
        if let Some(id) = r.get("step_id").and_then(Value::as_str) {
            by_id.entry(id).or_insert(r);
        }
    }
    let warn = |message: String| {
        if call.attempt == 1 {
            call.events.emit(EventKind::Warning {
                node: Some(call.node.to_string()),
                message,
            });
        }
    };

    // Unique ids, in plan order.
    let mut seen = BTreeSet::new();
    let mut steps: Vec<(PlanStep, Option<&Value>)> = Vec::with_capacity(plan.steps.len());
    for step in plan.steps {
        let mut step = step;
        // A renamed duplicate has no routing decision of its own: it is skipped rather than
        // given its namesake's worker (which was judged fit for the other step).
        let routing = if seen.contains(&step.id) {
            None
        } else {
            by_id.get(step.id.as_str()).copied()
        };
        if !seen.insert(step.id.clone()) {
            let mut n = 2;
            while seen.contains(&format!("{}-{n}", step.id)) {
                n += 1;
            }
            let renamed = format!("{}-{n}", step.id);
            warn(format!(
                "the plan has two steps `{}`; the second (\"{}\") is `{renamed}`",
                step.id, step.title
            ));
            seen.insert(renamed.clone());
            step.id = renamed;
        }
        steps.push((step, routing));
    }

    // Who takes each step, or why nobody does.
    let mut taken: Vec<Value> = Vec::new();
    let mut skipped: Vec<Value> = Vec::new();
    let mut assignments: Vec<Value> = Vec::new();
    let mut skipped_ids: BTreeSet<String> = BTreeSet::new();
    let mut decided: Vec<(PlanStep, Decided)> = Vec::new();
    for (step, routing) in steps {
        let outcome = match routing {
            None => Err(format!(
                "routing has no decision for step `{}` (it was not routed)",
                step.id
            )),
            Some(r) => decide(r),
        };
        decided.push((step, outcome));
    }
    // A step that depends on a skipped one is skipped too (in plan order, repeated until
    // nothing changes, so chains of any length and any order are followed).
    let mut changed = true;
    while changed {
        changed = false;
        for (step, outcome) in &mut decided {
            if outcome.is_err() {
                if skipped_ids.insert(step.id.clone()) {
                    changed = true;
                }
                continue;
            }
            if let Some(dep) = step.depends_on.iter().find(|d| skipped_ids.contains(*d)) {
                *outcome = Err(format!("it depends on `{dep}`, which nobody does"));
                skipped_ids.insert(step.id.clone());
                changed = true;
            }
        }
    }
    for (step, outcome) in decided {
        match outcome {
            Ok((role, leader_review, reason)) => {
                assignments.push(json!({"step_id": step.id, "worker": role, "reason": reason}));
                let mut v = serde_json::to_value(&step).map_err(|e| bad(NODE, e))?;
                v["role"] = Value::String(role);
                v["leader_review"] = Value::Bool(leader_review);
                v["routing_reason"] = Value::String(reason);
                taken.push(v);
            }
            Err(reason) => {
                assignments
                    .push(json!({"step_id": step.id, "worker": "unassigned", "reason": reason}));
                skipped.push(json!({"id": step.id, "title": step.title, "reason": reason}));
            }
        }
    }
    Ok(json!({"steps": taken, "skipped": skipped, "assignments": assignments}))
}

/// One routed step's decision: `Ok((role, leader_review, reason))` or `Err(why nobody)`.
type Decided = Result<(String, bool, String), String>;

fn decide(r: &Value) -> Decided {
    let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
    match text("decision") {
        "assign" => {
            let worker = text("worker_id").to_string();
            let leader_review = r
                .get("leader_review")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            let best = r.get("candidates").and_then(Value::as_array).and_then(|c| {
                c.iter()
                    .find(|c| c.get("worker_id").and_then(Value::as_str) == Some(&worker))
            });
            let mut reason = match best {
                Some(c) => format!(
                    "{} for {} ({} complexity), score {:.2}{}",
                    c.get("status")
                        .and_then(Value::as_str)
                        .unwrap_or("qualified"),
                    text("task_type"),
                    text("complexity"),
                    c.get("score").and_then(Value::as_f64).unwrap_or(0.0),
                    match c.get("profile").and_then(Value::as_str) {
                        Some("current") | None => String::new(),
                        Some(state) => format!(
                            " (profile {}: `ao worker interview --worker {worker} --save` measures it)",
                            state.replace('-', " ")
                        ),
                    }
                ),
                None => format!("routed for {}", text("task_type")),
            };
            if leader_review {
                reason.push_str("; the leader reviews its output");
            }
            if worker.is_empty() {
                return Err("routing assigned the step to no worker".into());
            }
            Ok((worker, leader_review, reason))
        }
        "leader" => Ok(("leader".into(), false, text("reason").to_string())),
        "unassigned" => Err(text("reason").to_string()),
        "interview-first" => {
            let ids: Vec<&str> = r
                .get("worker_ids")
                .and_then(Value::as_array)
                .map(|w| w.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            Err(format!(
                "it waits for the interview of {}",
                if ids.is_empty() {
                    "a worker".into()
                } else {
                    ids.join(", ")
                }
            ))
        }
        other => Err(format!("routing gave an unknown decision `{other}`")),
    }
}

/// `leader_worker_report`'s `with:`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportWith {
    goal: String,
    plan: Plan,
    /// `assign_steps`' output.
    work: Value,
    /// Step id → the worker's last `WorkerStepReply`.
    #[serde(default)]
    results: Option<BTreeMap<String, Value>>,
    /// The ids of every wave's steps, one entry per time a step ran.
    #[serde(default)]
    worked: Option<Vec<String>>,
    /// The leader's notes sent back with `revise`: `[{step_id, notes}]`, oldest first.
    #[serde(default)]
    notes: Option<Vec<Value>>,
    /// Every decision the leader made, oldest first.
    decisions: Vec<LeaderDecision>,
    /// A person's answer to `human-review` (true accepts), if one was asked.
    #[serde(default)]
    answer: Option<Value>,
    /// How many times the leader could send steps back.
    #[serde(default)]
    max_rounds: Option<u32>,
    /// `run_changeset`'s output.
    #[serde(default)]
    changes: Option<Value>,
    #[serde(default)]
    validation: Option<Vec<ValidationResult>>,
    #[serde(default)]
    warnings: Option<Vec<String>>,
    usage: UsageSummary,
}

/// `leader_worker_report`: the `LeaderWorkerReport` from what the run did.
pub fn leader_worker_report_node(_call: &NodeCall<'_>, with: &Value) -> Result<Value, NodeFailure> {
    const NODE: &str = "leader_worker_report";
    let w: ReportWith = serde_json::from_value(with.clone()).map_err(|e| bad(NODE, e))?;
    let results = w.results.unwrap_or_default();
    let worked = w.worked.unwrap_or_default();
    let notes = w.notes.unwrap_or_default();
    let taken: BTreeMap<&str, &Value> = w
        .work
        .get("steps")
        .and_then(Value::as_array)
        .map(|s| {
            s.iter()
                .filter_map(|s| Some((s.get("id")?.as_str()?, s)))
                .collect()
        })
        .unwrap_or_default();
    let skipped: BTreeMap<&str, &str> = w
        .work
        .get("skipped")
        .and_then(Value::as_array)
        .map(|s| {
            s.iter()
                .filter_map(|s| {
                    Some((
                        s.get("id")?.as_str()?,
                        s.get("reason").and_then(Value::as_str).unwrap_or_default(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    // Plan order; a renamed duplicate (`assign_steps`) follows its original.
    let mut order: Vec<(String, String)> = Vec::new();
    for s in &w.plan.steps {
        order.push((s.id.clone(), s.title.clone()));
    }
    for (id, s) in &taken {
        if !order.iter().any(|(o, _)| o == id) {
            let title = s.get("title").and_then(Value::as_str).unwrap_or_default();
            order.push(((*id).to_string(), title.to_string()));
        }
    }
    let mut listed = BTreeSet::new();
    let mut steps = Vec::new();
    for (id, title) in order {
        if !listed.insert(id.clone()) {
            continue;
        }
        let attempts = worked.iter().filter(|w| **w == id).count() as u32;
        let leader_notes: Vec<String> = notes
            .iter()
            .filter(|n| n.get("step_id").and_then(Value::as_str) == Some(&id))
            .filter_map(|n| n.get("notes").and_then(Value::as_str).map(str::to_string))
            .collect();
        let outcome = match (taken.get(id.as_str()), results.get(&id)) {
            (Some(step), reply) => {
                let text = |k: &str| step.get(k).and_then(Value::as_str).unwrap_or_default();
                let reply: Option<WorkerStepReply> =
                    reply.and_then(|r| serde_json::from_value(r.clone()).ok());
                let (result, summary, files, confidence, worker_notes) = match reply {
                    Some(r) => (
                        match r.status {
                            WorkStatus::Done => StepResult::Done,
                            WorkStatus::Partial => StepResult::Partial,
                            WorkStatus::Blocked => StepResult::Blocked,
                        },
                        r.summary,
                        r.files_touched,
                        Some(r.confidence),
                        r.notes,
                    ),
                    None => (
                        if attempts > 0 {
                            StepResult::Failed
                        } else {
                            StepResult::Skipped
                        },
                        String::new(),
                        Vec::new(),
                        None::<Confidence>,
                        Vec::new(),
                    ),
                };
                StepOutcome {
                    step_id: id.clone(),
                    title: if title.is_empty() {
                        text("title").to_string()
                    } else {
                        title
                    },
                    worker: text("role").to_string(),
                    routing_reason: text("routing_reason").to_string(),
                    result,
                    summary,
                    files_touched: files,
                    confidence,
                    notes: worker_notes,
                    leader_notes,
                    attempts,
                }
            }
            (None, _) => StepOutcome {
                step_id: id.clone(),
                title,
                worker: String::new(),
                routing_reason: skipped
                    .get(id.as_str())
                    .copied()
                    .unwrap_or("not routed")
                    .to_string(),
                result: StepResult::Skipped,
                summary: String::new(),
                files_touched: Vec::new(),
                confidence: None,
                notes: Vec::new(),
                leader_notes,
                attempts,
            },
        };
        steps.push(outcome);
    }
    let mut decision = w
        .decisions
        .last()
        .cloned()
        .ok_or_else(|| bad(NODE, "`with.decisions` is empty: the leader never decided"))?;
    let mut warnings = w.warnings.unwrap_or_default();
    // A person's answer to `human-review` is the last word.
    let human_answer = w
        .answer
        .as_ref()
        .filter(|a| !a.is_null())
        .map(|a| a.as_bool().unwrap_or(false));
    match human_answer {
        Some(true) => {
            decision = LeaderDecision {
                decision: ao_core::types::DecisionKind::Approve,
                reason: format!(
                    "a person accepted the change when the leader asked: {} (the leader: {})",
                    decision.question.as_deref().unwrap_or("no question"),
                    decision.reason
                ),
                revisions: Vec::new(),
                question: None,
            };
        }
        Some(false) => warnings.push(format!(
            "a person did not accept the change when the leader asked: {}",
            decision.question.as_deref().unwrap_or("no question")
        )),
        None => {}
    }
    if decision.decision == ao_core::types::DecisionKind::Revise {
        let named: Vec<&str> = decision
            .revisions
            .iter()
            .map(|r| r.step_id.as_str())
            .collect();
        warnings.push(format!(
            "the leader still asked to revise {} after {} review round(s) (max_rounds {}); the changeset holds the last attempt",
            if named.is_empty() { "the change".to_string() } else { named.join(", ") },
            w.decisions.len(),
            w.max_rounds.map_or("?".to_string(), |m| m.to_string())
        ));
    }
    let changes = w.changes.unwrap_or(Value::Null);
    let report = LeaderWorkerReport {
        goal: w.goal,
        plan_summary: w.plan.summary,
        steps,
        decision,
        review_rounds: w.decisions.len() as u32,
        human_answer,
        changeset: changes
            .get("patch")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        applied: changes
            .get("applied")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        validation: w.validation.unwrap_or_default(),
        warnings,
        usage: w.usage,
    };
    serde_json::to_value(report).map_err(|e| bad(NODE, e))
}
