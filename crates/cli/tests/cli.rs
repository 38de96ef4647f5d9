//! The `ao` binary end to end: outputs pinned with insta (run ids and times redacted), exit
//! codes, durability across SIGKILL, cancel, sub-workflows.

mod support;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use support::{Project, wait_for};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

macro_rules! snap {
    ($name:expr, $value:expr) => {{
        let mut settings = insta::Settings::clone_current();
        settings.add_filter(r"\b[0-9A-HJKMNP-TV-Z]{26}\b", "[RUN_ID]");
        settings.add_filter(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", "[TIME]");
        settings.add_filter(r#""(created|updated|ts)_ms": \d+"#, "\"${1}_ms\": [MS]");
        settings.add_filter(r"/tmp/[^\s:]+/", "[DIR]/");
        settings.bind(|| insta::assert_snapshot!($name, $value));
    }};
}

fn run_id_of(v: &Value) -> String {
    v["run_id"].as_str().unwrap().to_string()
}

#[test]
fn quick_start_interrupt_wrong_answer_then_right_answer() {
    let p = Project::new();
    let hello = example("hello-graph.yaml");
    let (code, stdout, _) = p.run(&["run", hello.to_str().unwrap(), "--input", "n=1"]);
    assert_eq!(code, 3, "an interrupted run exits 3");
    snap!("run_interrupted", stdout);

    let (_, v) = p.json(&["runs", "list", "--json"]);
    let id = v["runs"][0]["run_id"].as_str().unwrap().to_string();

    let (code, stdout, stderr) = p.run(&["runs", "resume", &id, "--answer", "\"maybe\""]);
    assert_eq!(code, 2, "a wrong answer is a validation error");
    assert!(stdout.is_empty());
    snap!("resume_wrong_answer", stderr);
    let (_, v) = p.json(&["runs", "show", &id, "--json"]);
    assert_eq!(v["status"], "interrupted", "the run still waits");

    let (code, stdout, _) = p.run(&["runs", "resume", &id, "--answer", "true"]);
    assert_eq!(code, 0);
    snap!("resume_completed", stdout);

    let (code, stdout, _) = p.run(&["runs", "list"]);
    assert_eq!(code, 0);
    snap!("runs_list", stdout);
}

#[test]
fn run_json_is_one_document_with_the_documented_fields() {
    let p = Project::new();
    let hello = example("hello-graph.yaml");
    let (code, v) = p.json(&[
        "run",
        hello.to_str().unwrap(),
        "--input-json",
        r#"{"n": 3}"#,
        "--json",
    ]);
    assert_eq!(code, 3);
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "error",
            "interrupt",
            "output",
            "run_id",
            "state",
            "status",
            "steps",
            "usage",
            "workflow"
        ]
    );
    assert_eq!(
        v["interrupt"],
        json!({"node": "ask", "prompt": "Total of 0..11 is 66. Finish? (true/false)", "schema": {"type": "boolean"}})
    );
    let id = run_id_of(&v);
    let (code, v) = p.json(&["runs", "resume", &id, "--answer", "true", "--json"]);
    assert_eq!(code, 0);
    snap!(
        "run_json_completed",
        serde_json::to_string_pretty(&v).unwrap()
    );
}

