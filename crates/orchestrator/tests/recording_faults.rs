//! Recording is fail-closed: when the run store refuses a record of a model call, an exchange
//! or a tool result, the task fails (it does not warn and go on), and a later resume pays for
//! no recorded call twice and runs no tool twice.
//!
//! Faults are injected into the real store with SQLite triggers that abort the write, so the
//! production code has no test hooks.

use ao_core::config::{Config, ConfigInputs};
use ao_core::redact::Redactor;
use ao_core::run::RunStatus;
use ao_graph::{EventKind, RunOptions, load_str};
use ao_orchestrator::Service;
use ao_testkit::{StubModel, completion, tool_calls};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

fn service(dir: &Path, stub: &StubModel) -> Service {
    let env: BTreeMap<String, String> = [
        ("LEADER_MODEL_PROVIDER", "openai-compatible"),
        ("LEADER_MODEL_NAME", "stub-model"),
        ("LEADER_MODEL_BASE_URL", stub.base_url.as_str()),
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
        .unwrap();
    service
}

/// Makes the store refuse writes of records matching `when` (an SQL condition on `NEW`).
fn inject_fault(dir: &Path, when: &str) {
    let conn = rusqlite::Connection::open(dir.join(".ao/runs.db")).unwrap();
    conn.execute_batch(&format!(
        "CREATE TRIGGER fault_insert BEFORE INSERT ON records WHEN {when} BEGIN SELECT RAISE(ABORT, 'injected fault'); END;
         CREATE TRIGGER fault_update BEFORE UPDATE ON records WHEN {when} BEGIN SELECT RAISE(ABORT, 'injected fault'); END;"
    ))
    .unwrap();
}

fn clear_fault(dir: &Path) {
    let conn = rusqlite::Connection::open(dir.join(".ao/runs.db")).unwrap();
    conn.execute_batch("DROP TRIGGER fault_insert; DROP TRIGGER fault_update;")
        .unwrap();
}

fn requests_for(stub: &StubModel, marker: &str) -> usize {
    stub.requests()
        .iter()
        .filter(|r| r.to_string().contains(marker))
        .count()
}

/// Two model nodes in a row, each asked once: `first` then `second`.
const TWO_CALLS: &str = "name: two\nretry: {max_attempts: 1}\nchannels:\n  a: {}\n  b: {}\nnodes:\n  first: {kind: llm, prompt: \"FIRST question\", writes: a}\n  second: {kind: llm, prompt: \"SECOND question\", writes: b}\nedges:\n  - {from: START, to: first}\n  - {from: first, to: second}\n";

/// `when` refuses a record of the second node's call, never one of the first's.
async fn fault_in_the_second_call_fails_it_and_resume_pays_only_for_it(when: &str) {
    let dir = tempfile::tempdir().unwrap();
    let stub = StubModel::replying("fine");
    let service = service(dir.path(), &stub);
    let wf = Arc::new(load_str(TWO_CALLS, "two.yaml").unwrap());
    inject_fault(dir.path(), when);
    let out = service
        .start(wf, json!({}), RunOptions::default(), None)
        .await
        .unwrap();
    assert_eq!(out.status, RunStatus::Failed, "{out:?}");
    let error = out.error.unwrap();
    assert_eq!(error.node.as_deref(), Some("second"));
    assert_eq!(error.kind, "store", "{}", error.message);
    assert!(
        error.message.contains("could not be recorded"),
        "{}",
        error.message
    );
    assert_eq!(requests_for(&stub, "FIRST"), 1);
    assert_eq!(requests_for(&stub, "SECOND"), 1);

    clear_fault(dir.path());
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
    assert_eq!(again.status, RunStatus::Completed, "{again:?}");
    assert_eq!(
        requests_for(&stub, "FIRST"),
        1,
        "the recorded call is never paid for twice"
    );
    assert_eq!(
        requests_for(&stub, "SECOND"),
        2,
        "the call whose record was refused is asked again, once"
    );
    assert_eq!(
        again.usage.unwrap().calls,
        2,
        "usage counts the recorded calls"
    );
}

#[tokio::test]
async fn a_model_call_that_cannot_be_recorded_fails_its_task() {
    fault_in_the_second_call_fails_it_and_resume_pays_only_for_it(
        "NEW.node = 'second' AND NEW.kind = 'llm_call'",
    )
    .await;
}

#[tokio::test]
async fn an_exchange_that_cannot_be_recorded_fails_its_task() {
    fault_in_the_second_call_fails_it_and_resume_pays_only_for_it(
        "NEW.node = 'second' AND NEW.kind = 'exchange'",
    )
    .await;
}

#[tokio::test]
async fn usage_that_cannot_be_recorded_fails_the_task() {
    // Usage is kept per run (run scope): refuse its update once the first call is counted.
    fault_in_the_second_call_fails_it_and_resume_pays_only_for_it(
        "NEW.kind = 'usage' AND NEW.data LIKE '%\"calls\":2%'",
    )
    .await;
}

/// A model that reads `notes.txt` with a tool, then answers with what it read.
fn reading_model() -> StubModel {
    StubModel::start(|req: &Value| {
        let said_tool = req["messages"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["role"] == "tool"));
        if said_tool {
            (200, completion("done reading"))
        } else {
            (
                200,
                tool_calls(&[("fs_read", json!({"path": "notes.txt"}))]),
            )
        }
    })
}

