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
