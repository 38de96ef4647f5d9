//! What the `llm` node runner makes of the model layer's answers: every request that was sent
//! is counted and has its event (failed calls too), a cut-off text reply and a fallback leave a
//! warning, a failed call is not retried again by the node, and a streamed reply assembles to
//! the same result.

use ao_core::config::{Config, ConfigInputs};
use ao_core::redact::Redactor;
use ao_core::run::RunStatus;
use ao_graph::{EventKind, RunOptions, load_str};
use ao_orchestrator::Service;
use ao_orchestrator::model_node::TokenSink;
use ao_testkit::{StubModel, completion};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

fn service(dir: &Path, env: &[(&str, &str)]) -> Service {
    let env: BTreeMap<String, String> = env
        .iter()
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

fn leader(stub: &StubModel) -> Vec<(&'static str, String)> {
    vec![
        ("LEADER_MODEL_PROVIDER", "openai-compatible".into()),
        ("LEADER_MODEL_NAME", "stub-model".into()),
        ("LEADER_MODEL_BASE_URL", stub.base_url.clone()),
    ]
}

fn as_refs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, s)| (*k, s.as_str())).collect()
}

fn llm_events(service: &Service, run_id: &str) -> Vec<Value> {
    service
        .events(run_id, None)
        .unwrap()
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::LlmCall { .. }))
        .map(|e| serde_json::to_value(e).unwrap())
        .collect()
}

const STRUCTURED: &str = "name: s\nchannels:\n  out: {}\nnodes:\n  ask: {kind: llm, prompt: \"Count.\", output: {schema: {type: object, required: [n], properties: {n: {type: integer}}}}, writes: out}\nedges:\n  - {from: START, to: ask}\n";

#[tokio::test]
async fn a_call_that_fails_its_schema_still_counts_every_request_and_is_not_retried_by_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let stub = StubModel::replying("{\"n\": \"not a number\"}");
    let service = service(dir.path(), &as_refs(&leader(&stub)));
    let wf = Arc::new(load_str(STRUCTURED, "s.yaml").unwrap());
    let out = service
        .start(wf, json!({}), RunOptions::default(), None)
        .await
        .unwrap();
    assert_eq!(out.status, RunStatus::Failed, "{out:?}");
    let sent = stub.count();
    assert!(sent >= 2, "the model layer repaired at least once: {sent}");
    let usage = out.usage.expect("a failed node still has usage");
    assert_eq!(usage.calls as usize, sent, "every request counted");
    assert_eq!(usage.total.prompt_tokens as usize, 11 * sent);
    assert_eq!(
        llm_events(&service, &out.run_id).len(),
        sent,
        "one event per request"
    );
    // The node does not add retries of its own on top of the model layer's: one attempt.
    let attempts = service
        .events(&out.run_id, None)
        .unwrap()
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::TaskStarted { .. }))
        .count();
    assert_eq!(attempts, 1);
    assert!(
        !out.error.unwrap().message.contains("attempt 1 of"),
        "a failure that was not retried names no attempts"
    );
}

#[tokio::test]
async fn a_cut_off_text_reply_leaves_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let stub = StubModel::start(|_| {
        let mut reply = completion("the beginning of a long answer");
        reply["choices"][0]["finish_reason"] = json!("length");
        (200, reply)
    });
    let service = service(dir.path(), &as_refs(&leader(&stub)));
    let wf = Arc::new(
        load_str(
            "name: t\nchannels:\n  out: {}\nnodes:\n  ask: {kind: llm, prompt: \"Tell me.\", writes: out}\nedges:\n  - {from: START, to: ask}\n",
            "t.yaml",
        )
        .unwrap(),
    );
    let out = service
        .start(wf, json!({}), RunOptions::default(), None)
        .await
        .unwrap();
    assert_eq!(out.status, RunStatus::Completed);
    let warnings = service.warnings(&out.run_id).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].0.as_deref(), Some("ask"));
    assert!(warnings[0].1.contains("cut off"), "{warnings:?}");
    assert!(warnings[0].1.contains("max_tokens"), "{warnings:?}");
}

#[tokio::test]
async fn a_fallback_answer_leaves_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let stub = StubModel::start(|req: &Value| {
        if req["model"] == "primary" {
            (503, json!({"error": {"message": "overloaded"}}))
        } else {
            (200, completion("from the fallback"))
        }
    });
    std::fs::write(
        dir.path().join("ao.toml"),
        format!(
            "[leader]\nprovider = \"openai-compatible\"\nmodel = \"primary\"\nbase_url = \"{}\"\nfallback = [\"backup\"]\nmax_retries = 1\n",
            stub.base_url
        ),
    )
    .unwrap();
    let service = service(dir.path(), &[]);
    let wf = Arc::new(
        load_str(
            "name: t\nchannels:\n  out: {}\nnodes:\n  ask: {kind: llm, prompt: \"Hi.\", writes: out}\nedges:\n  - {from: START, to: ask}\n",
            "t.yaml",
        )
        .unwrap(),
    );
    let out = service
        .start(wf, json!({}), RunOptions::default(), None)
        .await
        .unwrap();
    assert_eq!(out.status, RunStatus::Completed, "{out:?}");
    assert_eq!(out.state["out"], "from the fallback");
    let warnings = service.warnings(&out.run_id).unwrap();
    assert!(
        warnings
            .iter()
            .any(|(_, m)| m.contains("`primary`") && m.contains("`backup`")),
        "{warnings:?}"
    );
    let events = llm_events(&service, &out.run_id);
    assert!(
        events.iter().any(|e| e["error"].is_string()),
        "the failed request has its event: {events:?}"
    );
}

#[derive(Default)]
struct Collected(Mutex<String>);

impl TokenSink for Collected {
    fn text(&self, _node: &str, text: &str) {
        self.0.lock().unwrap().push_str(text);
    }
    fn restart(&self, _node: &str) {
        self.0.lock().unwrap().clear();
    }
}

#[tokio::test]
async fn a_streamed_reply_assembles_to_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let stub = StubModel::replying("{\"n\": 42}");
    let service = service(dir.path(), &as_refs(&leader(&stub)));
    let seen = Arc::new(Collected::default());
    service.stream_tokens(seen.clone());
    let wf = Arc::new(load_str(STRUCTURED, "s.yaml").unwrap());
    let out = service
        .start(wf, json!({}), RunOptions::default(), None)
        .await
        .unwrap();
    assert_eq!(out.status, RunStatus::Completed, "{out:?}");
    assert_eq!(out.state["out"], json!({"n": 42}));
    assert_eq!(stub.requests()[0]["stream"], true, "the call streamed");
    assert_eq!(
        *seen.0.lock().unwrap(),
        "{\"n\": 42}",
        "the text arrived piece by piece"
    );
}
