//! Every example in `examples/` runs, and what it prints makes sense.

mod support;

use std::path::{Path, PathBuf};
use support::Project;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

#[test]
fn hello_graph_asks_the_same_true_total_every_round() {
    let p = Project::new();
    let hello = example("hello-graph.yaml");
    let (code, v) = p.json(&["run", hello.to_str().unwrap(), "--input", "n=1", "--json"]);
    assert_eq!(code, 3, "{v}");
    assert_eq!(
        v["interrupt"]["prompt"],
        "Total of 0..7 is 28. Finish? (true/false)"
    );
    let id = v["run_id"].as_str().unwrap().to_string();
    // `false` goes round again: the same numbers give the same total, not a running sum.
    let (code, v) = p.json(&["runs", "resume", &id, "--answer", "false", "--json"]);
    assert_eq!(code, 3, "{v}");
    assert_eq!(
        v["interrupt"]["prompt"],
        "Total of 0..7 is 28. Finish? (true/false)"
    );
    let (code, v) = p.json(&["runs", "resume", &id, "--answer", "true", "--json"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["output"]["total"], 28);
    assert_eq!(
        v["output"]["facts"],
        serde_json::json!({"count": 8, "largest": 7, "sum": 28})
    );
    // Two rounds of eight numbers: the trace shows both.
    let fans = v["state"]["seen"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s.as_str().unwrap().starts_with("fan-"))
        .count();
    assert_eq!(fans, 16);
}

#[test]
fn every_example_workflow_validates() {
    let p = Project::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let path = entry.path();
        let file = if path.is_dir() {
            path.join("workflow.yaml")
        } else {
            path.clone()
        };
        if file.extension().and_then(|e| e.to_str()) != Some("yaml") || !file.is_file() {
            continue;
        }
        let (code, _, stderr) = p.run(&["graph", "validate", file.to_str().unwrap()]);
        assert_eq!(code, 0, "{}: {stderr}", file.display());
        checked += 1;
    }
    assert!(checked >= 2, "the examples were found");
}

