//! The workflow loader meets real-world YAML: every case of the official YAML test suite gets a
//! result or a clear error (never a panic or a hang), and hostile documents are refused fast.

use ao_graph::load_str;
use std::time::{Duration, Instant};

/// The `yaml` fields of the YAML test suite's cases (yaml-test-suite, MIT: see
/// `data/yaml-test-suite.LICENSE`), with its visible markers for tabs and line ends decoded.
const SUITE: &str = include_str!("data/yaml-test-suite.json");

#[test]
fn every_yaml_test_suite_case_loads_or_fails_with_a_positioned_error() {
    let cases: Vec<serde_json::Value> = serde_json::from_str(SUITE).unwrap();
    assert!(cases.len() > 300, "the suite is all there");
    let started = Instant::now();
    for case in &cases {
        let id = case["id"].as_str().unwrap();
        let yaml = case["yaml"].as_str().unwrap();
        let result = std::panic::catch_unwind(|| load_str(yaml, &format!("{id}.yaml")));
        let Ok(result) = result else {
            panic!("case {id} panicked the loader:\n{yaml}");
        };
        // None of these is a workflow: each must be refused with a message naming the file.
        let err = result
            .err()
            .unwrap_or_else(|| panic!("case {id} loaded as a workflow"));
        let text = err.to_string();
        assert!(text.starts_with(&format!("{id}.yaml")), "{id}: {text}");
        assert!(!text.trim().is_empty());
    }
    assert!(started.elapsed() < Duration::from_secs(60), "no case hangs");
}

fn refused_quickly(yaml: &str, expected: &str) {
    let started = Instant::now();
    let err = load_str(yaml, "hostile.yaml").unwrap_err().to_string();
    assert!(err.contains(expected), "{err}");
    assert!(err.starts_with("hostile.yaml:"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn deeply_nested_flow_collections_are_refused_at_once() {
    for open in ["[", "{a: "] {
        let close = if open == "[" { "]" } else { "}" };
        let yaml = format!(
            "name: x\nchannels:\n  c: {{default: {}{}}}\n",
            open.repeat(80_000),
            close.repeat(80_000)
        );
        refused_quickly(&yaml, "nest deeper than 64 levels");
    }
}

#[test]
fn alias_bombs_are_refused() {
    let mut yaml = String::from(
        "name: x\nchannels:\n  c:\n    default:\n      a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n",
    );
    for i in 1..12 {
        let prev = format!("*a{}", i - 1);
        yaml.push_str(&format!(
            "      a{i}: &a{i} [{}]\n",
            [prev.as_str(); 10].join(", ")
        ));
    }
    let started = Instant::now();
    let result = load_str(&yaml, "hostile.yaml");
    assert!(
        result.is_err(),
        "ten billion strings are not a channel default"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn ordinary_deep_structure_still_loads() {
    let value = format!("{}1{}", "[".repeat(30), "]".repeat(30));
    let yaml = format!(
        "name: x\nchannels:\n  c: {{default: {value}}}\nnodes:\n  a: {{kind: transform, set: {{c: \"state.c\"}}}}\nedges:\n  - {{from: START, to: a}}\n"
    );
    load_str(&yaml, "ok.yaml").unwrap();
}
