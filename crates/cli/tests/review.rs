//! `ao review` end to end against a stub model: the diff's content reaches the workers, the
//! leader's merge is the output, `--fail-on` decides the exit code, and nothing is canned.

mod support;

use ao_testkit::{StubModel, completion};
use serde_json::{Value, json};
use std::process::Command;
use support::Project;

fn git(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.email=t@example.invalid", "-c", "user.name=t"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A stub that reviews chunks as a worker and merges as the leader, with the risk it is given.
fn reviewer(risk: &'static str, headline: &'static str) -> StubModel {
    StubModel::start(move |req: &Value| {
        let system = req["messages"][0]["content"].as_str().unwrap_or_default();
        let prompt = req["messages"][1]["content"].as_str().unwrap_or_default();
        let merged = system.contains("lead engineer");
        let summary = json!({
            "summary": if merged { headline.to_string() } else { format!("chunk saw {} bytes", prompt.len()) },
            "architecture_impact": "none",
            "must_fix": if merged && risk == "high" {
                json!([{"file": "src/lib.rs", "line": 2, "issue": "unchecked division", "why": "panics on zero", "severity": "high"}])
            } else { json!([]) },
            "should_fix": [],
            "missing_tests": [],
            "risk_level": risk,
        });
        (200, completion(&summary.to_string()))
    })
}

fn project_with_change(stub: &StubModel) -> Project {
    let p = Project::new().with_leader(stub, "sk-review-test-0001");
    git(p.path(), &["init", "-q"]);
    p.write(
        "src/lib.rs",
        "pub fn ratio(a: u32, b: u32) -> u32 {\n    a * b\n}\n",
    );
    git(p.path(), &["add", "."]);
    git(p.path(), &["commit", "-qm", "first"]);
    p.write(
        "src/lib.rs",
        "pub fn ratio(a: u32, b: u32) -> u32 {\n    a / b // DIVIDE_MARKER\n}\n",
    );
    p
}

#[test]
fn a_git_range_is_read_reviewed_and_merged_by_the_leader() {
    let stub = reviewer("low", "One small change, looks fine.");
    let p = project_with_change(&stub);
    let (code, v) = p.json(&["review", "--diff", "HEAD", "--json"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["output"]["summary"], "One small change, looks fine.");
    let requests = stub.requests();
    let worker = requests
        .iter()
        .find(|r| r.to_string().contains("careful code reviewer"))
        .expect("a worker reviewed a chunk");
    assert!(
        worker.to_string().contains("DIVIDE_MARKER"),
        "the diff's content was sent: {worker}"
    );
    let leader = requests
        .iter()
        .find(|r| r.to_string().contains("lead engineer"))
        .unwrap();
    assert!(
        leader.to_string().contains("chunk saw"),
        "the chunk reviews reach the leader"
    );
}

#[test]
fn fail_on_decides_the_exit_code_and_the_reply_decides_the_output() {
    let high = reviewer("high", "Division by zero possible.");
    let p = project_with_change(&high);
    let (code, v) = p.json(&["review", "--diff", "HEAD", "--fail-on", "high", "--json"]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["status"], "completed", "the review itself completed");
    assert_eq!(v["output"]["must_fix"][0]["issue"], "unchecked division");
    let (code, text, _) = p.run(&["review", "--diff", "HEAD", "--fail-on", "high"]);
    assert_eq!(code, 1);
    assert!(text.contains("Division by zero possible."), "{text}");

    let low = reviewer("low", "Fine.");
    let p = project_with_change(&low);
    let (code, _, stderr) = p.run(&["review", "--diff", "HEAD", "--fail-on", "high"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, md, _) = p.run(&["review", "--diff", "HEAD", "--format", "markdown"]);
    assert_eq!(code, 0);
    assert!(md.contains("Fine."), "{md}");
    assert!(md.contains('#') || md.contains("**"), "markdown: {md}");
}

#[test]
fn a_diff_from_stdin_and_whole_files_are_reviewed_too() {
    let stub = reviewer("medium", "Reviewed.");
    let p = Project::new().with_leader(&stub, "sk-review-test-0001");
    let diff = "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-print(1)\n+print(STDIN_MARKER)\n";
    let mut child = p
        .spawn(&["review", "--diff-file", "-", "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), diff.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stub.requests()
            .iter()
            .any(|r| r.to_string().contains("STDIN_MARKER"))
    );

    p.write("notes.md", "FILE_MARKER\n");
    let (code, v) = p.json(&["review", "--file", "notes.md", "--json"]);
    assert_eq!(code, 0, "{v}");
    assert!(
        stub.requests()
            .iter()
            .any(|r| r.to_string().contains("FILE_MARKER"))
    );
}

#[test]
fn an_empty_change_needs_no_model_and_no_source_is_a_usage_error() {
    let stub = reviewer("high", "unused");
    let p = Project::new().with_leader(&stub, "sk-review-test-0001");
    git(p.path(), &["init", "-q"]);
    p.write("a.txt", "a\n");
    git(p.path(), &["add", "."]);
    git(p.path(), &["commit", "-qm", "first"]);
    let (code, v) = p.json(&["review", "--diff", "HEAD", "--fail-on", "low", "--json"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["output"]["risk_level"], "low");
    assert_eq!(stub.count(), 0, "no model call for an empty diff");
    let (code, _, stderr) = p.run(&["review"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("nothing to review"), "{stderr}");
}
