//! `ao run leader-worker` end to end against a stub leader and stub workers: the plan is the
//! leader's, routing obeys the saved profiles (a blocked worker never gets a step), workers do
//! the steps in parallel waves by `depends_on` through the file tools (dry-run: the edits land
//! in the run's changeset, the tree is untouched), the leader reviews every output and can send
//! steps back with notes (bounded) or ask a person.

mod support;

use ao_core::profile::{
    ALL_TASK_TYPES, Capability, CapabilityScore, ProfileMetrics, RoutingPolicy, TaskComplexity,
    WorkerCapabilityProfile, WorkerStatus,
};
use ao_core::timestamp::Timestamp;
use ao_orchestrator::interview::profiles::save_profiles;
use ao_orchestrator::interview::suite::Suite;
use ao_testkit::{StubModel, completion, tool_calls};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use support::{Project, files_under};

fn profile(id: &str, status: WorkerStatus) -> WorkerCapabilityProfile {
    let score = if status == WorkerStatus::Blocked {
        0.1
    } else {
        0.95
    };
    WorkerCapabilityProfile {
        worker_id: id.into(),
        provider: "openai-compatible".into(),
        model: id.into(),
        base_url_host: None,
        status,
        capabilities: Capability::ALL
            .iter()
            .map(|c| {
                (
                    *c,
                    CapabilityScore {
                        score,
                        cases: 3,
                        trials: 3,
                        pass_rate: score,
                        consistency: 1.0,
                    },
                )
            })
            .collect(),
        metrics: ProfileMetrics {
            validity: 1.0,
            schema_compliance: 1.0,
            correctness: score,
            brier: None,
            latency_p50_ms: 10,
            latency_p95_ms: 20,
            tokens: None,
        },
        qualified_task_types: if status == WorkerStatus::Blocked {
            Vec::new()
        } else {
            ALL_TASK_TYPES.to_vec()
        },
        routing_policy: RoutingPolicy {
            requires_leader_review: false,
            max_task_complexity: TaskComplexity::High,
            allow_codegen: status != WorkerStatus::Blocked,
            allow_patch: status != WorkerStatus::Blocked,
        },
        reasons: Vec::new(),
        recommended_actions: Vec::new(),
        suite: Suite::builtin().unwrap().suite_ref(),
        evaluated_at: Timestamp::now(),
        expires_at: Timestamp::now().plus(Duration::from_secs(86_400)),
        inconclusive: 0,
    }
}

/// A plan step.
fn step(id: &str, task_type: &str, depends_on: &[&str]) -> Value {
    json!({"id": id, "title": format!("Title of {id}"), "description": format!("Write {id}.txt"),
           "task_type": task_type, "depends_on": depends_on, "acceptance_checks": [format!("{id}.txt exists")]})
}

/// What the stub's leader decides when it reviews (given the review prompt).
type Review = dyn Fn(&str) -> Value + Send + Sync;

/// One stub for the leader and every worker: the plan (`steps`), a worker that writes
/// `<step>.txt` with the tools and then reports (after `delay_ms`), and the review.
fn team(steps: Vec<Value>, delay_ms: u64, review: Arc<Review>) -> StubModel {
    StubModel::start(move |req: &Value| {
        let system = req["messages"][0]["content"].as_str().unwrap_or_default();
        let prompt = req["messages"][1]["content"].as_str().unwrap_or_default();
        let reply = if system.contains("break a goal into small steps") {
            // A one-step plan leaves out its optional lists (a model need not send them).
            if steps.len() == 1 {
                json!({"summary": "PLAN_SUMMARY one step", "steps": steps})
            } else {
                json!({"summary": "PLAN_SUMMARY two files then a third", "steps": steps, "risks": ["none"], "validation": ["test -f s1.txt"]})
            }
        } else if system.contains("doing one step of a larger change") {
            let id = prompt
                .split("Your step (")
                .nth(1)
                .and_then(|s| s.split(')').next())
                .unwrap_or("unknown")
                .to_string();
            let told = req["messages"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["role"] == "tool");
            std::thread::sleep(Duration::from_millis(delay_ms));
            if !told {
                let revised = prompt.contains("sent this step back");
                let content = format!(
                    "{id} by {}{}\n",
                    req["model"].as_str().unwrap_or("?"),
                    if revised { " revised" } else { "" }
                );
                return (
                    200,
                    tool_calls(&[(
                        "fs_write",
                        json!({"path": format!("{id}.txt"), "content": content}),
                    )]),
                );
            }
            json!({"status": "done", "summary": format!("WORKER_SUMMARY_{id}"), "files_touched": [format!("{id}.txt")], "confidence": "high", "notes": []})
        } else if system.contains("reviewing your team's work") {
            review(prompt)
        } else {
            json!({"unexpected": system})
        };
        (200, completion(&reply.to_string()))
    })
}

