//! Interviews end to end against scripted models: the runner asks, the scorer judges, the
//! profile says what the worker may be given.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ao_core::profile::{Capability, WorkerStatus};
use ao_core::timestamp::Timestamp;
use ao_core::types::TaskType;
use ao_orchestrator::interview::runner::{
    BoxFuture, CaseModel, CaseRequest, RunOptions, interview, run_trials,
};
use ao_orchestrator::interview::score::{
    InterviewOutcome, InterviewReport, MAX_INCONCLUSIVE_SHARE, WorkerIdentity, score_interview,
};
use ao_orchestrator::interview::suite::Suite;
use ao_orchestrator::interview::trial::{HarnessError, HarnessErrorKind, ModelReply};
use serde_json::{Value, json};

type Script = dyn Fn(&Suite, &CaseRequest<'_>) -> Result<String, HarnessError> + Send + Sync;

/// A model whose every reply is computed by a script from the case and trial.
struct Scripted {
    suite: Arc<Suite>,
    script: Box<Script>,
    calls: AtomicUsize,
    delay: Option<Duration>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl Scripted {
    fn new(
        suite: &Arc<Suite>,
        script: impl Fn(&Suite, &CaseRequest<'_>) -> Result<String, HarnessError>
        + Send
        + Sync
        + 'static,
    ) -> Arc<Scripted> {
        Arc::new(Scripted {
            suite: Arc::clone(suite),
            script: Box::new(script),
            calls: AtomicUsize::new(0),
            delay: None,
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        })
    }
}

impl CaseModel for Scripted {
    fn ask<'a>(
        &'a self,
        request: CaseRequest<'a>,
    ) -> BoxFuture<'a, Result<ModelReply, HarnessError>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            if let Some(d) = self.delay {
                tokio::time::sleep(d).await;
            }
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            let text = (self.script)(&self.suite, &request)?;
            Ok(ModelReply {
                text,
                latency_ms: 120,
                tokens: Some(300),
            })
        })
    }
}

fn builtin() -> Arc<Suite> {
    Arc::new(Suite::builtin().unwrap())
}

fn worker() -> WorkerIdentity {
    WorkerIdentity {
        worker_id: "litellm:qwen3-coder".into(),
        provider: "litellm".into(),
        model: "qwen3-coder".into(),
        base_url: Some("http://127.0.0.1:4000/v1".into()),
    }
}

fn now() -> Timestamp {
    "2025-03-01T12:00:00Z".parse().unwrap()
}

fn reference(suite: &Suite, id: &str) -> Value {
    suite.case(id).unwrap().reference().unwrap().clone()
}

fn correct(suite: &Suite, r: &CaseRequest<'_>) -> Result<String, HarnessError> {
    Ok(reference(suite, r.case_id).to_string())
}

async fn run(suite: &Arc<Suite>, model: Arc<Scripted>) -> InterviewOutcome {
    interview(
        Arc::clone(suite),
        model,
        &worker(),
        &RunOptions::default(),
        now(),
    )
    .await
}

fn report(o: InterviewOutcome) -> InterviewReport {
    match o {
        InterviewOutcome::Profiled(r) => *r,
        InterviewOutcome::HarnessFailure(h) => panic!("unexpected harness failure: {h}"),
    }
}

#[tokio::test]
async fn a_model_that_answers_every_case_correctly_is_active() {
    let suite = builtin();
    let model = Scripted::new(&suite, correct);
    let r = report(run(&suite, Arc::clone(&model)).await);
    let p = &r.profile;
    assert_eq!(p.status, WorkerStatus::Active, "{:?}", p.reasons);
    assert!(p.warning().is_none());
    assert_eq!(p.qualified_task_types.len(), 7);
    assert_eq!(model.calls.load(Ordering::SeqCst), suite.cases().len() * 3);
    assert_eq!(p.metrics.validity, 1.0);
    assert_eq!(p.metrics.schema_compliance, 1.0);
    assert_eq!(p.metrics.correctness, 1.0);
    assert_eq!(p.metrics.tokens, Some(300));
    assert_eq!(p.worker_id, "litellm:qwen3-coder");
    assert_eq!(p.base_url_host.as_deref(), Some("127.0.0.1:4000"));
    for c in Capability::ALL {
        assert_eq!(p.capabilities[&c].pass_rate, 1.0, "{c}");
        assert_eq!(p.capabilities[&c].trials, p.capabilities[&c].cases * 3);
    }
}