const READER: &str = "name: reader\nretry: {max_attempts: 1}\nchannels:\n  out: {}\nnodes:\n  read: {kind: llm, prompt: \"Read notes.txt\", tools: [fs.read], writes: out}\nedges:\n  - {from: START, to: read}\n";

fn tool_call_events(service: &Service, run_id: &str) -> usize {
    service
        .events(run_id, None)
        .unwrap()
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::ToolCall { .. }))
        .count()
}

#[tokio::test]
async fn a_tool_result_that_cannot_be_recorded_fails_the_task_and_the_tool_is_not_run_again() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "the notes\n").unwrap();
    let stub = reading_model();
    let service = service(dir.path(), &stub);
    let wf = Arc::new(load_str(READER, "reader.yaml").unwrap());
    // The round and its "started" mark are stored; the tool's result (which carries the
    // file's content) is refused.
    inject_fault(
        dir.path(),
        "NEW.kind = 'llm_call' AND NEW.data LIKE '%the notes%'",
    );
    let out = service
        .start(wf, json!({}), RunOptions::default(), None)
        .await
        .unwrap();
    assert_eq!(out.status, RunStatus::Failed, "{out:?}");
    assert_eq!(out.error.as_ref().unwrap().kind, "store");
    assert_eq!(stub.count(), 1, "the model asked for the tool once");
    assert_eq!(
        tool_call_events(&service, &out.run_id),
        1,
        "the tool ran once"
    );

    clear_fault(dir.path());
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
    assert_eq!(again.status, RunStatus::Completed, "{again:?}");
    assert_eq!(
        tool_call_events(&service, &out.run_id),
        1,
        "a tool started before the failure is not run again"
    );
    assert_eq!(
        stub.count(),
        2,
        "the stored round was reused; only the answer was asked for"
    );
    let last = stub.requests().pop().unwrap();
    let told = last["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(told.contains("not run again"), "the model is told: {told}");
}

#[tokio::test]
async fn a_round_that_cannot_be_marked_fails_before_its_tool_runs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "the notes\n").unwrap();
    let stub = reading_model();
    let service = service(dir.path(), &stub);
    let wf = Arc::new(load_str(READER, "reader.yaml").unwrap());
    // Any update of the stored round (the "started" mark comes first) is refused.
    inject_fault(
        dir.path(),
        "NEW.kind = 'llm_call' AND NEW.data LIKE '%tool_results%'",
    );
    let out = service
        .start(wf, json!({}), RunOptions::default(), None)
        .await
        .unwrap();
    assert_eq!(out.status, RunStatus::Failed, "{out:?}");
    assert_eq!(
        tool_call_events(&service, &out.run_id),
        0,
        "the tool never ran"
    );

    clear_fault(dir.path());
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
    assert_eq!(again.status, RunStatus::Completed, "{again:?}");
    assert_eq!(
        tool_call_events(&service, &out.run_id),
        1,
        "it runs once, now"
    );
    assert_eq!(stub.count(), 2, "the stored round was not asked again");
    assert_eq!(again.state["out"], "done reading");
}

/// A model that writes `out.txt` with a tool, then answers.
fn writing_model() -> StubModel {
    StubModel::start(|req: &Value| {
        let said_tool = req["messages"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["role"] == "tool"));
        if said_tool {
            (200, completion("written"))
        } else {
            (
                200,
                tool_calls(&[("fs_write", json!({"path": "out.txt", "content": "hello\n"}))]),
            )
        }
    })
}

#[tokio::test]
async fn a_policy_decision_that_cannot_be_recorded_stops_the_tool_before_it_acts() {
    let dir = tempfile::tempdir().unwrap();
    let stub = writing_model();
    let service = service(dir.path(), &stub);
    let wf = Arc::new(
        load_str(
            "name: writer\nretry: {max_attempts: 1}\nchannels:\n  out: {}\nnodes:\n  write: {kind: llm, prompt: \"Write out.txt\", tools: [fs.write], writes: out}\nedges:\n  - {from: START, to: write}\n",
            "writer.yaml",
        )
        .unwrap(),
    );
    inject_fault(dir.path(), "NEW.kind = 'tool_call'");
    let out = service
        .start(wf, json!({}), RunOptions::default(), None)
        .await
        .unwrap();
    assert_eq!(out.status, RunStatus::Failed, "{out:?}");
    assert_eq!(out.error.as_ref().unwrap().kind, "store");
    let (changeset, _) = service.changeset(&out.run_id, Default::default()).unwrap();
    assert!(
        changeset.is_empty(),
        "the write never happened: {changeset:?}"
    );
    assert_eq!(tool_call_events(&service, &out.run_id), 0);

    clear_fault(dir.path());
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
    assert_eq!(again.status, RunStatus::Completed, "{again:?}");
    assert_eq!(
        tool_call_events(&service, &out.run_id),
        1,
        "it never acted, so it runs now, once"
    );
    let (changeset, _) = service.changeset(&out.run_id, Default::default()).unwrap();
    assert_eq!(changeset.files.len(), 1);
    assert_eq!(stub.count(), 2, "the stored round was reused");
}
