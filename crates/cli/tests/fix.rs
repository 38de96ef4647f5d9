//! `ao fix` end to end against a stub leader and worker: the log and the source lines it points
//! at reach the leader, the worker's edit lands in the run's changeset (never the working tree
//! in dry-run), validation runs in a sandbox holding the changeset, and the fix loop is bounded.

mod support;

use ao_testkit::{StubModel, completion, tool_calls};
use serde_json::{Value, json};
use support::{Project, files_under};

const LOG: &str = "   Compiling app v0.1.0\nerror[E0425]: cannot find value `answr` in this scope\n --> src/lib.rs:2:5\n  |\n2 |     answr\n  |     ^^^^^ help: a local variable with a similar name exists: `answer`\n\nerror: could not compile `app`\n";
const SOURCE: &str = "pub fn get(answer: u32) -> u32 {\n    answr // SOURCE_MARKER\n}\n";

/// A leader and a worker in one stub: the analysis, the fixer's edit (`fixed` is what it
/// writes), the judge's decision (approve when validation passed, else revise).
fn fixer(fixed: &'static str) -> StubModel {
    StubModel::start(move |req: &Value| {
        let system = req["messages"][0]["content"].as_str().unwrap_or_default();
        let prompt = req["messages"][1]["content"].as_str().unwrap_or_default();
        let reply = if system.contains("root cause") {
            if fixed.contains("still_wrong") {
                // An analysis without its optional `evidence`: the workflow must not need it.
                json!({"root_cause": "a typo: `answr` for `answer`", "fix_plan": ["rename answr to answer"]})
            } else {
                json!({"root_cause": "a typo: `answr` for `answer`", "evidence": [{"file": "src/lib.rs", "line": 2, "detail": "answr"}], "fix_plan": ["rename answr to answer"]})
            }
        } else if system.contains("You fix code") {
            let told = req["messages"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["role"] == "tool");
            if !told {
                return (
                    200,
                    tool_calls(&[("fs_write", json!({"path": "src/lib.rs", "content": fixed}))]),
                );
            }
            json!({"status": "done", "summary": "renamed", "files_touched": ["src/lib.rs"], "confidence": "high", "notes": []})
        } else {
            let passed = prompt.contains("`grep -q answer src/lib.rs`: passed");
            if passed {
                json!({"decision": "approve", "reason": "validation passes", "revisions": [], "question": null})
            } else {
                json!({"decision": "revise", "reason": "still broken", "revisions": [{"step_id": "fix", "notes": "REVISE_NOTE use answer"}], "question": null})
            }
        };
        (200, completion(&reply.to_string()))
    })
}

fn project(stub: &StubModel) -> Project {
    let p = Project::new().with_leader(stub, "sk-fix-test-0001");
    p.write("src/lib.rs", SOURCE);
    p.write("build.log", LOG);
    p
}

#[test]
fn a_dry_run_fix_is_validated_in_a_sandbox_and_leaves_the_tree_alone() {
    let stub = fixer("pub fn get(answer: u32) -> u32 {\n    answer\n}\n");
    let p = project(&stub);
    let before = files_under(p.path());
    let (code, v) = p.json(&[
        "fix",
        "--error",
        "build.log",
        "--validate",
        "grep -q answer src/lib.rs",
        "--json",
    ]);
    assert_eq!(code, 0, "{v}");
    let out = &v["output"];
    assert_eq!(out["root_cause"], "a typo: `answr` for `answer`");
    assert_eq!(out["decision"]["decision"], "approve", "{out}");
    assert_eq!(out["attempts"], 1);
    assert_eq!(out["validation"][0]["passed"], true, "{out}");
    assert_eq!(out["validation"][0]["ran_in"], "sandbox");
    assert!(
        out["changeset"].as_str().unwrap().contains("+    answer"),
        "{out}"
    );
    let after: Vec<_> = files_under(p.path())
        .into_iter()
        .filter(|(path, _)| !path.starts_with(p.path().join(".ao")))
        .collect();
    assert_eq!(after, before, "the working tree is byte-for-byte unchanged");
    assert!(
        !p.path().join(".ao/sandboxes").exists()
            || std::fs::read_dir(p.path().join(".ao/sandboxes"))
                .unwrap()
                .next()
                .is_none(),
        "the sandbox was removed"
    );
    let sent: Vec<String> = stub.requests().iter().map(|r| r.to_string()).collect();
    let analysis = sent.iter().find(|r| r.contains("root cause")).unwrap();
    assert!(
        analysis.contains("cannot find value"),
        "the log reached the leader"
    );
    assert!(
        analysis.contains("SOURCE_MARKER"),
        "the source line it points at too"
    );

    // The changeset is a run's like any other: `ao apply` writes it.
    let id = v["run_id"].as_str().unwrap();
    let (code, _, stderr) = p.run(&["apply", id]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        std::fs::read_to_string(p.path().join("src/lib.rs"))
            .unwrap()
            .contains("    answer\n")
    );
}

#[test]
fn a_fix_that_fails_validation_goes_back_to_the_worker_until_the_bound() {
    let stub = fixer("pub fn get(n: u32) -> u32 {\n    still_wrong\n}\n");
    let p = project(&stub);
    let (code, v) = p.json(&[
        "fix",
        "--error",
        "build.log",
        "--validate",
        "grep -q answer src/lib.rs",
        "--max-attempts",
        "2",
        "--json",
    ]);
    assert_eq!(code, 0, "{v}");
    let out = &v["output"];
    assert_eq!(out["attempts"], 2, "{out}");
    assert_eq!(out["decision"]["decision"], "revise");
    assert_eq!(out["validation"][0]["passed"], false);
    assert_eq!(
        out["validation"][0]["decision"], "allowed",
        "it ran, and failed"
    );
    let second_fix = stub
        .requests()
        .iter()
        .filter(|r| r.to_string().contains("You fix code"))
        .map(|r| r.to_string())
        .find(|r| r.contains("attempt 2"))
        .expect("a second attempt");
    assert!(
        second_fix.contains("REVISE_NOTE"),
        "the leader's notes reach the worker"
    );
}

#[test]
fn a_validation_command_off_the_allowlist_is_denied_in_apply_mode_and_not_run() {
    let stub = fixer("pub fn get(answer: u32) -> u32 {\n    answer\n}\n");
    let p = project(&stub);
    p.write("marker.sh", "");
    let (code, v) = p.json(&[
        "fix",
        "--error",
        "build.log",
        "--validate",
        "touch RAN_MARKER",
        "--apply",
        "--json",
    ]);
    assert_eq!(code, 0, "{v}");
    let validation = &v["output"]["validation"][0];
    assert_eq!(validation["decision"], "denied", "{v}");
    assert_eq!(validation["ran_in"], "root");
    assert!(!p.path().join("RAN_MARKER").exists(), "not run");
    assert_eq!(v["output"]["applied"], true);
}