#[tokio::test]
async fn a_model_that_answers_in_prose_is_blocked() {
    let suite = builtin();
    let model = Scripted::new(&suite, |_, r| {
        Ok(format!(
            "Sure! I looked at the material for {} and the answer is probably fine.",
            r.case_id
        ))
    });
    let p = report(run(&suite, model).await).profile;
    assert_eq!(p.status, WorkerStatus::Blocked);
    assert_eq!(p.metrics.validity, 0.0);
    assert!(p.qualified_task_types.is_empty());
    assert!(!p.routing_policy.allow_codegen && !p.routing_policy.allow_patch);
    assert!(p.routing_policy.requires_leader_review);
    assert!(
        p.reasons
            .contains(&"structured-output: 9/9 replies were not valid JSON".to_string()),
        "{:?}",
        p.reasons
    );
    assert!(
        p.reasons
            .iter()
            .any(|r| r == "status blocked: validity 0.00 is below 0.80 (blocked)"),
        "{:?}",
        p.reasons
    );
    assert!(
        p.recommended_actions
            .contains(&"Do not assign tasks to this worker.".to_string())
    );
    let w = p.warning().unwrap();
    assert!(w.contains("Status: blocked"), "{w}");
}

/// The smallest instance of a schema: first enum value, empty lists, zeros, required keys.
fn minimal(schema: &Value) -> Value {
    if let Some(e) = schema.get("enum") {
        return e[0].clone();
    }
    if let Some(branches) = schema.get("anyOf") {
        return minimal(&branches[0]);
    }
    let ty = match schema.get("type") {
        Some(Value::Array(types)) => types[0].as_str().unwrap_or("null"),
        Some(Value::String(t)) => t.as_str(),
        _ => "null",
    };
    match ty {
        "object" => {
            let mut out = serde_json::Map::new();
            for key in schema["required"].as_array().into_iter().flatten() {
                let key = key.as_str().unwrap();
                out.insert(key.into(), minimal(&schema["properties"][key]));
            }
            Value::Object(out)
        }
        "array" => json!([]),
        "string" if schema.get("pattern").is_some() => json!("2000-01-01"),
        "string" => json!("n/a"),
        "integer" | "number" => json!(0),
        "boolean" => json!(false),
        _ => Value::Null,
    }
}

#[tokio::test]
async fn schema_valid_replies_with_wrong_content_are_not_active() {
    let suite = builtin();
    let model = Scripted::new(&suite, |suite, r| {
        let mut v = minimal(suite.case(r.case_id).unwrap().output_schema());
        v["confidence"] = json!(0.9);
        Ok(v.to_string())
    });
    let p = report(run(&suite, model).await).profile;
    assert_eq!(p.metrics.validity, 1.0);
    assert_eq!(p.metrics.schema_compliance, 1.0, "{:?}", p.reasons);
    assert!(p.metrics.correctness < 0.4, "{}", p.metrics.correctness);
    assert_ne!(p.status, WorkerStatus::Active);
    assert!(!p.routing_policy.allow_codegen);
    assert!(
        p.reasons
            .iter()
            .any(|r| r.starts_with("log-analysis: Blamed the wrong file. (3/9 replies)")),
        "{:?}",
        p.reasons
    );
    assert!(p.metrics.brier.unwrap() > 0.5, "confident and wrong");
}

