//! The `llm` node runner against a local stub endpoint: exchanges recorded with the run, and a
//! completed call reused (never paid twice) when its task runs again on resume.

use ao_core::config::{Config, ConfigInputs};
use ao_core::redact::Redactor;
use ao_core::run::RunStatus;
use ao_graph::EventKind;
use ao_graph::RunOptions;
use ao_graph::load_str;
use ao_orchestrator::Service;
use ao_testkit::StubModel;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

fn service(dir: &std::path::Path, stub: &StubModel) -> Service {
    let env: BTreeMap<String, String> = [
        ("LEADER_MODEL_PROVIDER", "openai-compatible"),
        ("LEADER_MODEL_NAME", "stub-model"),
        ("LEADER_MODEL_BASE_URL", stub.base_url.as_str()),
        ("LEADER_MODEL_API_KEY", "sk-graph-test-key-0042"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let config = Config::load(&ConfigInputs::new(dir).with_env(env.clone())).unwrap();
    let mut service = Service::open(dir, &dir.join(".ao")).unwrap();
    service
        .configure(
            &config,
            &env,
            false,
            Redactor::new(&env, Vec::<String>::new()),
        )
        .expect("policy");
    service
}

#[tokio::test]
async fn a_completed_call_is_reused_when_its_task_runs_again_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let stub = StubModel::replying("not a number");
    let service = service(dir.path(), &stub);
    // The reply is valid text but the channel wants an integer: the task fails after its
    // call completed, and a resume runs the task again.
    let wf = Arc::new(
        load_str(
            "name: t\nchannels:\n  n: {schema: {type: integer}}\nnodes:\n  ask: {kind: llm, prompt: \"How many?\", writes: n}\nedges:\n  - {from: START, to: ask}\n",
            "t.yaml",
        )
        .unwrap(),
    );
    service.preflight(&wf).unwrap();
    let out = service
        .start(wf, json!({}), RunOptions::default(), None)
        .await
        .unwrap();
    assert_eq!(out.status, RunStatus::Failed);
    assert!(
        out.error.as_ref().unwrap().message.contains("channel `n`"),
        "{:?}",
        out.error
    );
    assert_eq!(stub.count(), 1);

    let again = service
        .resume(
            &out.run_id,
            None,
            RunOptions::default(),
            None,
            Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(again.status, RunStatus::Failed);
    assert_eq!(
        stub.count(),
        1,
        "the stored reply was reused, not asked for again"
    );
    let events = service.events(&out.run_id, None).unwrap();
    let cached: Vec<bool> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::LlmCall { cached, .. } => Some(*cached),
            _ => None,
        })
        .collect();
    assert_eq!(cached, vec![false, true]);

    let exchanges = service.exchanges(&out.run_id).unwrap();
    assert_eq!(exchanges.len(), 1, "one HTTP attempt recorded");
    assert_eq!(exchanges[0]["node"], "ask");
    assert_eq!(exchanges[0]["data"]["status"], 200);
    assert!(!exchanges[0].to_string().contains("sk-graph-test-key-0042"));
}

#[test]
fn an_unknown_output_type_is_a_load_error() {
    let err = load_str(
        "name: t\nchannels:\n  p: {}\nnodes:\n  a: {kind: llm, prompt: x, output: {type: Plna}, writes: p}\nedges:\n  - {from: START, to: a}\n",
        "t.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("t.yaml:5:")
            && err.contains("unknown output type `Plna`")
            && err.contains("Plan"),
        "{err}"
    );
}

#[tokio::test]
async fn tool_rounds_are_neither_asked_nor_run_again_when_the_task_runs_again() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "old\n").unwrap();
    // Round 0 writes a file, round 1 reads it, round 2 answers (text the channel rejects, so the
    // task fails after all its rounds and a resume runs it again).
    let stub = StubModel::start(|req: &serde_json::Value| {
        let tool_results = req["messages"]
            .as_array()
            .map_or(0, |m| m.iter().filter(|m| m["role"] == "tool").count());
        match tool_results {
            0 => (
                200,
                ao_testkit::tool_calls(&[(
                    "fs_write",
                    json!({"path": "notes.txt", "content": "new\n"}),
                )]),
            ),
            1 => (
                200,
                ao_testkit::tool_calls(&[("fs_read", json!({"path": "notes.txt"}))]),
            ),
            _ => (200, ao_testkit::completion("not a number")),
        }
    });
    let service = service(dir.path(), &stub);
    let wf = Arc::new(
        load_str(
            "name: t\nchannels:\n  n: {schema: {type: integer}}\nnodes:\n  work: {kind: llm, prompt: \"Edit notes.txt\", tools: [fs.write, fs.read], writes: n}\nedges:\n  - {from: START, to: work}\n",
            "t.yaml",
        )
        .unwrap(),
    );
    let out = service
        .start(wf, json!({}), RunOptions::default(), None)
        .await
        .unwrap();
    assert_eq!(out.status, RunStatus::Failed, "{:?}", out.error);
    assert_eq!(stub.count(), 3);
    let second_round = stub.requests()[2].to_string();
    assert!(
        second_round.contains("changeset"),
        "the read saw the dry-run write: {second_round}"
    );

    let again = service
        .resume(
            &out.run_id,
            None,
            RunOptions::default(),
            None,
            Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(again.status, RunStatus::Failed);
    assert_eq!(stub.count(), 3, "no round was asked again");
    let tool_calls = service
        .events(&out.run_id, None)
        .unwrap()
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::ToolCall { .. }))
        .count();
    assert_eq!(
        tool_calls, 2,
        "the stored tool results were reused, the tools not run again"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
        "old\n",
        "dry-run left the disk alone"
    );
}

#[tokio::test]
async fn a_tool_call_turn_sent_back_keeps_the_assistant_text() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "hello\n").unwrap();
    let stub = StubModel::start(|req: &serde_json::Value| {
        let asked_before = req["messages"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["role"] == "tool"));
        if asked_before {
            (200, ao_testkit::completion("The notes say hello."))
        } else {
            let mut reply = ao_testkit::tool_calls(&[("fs_read", json!({"path": "notes.txt"}))]);
            reply["choices"][0]["message"]["content"] = json!("Let me read the notes first.");
            (200, reply)
        }
    });
    let service = service(dir.path(), &stub);
    let wf = Arc::new(
        load_str(
            "name: t\nchannels:\n  a: {}\nnodes:\n  work: {kind: llm, prompt: \"What do the notes say?\", tools: [fs.read], writes: a}\nedges:\n  - {from: START, to: work}\n",
            "t.yaml",
        )
        .unwrap(),
    );
    let out = service
        .start(wf, json!({}), RunOptions::default(), None)
        .await
        .unwrap();
    assert_eq!(out.status, RunStatus::Completed, "{:?}", out.error);
    let second = stub.requests()[1].clone();
    let assistant = second["messages"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["role"] == "assistant").cloned())
        .expect("the tool-call turn");
    assert_eq!(assistant["content"], "Let me read the notes first.");
    assert_eq!(assistant["tool_calls"][0]["function"]["name"], "fs_read");
}