fn approve(_: &str) -> Value {
    json!({"decision": "approve", "reason": "all good", "revisions": [], "question": null})
}

/// A project whose leader and workers `good` (active) and `bad` (blocked) are all the stub.
fn project(stub: &StubModel) -> Project {
    let p = Project::new().with_leader(stub, "sk-lw-test-0001");
    p.write(
        "ao.toml",
        &format!(
            "[workers.good]\nprovider = \"openai-compatible\"\nmodel = \"good-model\"\nbase_url = \"{url}\"\n\n\
             [workers.bad]\nprovider = \"openai-compatible\"\nmodel = \"bad-model\"\nbase_url = \"{url}\"\n\n\
             [policy]\nallowed_commands = [\"test\"]\n",
            url = stub.base_url
        ),
    );
    p.write("README.md", "# demo\n");
    save_profiles(
        &p.path().join(".ao"),
        &[
            profile("good", WorkerStatus::Active),
            profile("bad", WorkerStatus::Blocked),
        ],
    )
    .unwrap();
    p
}

/// A worker `fresh` (model `fresh-model`) at `stub`, with no saved profile.
fn fresh_worker(p: &Project, stub: &StubModel) {
    p.write(
        "ao.toml",
        &format!(
            "[workers.fresh]\nprovider = \"openai-compatible\"\nmodel = \"fresh-model\"\nbase_url = \"{}\"\n",
            stub.base_url
        ),
    );
}

fn worker_requests(stub: &StubModel) -> Vec<Value> {
    stub.requests()
        .into_iter()
        .filter(|r| r.to_string().contains("doing one step of a larger change"))
        .collect()
}

fn tree(p: &Project) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    files_under(p.path())
        .into_iter()
        .filter(|(path, _)| !path.starts_with(p.path().join(".ao")))
        .collect()
}