#[test]
fn invalid_input_exits_2_and_runs_nothing() {
    let p = Project::new();
    let hello = example("hello-graph.yaml");
    let (code, stdout, stderr) = p.run(&["run", hello.to_str().unwrap(), "--input", "n=zero"]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    snap!("invalid_input", stderr);
    let (code, v) = p.json(&["run", hello.to_str().unwrap(), "--json"]);
    assert_eq!(code, 2);
    assert_eq!(v["error"]["kind"], "invalid_input");
    let (_, v) = p.json(&["runs", "list", "--json"]);
    assert_eq!(v["runs"], json!([]));
}

#[test]
fn yaml_errors_name_file_line_and_column() {
    let p = Project::new();
    p.write("bad.yaml", "name: bad\nnodes:\n  a:\n    kind: transform\n    sett: {x: \"1\"}\nedges:\n  - {from: START, to: a}\n");
    let (code, _, stderr) = p.run(&["graph", "validate", "bad.yaml"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("bad.yaml:5:5: nodes.a: unknown key `sett` for a node of kind `transform` (its keys: kind, description, for_each, retry, timeout_s, set); did you mean `set`?"),
        "{stderr}"
    );

    p.write("worse.yaml", "name: worse\nchannels:\n  c: {}\nnodes:\n  a: {kind: transform, set: {c: \"state.nope\"}}\nedges:\n  - {from: START, to: a}\n  - {from: a, to: b}\n");
    let (code, _, stderr) = p.run(&["graph", "validate", "worse.yaml"]);
    assert_eq!(code, 2);
    snap!("validate_semantic_errors", stderr);

    p.write("broken.yaml", "name: x\nnodes: [unclosed\n");
    let (code, _, stderr) = p.run(&["run", "broken.yaml"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("broken.yaml:"), "{stderr}");
}

#[test]
fn graph_show_mermaid_marks_every_edge_kind() {
    let p = Project::new();
    let hello = example("hello-graph.yaml");
    let (code, stdout, _) = p.run(&[
        "graph",
        "show",
        hello.to_str().unwrap(),
        "--format",
        "mermaid",
    ]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("-->|\"state.count #gt;= 8\"|"),
        "conditional labelled"
    );
    assert!(stdout.contains("(((\"join\")))"), "join marked");
    assert!(stdout.contains("[[\"fan"), "for_each marked");
    snap!("graph_mermaid", stdout);
    let (code, v) = p.json(&["graph", "show", hello.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0);
    assert_eq!(
        v["edges"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "join")
            .count(),
        1
    );
}

#[test]
fn max_steps_exceeded_fails_with_exit_1() {
    let p = Project::new();
    p.write("workflows/spin.yaml", "name: spin\nchannels:\n  n: {reducer: sum}\nnodes:\n  s: {kind: transform, set: {n: \"1\"}}\nedges:\n  - {from: START, to: s}\n  - {from: s, to: s}\nlimits: {max_steps: 3}\n");
    let (code, v) = p.json(&["run", "spin", "--json"]);
    assert_eq!(code, 1);
    assert_eq!(v["status"], "failed");
    assert_eq!(v["error"]["kind"], "max_steps");
    assert_eq!(v["state"]["n"], 3);
}

#[test]
fn a_sub_workflow_by_name_runs_inside_the_parent() {
    let p = Project::new();
    p.write("workflows/child.yaml", "name: child\ninput: {type: object, properties: {x: {type: integer}}}\nchannels:\n  y: {}\nnodes:\n  t: {kind: transform, set: {y: \"input.x + 1\"}}\nedges:\n  - {from: START, to: t}\noutput: state.y\n");
    p.write("workflows/parent.yaml", "name: parent\nchannels:\n  r: {}\nnodes:\n  sub: {kind: workflow, workflow: child, input: {x: \"41\"}, writes: r}\nedges:\n  - {from: START, to: sub}\n");
    let (code, v) = p.json(&["run", "parent", "--json"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["output"], json!({"r": 42}));
    let (_, list) = p.json(&["graph", "list", "--json"]);
    let names: Vec<&str> = list["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| !w["origin"].as_str().unwrap().starts_with("builtin:"))
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names[..2],
        ["child", "parent"],
        "the project's workflows, then the built-in ones"
    );
    assert!(names[2..].iter().all(|n| !["child", "parent"].contains(n)));
}

const SLOW_FAN: &str = r#"
name: slow-fan
channels:
  before: {}
  slept: {reducer: append}
  after: {}
nodes:
  first: {kind: transform, set: {before: "'done'"}}
  fan:
    kind: builtin
    name: sleep
    for_each: "range(4)"
    with: {ms: "50 + item * 1500"}
    writes: slept
  last: {kind: transform, set: {after: "state.slept | length"}}
edges:
  - {from: START, to: first}
  - {from: first, to: fan}
  - {from: fan, to: last}
limits: {concurrency: 4}
"#;

fn finished_fan_indexes(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .filter(|e| e["type"] == "task_finished" && e["node"] == "fan")
        .map(|e| e["index"].as_u64().unwrap())
        .collect()
}

#[test]
fn a_run_killed_mid_step_resumes_without_rerunning_completed_tasks() {
    let p = Project::new();
    p.write("workflows/slow-fan.yaml", SLOW_FAN);
    let mut child = p
        .spawn(&["run", "slow-fan", "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let run_id = p.wait_for_run();
    // Kill once two fan tasks have completed and two are still sleeping.
    wait_for("two fan tasks to complete", Duration::from_secs(20), || {
        finished_fan_indexes(&p.events(&run_id)).len() >= 2
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let before = p.events(&run_id);
    let done_before = finished_fan_indexes(&before);
    assert!(
        done_before.len() >= 2 && done_before.len() < 4,
        "killed mid-step: {done_before:?}"
    );
    let (_, v) = p.json(&["runs", "show", &run_id, "--json"]);
    assert_eq!(v["status"], "running", "a killed run is left as it was");

    let (code, v) = p.json(&["runs", "resume", &run_id, "--json"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["status"], "completed");
    assert_eq!(
        v["state"]["slept"],
        json!([50, 1550, 3050, 4550]),
        "results in index order"
    );
    assert_eq!(v["state"]["after"], json!(4));

    let all = p.events(&run_id);
    let starts = |node: &str, index: Option<u64>| {
        all.iter()
            .filter(|e| {
                e["type"] == "task_started" && e["node"] == node && e["index"].as_u64() == index
            })
            .count()
    };
    assert_eq!(
        starts("first", None),
        1,
        "the completed first step is not run again"
    );
    for i in 0..4u64 {
        let expected = if done_before.contains(&i) { 1 } else { 2 };
        assert_eq!(
            starts("fan", Some(i)),
            expected,
            "fan[{i}] (completed before the kill: {})",
            done_before.contains(&i)
        );
    }
}

#[test]
fn cancel_stops_a_running_run_from_another_process() {
    let p = Project::new();
    p.write("workflows/wait.yaml", "name: wait\nchannels:\n  x: {}\nnodes:\n  w: {kind: builtin, name: sleep, with: {ms: 60000}, writes: x}\nedges:\n  - {from: START, to: w}\n");
    let mut child = p
        .spawn(&["run", "wait"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let run_id = p.wait_for_run();
    wait_for("the task to start", Duration::from_secs(20), || {
        p.events(&run_id)
            .iter()
            .any(|e| e["type"] == "task_started")
    });
    let (code, stdout, stderr) = p.run(&["runs", "cancel", &run_id]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("cancelled; its process stopped"),
        "{stdout}"
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "a cancelled run exits 1");
    let (_, v) = p.json(&["runs", "show", &run_id, "--json"]);
    assert_eq!(v["status"], "cancelled");
    assert_eq!(v["error"]["message"], "cancelled by ao runs cancel");
    // Cancelling again is not an error.
    let (code, stdout, _) = p.run(&["runs", "cancel", &run_id]);
    assert_eq!(code, 0);
    assert!(stdout.contains("already cancelled"));
}

#[test]
fn schema_workflow_is_the_committed_schema() {
    let p = Project::new();
    let (code, v) = p.json(&["schema", "workflow"]);
    assert_eq!(code, 0);
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/workflow.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        v, committed,
        "docs/workflow.schema.json is stale: regenerate it with `ao schema workflow > docs/workflow.schema.json`"
    );
    assert_eq!(v["title"], "ao workflow");
    assert!(v["properties"]["nodes"].is_object());
}

#[test]
fn schema_prints_the_profile_and_the_interview_suite_format() {
    let p = Project::new();
    let (code, v) = p.json(&["schema", "profile"]);
    assert_eq!(code, 0);
    assert_eq!(v["title"], "WorkerCapabilityProfile");
    assert!(v["properties"]["routing_policy"].is_object());
    let (code, v) = p.json(&["schema", "interview-suite"]);
    assert_eq!(code, 0);
    assert_eq!(v["title"], "ao interview suite");
    assert!(v["properties"]["cases"].is_object());
}

#[test]
fn unknown_commands_and_runs_are_usage_errors() {
    let p = Project::new();
    let (code, _, _) = p.run(&["frobnicate"]);
    assert_eq!(code, 2);
    let (code, _, stderr) = p.run(&["runs", "show", "01NOPE"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no run with id `01NOPE`"), "{stderr}");
    let (code, _, stderr) = p.run(&["run", "no-such-workflow"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("workflow `no-such-workflow` not found"),
        "{stderr}"
    );
}

#[test]
fn log_level_debug_prints_run_events_on_stderr_and_never_on_stdout() {
    let mut p = Project::new();
    let hello = example("hello-graph.yaml");
    let (_, stdout, stderr) = p.run(&["run", hello.to_str().unwrap(), "--input", "n=1"]);
    assert!(
        !stderr.contains("run_started"),
        "quiet by default: {stderr}"
    );
    p.set_env("LOG_LEVEL", "debug");
    let (code, stdout_debug, stderr) =
        p.run(&["run", hello.to_str().unwrap(), "--input", "n=1", "--json"]);
    assert_eq!(code, 3);
    assert!(
        stderr.contains("\"type\":\"run_started\"") && stderr.contains("task_finished"),
        "{stderr}"
    );
    let v: Value = serde_json::from_str(&stdout_debug).expect("stdout stays one JSON document");
    assert_eq!(v["status"], "interrupted");
    assert!(!stdout.contains("run_started"));
}

#[test]
fn runs_events_follow_streams_until_the_run_stops() {
    let p = Project::new();
    p.write(
        "workflows/paced.yaml",
        "name: paced\nchannels:\n  n: {reducer: sum}\nnodes:\n  tick: {kind: builtin, name: sleep, with: {ms: 300}, writes: n}\nedges:\n  - {from: START, to: tick}\n  - from: tick\n    when: [{if: \"state.n < 900\", to: tick}]\n",
    );
    let mut child = p
        .spawn(&["run", "paced"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let run_id = p.wait_for_run();
    let (code, stdout, stderr) = p.run(&["runs", "events", &run_id, "--follow", "--jsonl"]);
    assert_eq!(code, 0, "{stderr}");
    child.wait().unwrap();
    let events: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.first().unwrap()["type"], "run_started");
    assert_eq!(
        events.last().unwrap()["type"],
        "run_finished",
        "follow ends with the run"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e["type"] == "task_finished")
            .count(),
        3
    );
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "no event lost or repeated: {seqs:?}"
    );
}

#[test]
fn cancelling_an_interrupted_run_also_cancels_its_waiting_sub_run() {
    let p = Project::new();
    p.write("workflows/asker.yaml", "name: asker\nchannels:\n  ok: {}\nnodes:\n  q: {kind: interrupt, prompt: sure?, writes: ok}\nedges:\n  - {from: START, to: q}\n");
    p.write("workflows/outer.yaml", "name: outer\nchannels:\n  r: {}\nnodes:\n  sub: {kind: workflow, workflow: asker, writes: r}\nedges:\n  - {from: START, to: sub}\n");
    let (code, v) = p.json(&["run", "outer", "--json"]);
    assert_eq!(code, 3, "{v}");
    let id = run_id_of(&v);
    let (code, stdout, _) = p.run(&["runs", "cancel", &id]);
    assert_eq!(code, 0);
    assert!(stdout.contains("cancelled"), "{stdout}");
    let (_, top) = p.json(&["runs", "list", "--json"]);
    assert_eq!(
        top["runs"].as_array().unwrap().len(),
        1,
        "sub-runs are not listed by default"
    );
    let (_, all) = p.json(&["runs", "list", "--all", "--json"]);
    let runs = all["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    let child = runs
        .iter()
        .find(|r| r["parent_id"] == id.as_str())
        .expect("the sub-run");
    assert_eq!(
        child["status"], "cancelled",
        "the waiting sub-run was cancelled with its parent"
    );
    let (_, shown) = p.json(&["runs", "show", &id, "--json"]);
    assert_eq!(shown["status"], "cancelled");
    let (code, _, stderr) = p.run(&["runs", "resume", &id, "--answer", "true"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("was cancelled"), "{stderr}");
}
