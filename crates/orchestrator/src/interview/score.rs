//! Judging an interview: from trial records to a capability profile.
//!
//! Three things are measured apart and never mixed: **validity** (the reply parsed as JSON at
//! all), **schema compliance** (it matched the case's output schema) and **correctness** (it
//! passed every deterministic check). A trial *passes* when all three hold. Calibration is the
//! Brier score of stated confidence against correctness; a wrong answer to an unanswerable
//! case given with confidence at or above [`OVERCONFIDENT_AT`] is over-confidence and is named.
//!
//! Harness failures (the endpoint down, a timeout, 5xx/429 after retries) make a trial
//! *inconclusive*: it counts neither for nor against the worker. When more than
//! [`MAX_INCONCLUSIVE_SHARE`] of the trials are inconclusive the interview measured the
//! endpoint, not the model, and the verdict is [`InterviewOutcome::HarnessFailure`]: the
//! caller reports the endpoint and saves nothing.
//!
//! The status thresholds below are the documented contract (docs/decisions.md, "Worker
//! interviews"); tests hold each one at its edge.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use ao_core::profile::{
    ALL_TASK_TYPES, Capability, CapabilityScore, ProfileMetrics, RoutingPolicy, TaskComplexity,
    WorkerCapabilityProfile, WorkerStatus, base_url_host, is_low_risk, required_capabilities,
    task_type_name,
};
use ao_core::timestamp::Timestamp;
use ao_core::types::TaskType;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::suite::{Case, Suite};
use super::trial::{HarnessErrorKind, TrialOutcome, TrialRecord};

/// More inconclusive trials than this share (strictly more) make the interview a harness
/// failure.
pub const MAX_INCONCLUSIVE_SHARE: f64 = 0.10;

/// Blocked when fewer than this share of replies parse as JSON.
pub const BLOCKED_BELOW_VALIDITY: f64 = 0.80;
/// Blocked when fewer than this share of replies match their schema.
pub const BLOCKED_BELOW_SCHEMA_COMPLIANCE: f64 = 0.70;
/// Blocked when fewer than this share of the structured-output trials pass.
pub const BLOCKED_BELOW_STRUCTURED_OUTPUT_PASS_RATE: f64 = 0.50;
/// Blocked when fewer than this share of replies pass their checks.
pub const BLOCKED_BELOW_CORRECTNESS: f64 = 0.40;

/// Active needs at least this validity…
pub const ACTIVE_MIN_VALIDITY: f64 = 0.95;
/// …this schema compliance…
pub const ACTIVE_MIN_SCHEMA_COMPLIANCE: f64 = 0.95;
/// …this correctness…
pub const ACTIVE_MIN_CORRECTNESS: f64 = 0.80;
/// …this consistency (share of cases whose trials all agree)…
pub const ACTIVE_MIN_CONSISTENCY: f64 = 0.80;
/// …a Brier score at most this…
pub const ACTIVE_MAX_BRIER: f64 = 0.20;
/// …and over-confidence on at most this share of the unanswerable trials.
pub const ACTIVE_MAX_OVERCONFIDENT_SHARE: f64 = 0.25;

/// A wrong answer to an unanswerable case stated with at least this confidence is
/// over-confidence.
pub const OVERCONFIDENT_AT: f64 = 0.70;

/// A capability is passed when at least this share of its trials pass (and no critical check
/// failed in any of them).
pub const QUALIFY_MIN_PASS_RATE: f64 = 0.75;

/// An active worker may take `high` complexity tasks when its correctness and consistency
/// reach these; otherwise at most `medium`. Limited and blocked workers: `low`.
pub const HIGH_COMPLEXITY_MIN_CORRECTNESS: f64 = 0.90;
pub const HIGH_COMPLEXITY_MIN_CONSISTENCY: f64 = 0.90;

/// How long a profile is trusted before routing asks for a new interview.
pub const DEFAULT_PROFILE_LIFETIME: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The worker being interviewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerIdentity {
    /// `provider:model` or the configured name.
    pub worker_id: String,
    pub provider: String,
    pub model: String,
    /// The endpoint's base URL, if not the provider's default. Only its host is kept.
    pub base_url: Option<String>,
}

impl WorkerIdentity {
    /// How the endpoint is named in messages: its host, or the provider's default.
    pub fn endpoint(&self) -> String {
        match self.base_url.as_deref().and_then(base_url_host) {
            Some(host) => host,
            None => format!("the default {} endpoint", self.provider),
        }
    }
}

/// How one reply fared.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialGrade {
    pub parsed: bool,
    pub schema_ok: bool,
    pub schema_errors: Vec<String>,
    /// (check index, what was found) for each failed check.
    pub failed_checks: Vec<(usize, String)>,
    /// Whether a critical check failed.
    pub critical_failed: bool,
    /// The stated `confidence`, when it is a number in [0, 1].
    pub confidence: Option<f64>,
    /// Parsed and every check passed.
    pub correct: bool,
    /// Parsed, schema-valid and correct.
    pub passed: bool,
    /// Partial credit in [0, 1]: schema compliance and each check count one part.
    pub score: f64,
}