/// Answers correctly, except that trial 1 of the type-guard case rewrites its code.
fn with_type_guard_code(
    rewrite: fn(&str) -> String,
) -> impl Fn(&Suite, &CaseRequest<'_>) -> Result<String, HarnessError> {
    move |suite, r| {
        let mut v = reference(suite, r.case_id);
        if r.case_id == "cg-ts-type-guard" && r.trial == 1 {
            let code = v["code"].as_str().unwrap().to_string();
            v["code"] = json!(rewrite(&code));
        }
        Ok(v.to_string())
    }
}

#[tokio::test]
async fn typescript_using_any_as_a_type_denies_codegen_even_once() {
    let suite = builtin();
    let model = Scripted::new(
        &suite,
        with_type_guard_code(|code| code.replace("(value: unknown)", "(value: any)")),
    );
    let p = report(run(&suite, model).await).profile;
    let cg = &p.capabilities[&Capability::Codegen];
    assert!(
        cg.pass_rate > 0.9,
        "one bad trial in twelve: {}",
        cg.pass_rate
    );
    assert!(!p.routing_policy.allow_codegen, "a critical check failed");
    assert!(!p.routing_policy.allow_patch);
    assert!(!p.qualified_task_types.contains(&TaskType::Codegen));
    assert!(p.qualified_task_types.contains(&TaskType::Summarization));
    assert!(
        p.reasons
            .contains(&"codegen: Generated code uses any as a type. (1/12 replies)".to_string()),
        "{:?}",
        p.reasons
    );
    assert!(
        p.recommended_actions
            .iter()
            .any(|a| a.starts_with("Do not assign codegen")),
        "{:?}",
        p.recommended_actions
    );
}

#[tokio::test]
async fn the_word_company_and_any_in_comments_or_strings_are_not_any() {
    let suite = builtin();
    let model = Scripted::new(
        &suite,
        with_type_guard_code(|code| {
            format!(
                "// Works for any company: any team, any user.\n\
                 const company: string = \"any\";\n\
                 const anyone = `${{company}} as any`;\n{code}"
            )
        }),
    );
    let p = report(run(&suite, model).await).profile;
    assert_eq!(p.status, WorkerStatus::Active, "{:?}", p.reasons);
    assert!(p.routing_policy.allow_codegen);
    assert!(p.qualified_task_types.contains(&TaskType::Codegen));
}

fn unanswerable_guess(
    confidence: f64,
) -> impl Fn(&Suite, &CaseRequest<'_>) -> Result<String, HarnessError> {
    move |suite, r| {
        if suite.case(r.case_id).unwrap().answerable() {
            correct(suite, r)
        } else {
            Ok(
                json!({"answerable": true, "answer": "2023-06-01", "confidence": confidence})
                    .to_string(),
            )
        }
    }
}

#[tokio::test]
async fn confidence_on_unanswerable_cases_is_named_and_scores_worse() {
    let suite = builtin();
    let overconfident = report(run(&suite, Scripted::new(&suite, unanswerable_guess(0.95))).await);
    let hedging = report(run(&suite, Scripted::new(&suite, unanswerable_guess(0.2))).await);
    let calibrated = report(run(&suite, Scripted::new(&suite, correct)).await);
    let brier = |r: &InterviewReport| r.profile.metrics.brier.unwrap();
    assert!(
        brier(&overconfident) > brier(&hedging),
        "confident guesses cost more"
    );
    assert!(brier(&hedging) > brier(&calibrated));

    let p = &overconfident.profile;
    assert_ne!(p.status, WorkerStatus::Active);
    assert!(
        p.reasons.iter().any(|r| r.starts_with(
            "confidence-calibration: Worker reported high confidence on an ambiguous task (9/9"
        )),
        "{:?}",
        p.reasons
    );
    assert!(
        p.recommended_actions
            .contains(&"Do not rely on this worker's stated confidence.".to_string())
    );
    let case = overconfident
        .cases
        .iter()
        .find(|c| c.id == "cal-release-date")
        .unwrap();
    assert_eq!(case.overconfident, 3);
    // The same wrong guesses made with low confidence are not over-confidence.
    assert!(
        !hedging
            .profile
            .reasons
            .iter()
            .any(|r| r.contains("high confidence"))
    );
    assert!(calibrated.profile.metrics.brier.unwrap() < 0.02);
}

