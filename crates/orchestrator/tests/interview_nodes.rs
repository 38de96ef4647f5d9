//! The builtin nodes of interviews and routing, as a workflow calls them: `route_steps` over
//! saved profiles and configured workers (every routing flag changing a decision), the
//! `worker-interview` workflow's reuse of a stored ask, and the endpoint model that hands back
//! replies whole and tells harness failures apart.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ao_core::config::{Config, ConfigInputs};
use ao_core::profile::{
    ALL_TASK_TYPES, Capability, CapabilityScore, LOW_RISK_TASK_TYPES, ProfileMetrics,
    RoutingPolicy, SuiteRef, TaskComplexity, WorkerCapabilityProfile, WorkerStatus,
};
use ao_core::redact::Redactor;
use ao_core::run::RunStatus;
use ao_core::timestamp::Timestamp;
use ao_graph::{EventEmitter, EventKind, NodeCall, RunOptions, load_str};
use ao_orchestrator::Service;
use ao_orchestrator::interview::endpoint::{Endpoint, EndpointModel};
use ao_orchestrator::interview::profiles::save_profiles;
use ao_orchestrator::interview::runner::CaseRequest;
use ao_orchestrator::interview::suite::Suite;
use ao_orchestrator::interview::trial::HarnessErrorKind;
use ao_testkit::{StubModel, completion};
use serde_json::{Value, json};

struct Project {
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
}

impl Project {
    fn new(ao_toml: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ao.toml"), ao_toml).unwrap();
        Project {
            dir,
            env: BTreeMap::new(),
        }
    }

    fn state_dir(&self) -> std::path::PathBuf {
        self.dir.path().join(".ao")
    }

    fn config(&self) -> Config {
        Config::load(&ConfigInputs::new(self.dir.path()).with_env(self.env.clone())).unwrap()
    }

    fn service(&self) -> Service {
        let mut service = Service::open(self.dir.path(), &self.state_dir()).unwrap();
        service
            .configure(
                &self.config(),
                &self.env,
                false,
                Redactor::new(&self.env, Vec::<String>::new()),
            )
            .unwrap();
        service
    }

    fn save(&self, profiles: &[WorkerCapabilityProfile]) {
        save_profiles(&self.state_dir(), profiles).unwrap();
    }
}

fn current_suite() -> SuiteRef {
    Suite::builtin().unwrap().suite_ref()
}

/// An active profile of the current suite, qualified for everything, scoring `score`.
fn profile(id: &str, score: f64) -> WorkerCapabilityProfile {
    let now = Timestamp::now();
    WorkerCapabilityProfile {
        worker_id: id.into(),
        provider: "ollama".into(),
        model: id.into(),
        base_url_host: Some("localhost:11434".into()),
        status: WorkerStatus::Active,
        capabilities: Capability::ALL
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
            .collect(),
        metrics: ProfileMetrics {
            validity: 1.0,
            schema_compliance: 1.0,
            correctness: 1.0,
            brier: Some(0.01),
            latency_p50_ms: 10,
            latency_p95_ms: 20,
            tokens: Some(100),
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
        suite: current_suite(),
        evaluated_at: now,
        expires_at: now.plus(Duration::from_secs(86_400)),
        inconclusive: 0,
    }
}

const ROUTE: &str = r#"
name: route
channels:
  routed: {}
nodes:
  route:
    kind: builtin
    name: route_steps
    with: {steps: "input.steps", no_interview: "input.no_interview", fallback: "input.fallback"}
    writes: routed
edges:
  - {from: START, to: route}
"#;

const STEPS: &str = r#"[
  {"id": "gen", "title": "Write it", "task_type": "codegen", "complexity": "high"},
  {"id": "fix", "task_type": "patch", "complexity": "low"},
  {"id": "sum", "task_type": "summarization"},
  {"id": "log", "task_type": "log-analysis", "complexity": "low"}
]"#;

/// Routes `steps` in a run; returns the node's output and the run's warnings.
async fn route(
    p: &Project,
    steps: &str,
    no_interview: bool,
    fallback: &str,
) -> (Value, Vec<String>) {
    let service = p.service();
    let wf = Arc::new(load_str(ROUTE, "route.yaml").unwrap());
    let steps: Value = serde_json::from_str(steps).unwrap();
    let out = service
        .start(
            wf,
            json!({"steps": steps, "no_interview": no_interview, "fallback": fallback}),
            RunOptions::default(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(out.status, RunStatus::Completed, "{:?}", out.error);
    let warnings = service
        .warnings(&out.run_id)
        .unwrap()
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    (out.state["routed"].clone(), warnings)
}

fn step<'a>(routed: &'a Value, id: &str) -> &'a Value {
    routed["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step_id"] == id)
        .unwrap_or_else(|| panic!("no step {id} in {routed}"))
}