/// Parses a reply: the whole text must be one JSON value, optionally inside a single
/// Markdown code fence. JSON buried in prose does not count: the worker was asked for JSON
/// only.
pub fn parse_reply(text: &str) -> Option<Value> {
    let t = text.trim();
    if let Ok(v) = serde_json::from_str::<Value>(t) {
        return Some(v);
    }
    let rest = t.strip_prefix("```")?;
    let newline = rest.find('\n')?;
    let lang = rest[..newline].trim();
    if !lang.is_empty() && !lang.eq_ignore_ascii_case("json") {
        return None;
    }
    let body = rest[newline + 1..].trim_end().strip_suffix("```")?;
    serde_json::from_str(body).ok()
}

/// Judges one reply to one case.
pub fn grade_reply(case: &Case, text: &str) -> TrialGrade {
    let Some(value) = parse_reply(text) else {
        return TrialGrade {
            parsed: false,
            schema_ok: false,
            schema_errors: vec!["the reply is not JSON".into()],
            failed_checks: Vec::new(),
            critical_failed: false,
            confidence: None,
            correct: false,
            passed: false,
            score: 0.0,
        };
    };
    let schema_errors = case.schema_errors(&value);
    let schema_ok = schema_errors.is_empty();
    let mut failed_checks = Vec::new();
    let mut critical_failed = false;
    for (i, check) in case.checks().iter().enumerate() {
        let r = check.evaluate(&value);
        if !r.passed {
            critical_failed |= check.is_critical();
            failed_checks.push((i, r.detail));
        }
    }
    let n = case.checks().len();
    let correct = failed_checks.is_empty();
    let parts = 1 + n;
    let earned = usize::from(schema_ok) + (n - failed_checks.len());
    let confidence = value
        .get("confidence")
        .and_then(Value::as_f64)
        .filter(|c| (0.0..=1.0).contains(c));
    TrialGrade {
        parsed: true,
        schema_ok,
        schema_errors,
        failed_checks,
        critical_failed,
        confidence,
        correct,
        passed: schema_ok && correct,
        score: earned as f64 / parts as f64,
    }
}

/// What happened to one case across its trials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseReport {
    pub id: String,
    pub capability: Capability,
    pub answerable: bool,
    /// Conclusive trials.
    pub trials: u32,
    pub inconclusive: u32,
    pub valid: u32,
    pub schema_ok: u32,
    pub correct: u32,
    pub passed: u32,
    /// Wrong answers to an unanswerable case given with high confidence.
    pub overconfident: u32,
    pub latency_p50_ms: Option<u64>,
    pub latency_p95_ms: Option<u64>,
    /// Mean tokens per reply, when reported.
    pub tokens: Option<u64>,
    /// What went wrong, one line per distinct problem (`trial 2: /line is 41, expected 42`).
    pub failures: Vec<String>,
}

/// A judged interview: the profile and the per-case detail behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InterviewReport {
    pub profile: WorkerCapabilityProfile,
    pub cases: Vec<CaseReport>,
}

/// The endpoint failed too often for the interview to say anything about the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HarnessFailure {
    pub worker_id: String,
    /// The endpoint's host, or the provider's default endpoint.
    pub endpoint: String,
    pub inconclusive: u32,
    pub total: u32,
    /// How many trials failed which way.
    pub kinds: BTreeMap<HarnessErrorKind, u32>,
    pub first_error: Option<String>,
}

impl fmt::Display for HarnessFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds: Vec<String> = self
            .kinds
            .iter()
            .map(|(k, n)| format!("{} ×{n}", k.as_str()))
            .collect();
        write!(
            f,
            "the endpoint {} failed {} of {} interview calls for worker {} ({}), more than the \
             {:.0}% an interview tolerates: this measures the endpoint, not the model, so no \
             profile was made; check that the endpoint is up and reachable, then interview again",
            self.endpoint,
            self.inconclusive,
            self.total,
            self.worker_id,
            kinds.join(", "),
            MAX_INCONCLUSIVE_SHARE * 100.0
        )?;
        if let Some(e) = &self.first_error {
            write!(f, " (first error: {e})")?;
        }
        Ok(())
    }
}

/// The verdict of an interview.
#[derive(Debug, Clone, PartialEq)]
pub enum InterviewOutcome {
    Profiled(Box<InterviewReport>),
    HarnessFailure(HarnessFailure),
}

/// The overall numbers the status is decided on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatusInputs {
    pub validity: f64,
    pub schema_compliance: f64,
    pub correctness: f64,
    pub consistency: f64,
    /// Pass rate of the structured-output trials; `None` when none was conclusive.
    pub structured_output_pass_rate: Option<f64>,
    pub brier: Option<f64>,
    /// Share of unanswerable trials answered wrongly with high confidence; `None` without
    /// conclusive unanswerable trials.
    pub overconfident_share: Option<f64>,
}

