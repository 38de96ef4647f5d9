//! Ctrl-C leaves a run resumable; `ao runs cancel` is what makes it final; a failed run
//! resumes with the workflow's fixed definition (`--reload`) when what ran still fits it.

mod support;

use std::time::Duration;
use support::{Project, wait_for};

const SLOW: &str = "name: slow\nchannels:\n  a: {}\n  b: {}\nnodes:\n  first: {kind: builtin, name: sleep, with: {ms: 100}, writes: a}\n  second: {kind: builtin, name: sleep, with: {ms: 3000}, writes: b}\nedges:\n  - {from: START, to: first}\n  - {from: first, to: second}\n";

fn signal(child: &std::process::Child, sig: i32) {
    // SAFETY: sending a signal to our own child process by its pid.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

fn started(p: &Project, run_id: &str, node: &str) -> usize {
    p.events(run_id)
        .iter()
        .filter(|e| e["type"] == "task_started" && e["node"] == node)
        .count()
}

#[test]
fn ctrl_c_stops_the_run_resumably_and_resume_finishes_it() {
    let p = Project::new();
    p.write("workflows/slow.yaml", SLOW);
    let child = p
        .spawn(&["run", "slow", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let run_id = p.wait_for_run();
    wait_for("the slow node to start", Duration::from_secs(30), || {
        started(&p, &run_id, "second") == 1
    });
    signal(&child, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "failed", "{v}");
    assert_eq!(v["error"]["kind"], "stopped", "{v}");

    let (code, v) = p.json(&["runs", "resume", &run_id, "--json"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["status"], "completed");
    assert_eq!(
        started(&p, &run_id, "first"),
        1,
        "the completed node did not run again"
    );
}

#[test]
fn a_second_ctrl_c_exits_at_once_and_the_run_is_still_resumable() {
    let p = Project::new();
    p.write("workflows/slow.yaml", SLOW);
    let mut child = p
        .spawn(&["run", "slow"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let run_id = p.wait_for_run();
    wait_for("the slow node to start", Duration::from_secs(30), || {
        started(&p, &run_id, "second") == 1
    });
    // The first stops at the next safe point (after the 3 s sleep is abandoned); the second
    // does not wait for it.
    signal(&child, libc::SIGINT);
    std::thread::sleep(Duration::from_millis(20));
    signal(&child, libc::SIGINT);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let (code, v) = p.json(&["runs", "resume", &run_id, "--json"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["status"], "completed");
}

#[test]
fn only_runs_cancel_makes_a_run_final() {
    let p = Project::new();
    p.write("workflows/slow.yaml", SLOW);
    let child = p
        .spawn(&["run", "slow"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let run_id = p.wait_for_run();
    let (code, _, stderr) = p.run(&["runs", "cancel", &run_id]);
    assert_eq!(code, 0, "{stderr}");
    let mut child = child;
    child.wait().unwrap();
    let (_, v) = p.json(&["runs", "show", &run_id, "--json"]);
    assert_eq!(v["status"], "cancelled");
    let (code, _, stderr) = p.run(&["runs", "resume", &run_id]);
    assert_eq!(code, 2, "{stderr}");
}

const BROKEN: &str = "name: fixme\nchannels:\n  a: {}\n  b: {}\nnodes:\n  first: {kind: transform, set: {a: \"41\"}}\n  second: {kind: transform, set: {b: \"state.a + undefined_name\"}}\nedges:\n  - {from: START, to: first}\n  - {from: first, to: second}\n";

#[test]
fn resume_with_reload_picks_up_the_fix_and_refuses_an_incompatible_change() {
    let p = Project::new();
    // `undefined_name` is caught at load time, so break it at run time instead: an attribute
    // of a number.
    let broken = BROKEN.replace("state.a + undefined_name", "state.a.missing + 1");
    p.write("workflows/fixme.yaml", &broken);
    let (code, v) = p.json(&["run", "fixme", "--json"]);
    assert_eq!(code, 1, "{v}");
    let run_id = v["run_id"].as_str().unwrap().to_string();
    let (_, stdout, _) = p.run(&["runs", "show", &run_id]);
    assert!(
        stdout.contains("--reload"),
        "the hint names --reload: {stdout}"
    );

    // Without --reload the stored definition runs again, and fails again.
    p.write(
        "workflows/fixme.yaml",
        &broken.replace("state.a.missing + 1", "state.a + 1"),
    );
    let (code, v) = p.json(&["runs", "resume", &run_id, "--json"]);
    assert_eq!(code, 1, "{v}");

    // An incompatible change: the completed node is gone.
    let renamed = broken
        .replace("state.a.missing + 1", "state.a + 1")
        .replace("first", "start");
    p.write("workflows/fixme.yaml", &renamed);
    let (code, _, stderr) = p.run(&["runs", "resume", &run_id, "--reload"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("node `first` already ran but the workflow no longer has it"),
        "{stderr}"
    );

    // The fix itself is compatible: the run completes, `first` is not run again.
    p.write(
        "workflows/fixme.yaml",
        &broken.replace("state.a.missing + 1", "state.a + 1"),
    );
    let (code, v) = p.json(&["runs", "resume", &run_id, "--reload", "--json"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["state"]["b"], 42);
    assert_eq!(started(&p, &run_id, "first"), 1);
}
