//! Budgets a run cannot overspend: `limits.max_llm_calls` / `max_tokens` / `max_cost_usd` and
//! the `--max-*` flags stop a run resumably before the call that would overspend, concurrent
//! calls reserve against the budget, and a cost budget without prices is refused up front.

mod support;

use ao_testkit::StubModel;
use support::Project;

/// Five model calls in a row.
const FIVE: &str = "name: five\nlimits: {max_llm_calls: 3}\nchannels:\n  a: {}\n  b: {}\n  c: {}\n  d: {}\n  e: {}\nnodes:\n  n1: {kind: llm, prompt: \"one\", writes: a}\n  n2: {kind: llm, prompt: \"two\", writes: b}\n  n3: {kind: llm, prompt: \"three\", writes: c}\n  n4: {kind: llm, prompt: \"four\", writes: d}\n  n5: {kind: llm, prompt: \"five\", writes: e}\nedges:\n  - {from: START, to: n1}\n  - {from: n1, to: n2}\n  - {from: n2, to: n3}\n  - {from: n3, to: n4}\n  - {from: n4, to: n5}\n";

#[test]
fn a_call_budget_stops_the_run_resumably_and_resume_raises_it() {
    let stub = StubModel::replying("ok");
    let p = Project::new().with_leader(&stub, "sk-budget-test-0001");
    p.write("workflows/five.yaml", FIVE);
    let (code, v) = p.json(&["run", "five", "--json"]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["status"], "failed");
    assert_eq!(v["error"]["kind"], "budget_exceeded", "{v}");
    assert_eq!(v["error"]["node"], "n4");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("max_llm_calls (3)") && message.contains("3 model requests"),
        "{message}"
    );
    assert_eq!(stub.count(), 3, "stopped before the fourth call");
    let id = v["run_id"].as_str().unwrap().to_string();

    let (code, v) = p.json(&["runs", "resume", &id, "--max-llm-calls", "10", "--json"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["status"], "completed");
    assert_eq!(stub.count(), 5, "the first three were not asked again");
}

#[test]
fn concurrent_calls_reserve_against_the_budget() {
    let stub = StubModel::start(|_| {
        std::thread::sleep(std::time::Duration::from_millis(200));
        (200, ao_testkit::completion("ok"))
    });
    let p = Project::new().with_leader(&stub, "sk-budget-test-0001");
    p.write(
        "workflows/fan.yaml",
        "name: fan\nlimits: {concurrency: 10}\nchannels:\n  a: {reducer: append}\nnodes:\n  each: {kind: llm, for_each: \"range(10)\", prompt: \"item {{ item }}\", writes: a}\nedges:\n  - {from: START, to: each}\n",
    );
    let (code, v) = p.json(&["run", "fan", "--max-llm-calls", "4", "--json"]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["error"]["kind"], "budget_exceeded");
    assert_eq!(stub.count(), 4, "ten parallel calls, a budget for four");
}

#[test]
fn a_cost_budget_stops_at_the_right_call_and_needs_prices() {
    let stub = StubModel::replying("ok");
    let p = Project::new();
    // 11 prompt + 7 completion tokens per call at $1 per token each: $18 per call.
    p.write(
        "ao.toml",
        &format!(
            "[leader]\nprovider = \"openai-compatible\"\nmodel = \"stub-model\"\nbase_url = \"{}\"\nmax_tokens = 7\nprice = {{ input = 1000000.0, output = 1000000.0 }}\n",
            stub.base_url
        ),
    );
    p.write(
        "workflows/five.yaml",
        &FIVE.replace("limits: {max_llm_calls: 3}\n", ""),
    );
    // $40: two calls fit ($36); the third would reach $54.
    let (code, v) = p.json(&["run", "five", "--max-cost", "40", "--json"]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["error"]["kind"], "budget_exceeded", "{v}");
    assert_eq!(v["error"]["node"], "n3");
    assert_eq!(stub.count(), 2);

    let unpriced = StubModel::replying("ok");
    let q = Project::new().with_leader(&unpriced, "sk-budget-test-0001");
    q.write("workflows/five.yaml", FIVE);
    let (code, v) = q.json(&["run", "five", "--max-cost", "1", "--json"]);
    assert_eq!(code, 2, "{v}");
    assert_eq!(v["error"]["kind"], "config");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("price"),
        "{v}"
    );
    assert_eq!(unpriced.count(), 0, "nothing was sent");
}

#[test]
fn ao_toml_budget_applies_when_the_workflow_sets_none_and_flags_override_both() {
    let stub = StubModel::replying("ok");
    let p = Project::new();
    p.write(
        "ao.toml",
        &format!(
            "[leader]\nprovider = \"openai-compatible\"\nmodel = \"stub-model\"\nbase_url = \"{}\"\n\n[budget]\nmax_llm_calls = 2\n",
            stub.base_url
        ),
    );
    p.write(
        "workflows/plain.yaml",
        &FIVE
            .replace("limits: {max_llm_calls: 3}\n", "")
            .replace("name: five", "name: plain"),
    );
    p.write("workflows/five.yaml", FIVE);
    // No limit in the workflow: the project's default (2) applies.
    let (code, v) = p.json(&["run", "plain", "--json"]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["error"]["kind"], "budget_exceeded", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_llm_calls (2)"),
        "{v}"
    );
    assert_eq!(stub.count(), 2);
    // The workflow's own limit (3) wins over the project's default.
    let (code, v) = p.json(&["run", "five", "--json"]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["error"]["node"], "n4", "{v}");
    assert_eq!(stub.count(), 5);
    // A flag wins over both.
    let (code, v) = p.json(&["run", "five", "--max-llm-calls", "5", "--json"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(stub.count(), 10);
}