fn num(v: f64, threshold: f64) -> String {
    let a = format!("{v:.2}");
    if a == format!("{threshold:.2}") {
        format!("{v:.4}")
    } else {
        a
    }
}

/// Decides the status from the overall numbers, with one reason per threshold missed.
///
/// `blocked` when any of validity, schema compliance, the structured-output pass rate or
/// correctness is below its `BLOCKED_BELOW_*` threshold; `active` when every `ACTIVE_*`
/// requirement holds; `limited` otherwise. A value exactly at a threshold is on the good side.
pub fn decide_status(i: &StatusInputs) -> (WorkerStatus, Vec<String>) {
    let mut blocked = Vec::new();
    let below = |name: &str, v: f64, t: f64, out: &mut Vec<String>, what: &str| {
        if v < t {
            out.push(format!("{name} {} is below {t:.2} {what}", num(v, t)));
        }
    };
    below(
        "validity",
        i.validity,
        BLOCKED_BELOW_VALIDITY,
        &mut blocked,
        "(blocked)",
    );
    below(
        "schema compliance",
        i.schema_compliance,
        BLOCKED_BELOW_SCHEMA_COMPLIANCE,
        &mut blocked,
        "(blocked)",
    );
    if let Some(so) = i.structured_output_pass_rate {
        below(
            "structured-output pass rate",
            so,
            BLOCKED_BELOW_STRUCTURED_OUTPUT_PASS_RATE,
            &mut blocked,
            "(blocked)",
        );
    }
    below(
        "correctness",
        i.correctness,
        BLOCKED_BELOW_CORRECTNESS,
        &mut blocked,
        "(blocked)",
    );
    if !blocked.is_empty() {
        return (
            WorkerStatus::Blocked,
            blocked
                .into_iter()
                .map(|r| format!("status blocked: {r}"))
                .collect(),
        );
    }
    let mut missed = Vec::new();
    let need = "needed for active";
    below(
        "validity",
        i.validity,
        ACTIVE_MIN_VALIDITY,
        &mut missed,
        need,
    );
    below(
        "schema compliance",
        i.schema_compliance,
        ACTIVE_MIN_SCHEMA_COMPLIANCE,
        &mut missed,
        need,
    );
    below(
        "correctness",
        i.correctness,
        ACTIVE_MIN_CORRECTNESS,
        &mut missed,
        need,
    );
    below(
        "consistency",
        i.consistency,
        ACTIVE_MIN_CONSISTENCY,
        &mut missed,
        need,
    );
    if i.structured_output_pass_rate.is_none() {
        missed.push("structured output could not be measured (no conclusive trial)".into());
    }
    match i.brier {
        None => missed.push("calibration could not be measured (no usable confidence)".into()),
        Some(b) if b > ACTIVE_MAX_BRIER => missed.push(format!(
            "Brier score {} is above {ACTIVE_MAX_BRIER:.2} allowed for active",
            num(b, ACTIVE_MAX_BRIER)
        )),
        Some(_) => {}
    }
    if let Some(s) = i.overconfident_share
        && s > ACTIVE_MAX_OVERCONFIDENT_SHARE
    {
        missed.push(format!(
            "over-confident on {:.0}% of unanswerable trials, more than the {:.0}% allowed for \
             active",
            s * 100.0,
            ACTIVE_MAX_OVERCONFIDENT_SHARE * 100.0
        ));
    }
    if missed.is_empty() {
        (WorkerStatus::Active, Vec::new())
    } else {
        (
            WorkerStatus::Limited,
            missed
                .into_iter()
                .map(|r| format!("status limited: {r}"))
                .collect(),
        )
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

fn share(n: u32, of: u32) -> f64 {
    if of == 0 { 0.0 } else { n as f64 / of as f64 }
}

#[derive(Default)]
struct CapTally {
    cases: u32,
    trials: u32,
    passed: u32,
    valid: u32,
    schema_ok: u32,
    score_sum: f64,
    judged_cases: u32,
    consistent_cases: u32,
    inconsistent_cases: u32,
    /// Parsed replies that failed their schema.
    schema_failed: u32,
    /// Parsed replies that failed some check.
    check_failed: u32,
    /// The suite's failure message (or the check's description) → trials it failed.
    messages: BTreeMap<String, u32>,
    critical: BTreeSet<String>,
}

/// Judges the records of an interview (see the module doc for the rules).
pub fn score_interview(
    suite: &Suite,
    worker: &WorkerIdentity,
    records: &[TrialRecord],
    evaluated_at: Timestamp,
) -> InterviewOutcome {
    let known: Vec<&TrialRecord> = records
        .iter()
        .filter(|r| suite.case(&r.case_id).is_some())
        .collect();
    let total = known.len() as u32;
    let inconclusive = known.iter().filter(|r| r.is_inconclusive()).count() as u32;
    if total == 0 || inconclusive == total || share(inconclusive, total) > MAX_INCONCLUSIVE_SHARE {
        let mut kinds = BTreeMap::new();
        let mut first_error = None;
        for r in &known {
            if let TrialOutcome::Inconclusive(e) = &r.result {
                *kinds.entry(e.kind).or_insert(0) += 1;
                first_error.get_or_insert_with(|| e.message.clone());
            }
        }
        return InterviewOutcome::HarnessFailure(HarnessFailure {
            worker_id: worker.worker_id.clone(),
            endpoint: worker.endpoint(),
            inconclusive,
            total,
            kinds,
            first_error,
        });
    }

    let mut caps: BTreeMap<Capability, CapTally> = BTreeMap::new();
    let mut case_reports = Vec::new();
    let (mut valid, mut schema_ok, mut correct, mut conclusive) = (0u32, 0u32, 0u32, 0u32);
    let mut brier_terms = Vec::new();
    let mut latencies = Vec::new();
    let mut tokens = Vec::new();
    let (mut overconfident, mut unanswerable_trials) = (0u32, 0u32);
    let (mut judged_cases, mut consistent_cases) = (0u32, 0u32);

    for case in suite.cases() {
        let tally = caps.entry(case.capability()).or_default();
        tally.cases += 1;
        let mut mine: Vec<&TrialRecord> = known
            .iter()
            .copied()
            .filter(|r| r.case_id == case.id())
            .collect();
        mine.sort_by_key(|r| r.trial);
        let mut report = CaseReport {
            id: case.id().to_string(),
            capability: case.capability(),
            answerable: case.answerable(),
            trials: 0,
            inconclusive: 0,
            valid: 0,
            schema_ok: 0,
            correct: 0,
            passed: 0,
            overconfident: 0,
            latency_p50_ms: None,
            latency_p95_ms: None,
            tokens: None,
            failures: Vec::new(),
        };
        let mut verdicts = BTreeSet::new();
        let mut case_latencies = Vec::new();
        let mut case_tokens = Vec::new();
        for r in mine {
            let reply = match &r.result {
                TrialOutcome::Inconclusive(e) => {
                    report.inconclusive += 1;
                    report
                        .failures
                        .push(format!("trial {}: inconclusive: {e}", r.trial));
                    continue;
                }
                TrialOutcome::Reply(reply) => reply,
            };
            let g = grade_reply(case, &reply.text);
            report.trials += 1;
            conclusive += 1;
            tally.trials += 1;
            tally.score_sum += g.score;
            case_latencies.push(reply.latency_ms);
            latencies.push(reply.latency_ms);
            if let Some(t) = reply.tokens {
                case_tokens.push(t);
                tokens.push(t);
            }
            verdicts.insert(g.passed);
            if g.parsed {
                report.valid += 1;
                valid += 1;
                tally.valid += 1;
            } else {
                report
                    .failures
                    .push(format!("trial {}: the reply is not JSON", r.trial));
            }
            if g.schema_ok {
                report.schema_ok += 1;
                schema_ok += 1;
                tally.schema_ok += 1;
            } else if g.parsed {
                tally.schema_failed += 1;
                if let Some(e) = g.schema_errors.first() {
                    report
                        .failures
                        .push(format!("trial {}: schema: {e}", r.trial));
                }
            }
            if g.correct {
                report.correct += 1;
                correct += 1;
            } else if g.parsed {
                tally.check_failed += 1;
                let mut seen = BTreeSet::new();
                for (i, detail) in &g.failed_checks {
                    let check = &case.checks()[*i];
                    report
                        .failures
                        .push(format!("trial {}: check {}: {detail}", r.trial, i + 1));
                    let message = check
                        .fail_message()
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("case `{}`: {}", case.id(), check.describe()));
                    if seen.insert(message.clone()) {
                        *tally.messages.entry(message.clone()).or_insert(0) += 1;
                    }
                    if check.is_critical() {
                        tally.critical.insert(message);
                    }
                }
            }
            if g.passed {
                report.passed += 1;
                tally.passed += 1;
            }
            if let Some(c) = g.confidence {
                let outcome = if g.correct { 1.0 } else { 0.0 };
                brier_terms.push((c - outcome) * (c - outcome));
            }
            if !case.answerable() {
                unanswerable_trials += 1;
                if !g.correct && g.confidence.is_some_and(|c| c >= OVERCONFIDENT_AT) {
                    report.overconfident += 1;
                    overconfident += 1;
                }
            }
        }
        report.failures.dedup();
        if report.trials > 0 {
            judged_cases += 1;
            tally.judged_cases += 1;
            if verdicts.len() == 1 {
                consistent_cases += 1;
                tally.consistent_cases += 1;
            } else {
                tally.inconsistent_cases += 1;
            }
        }
        case_latencies.sort_unstable();
        report.latency_p50_ms = percentile(&case_latencies, 0.50);
        report.latency_p95_ms = percentile(&case_latencies, 0.95);
        report.tokens = mean_u64(&case_tokens);
        case_reports.push(report);
    }

    let capabilities: BTreeMap<Capability, CapabilityScore> = caps
        .iter()
        .map(|(cap, t)| {
            (
                *cap,
                CapabilityScore {
                    score: if t.trials == 0 {
                        0.0
                    } else {
                        t.score_sum / t.trials as f64
                    },
                    cases: t.cases,
                    trials: t.trials,
                    pass_rate: share(t.passed, t.trials),
                    consistency: share(t.consistent_cases, t.judged_cases),
                },
            )
        })
        .collect();

    latencies.sort_unstable();
    let brier = if brier_terms.is_empty() {
        None
    } else {
        Some(brier_terms.iter().sum::<f64>() / brier_terms.len() as f64)
    };
    let metrics = ProfileMetrics {
        validity: share(valid, conclusive),
        schema_compliance: share(schema_ok, conclusive),
        correctness: share(correct, conclusive),
        brier,
        latency_p50_ms: percentile(&latencies, 0.50).unwrap_or(0),
        latency_p95_ms: percentile(&latencies, 0.95).unwrap_or(0),
        tokens: mean_u64(&tokens),
    };
    let consistency = share(consistent_cases, judged_cases);
    let overconfident_share =
        (unanswerable_trials > 0).then(|| share(overconfident, unanswerable_trials));
    let so = caps.get(&Capability::StructuredOutput);
    let inputs = StatusInputs {
        validity: metrics.validity,
        schema_compliance: metrics.schema_compliance,
        correctness: metrics.correctness,
        consistency,
        structured_output_pass_rate: so
            .filter(|t| t.trials > 0)
            .map(|t| share(t.passed, t.trials)),
        brier,
        overconfident_share,
    };
    let (status, status_reasons) = decide_status(&inputs);

    let passed_caps: BTreeSet<Capability> = caps
        .iter()
        .filter(|(_, t)| {
            t.trials > 0
                && share(t.passed, t.trials) >= QUALIFY_MIN_PASS_RATE
                && t.critical.is_empty()
        })
        .map(|(c, _)| *c)
        .collect();
    let qualified: Vec<TaskType> = ALL_TASK_TYPES
        .into_iter()
        .filter(|t| {
            required_capabilities(*t)
                .iter()
                .all(|c| passed_caps.contains(c))
        })
        .filter(|t| match status {
            WorkerStatus::Active => true,
            WorkerStatus::Limited => is_low_risk(*t),
            WorkerStatus::Blocked => false,
        })
        .collect();
    let routing_policy = RoutingPolicy {
        requires_leader_review: status != WorkerStatus::Active,
        max_task_complexity: match status {
            WorkerStatus::Active
                if metrics.correctness >= HIGH_COMPLEXITY_MIN_CORRECTNESS
                    && consistency >= HIGH_COMPLEXITY_MIN_CONSISTENCY =>
            {
                TaskComplexity::High
            }
            WorkerStatus::Active => TaskComplexity::Medium,
            _ => TaskComplexity::Low,
        },
        allow_codegen: qualified.contains(&TaskType::Codegen),
        allow_patch: qualified.contains(&TaskType::Patch),
    };

    // Reasons: per capability first, then calibration, the status thresholds, the harness.
    let mut reasons = Vec::new();
    for (cap, t) in &caps {
        if t.trials == 0 {
            reasons.push(format!(
                "{cap}: no conclusive trial (the endpoint failed every time)"
            ));
            continue;
        }
        let not_json = t.trials - t.valid;
        if not_json > 0 {
            reasons.push(format!(
                "{cap}: {not_json}/{} replies were not valid JSON",
                t.trials
            ));
        }
        if t.schema_failed > 0 {
            reasons.push(format!(
                "{cap}: {}/{} replies failed schema validation",
                t.schema_failed, t.trials
            ));
        }
        for (message, n) in &t.messages {
            reasons.push(format!("{cap}: {message} ({n}/{} replies)", t.trials));
        }
        if t.inconsistent_cases > 0 {
            reasons.push(format!(
                "{cap}: trials disagreed on {}/{} cases",
                t.inconsistent_cases, t.judged_cases
            ));
        }
    }
    let calibration_issue = overconfident > 0 || brier.is_none_or(|b| b > ACTIVE_MAX_BRIER);
    if overconfident > 0 {
        reasons.push(format!(
            "confidence-calibration: Worker reported high confidence on an ambiguous task \
             ({overconfident}/{unanswerable_trials} unanswerable replies answered with \
             confidence ≥ {OVERCONFIDENT_AT:.2})"
        ));
    }
    match brier {
        Some(b) if b > ACTIVE_MAX_BRIER => reasons.push(format!(
            "confidence-calibration: Brier score {} is above {ACTIVE_MAX_BRIER:.2}",
            num(b, ACTIVE_MAX_BRIER)
        )),
        None => reasons.push("confidence-calibration: no reply stated a usable confidence".into()),
        _ => {}
    }
    reasons.extend(status_reasons);
    if inconclusive > 0 {
        reasons.push(format!(
            "{inconclusive}/{total} trials were inconclusive (endpoint failures) and are not counted"
        ));
    }

    let mut actions: Vec<String> = Vec::new();
    match status {
        WorkerStatus::Blocked => {
            actions.push("Do not assign tasks to this worker.".into());
            actions.push("Re-interview after changing the model or its settings.".into());
        }
        WorkerStatus::Limited => {
            actions.push("Do not assign codegen tasks.".into());
            actions.push("Limit this worker to qualified low-risk tasks.".into());
            actions.push("Require leader review for every accepted output.".into());
        }
        WorkerStatus::Active => {
            let refused: Vec<&str> = ALL_TASK_TYPES
                .into_iter()
                .filter(|t| !qualified.contains(t))
                .map(task_type_name)
                .collect();
            if !refused.is_empty() {
                actions.push(format!("Do not assign {} tasks.", refused.join(", ")));
            }
        }
    }
    if calibration_issue && status != WorkerStatus::Blocked {
        actions.push("Do not rely on this worker's stated confidence.".into());
    }
    if inconclusive > 0 {
        actions.push("Re-run the interview when the endpoint is stable.".into());
    }

    let profile = WorkerCapabilityProfile {
        worker_id: worker.worker_id.clone(),
        provider: worker.provider.clone(),
        model: worker.model.clone(),
        base_url_host: worker.base_url.as_deref().and_then(base_url_host),
        status,
        capabilities,
        metrics,
        qualified_task_types: qualified,
        routing_policy,
        reasons,
        recommended_actions: actions,
        suite: suite.suite_ref(),
        evaluated_at,
        expires_at: evaluated_at.plus(DEFAULT_PROFILE_LIFETIME),
        inconclusive,
    };
    InterviewOutcome::Profiled(Box::new(InterviewReport {
        profile,
        cases: case_reports,
    }))
}

fn mean_u64(values: &[u64]) -> Option<u64> {
    if values.is_empty() {
        None
    } else {
        let sum: u128 = values.iter().map(|v| u128::from(*v)).sum();
        Some((sum / values.len() as u128) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interview::trial::{HarnessError, ModelReply};
    use serde_json::json;

    fn good() -> StatusInputs {
        StatusInputs {
            validity: 1.0,
            schema_compliance: 1.0,
            correctness: 1.0,
            consistency: 1.0,
            structured_output_pass_rate: Some(1.0),
            brier: Some(0.0),
            overconfident_share: Some(0.0),
        }
    }

    fn status(i: StatusInputs) -> WorkerStatus {
        decide_status(&i).0
    }

    /// Just below a threshold: the largest value strictly less than it.
    fn below(t: f64) -> f64 {
        f64::from_bits(t.to_bits() - 1)
    }

    /// Just above a threshold.
    fn above(t: f64) -> f64 {
        f64::from_bits(t.to_bits() + 1)
    }

    #[test]
    fn blocked_thresholds_hold_at_their_edges() {
        type Set = fn(&mut StatusInputs, f64);
        let cases: [(Set, f64); 4] = [
            (|i, v| i.validity = v, BLOCKED_BELOW_VALIDITY),
            (
                |i, v| i.schema_compliance = v,
                BLOCKED_BELOW_SCHEMA_COMPLIANCE,
            ),
            (
                |i, v| i.structured_output_pass_rate = Some(v),
                BLOCKED_BELOW_STRUCTURED_OUTPUT_PASS_RATE,
            ),
            (|i, v| i.correctness = v, BLOCKED_BELOW_CORRECTNESS),
        ];
        for (set, t) in cases {
            let mut at = good();
            set(&mut at, t);
            assert_ne!(
                status(at),
                WorkerStatus::Blocked,
                "exactly {t} is not blocked"
            );
            let mut under = good();
            set(&mut under, below(t));
            let (s, reasons) = decide_status(&under);
            assert_eq!(s, WorkerStatus::Blocked, "just below {t} is blocked");
            assert!(reasons[0].starts_with("status blocked: "), "{reasons:?}");
        }
    }

    #[test]
    fn active_thresholds_hold_at_their_edges() {
        type Set = fn(&mut StatusInputs, f64);
        let minimums: [(Set, f64); 4] = [
            (|i, v| i.validity = v, ACTIVE_MIN_VALIDITY),
            (|i, v| i.schema_compliance = v, ACTIVE_MIN_SCHEMA_COMPLIANCE),
            (|i, v| i.correctness = v, ACTIVE_MIN_CORRECTNESS),
            (|i, v| i.consistency = v, ACTIVE_MIN_CONSISTENCY),
        ];
        for (set, t) in minimums {
            let mut at = good();
            set(&mut at, t);
            assert_eq!(status(at), WorkerStatus::Active, "exactly {t} is active");
            let mut under = good();
            set(&mut under, below(t));
            let (s, reasons) = decide_status(&under);
            assert_eq!(s, WorkerStatus::Limited, "just below {t} is limited");
            assert!(reasons[0].contains("needed for active"), "{reasons:?}");
        }
        let maximums: [(Set, f64); 2] = [
            (|i, v| i.brier = Some(v), ACTIVE_MAX_BRIER),
            (
                |i, v| i.overconfident_share = Some(v),
                ACTIVE_MAX_OVERCONFIDENT_SHARE,
            ),
        ];
        for (set, t) in maximums {
            let mut at = good();
            set(&mut at, t);
            assert_eq!(status(at), WorkerStatus::Active, "exactly {t} is active");
            let mut over = good();
            set(&mut over, above(t));
            assert_eq!(
                status(over),
                WorkerStatus::Limited,
                "just above {t} is limited"
            );
        }
        let mut no_brier = good();
        no_brier.brier = None;
        assert_eq!(status(no_brier), WorkerStatus::Limited);
        let mut no_so = good();
        no_so.structured_output_pass_rate = None;
        assert_eq!(status(no_so), WorkerStatus::Limited);
    }

    #[test]
    fn threshold_values_are_the_documented_ones() {
        // docs/decisions.md states these numbers; change both together.
        assert_eq!(
            [
                BLOCKED_BELOW_VALIDITY,
                BLOCKED_BELOW_SCHEMA_COMPLIANCE,
                BLOCKED_BELOW_STRUCTURED_OUTPUT_PASS_RATE,
                BLOCKED_BELOW_CORRECTNESS
            ],
            [0.80, 0.70, 0.50, 0.40]
        );
        assert_eq!(
            [
                ACTIVE_MIN_VALIDITY,
                ACTIVE_MIN_SCHEMA_COMPLIANCE,
                ACTIVE_MIN_CORRECTNESS,
                ACTIVE_MIN_CONSISTENCY,
                ACTIVE_MAX_BRIER,
                ACTIVE_MAX_OVERCONFIDENT_SHARE
            ],
            [0.95, 0.95, 0.80, 0.80, 0.20, 0.25]
        );
        assert_eq!(
            [
                OVERCONFIDENT_AT,
                QUALIFY_MIN_PASS_RATE,
                MAX_INCONCLUSIVE_SHARE
            ],
            [0.70, 0.75, 0.10]
        );
        assert_eq!(DEFAULT_PROFILE_LIFETIME.as_secs(), 30 * 86_400);
    }

    #[test]
    fn replies_parse_as_bare_or_fenced_json_only() {
        assert_eq!(parse_reply(" {\"a\": 1}\n"), Some(json!({"a": 1})));
        assert_eq!(
            parse_reply("```json\n{\"a\": 1}\n```"),
            Some(json!({"a": 1}))
        );
        assert_eq!(parse_reply("```\n[1]\n```"), Some(json!([1])));
        assert_eq!(parse_reply("Sure! Here it is: {\"a\": 1}"), None);
        assert_eq!(parse_reply("```python\n{\"a\": 1}\n```"), None);
        assert_eq!(parse_reply("{\"a\": 1} and more"), None);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<u64> = (1..=20).collect();
        assert_eq!(percentile(&v, 0.5), Some(10));
        assert_eq!(percentile(&v, 0.95), Some(19));
        assert_eq!(percentile(&[7], 0.95), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
    }

    fn worker() -> WorkerIdentity {
        WorkerIdentity {
            worker_id: "local:m".into(),
            provider: "openai-compatible".into(),
            model: "m".into(),
            base_url: Some("http://user:pw@127.0.0.1:9/v1".into()),
        }
    }

    fn reply(case: &str, trial: u32, text: String) -> TrialRecord {
        TrialRecord {
            case_id: case.into(),
            trial,
            result: TrialOutcome::Reply(ModelReply {
                text,
                latency_ms: 100 * u64::from(trial),
                tokens: Some(50),
            }),
        }
    }

    fn down(case: &str, trial: u32) -> TrialRecord {
        TrialRecord {
            case_id: case.into(),
            trial,
            result: TrialOutcome::Inconclusive(HarnessError::new(
                HarnessErrorKind::Connect,
                "connection refused",
            )),
        }
    }

    fn references(suite: &Suite, trials: u32) -> Vec<TrialRecord> {
        let mut out = Vec::new();
        for c in suite.cases() {
            for t in 1..=trials {
                out.push(reply(c.id(), t, c.reference().unwrap().to_string()));
            }
        }
        out
    }

    fn profiled(o: InterviewOutcome) -> InterviewReport {
        match o {
            InterviewOutcome::Profiled(r) => *r,
            InterviewOutcome::HarnessFailure(h) => panic!("harness failure: {h}"),
        }
    }

    #[test]
    fn reference_answers_make_an_active_worker_qualified_for_everything() {
        let suite = Suite::builtin().unwrap();
        let now = Timestamp::from_unix_seconds(1_700_000_000);
        let r = profiled(score_interview(
            &suite,
            &worker(),
            &references(&suite, 3),
            now,
        ));
        let p = &r.profile;
        assert_eq!(p.status, WorkerStatus::Active, "{:?}", p.reasons);
        assert_eq!(p.qualified_task_types, ALL_TASK_TYPES.to_vec());
        assert!(p.routing_policy.allow_codegen && p.routing_policy.allow_patch);
        assert!(!p.routing_policy.requires_leader_review);
        assert_eq!(p.routing_policy.max_task_complexity, TaskComplexity::High);
        assert_eq!(p.metrics.validity, 1.0);
        assert_eq!(p.metrics.correctness, 1.0);
        assert!(p.metrics.brier.unwrap() < 0.03);
        assert_eq!(p.metrics.latency_p50_ms, 200);
        assert_eq!(p.metrics.latency_p95_ms, 300);
        assert_eq!(p.metrics.tokens, Some(50));
        assert_eq!(p.base_url_host.as_deref(), Some("127.0.0.1:9"));
        assert_eq!(p.suite.sha256, suite.sha256());
        assert_eq!(
            p.expires_at.unix_seconds() - p.evaluated_at.unix_seconds(),
            30 * 86_400
        );
        assert!(p.reasons.is_empty(), "{:?}", p.reasons);
        assert!(p.recommended_actions.is_empty());
        let cg = &p.capabilities[&Capability::Codegen];
        assert_eq!(
            (cg.cases, cg.trials, cg.pass_rate, cg.consistency),
            (4, 12, 1.0, 1.0)
        );
        assert_eq!(r.cases.len(), suite.cases().len());
        assert_eq!(r.cases[0].latency_p95_ms, Some(300));
    }

    #[test]
    fn inconclusive_trials_are_not_failures_up_to_the_documented_share() {
        let suite = Suite::builtin().unwrap();
        let now = Timestamp::from_unix_seconds(0);
        let mut records = references(&suite, 3);
        let total = records.len();
        // Exactly the tolerated share (rounded down) fails at the harness: still judged.
        let allowed = (total as f64 * MAX_INCONCLUSIVE_SHARE).floor() as usize;
        for r in records.iter_mut().take(allowed) {
            *r = down(&r.case_id.clone(), r.trial);
        }
        let rep = profiled(score_interview(&suite, &worker(), &records, now));
        assert_eq!(rep.profile.inconclusive as usize, allowed);
        assert_eq!(
            rep.profile.status,
            WorkerStatus::Active,
            "{:?}",
            rep.profile.reasons
        );
        assert_eq!(
            rep.profile.metrics.correctness, 1.0,
            "inconclusive is not wrong"
        );
        assert!(
            rep.profile
                .reasons
                .iter()
                .any(|r| r.contains("trials were inconclusive"))
        );
        // One more is too many: the verdict is about the endpoint.
        let r = records[allowed].clone();
        records[allowed] = down(&r.case_id, r.trial);
        match score_interview(&suite, &worker(), &records, now) {
            InterviewOutcome::HarnessFailure(h) => {
                assert_eq!(h.inconclusive as usize, allowed + 1);
                assert_eq!(h.endpoint, "127.0.0.1:9");
                let msg = h.to_string();
                assert!(msg.contains("the endpoint 127.0.0.1:9 failed"), "{msg}");
                assert!(msg.contains("connect ×"), "{msg}");
                assert!(!msg.contains("pw"), "no credentials in messages");
            }
            InterviewOutcome::Profiled(_) => panic!("too many inconclusive trials"),
        }
    }

    #[test]
    fn a_failed_schema_and_a_failed_check_are_counted_apart() {
        let suite = Suite::builtin().unwrap();
        let case = suite.case("so-invoice").unwrap();
        let mut wrong_type = case.reference().unwrap().clone();
        wrong_type["total"] = json!("392");
        let g = grade_reply(case, &wrong_type.to_string());
        assert!(g.parsed && !g.schema_ok && !g.correct);
        let mut wrong_value = case.reference().unwrap().clone();
        wrong_value["total"] = json!(391.0);
        let g = grade_reply(case, &wrong_value.to_string());
        assert!(g.parsed && g.schema_ok && !g.correct);
        assert_eq!(g.failed_checks.len(), 1);
        assert!(g.score > 0.8 && g.score < 1.0);
        let g = grade_reply(case, "I could not read the invoice.");
        assert!(!g.parsed && g.score == 0.0);
    }
}
