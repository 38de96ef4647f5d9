//! The overhead of an `llm` node over a raw HTTP call to the same local stub endpoint.
//! Run: `cargo bench -p ao-orchestrator --bench llm_node`. The stub closes every connection, so each
//! variant pays one TCP connect; the difference between them is `ao`'s overhead.

use ao_core::config::{Config, ConfigInputs};
use ao_core::redact::Redactor;
use ao_graph::Host;
use ao_graph::load_str;
use ao_graph::{Engine, RunOptions};
use ao_models::ModelClient;
use ao_orchestrator::Service;
use ao_orchestrator::model_node::ModelRunner;
use ao_testkit::StubModel;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::{Arc, OnceLock};

fn main() {
    divan::main();
}

const WORKFLOW: &str = "name: one-call\nchannels:\n  answer: {}\nnodes:\n  ask: {kind: llm, role: leader, prompt: \"Say ok.\", writes: answer}\nedges:\n  - {from: START, to: ask}\n";

fn stub() -> &'static StubModel {
    static STUB: OnceLock<StubModel> = OnceLock::new();
    STUB.get_or_init(|| StubModel::replying("ok"))
}

fn env() -> BTreeMap<String, String> {
    [
        ("LEADER_MODEL_PROVIDER", "openai-compatible"),
        ("LEADER_MODEL_NAME", "stub-model"),
        ("LEADER_MODEL_BASE_URL", stub().base_url.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The runtime `ao run` drives a run on (`crates/cli/src/main.rs`): one thread.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// The baseline: one POST of the same body over a plain TCP connection, reply read to the end.
#[divan::bench]
fn raw_http_call() {
    let addr = stub()
        .base_url
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .to_string();
    let body = json!({"model": "stub-model", "messages": [{"role": "user", "content": "Say ok."}]})
        .to_string();
    let mut conn = std::net::TcpStream::connect(&addr).expect("connect");
    write!(
        conn,
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut reply = Vec::new();
    conn.read_to_end(&mut reply).expect("read");
    assert!(reply.starts_with(b"HTTP/1.1 200"));
}

/// One `llm` node run by the in-memory engine (no store).
#[divan::bench]
fn llm_node_in_memory(bencher: divan::Bencher) {
    let rt = runtime();
    let env = env();
    let config = Config::load(&ConfigInputs::new(".").with_env(env.clone())).expect("config");
    let client = ModelClient::new(&config).expect("client");
    let host = Host {
        llm: Some(Arc::new(ModelRunner::new(
            client,
            None,
            Redactor::new(&env, Vec::<String>::new()),
            None,
        ))),
        ..Default::default()
    };
    let engine = Engine::in_memory(host);
    let wf = Arc::new(load_str(WORKFLOW, "one-call.yaml").expect("workflow"));
    bencher.bench_local(|| {
        let out = rt
            .block_on(engine.start(wf.clone(), json!({}), RunOptions::default()))
            .expect("run");
        assert_eq!(out.state["answer"], "ok");
    });
}

/// One `llm` node through the service with the durable store: the exchange, the call, usage,
/// task and checkpoint are all committed.
#[divan::bench(sample_count = 50)]
fn llm_node_durable(bencher: divan::Bencher) {
    let rt = runtime();
    let env = env();
    let dir = tempfile::tempdir().expect("tempdir");
    let config =
        Config::load(&ConfigInputs::new(dir.path()).with_env(env.clone())).expect("config");
    let mut service = Service::open(dir.path(), &dir.path().join(".ao")).expect("service");
    service
        .configure(
            &config,
            &env,
            false,
            Redactor::new(&env, Vec::<String>::new()),
        )
        .expect("policy");
    let wf = Arc::new(load_str(WORKFLOW, "one-call.yaml").expect("workflow"));
    bencher.bench_local(|| {
        let out = rt
            .block_on(service.start(wf.clone(), json!({}), RunOptions::default(), None))
            .expect("run");
        assert_eq!(out.state["answer"], "ok");
    });
}
