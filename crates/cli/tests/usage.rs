//! Usage per node: `ao runs show` prints a table of calls, tokens, cost and latency per node
//! (per `for_each` task with `--tasks`), `--json` carries `usage.by_node` (sub-run nodes as
//! `NODE/SUBNODE`), the run object's schema has it, and `--exchanges` shows every request.

mod support;

use ao_testkit::StubModel;
use support::Project;

const FAN: &str = "name: fan\nchannels:\n  a: {reducer: append}\n  b: {}\n  c: {}\nnodes:\n  each: {kind: llm, for_each: \"range(3)\", prompt: \"item {{ item }}\", writes: a}\n  once: {kind: llm, prompt: \"once\", writes: b}\n  sub: {kind: workflow, workflow: child, writes: c}\nedges:\n  - {from: START, to: each}\n  - {from: each, to: once}\n  - {from: once, to: sub}\n";
const CHILD: &str = "name: child\nchannels:\n  x: {}\nnodes:\n  inner: {kind: llm, prompt: \"inner\", writes: x}\nedges:\n  - {from: START, to: inner}\noutput: state.x\n";
const KEY: &str = "sk-usage-test-000111";

#[test]
fn usage_is_shown_per_node_and_per_task() {
    let stub = StubModel::replying("fine");
    let p = Project::new().with_leader(&stub, KEY);
    p.write("workflows/fan.yaml", FAN);
    p.write("workflows/child.yaml", CHILD);
    let (code, v) = p.json(&["run", "fan", "--json"]);
    assert_eq!(code, 0, "{v}");
    let by_node = &v["usage"]["by_node"];
    assert_eq!(by_node["each"]["calls"], 3);
    assert_eq!(by_node["each"]["prompt_tokens"], 33);
    assert_eq!(by_node["each"]["tasks"]["2"]["calls"], 1);
    assert_eq!(by_node["once"]["calls"], 1);
    assert_eq!(by_node["sub/inner"]["calls"], 1, "{by_node}");
    assert_eq!(v["usage"]["calls"], 5);
    let id = v["run_id"].as_str().unwrap().to_string();

    let (code, shown, _) = p.run(&["runs", "show", &id]);
    assert_eq!(code, 0);
    let row = shown
        .lines()
        .find(|l| l.starts_with("each "))
        .unwrap_or_else(|| panic!("a row for `each`: {shown}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[..4], ["each", "3", "33", "21"], "{row}");
    assert!(!shown.contains("  [0]"), "tasks only on request");
    let (_, shown, _) = p.run(&["runs", "show", &id, "--tasks"]);
    assert!(
        shown.contains("  [0]") && shown.contains("  [2]"),
        "{shown}"
    );

    let (_, schema) = p.json(&["schema", "run"]);
    assert!(
        schema["$defs"]["UsageView"]["properties"]["by_node"].is_object(),
        "{schema}"
    );
}

#[test]
fn exchanges_are_shown_redacted() {
    let stub = StubModel::replying("fine");
    let p = Project::new().with_leader(&stub, KEY);
    p.write("workflows/child.yaml", CHILD);
    let (code, v) = p.json(&["run", "child", "--json"]);
    assert_eq!(code, 0, "{v}");
    let id = v["run_id"].as_str().unwrap().to_string();
    let (code, text, _) = p.run(&["runs", "show", &id, "--exchanges"]);
    assert_eq!(code, 0);
    assert!(
        text.contains("inner") && text.contains("HTTP 200"),
        "{text}"
    );
    assert!(text.contains("fine"), "the reply: {text}");
    assert!(!text.contains(KEY), "no key: {text}");
    let (code, v) = p.json(&["runs", "show", &id, "--exchanges", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(v["exchanges"].as_array().unwrap().len(), 1);
}