#[tokio::test]
async fn an_endpoint_that_is_down_or_fails_is_a_harness_failure() {
    let suite = builtin();
    for (kind, message) in [
        (HarnessErrorKind::Connect, "connection refused"),
        (HarnessErrorKind::ServerError, "500 after 3 attempts"),
    ] {
        let model = Scripted::new(&suite, move |_, _| Err(HarnessError::new(kind, message)));
        match run(&suite, model).await {
            InterviewOutcome::HarnessFailure(h) => {
                assert_eq!(h.inconclusive, h.total);
                assert_eq!(h.kinds[&kind], h.total);
                let text = h.to_string();
                assert!(
                    text.contains("the endpoint 127.0.0.1:4000 failed"),
                    "{text}"
                );
                assert!(text.contains(message), "{text}");
                assert!(text.contains("not the model"), "{text}");
            }
            InterviewOutcome::Profiled(r) => {
                panic!(
                    "{kind:?} everywhere judged the model: {:?}",
                    r.profile.status
                )
            }
        }
    }
}

#[tokio::test]
async fn cases_run_concurrently_within_the_bound() {
    let suite = builtin();
    let mut model = Scripted::new(&suite, correct);
    Arc::get_mut(&mut model).unwrap().delay = Some(Duration::from_millis(40));
    let options = RunOptions {
        concurrency: 8,
        ..RunOptions::default()
    };
    let started = Instant::now();
    let records = run_trials(
        Arc::clone(&suite),
        Arc::clone(&model) as Arc<dyn CaseModel>,
        &options,
        &[],
        |_| {},
    )
    .await;
    let elapsed = started.elapsed();
    let n = suite.cases().len() * 3;
    assert_eq!(records.len(), n);
    assert_eq!(model.max_in_flight.load(Ordering::SeqCst), 8);
    let sequential = Duration::from_millis(40) * n as u32;
    assert!(
        elapsed < sequential / 3,
        "{elapsed:?} is not much faster than sequential {sequential:?}"
    );
    // Records come back in suite order, then trial order.
    assert_eq!(records[0].case_id, suite.cases()[0].id());
    assert_eq!(
        records.iter().take(3).map(|r| r.trial).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
}

struct Stuck(Arc<Suite>);

impl CaseModel for Stuck {
    fn ask<'a>(
        &'a self,
        request: CaseRequest<'a>,
    ) -> BoxFuture<'a, Result<ModelReply, HarnessError>> {
        let id = request.case_id.to_string();
        Box::pin(async move {
            if id == "if-semver-order" {
                std::future::pending::<()>().await;
            }
            if id == "if-filter-listing" {
                panic!("scripted panic");
            }
            Ok(ModelReply {
                text: reference(&self.0, &id).to_string(),
                latency_ms: 5,
                tokens: None,
            })
        })
    }
}

#[tokio::test]
async fn a_call_past_the_limit_or_a_panicking_client_is_inconclusive() {
    let suite = builtin();
    let options = RunOptions {
        call_timeout: Some(Duration::from_millis(100)),
        ..RunOptions::default()
    };
    let records = run_trials(
        Arc::clone(&suite),
        Arc::new(Stuck(Arc::clone(&suite))),
        &options,
        &[],
        |_| {},
    )
    .await;
    let kind = |id: &str| -> Vec<String> {
        records
            .iter()
            .filter(|r| r.case_id == id)
            .map(|r| serde_json::to_value(&r.result).unwrap()["kind"].to_string())
            .collect()
    };
    assert_eq!(kind("if-semver-order"), vec!["\"timeout\""; 3]);
    assert_eq!(kind("if-filter-listing"), vec!["\"internal\""; 3]);
    // 6 of 87 inconclusive is within the tolerated share: the model is still judged, and
    // the inconclusive cases count neither way.
    assert!(6.0 / records.len() as f64 <= MAX_INCONCLUSIVE_SHARE);
    let p = match score_interview(&suite, &worker(), &records, now()) {
        InterviewOutcome::Profiled(r) => r.profile,
        InterviewOutcome::HarnessFailure(h) => panic!("{h}"),
    };
    assert_eq!(p.inconclusive, 6);
    assert_eq!(p.metrics.correctness, 1.0);
    assert_eq!(p.metrics.tokens, None);
    assert_eq!(p.capabilities[&Capability::InstructionFollowing].trials, 6);
}