/// `examples/replay-ci`: the arguments that run its workflow on its input with its ao.toml.
fn replay_ci_args(extra: &[&str]) -> Vec<String> {
    let dir = example("replay-ci");
    let path = |f: &str| dir.join(f).to_str().unwrap().to_string();
    let mut args = vec![
        "--config".to_string(),
        path("ao.toml"),
        "run".into(),
        path("workflow.yaml"),
        "--input-json".into(),
        format!("@{}", path("input.json")),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// The model the replay-ci cassette was recorded from: a feature, a fix, a chore, then notes.
fn release_notes_model() -> ao_testkit::StubModel {
    ao_testkit::StubModel::start(|req: &serde_json::Value| {
        let prompt = req["messages"]
            .as_array()
            .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_string();
        let reply = match prompt.strip_prefix("Change: ") {
            Some(c) if c.starts_with("Add") => r#"{"kind": "feature"}"#,
            Some(c) if c.starts_with("Fix") => r#"{"kind": "fix"}"#,
            Some(_) => r#"{"kind": "chore"}"#,
            None => {
                "Version 1.4.0 adds a --verbose flag to the CLI, fixes a crash when the config file is empty, and updates its dependencies."
            }
        };
        (200, ao_testkit::completion(reply))
    })
}

#[test]
fn replay_ci_runs_its_workflow_from_the_cassette_without_a_model() {
    // As in the example's README: nothing listens at the configured base URL, no key is set.
    let p = Project::new();
    let cassette = example("replay-ci").join("cassette.json");
    let args = replay_ci_args(&["--replay", cassette.to_str().unwrap(), "--json"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, v) = p.json(&args);
    assert_eq!(code, 0, "{v}");
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(example("replay-ci").join("expected-output.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(v["output"], expected);
    assert_eq!(v["usage"]["replayed"], 4);
    assert_eq!(v["usage"]["calls"], 0);
}

/// The committed cassette is what recording the example against its model gives today (run
/// with `AO_UPDATE_EXAMPLES=1` to write it again after changing the example).
#[test]
fn replay_ci_cassette_is_what_recording_gives() {
    let model = release_notes_model();
    let mut p = Project::new();
    p.set_env("LEADER_MODEL_BASE_URL", &model.base_url);
    let args = replay_ci_args(&["--record", "cassette.json", "--json"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, v) = p.json(&args);
    assert_eq!(code, 0, "{v}");
    assert_eq!(model.count(), 4);
    let recorded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.path().join("cassette.json")).unwrap())
            .unwrap();
    let dir = example("replay-ci");
    if std::env::var_os("AO_UPDATE_EXAMPLES").is_some() {
        // The committed copy keeps what matching uses; the HTTP attempts (times, the stub's
        // port) would only change with every recording.
        let mut committed = recorded.clone();
        for call in committed["calls"].as_array_mut().unwrap() {
            call["exchanges"] = serde_json::json!([]);
        }
        committed["run_id"] = serde_json::json!("recorded-for-the-example");
        std::fs::write(
            dir.join("cassette.json"),
            serde_json::to_string_pretty(&committed).unwrap() + "\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("expected-output.json"),
            serde_json::to_string_pretty(&v["output"]).unwrap() + "\n",
        )
        .unwrap();
    }
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cassette.json")).unwrap()).unwrap();
    let key = |c: &serde_json::Value| {
        (
            c["node"].clone(),
            c["index"].clone(),
            c["round"].clone(),
            c["request_sha256"].clone(),
            c["reply"].clone(),
        )
    };
    let calls = |c: &serde_json::Value| {
        c["calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(key)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        calls(&committed),
        calls(&recorded),
        "examples/replay-ci/cassette.json is out of date: run this test with AO_UPDATE_EXAMPLES=1"
    );
}

/// A stub for the examples below: answers by what the system prompt asks for.
fn stub_for_examples() -> ao_testkit::StubModel {
    use ao_testkit::{completion, tool_calls};
    use serde_json::json;
    ao_testkit::StubModel::start(|req: &serde_json::Value| {
        let system = req["messages"][0]["content"].as_str().unwrap_or_default();
        let told = req["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["role"] == "tool");
        let reply = if system.contains("resolve TODO comments") {
            if !told {
                return (
                    200,
                    tool_calls(&[(
                        "fs_edit",
                        json!({"path": "src/util.py", "search": "    # TODO: return the sum\n    return 0\n", "replace": "    return a + b\n"}),
                    )]),
                );
            }
            json!("Made add() return the sum and removed the TODO.")
        } else if system.contains("break a goal into small steps") {
            json!({"summary": "add --shout", "steps": [
                {"id": "s1", "title": "Add the flag", "description": "greet.py", "task_type": "patch", "depends_on": [], "acceptance_checks": []}
            ], "risks": [], "validation": ["python3 -m unittest"]})
        } else if system.contains("doing one step of a larger change") {
            if !told {
                return (
                    200,
                    tool_calls(&[(
                        "fs_edit",
                        json!({"path": "greet.py", "search": "    return f\"Hello, {name}!\"\n", "replace": "    return f\"Hello, {name}!\"\n\n\ndef shout(name: str) -> str:\n    return greet(name).upper()\n"}),
                    )]),
                );
            }
            json!({"status": "done", "summary": "added shout()", "files_touched": ["greet.py"], "confidence": "high", "notes": []})
        } else if system.contains("reviewing your team's work") {
            json!({"decision": "approve", "reason": "fine", "revisions": [], "question": null})
        } else {
            json!("unexpected")
        };
        let text = match reply {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        (200, completion(&text))
    })
}

#[test]
fn todo_sweep_finds_resolves_and_asks_before_keeping() {
    let stub = stub_for_examples();
    let mut p = Project::new().with_leader(&stub, "sk-example-0001");
    p.set_env("WORKER_MODEL_PROVIDER", "openai-compatible");
    p.set_env("WORKER_MODEL_NAME", "stub-worker");
    p.set_env("WORKER_MODEL_BASE_URL", &stub.base_url);
    let source = "def add(a, b):\n    # TODO: return the sum\n    return 0\n";
    p.write("src/util.py", source);
    let wf = example("todo-sweep");
    let (code, v) = p.json(&["run", wf.to_str().unwrap(), "--input", "path=src", "--json"]);
    assert_eq!(code, 3, "{v}");
    let prompt = v["interrupt"]["prompt"].as_str().unwrap();
    assert!(prompt.contains("+    return a + b"), "{prompt}");
    assert!(prompt.contains("Made add() return the sum"), "{prompt}");
    // The worker saw the TODO the tool node found.
    let asked = stub.requests()[0].to_string();
    assert!(
        asked.contains("src/util.py:2: # TODO: return the sum"),
        "{asked}"
    );
    assert_eq!(
        std::fs::read_to_string(p.path().join("src/util.py")).unwrap(),
        source
    );
    let id = v["run_id"].as_str().unwrap();
    let (code, v) = p.json(&["runs", "resume", id, "--answer", "true", "--json"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["output"]["todos"], 1);
    assert_eq!(v["output"]["kept"], true);
    let (code, _, err) = p.run(&["apply", id]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read_to_string(p.path().join("src/util.py")).unwrap(),
        "def add(a, b):\n    return a + b\n"
    );
}

#[test]
fn leader_worker_basic_runs_as_its_readme_says() {
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("python3 is not installed; skipping");
        return;
    }
    let stub = stub_for_examples();
    let p = Project::new().with_leader(&stub, "sk-example-0002");
    let src = example("leader-worker-basic/project");
    for f in ["greet.py", "test_greet.py", "ao.toml"] {
        p.write(f, &std::fs::read_to_string(src.join(f)).unwrap());
    }
    let (code, out, err) = p.run(&[
        "run",
        "leader-worker",
        "--goal",
        "add a --shout flag",
        "--no-interview",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("[s1] Add the flag — done by leader"), "{out}");
    assert!(
        out.contains("validation `python3 -m unittest`: passed"),
        "{out}"
    );
    assert!(out.contains("Leader: approve after 1 review(s)"), "{out}");
    assert_eq!(
        std::fs::read_to_string(p.path().join("greet.py")).unwrap(),
        std::fs::read_to_string(src.join("greet.py")).unwrap(),
        "dry-run: the tree is unchanged"
    );
}