#[test]
fn workers_do_the_steps_in_waves_in_dry_run_and_ao_apply_writes_the_changeset() {
    let stub = team(
        vec![
            step("s1", "codegen", &[]),
            step("s2", "codegen", &[]),
            step("s3", "codegen", &["s1", "s2"]),
        ],
        0,
        Arc::new(approve),
    );
    let p = project(&stub);
    let before = tree(&p);
    let (code, v) = p.json(&[
        "run",
        "leader-worker",
        "--goal",
        "GOAL_MARKER add three files",
        "--json",
    ]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["status"], "completed", "{v}");
    let out = &v["output"];
    assert_eq!(out["goal"], "GOAL_MARKER add three files");
    assert_eq!(out["plan_summary"], "PLAN_SUMMARY two files then a third");
    assert_eq!(out["decision"]["decision"], "approve");
    assert_eq!(out["review_rounds"], 1);
    let steps = out["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3, "{out}");
    for s in steps {
        let id = s["step_id"].as_str().unwrap();
        assert_eq!(s["result"], "done", "{s}");
        assert_eq!(
            s["worker"], "good",
            "the active worker takes every step: {s}"
        );
        assert_eq!(s["summary"], format!("WORKER_SUMMARY_{id}"));
        assert_eq!(s["attempts"], 1);
        assert!(!s["routing_reason"].as_str().unwrap().is_empty());
    }
    // The goal reached the leader's plan request.
    let plan_req = stub
        .requests()
        .into_iter()
        .find(|r| r.to_string().contains("break a goal into small steps"))
        .unwrap();
    assert!(plan_req.to_string().contains("GOAL_MARKER"));
    // A blocked worker never receives a step.
    let workers = worker_requests(&stub);
    assert!(!workers.is_empty());
    assert!(
        workers.iter().all(|r| r["model"] == "good-model"),
        "only the active worker was called"
    );
    // s3 ran after s1 and s2 and was told what they did.
    let s3 = workers
        .iter()
        .find(|r| r.to_string().contains("Your step (s3)"))
        .unwrap()
        .to_string();
    assert!(
        s3.contains("WORKER_SUMMARY_s1") && s3.contains("WORKER_SUMMARY_s2"),
        "{s3}"
    );
    // The leader reviewed every step's output and the changeset.
    let review = stub
        .requests()
        .into_iter()
        .find(|r| r.to_string().contains("reviewing your team's work"))
        .unwrap()
        .to_string();
    for id in ["s1", "s2", "s3"] {
        assert!(review.contains(&format!("WORKER_SUMMARY_{id}")), "{review}");
        assert!(review.contains(&format!("+++ b/{id}.txt")), "{review}");
    }
    // Validation ran in a sandbox that held the changeset.
    assert_eq!(out["validation"][0]["command"], "test -f s1.txt");
    assert_eq!(out["validation"][0]["passed"], true, "{out}");
    assert_eq!(out["validation"][0]["ran_in"], "sandbox");
    // Dry-run: the tree is byte-for-byte unchanged; the change is the run's changeset.
    assert_eq!(tree(&p), before, "the working tree is unchanged");
    let changeset = out["changeset"].as_str().unwrap();
    assert!(changeset.contains("+s1 by good-model"), "{changeset}");
    assert_eq!(out["applied"], false);

    let id = v["run_id"].as_str().unwrap();
    let (code, _, stderr) = p.run(&["apply", id]);
    assert_eq!(code, 0, "{stderr}");
    for f in ["s1", "s2", "s3"] {
        let text = std::fs::read_to_string(p.path().join(format!("{f}.txt"))).unwrap();
        assert_eq!(text, format!("{f} by good-model\n"));
    }
}

#[test]
fn revise_sends_the_flagged_step_back_with_the_notes_until_the_bound() {
    // Approves once s1 was revised; s2 is never sent back.
    let stub = team(
        vec![step("s1", "codegen", &[]), step("s2", "codegen", &[])],
        0,
        Arc::new(|prompt: &str| {
            if prompt.contains("Review round 1") {
                json!({"decision": "revise", "reason": "s1 is wrong", "revisions": [{"step_id": "s1", "notes": "REVISE_NOTE_S1 say revised"}], "question": null})
            } else {
                approve(prompt)
            }
        }),
    );
    let p = project(&stub);
    let (code, v) = p.json(&["run", "leader-worker", "--goal", "two files", "--json"]);
    assert_eq!(code, 0, "{v}");
    let out = &v["output"];
    assert_eq!(out["decision"]["decision"], "approve", "{out}");
    assert_eq!(out["review_rounds"], 2);
    let s1 = &out["steps"][0];
    assert_eq!(s1["attempts"], 2, "{s1}");
    assert_eq!(s1["leader_notes"], json!(["REVISE_NOTE_S1 say revised"]));
    assert_eq!(out["steps"][1]["attempts"], 1);
    let again: Vec<String> = worker_requests(&stub)
        .iter()
        .map(|r| r.to_string())
        .filter(|r| r.contains("Your step (s1)") && r.contains("REVISE_NOTE_S1"))
        .collect();
    assert!(!again.is_empty(), "the notes reached the worker");
    assert!(
        out["changeset"]
            .as_str()
            .unwrap()
            .contains("+s1 by good-model revised")
    );

    // A leader that always revises is stopped at the bound.
    let stub = team(
        vec![step("s1", "codegen", &[])],
        0,
        Arc::new(
            |_: &str| json!({"decision": "revise", "reason": "never happy", "revisions": [{"step_id": "s1", "notes": "again"}], "question": null}),
        ),
    );
    let p = project(&stub);
    let (code, v) = p.json(&[
        "run",
        "leader-worker",
        "--goal",
        "one file",
        "--input",
        "max_rounds=1",
        "--json",
    ]);
    assert_eq!(code, 0, "{v}");
    let out = &v["output"];
    assert_eq!(out["review_rounds"], 2, "{out}");
    assert_eq!(out["decision"]["decision"], "revise");
    assert_eq!(out["steps"][0]["attempts"], 2);
    assert!(
        out["warnings"]
            .to_string()
            .contains("still asked to revise s1 after 2 review round(s) (max_rounds 1)"),
        "{out}"
    );

    // Revisions of steps the plan does not have spend no round: the loop ends there.
    let stub = team(
        vec![step("s1", "codegen", &[])],
        0,
        Arc::new(
            |_: &str| json!({"decision": "revise", "reason": "?", "revisions": [{"step_id": "nope", "notes": "x"}], "question": null}),
        ),
    );
    let p = project(&stub);
    let (code, v) = p.json(&["run", "leader-worker", "--goal", "one file", "--json"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["output"]["review_rounds"], 1, "{v}");
    assert_eq!(v["output"]["steps"][0]["attempts"], 1);
}

#[test]
fn human_review_interrupts_and_resume_with_an_answer_finishes() {
    let stub = team(
        vec![step("s1", "codegen", &[])],
        0,
        Arc::new(
            |_: &str| json!({"decision": "human-review", "reason": "a judgement call", "revisions": [], "question": "QUESTION_MARKER ship it?"}),
        ),
    );
    let p = project(&stub);
    let (code, v) = p.json(&["run", "leader-worker", "--goal", "one file", "--json"]);
    assert_eq!(code, 3, "interrupted: {v}");
    assert_eq!(v["status"], "interrupted");
    assert!(
        v["interrupt"]["prompt"]
            .as_str()
            .unwrap()
            .contains("QUESTION_MARKER"),
        "{v}"
    );
    let id = v["run_id"].as_str().unwrap();
    let calls = stub.count();
    let (code, v) = p.json(&["runs", "resume", id, "--answer", "true", "--json"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["output"]["decision"]["decision"], "approve", "{v}");
    assert_eq!(v["output"]["human_answer"], true, "{v}");
    assert_eq!(stub.count(), calls, "nothing was asked again");
}

#[test]
fn a_limited_worker_gets_only_what_it_may_and_its_output_reaches_leader_review() {
    let mut easy = step("s1", "summarization", &[]);
    easy["complexity"] = json!("low");
    let stub = team(vec![easy.clone()], 0, Arc::new(approve));
    let p = Project::new().with_leader(&stub, "sk-lw-test-0002");
    // A worker without a profile, taken as limited (no interview).
    fresh_worker(&p, &stub);
    let (code, v) = p.json(&[
        "run",
        "leader-worker",
        "--goal",
        "a summary",
        "--no-interview",
        "--json",
    ]);
    assert_eq!(code, 0, "{v}");
    let s1 = &v["output"]["steps"][0];
    assert_eq!(s1["worker"], "fresh", "{s1}");
    assert!(
        s1["routing_reason"]
            .as_str()
            .unwrap()
            .contains("the leader reviews its output"),
        "{s1}"
    );
    let review = stub
        .requests()
        .into_iter()
        .find(|r| r.to_string().contains("reviewing your team's work"))
        .unwrap()
        .to_string();
    assert!(
        review.contains("a limited worker: check its work closely"),
        "{review}"
    );
    assert!(review.contains("WORKER_SUMMARY_s1"));

    // A harder step is not given to it: the leader does it.
    let mut hard = easy;
    hard["complexity"] = json!("high");
    let stub2 = team(vec![hard], 0, Arc::new(approve));
    let mut p = p;
    p.remove_env("LEADER_MODEL_BASE_URL");
    p.set_env("LEADER_MODEL_BASE_URL", &stub2.base_url);
    fresh_worker(&p, &stub2);
    let (code, v) = p.json(&[
        "run",
        "leader-worker",
        "--goal",
        "a summary",
        "--no-interview",
        "--json",
    ]);
    assert_eq!(code, 0, "{v}");
    let s1 = &v["output"]["steps"][0];
    assert_eq!(s1["worker"], "leader", "{s1}");
    assert!(
        worker_requests(&stub2)
            .iter()
            .all(|r| r["model"] != "fresh-model")
    );
}

#[test]
fn independent_steps_run_concurrently() {
    let steps: Vec<Value> = (1..=4)
        .map(|i| step(&format!("s{i}"), "codegen", &[]))
        .collect();
    // Every worker reply takes 300 ms: one step is two replies (its edit, its report).
    let stub = team(steps, 300, Arc::new(approve));
    let p = project(&stub);
    let (code, v) = p.json(&["run", "leader-worker", "--goal", "four files", "--json"]);
    assert_eq!(code, 0, "{v}");
    let id = v["run_id"].as_str().unwrap();
    let events = p.events(id);
    let at = |kind: &str| -> Vec<u64> {
        events
            .iter()
            .filter(|e| e["type"] == kind && e["node"] == "work")
            .map(|e| e["ts_ms"].as_u64().unwrap())
            .collect()
    };
    let (started, finished) = (at("task_started"), at("task_finished"));
    assert_eq!(started.len(), 4, "{events:?}");
    let span = finished.iter().max().unwrap() - started.iter().min().unwrap();
    eprintln!("four independent steps (two 300 ms replies each): {span} ms");
    // In sequence: 4 × 600 ms = 2.4 s. In parallel: about 600 ms.
    assert!(span < 1_800, "the four steps took {span} ms together");
}

#[test]
fn a_worker_without_a_profile_is_interviewed_first_unless_told_not_to() {
    let interviews = Arc::new(AtomicUsize::new(0));
    let seen = interviews.clone();
    let plan = json!({"summary": "s", "steps": [step("s1", "codegen", &[])], "risks": [], "validation": []});
    let stub = StubModel::start(move |req: &Value| {
        let system = req["messages"][0]["content"].as_str().unwrap_or_default();
        let reply = if system.contains("break a goal into small steps") {
            plan.clone()
        } else if system.contains("reviewing your team's work") {
            approve("")
        } else if system.contains("doing one step") {
            json!({"status": "done", "summary": "did it", "files_touched": [], "confidence": "high", "notes": []})
        } else {
            // An interview case: a reply that fails every check.
            seen.fetch_add(1, Ordering::SeqCst);
            json!({"nothing": true})
        };
        (200, completion(&reply.to_string()))
    });
    let p = Project::new().with_leader(&stub, "sk-lw-test-0003");
    fresh_worker(&p, &stub);
    let (code, v) = p.json(&["run", "leader-worker", "--goal", "a file", "--json"]);
    assert_eq!(code, 0, "{v}");
    assert!(
        interviews.load(Ordering::SeqCst) > 0,
        "the worker was interviewed"
    );
    // The interview measured it as unfit: the leader does the step itself.
    let s1 = &v["output"]["steps"][0];
    assert_eq!(s1["worker"], "leader", "{s1}");
    let (_, list) = p.json(&["worker", "list", "--json"]);
    assert!(
        list.to_string().contains("fresh"),
        "its profile was saved: {list}"
    );
}
