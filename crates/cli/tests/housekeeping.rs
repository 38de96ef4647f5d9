//! `ao runs gc` deletes only finished runs beyond what it keeps, and gives the space back;
//! `ao completions` prints a script for each shell.

mod support;

use support::Project;

const BIG: &str = "name: big\nchannels:\n  blob: {}\nnodes:\n  fill: {kind: transform, set: {blob: \"'x' * 200000\"}}\nedges:\n  - {from: START, to: fill}\n";
const ASKS: &str = "name: asks\nchannels:\n  blob: {}\n  ok: {}\nnodes:\n  fill: {kind: transform, set: {blob: \"'y' * 200000\"}}\n  ask: {kind: interrupt, prompt: \"ok?\", schema: {type: boolean}, writes: ok}\nedges:\n  - {from: START, to: fill}\n  - {from: fill, to: ask}\n";

fn status_of(p: &Project, id: &str) -> Option<String> {
    let (code, v) = p.json(&["runs", "show", id, "--json"]);
    (code == 0).then(|| v["status"].as_str().unwrap().to_string())
}

#[test]
fn gc_deletes_old_finished_runs_only_and_shrinks_the_store() {
    let p = Project::new();
    p.write("workflows/big.yaml", BIG);
    p.write("workflows/asks.yaml", ASKS);
    let mut finished = Vec::new();
    let (_, v) = p.json(&["run", "asks", "--json"]);
    let waiting = v["run_id"].as_str().unwrap().to_string();
    for _ in 0..4 {
        let (code, v) = p.json(&["run", "big", "--json"]);
        assert_eq!(code, 0, "{v}");
        finished.push(v["run_id"].as_str().unwrap().to_string());
    }
    // Nothing is old enough yet.
    let (code, v) = p.json(&["runs", "gc", "--keep", "0", "--older-than", "1", "--json"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["deleted"], serde_json::json!([]));

    let (code, v) = p.json(&["runs", "gc", "--keep", "1", "--json"]);
    assert_eq!(code, 0, "{v}");
    let deleted: Vec<&str> = v["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(deleted.len(), 3, "{v}");
    assert!(
        !deleted.contains(&finished[3].as_str()),
        "the newest is kept"
    );
    assert!(
        !deleted.contains(&waiting.as_str()),
        "an interrupted run is never deleted"
    );
    assert!(
        v["bytes_after"].as_u64().unwrap() < v["bytes_before"].as_u64().unwrap(),
        "the space is given back: {v}"
    );
    for id in &finished[..3] {
        assert_eq!(status_of(&p, id), None, "{id} is gone");
    }
    assert_eq!(status_of(&p, &finished[3]).as_deref(), Some("completed"));
    assert_eq!(status_of(&p, &waiting).as_deref(), Some("interrupted"));
    let (code, _, stderr) = p.run(&["runs", "resume", &waiting, "--answer", "true"]);
    assert_eq!(code, 0, "the waiting run still works: {stderr}");
}

#[test]
fn completions_are_printed_for_each_shell() {
    let p = Project::new();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let (code, out, stderr) = p.run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {stderr}");
        assert!(out.contains("resume"), "{shell} completes subcommands");
    }
    let (code, _, _) = p.run(&["completions", "tcsh"]);
    assert_eq!(code, 2);
}