/// `(decision, worker_id, leader_review)` of a step.
fn decision(routed: &Value, id: &str) -> (String, Option<String>, Option<bool>) {
    let s = step(routed, id);
    (
        s["decision"].as_str().unwrap().to_string(),
        s["worker_id"].as_str().map(String::from),
        s["leader_review"].as_bool(),
    )
}

fn assigned(worker: &str, review: bool) -> (String, Option<String>, Option<bool>) {
    ("assign".into(), Some(worker.into()), Some(review))
}

fn leader() -> (String, Option<String>, Option<bool>) {
    ("leader".into(), None, None)
}

const ONE_WORKER: &str = "[workers.w]\nprovider = \"ollama\"\nmodel = \"w\"\n";

#[tokio::test]
async fn every_routing_flag_in_a_saved_profile_changes_a_decision_of_the_node() {
    let p = Project::new(ONE_WORKER);
    p.save(&[profile("w", 0.9)]);
    let (base, _) = route(&p, STEPS, false, "leader").await;
    for id in ["gen", "fix", "sum", "log"] {
        assert_eq!(decision(&base, id), assigned("w", false), "{id}: {base}");
    }
    assert_eq!(step(&base, "sum")["complexity"], "medium", "the default");

    let flip = |f: fn(&mut RoutingPolicy)| {
        let mut pr = profile("w", 0.9);
        f(&mut pr.routing_policy);
        pr
    };

    // requires_leader_review: the same worker, its output reviewed.
    p.save(&[flip(|r| r.requires_leader_review = true)]);
    let (r, _) = route(&p, STEPS, false, "leader").await;
    assert_eq!(decision(&r, "sum"), assigned("w", true));
    assert_eq!(decision(&r, "gen"), assigned("w", true));

    // max_task_complexity: a high-complexity step goes to the leader, a low one does not.
    p.save(&[flip(|r| r.max_task_complexity = TaskComplexity::Medium)]);
    let (r, _) = route(&p, STEPS, false, "leader").await;
    assert_eq!(decision(&r, "gen"), leader());
    assert!(
        step(&r, "gen")["reason"]
            .as_str()
            .unwrap()
            .contains("above its max_task_complexity medium"),
        "{r}"
    );
    assert_eq!(decision(&r, "fix"), assigned("w", false));

    // allow_codegen: neither codegen nor patch (which writes code) goes to the worker.
    p.save(&[flip(|r| r.allow_codegen = false)]);
    let (r, _) = route(&p, STEPS, false, "leader").await;
    assert_eq!(decision(&r, "gen"), leader());
    assert_eq!(decision(&r, "fix"), leader());
    assert!(
        step(&r, "gen")["reason"]
            .as_str()
            .unwrap()
            .contains("allow_codegen is false")
    );
    assert_eq!(decision(&r, "sum"), assigned("w", false));

    // allow_patch: only patch is kept away.
    p.save(&[flip(|r| r.allow_patch = false)]);
    let (r, _) = route(&p, STEPS, false, "leader").await;
    assert_eq!(decision(&r, "fix"), leader());
    assert!(
        step(&r, "fix")["reason"]
            .as_str()
            .unwrap()
            .contains("allow_patch is false")
    );
    assert_eq!(decision(&r, "gen"), assigned("w", false));
}

#[tokio::test]
async fn blocked_workers_get_nothing_and_the_run_warns_naming_them() {
    let p = Project::new(&format!(
        "{ONE_WORKER}[workers.bad]\nprovider = \"ollama\"\nmodel = \"bad\"\n"
    ));
    let mut bad = profile("bad", 1.0);
    bad.status = WorkerStatus::Blocked;
    p.save(&[bad, profile("w", 0.5)]);
    let (r, warnings) = route(&p, STEPS, false, "leader").await;
    for id in ["gen", "fix", "sum", "log"] {
        assert_eq!(decision(&r, id), assigned("w", false), "{id}");
    }
    let named = |w: &String| w.starts_with("worker bad is blocked by its interview");
    assert_eq!(
        r["warnings"].as_array().unwrap().len(),
        1,
        "one warning per worker: {r}"
    );
    assert!(named(&r["warnings"][0].as_str().unwrap().to_string()));
    assert!(warnings.iter().any(named), "a run warning: {warnings:?}");
    assert!(
        step(&r, "sum")["excluded"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["worker_id"] == "bad" && e["reason"] == "blocked")
    );
}

