//! `ao plan` end to end against a stub leader: the goal, the context files and the map of the
//! repository reach the model, its plan is the output, and denied files stay unread.

mod support;

use ao_testkit::{StubModel, completion};
use serde_json::{Value, json};
use support::Project;

fn planner(summary: &'static str) -> StubModel {
    StubModel::start(move |_req: &Value| {
        let plan = json!({
            "summary": summary,
            "steps": [
                {"id": "s1", "title": "Add the flag", "description": "Parse --verbose.", "task_type": "codegen", "depends_on": [], "acceptance_checks": ["cargo test"]},
                {"id": "s2", "title": "Document it", "description": "README.", "task_type": "summarization", "depends_on": ["s1"], "acceptance_checks": []}
            ],
            "assignments": [],
            "risks": ["the flag may clash with -v"],
            "validation": ["cargo test --workspace"]
        });
        (200, completion(&plan.to_string()))
    })
}

#[test]
fn the_plan_is_the_leaders_and_sees_the_goal_context_and_repository() {
    let stub = planner("Add a verbose flag in two steps.");
    let p = Project::new().with_leader(&stub, "sk-plan-test-0001");
    p.write("src/main.rs", "fn main() {}\n");
    p.write("docs/notes.md", "CONTEXT_MARKER: the CLI uses clap\n");
    p.write(".env", "SECRET=ENV_MARKER\n");
    let (code, v) = p.json(&[
        "plan",
        "--goal",
        "add a --verbose flag GOAL_MARKER",
        "--context-file",
        "docs/notes.md",
        "--context-file",
        ".env",
        "--json",
    ]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["workflow"], "plan");
    assert_eq!(v["output"]["summary"], "Add a verbose flag in two steps.");
    assert_eq!(v["output"]["steps"][1]["depends_on"], json!(["s1"]));
    let sent = stub.requests()[0].to_string();
    assert!(sent.contains("GOAL_MARKER"), "the goal");
    assert!(sent.contains("CONTEXT_MARKER"), "the context file");
    assert!(
        sent.contains("src/main.rs") || sent.contains("main.rs"),
        "the map: {sent}"
    );
    assert!(!sent.contains("ENV_MARKER"), "a denied file is never read");
    assert!(sent.contains("denied"), "the leader is told it was denied");

    let (code, text, _) = p.run(&["plan", "--goal", "add a --verbose flag"]);
    assert_eq!(code, 0);
    assert!(text.contains("1. [s1] Add the flag (codegen)"), "{text}");
    assert!(text.contains("after: s1"), "{text}");
    assert!(text.contains("$ cargo test --workspace"), "{text}");
    assert!(text.contains("the flag may clash with -v"), "{text}");
}

#[test]
fn another_reply_gives_another_plan() {
    let stub = planner("A different plan entirely.");
    let p = Project::new().with_leader(&stub, "sk-plan-test-0001");
    let (code, v) = p.json(&["plan", "--goal", "anything", "--json"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["output"]["summary"], "A different plan entirely.");
    let (code, _, stderr) = p.run(&["plan", "--goal", " "]);
    assert_eq!(code, 2, "{stderr}");
}