#[tokio::test]
async fn a_resumed_interview_asks_only_what_is_missing() {
    let suite = builtin();
    let first = Scripted::new(&suite, correct);
    let all = run_trials(
        Arc::clone(&suite),
        first as Arc<dyn CaseModel>,
        &RunOptions::default(),
        &[],
        |_| {},
    )
    .await;
    let done: Vec<_> = all.iter().filter(|r| r.trial != 2).cloned().collect();
    let second = Scripted::new(&suite, correct);
    let seen = Mutex::new(Vec::new());
    let again = run_trials(
        Arc::clone(&suite),
        Arc::clone(&second) as Arc<dyn CaseModel>,
        &RunOptions::default(),
        &done,
        |r| seen.lock().unwrap().push((r.case_id.clone(), r.trial)),
    )
    .await;
    assert_eq!(second.calls.load(Ordering::SeqCst), suite.cases().len());
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.len(), suite.cases().len());
    assert!(seen.iter().all(|(_, t)| *t == 2));
    assert_eq!(again, all, "the same records, in the same order");
}

const EDGE_SUITE: &str = r#"
name: edge
version: "1"
cases:
"#;

/// A nine-case suite (one per capability, two for calibration) whose answer is always 42.
fn edge_suite() -> Arc<Suite> {
    let mut s = EDGE_SUITE.to_string();
    let mut caps: Vec<(&str, bool)> = Capability::ALL.iter().map(|c| (c.as_str(), true)).collect();
    caps.push(("confidence-calibration", false));
    for (i, (cap, answerable)) in caps.iter().enumerate() {
        s.push_str(&format!(
            "  - id: c{i}\n    capability: {cap}\n    answerable: {answerable}\n    messages:\n      \
             - {{role: user, content: 'Reply {{\"answer\": 42, \"confidence\": 0.9}}.'}}\n    \
             output_schema:\n      type: object\n      required: [answer, confidence]\n      \
             properties:\n        answer: {{type: integer}}\n        confidence: {{type: number, \
             minimum: 0, maximum: 1}}\n    checks:\n      - {{at: /answer, equals: 42}}\n"
        ));
    }
    Arc::new(Suite::from_yaml(&s, "edge.yaml").unwrap())
}

/// 9 cases × 10 trials; the first `prose` (case, trial) pairs in trial-major order answer in
/// prose.
async fn edge_run(prose: usize) -> WorkerStatus {
    let suite = edge_suite();
    let model = Scripted::new(&suite, move |_, r| {
        let index: usize = r.case_id[1..].parse().unwrap();
        let serial = (r.trial as usize - 1) * 9 + index;
        if serial < prose {
            Ok("forty-two".into())
        } else {
            Ok(r#"{"answer": 42, "confidence": 0.9}"#.into())
        }
    });
    let options = RunOptions {
        trials: 10,
        ..RunOptions::default()
    };
    let outcome = interview(suite, model, &worker(), &options, now()).await;
    report(outcome).profile.status
}

#[tokio::test]
async fn the_validity_threshold_holds_at_its_edge_through_a_whole_interview() {
    // 18 of 90 replies in prose: validity exactly 0.80, not blocked.
    assert_eq!(edge_run(18).await, WorkerStatus::Limited);
    // One more: validity 71/90, blocked.
    assert_eq!(edge_run(19).await, WorkerStatus::Blocked);
    // None: active.
    assert_eq!(edge_run(0).await, WorkerStatus::Active);
}