#[tokio::test]
async fn limited_workers_get_only_low_risk_low_complexity_steps_and_always_review() {
    let p = Project::new(ONE_WORKER);
    let mut limited = profile("w", 0.9);
    limited.status = WorkerStatus::Limited;
    p.save(&[limited]);
    let (r, _) = route(&p, STEPS, false, "leader").await;
    assert_eq!(decision(&r, "log"), assigned("w", true));
    assert_eq!(decision(&r, "gen"), leader());
    assert_eq!(decision(&r, "fix"), leader());
    // Summarization is low-risk, but the step is (by default) of medium complexity.
    assert_eq!(decision(&r, "sum"), leader());
    for t in LOW_RISK_TASK_TYPES {
        let name = serde_json::to_value(t).unwrap();
        let steps = json!([{"id": "x", "task_type": name, "complexity": "low"}]).to_string();
        let (r, _) = route(&p, &steps, false, "leader").await;
        assert_eq!(decision(&r, "x"), assigned("w", true), "{name}");
    }
}

#[tokio::test]
async fn an_unknown_worker_is_interviewed_first_unless_the_caller_says_not_to() {
    let p = Project::new(&format!(
        "{ONE_WORKER}[workers.new]\nprovider = \"ollama\"\nmodel = \"new\"\n"
    ));
    p.save(&[profile("w", 0.9)]);
    let (r, _) = route(&p, STEPS, false, "leader").await;
    assert_eq!(
        r["interview"],
        json!([{"worker_id": "new", "why": "missing"}])
    );
    assert_eq!(step(&r, "sum")["decision"], "interview-first");
    assert_eq!(step(&r, "sum")["worker_ids"], json!(["new"]));

    let (r, _) = route(&p, STEPS, true, "leader").await;
    assert_eq!(r["interview"], json!([]));
    for id in ["gen", "fix", "sum", "log"] {
        assert_eq!(decision(&r, id), assigned("w", false), "{id}");
    }
    // Alone, it is treated as limited: low-risk and low complexity only, under review.
    let solo = Project::new("[workers.new]\nprovider = \"ollama\"\nmodel = \"new\"\n");
    let (r, _) = route(&solo, STEPS, true, "leader").await;
    assert_eq!(decision(&r, "log"), assigned("new", true));
    assert_eq!(decision(&r, "gen"), leader());
}

#[tokio::test]
async fn expired_and_other_suite_profiles_are_interviewed_again() {
    let p = Project::new(&format!(
        "{ONE_WORKER}[workers.old]\nprovider = \"ollama\"\nmodel = \"old\"\n"
    ));
    let mut expired = profile("w", 0.9);
    expired.evaluated_at = Timestamp::from_unix_seconds(1_000);
    expired.expires_at = Timestamp::from_unix_seconds(2_000);
    let mut other = profile("old", 0.9);
    other.suite.sha256 = "0".repeat(64);
    p.save(&[expired, other]);
    let (r, _) = route(&p, STEPS, false, "leader").await;
    assert_eq!(
        r["interview"],
        json!([{"worker_id": "old", "why": "other-suite"}, {"worker_id": "w", "why": "expired"}])
    );
    assert_eq!(r["suite"], serde_json::to_value(current_suite()).unwrap());
}

#[tokio::test]
async fn with_no_qualified_worker_a_step_goes_to_the_leader_or_is_unassigned_with_the_reason() {
    let none = Project::new("");
    let (r, _) = route(&none, STEPS, false, "unassigned").await;
    let s = step(&r, "sum");
    assert_eq!(s["decision"], "unassigned");
    assert!(
        s["reason"]
            .as_str()
            .unwrap()
            .contains("no workers are configured"),
        "{s}"
    );

    let p = Project::new(ONE_WORKER);
    let mut narrow = profile("w", 0.9);
    narrow.qualified_task_types = vec![ao_core::types::TaskType::LogAnalysis];
    p.save(&[narrow]);
    let (r, _) = route(&p, STEPS, false, "unassigned").await;
    assert_eq!(decision(&r, "log"), assigned("w", false));
    let s = step(&r, "gen");
    assert_eq!(s["decision"], "unassigned");
    assert!(
        s["reason"]
            .as_str()
            .unwrap()
            .contains("w: not qualified for codegen"),
        "{s}"
    );
    let (r, _) = route(&p, STEPS, false, "leader").await;
    assert_eq!(decision(&r, "gen"), leader());
}

#[tokio::test]
async fn the_env_worker_is_routed_by_provider_and_model_and_a_misconfigured_one_is_named() {
    let mut p = Project::new("[workers.broken]\nprovider = \"nonsense\"\nmodel = \"x\"\n");
    p.env
        .insert("WORKER_MODEL_PROVIDER".into(), "ollama".into());
    p.env.insert("WORKER_MODEL_NAME".into(), "qwen".into());
    p.save(&[profile("ollama:qwen", 0.9)]);
    let (r, warnings) = route(&p, STEPS, false, "leader").await;
    assert_eq!(decision(&r, "gen"), assigned("ollama:qwen", false));
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("worker broken is misconfigured and gets no work")),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn bad_steps_fail_the_node_with_what_is_wrong() {
    let p = Project::new(ONE_WORKER);
    let service = p.service();
    let wf = Arc::new(load_str(ROUTE, "route.yaml").unwrap());
    let out = service
        .start(
            wf,
            json!({"steps": [{"id": "x", "task_type": "poetry"}], "no_interview": null, "fallback": null}),
            RunOptions::default(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(out.status, RunStatus::Failed);
    let message = out.error.unwrap().message;
    assert!(
        message.contains("route_steps") && message.contains("poetry"),
        "{message}"
    );
}

// ------------------------------------------------------------------------------------------
// The interview's nodes and endpoint

/// A one-case suite whose answer is 42.
const ONE_CASE: &str = r#"
name: one
version: "1"
cases:
"#;

fn small_suite(dir: &Path) -> std::path::PathBuf {
    let mut s = ONE_CASE.to_string();
    for (i, cap) in Capability::ALL.iter().enumerate() {
        s.push_str(&format!(
            "  - id: c{i}\n    capability: {cap}\n    messages:\n      - {{role: user, content: 'Case {i}: reply 42.'}}\n    \
             output_schema:\n      type: object\n      required: [answer, confidence]\n      properties:\n        \
             answer: {{type: integer}}\n        confidence: {{type: number, minimum: 0, maximum: 1}}\n    \
             checks:\n      - {{at: /answer, equals: 42}}\n"
        ));
    }
    s.push_str(
        "  - id: u\n    capability: confidence-calibration\n    answerable: false\n    messages:\n      \
         - {role: user, content: 'Unanswerable.'}\n    output_schema:\n      type: object\n      \
         required: [answer, confidence]\n      properties:\n        answer: {type: integer}\n        \
         confidence: {type: number, minimum: 0, maximum: 1}\n    checks:\n      - {at: /answer, equals: 42}\n",
    );
    let path = dir.join("one.yaml");
    std::fs::write(&path, s).unwrap();
    path
}

struct Events(Mutex<Vec<EventKind>>);

impl EventEmitter for Events {
    fn emit(&self, kind: EventKind) {
        self.0.lock().unwrap().push(kind);
    }
}

#[tokio::test]
async fn an_ask_whose_call_is_stored_is_not_asked_again_when_its_task_runs_again() {
    let p = Project::new("");
    let stub = StubModel::replying(r#"{"answer": 42, "confidence": 0.9}"#);
    let suite = small_suite(p.dir.path());
    let mut service = p.service();
    let wf = service.resolve("worker-interview-workflow").unwrap();
    let out = service
        .start(
            wf,
            json!({"provider": "openai-compatible", "model": "m", "base_url": stub.base_url,
                   "suite": suite.display().to_string(), "trials": 1}),
            RunOptions::default(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(out.status, RunStatus::Completed, "{:?}", out.error);
    assert_eq!(out.output.as_ref().unwrap()["status"], "active");
    let asked = stub.count();
    assert_eq!(asked, 9);

    // Run the first ask's task again as the engine would after a crash between its call and
    // its completion: the stored call is its result, nothing is sent.
    let rounds = service.store().records(&out.run_id, "llm_call").unwrap();
    let first = rounds.iter().find(|r| r.index == Some(0)).unwrap();
    let node = service
        .host_mut()
        .builtins
        .get("interview_ask")
        .unwrap()
        .clone();
    let events = Events(Mutex::new(Vec::new()));
    let plan = &out.state["plan"];
    let with =
        json!({"endpoint": plan["endpoint"], "suite": plan["suite"], "case": "c0", "trial": 1});
    let call = |attempt| NodeCall {
        run_id: &out.run_id,
        step: first.step,
        node: "ask",
        index: Some(0),
        attempt,
        events: &events,
    };
    let again = node.call(call(1), with.clone()).await.unwrap();
    assert_eq!(again, out.state["records"][0]);
    assert_eq!(stub.count(), asked, "not asked again");
    assert!(matches!(
        events.0.lock().unwrap()[0],
        EventKind::LlmCall { cached: true, .. }
    ));
    // A retry (the stored answer may be what failed) asks again.
    node.call(call(2), with).await.unwrap();
    assert_eq!(stub.count(), asked + 1);
}

fn endpoint_model(p: &Project, base_url: &str) -> EndpointModel {
    let endpoint = Endpoint::AdHoc(ao_core::config::AdHocModel {
        provider: "openai-compatible".into(),
        model: "m".into(),
        base_url: Some(base_url.into()),
        api_key_env: None,
    });
    let resolved = endpoint.resolve(&p.config(), &p.env).unwrap();
    assert_eq!(resolved.identity.worker_id, "openai-compatible:m");
    EndpointModel::new(
        &resolved,
        &Redactor::new(&p.env, Vec::<String>::new()),
        None,
    )
    .unwrap()
    .with_retry_timing(ao_models::RetryTiming {
        base: Duration::from_millis(1),
        cap: Duration::from_millis(2),
        default_cooldown: Duration::from_millis(1),
    })
}

async fn ask(model: &EndpointModel) -> Result<String, (HarnessErrorKind, String)> {
    let suite = Suite::builtin().unwrap();
    let case = suite.case("if-first-three-colours").unwrap();
    let request = CaseRequest {
        case_id: case.id(),
        capability: case.capability(),
        trial: 1,
        messages: case.messages(),
        output_schema: case.output_schema(),
    };
    model
        .ask_recorded(request, &ao_models::DiscardExchanges)
        .await
        .map(|r| r.text)
        .map_err(|e| (e.kind, e.message))
}

#[tokio::test]
async fn the_endpoint_model_hands_back_malformed_replies_whole_and_names_harness_failures() {
    let p = Project::new("");
    // Prose, a reply failing the schema that is longer than any error message keeps, and a
    // good reply: each comes back as it was sent.
    let long = json!({"items": "x".repeat(5_000), "confidence": 0.9}).to_string();
    for reply in [
        "Sure, the colours are red, green and blue.".to_string(),
        long,
        r#"{"items": ["red", "green", "blue"], "confidence": 0.9}"#.to_string(),
    ] {
        let text = reply.clone();
        let stub = StubModel::start(move |_| (200, completion(&text)));
        let got = ask(&endpoint_model(&p, &stub.base_url)).await.unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&got).ok(),
            serde_json::from_str::<Value>(&reply).ok()
        );
        if serde_json::from_str::<Value>(&reply).is_err() {
            assert_eq!(got, reply);
        }
        assert_eq!(stub.count(), 1, "asked once, never repaired");
        let request = &stub.requests()[0];
        assert!(
            request["response_format"].is_object(),
            "structured output: {request}"
        );
    }

    let down = StubModel::start(|_| (503, json!({"error": {"message": "overloaded"}})));
    let (kind, message) = ask(&endpoint_model(&p, &down.base_url)).await.unwrap_err();
    assert_eq!(kind, HarnessErrorKind::ServerError);
    assert!(message.contains("503"), "{message}");
    assert_eq!(down.count(), 4, "after the model layer's retries");

    let refused = StubModel::start(|_| (401, json!({"error": {"message": "bad key"}})));
    let (kind, _) = ask(&endpoint_model(&p, &refused.base_url))
        .await
        .unwrap_err();
    assert_eq!(kind, HarnessErrorKind::Endpoint);

    let limited = StubModel::start(|_| (429, json!({"error": {"message": "slow down"}})));
    let (kind, _) = ask(&endpoint_model(&p, &limited.base_url))
        .await
        .unwrap_err();
    assert_eq!(kind, HarnessErrorKind::RateLimited);
}
