//! Engine overhead: chains of trivial transform nodes (in memory and with the durable store)
//! and `for_each` fan-out. Run: `cargo bench -p ao-graph --bench engine`.
//! Per-step figures are the chain time divided by its length (see docs/benchmarks.md).

use ao_graph::Host;
use ao_graph::RunStore;
use ao_graph::Workflow;
use ao_graph::load_str;
use ao_graph::{Engine, RunOptions};
use serde_json::json;
use std::fmt::Write;
use std::sync::Arc;

fn main() {
    divan::main();
}

/// `n` transform nodes in a line, each incrementing a counter.
fn chain(n: usize) -> Arc<Workflow> {
    let mut src = String::from("name: chain\nchannels:\n  x: {default: 0}\nnodes:\n");
    for i in 0..n {
        let _ = writeln!(
            src,
            "  n{i}: {{kind: transform, set: {{x: \"state.x + 1\"}}}}"
        );
    }
    src.push_str("edges:\n  - {from: START, to: n0}\n");
    for i in 1..n {
        let _ = writeln!(src, "  - {{from: n{}, to: n{i}}}", i - 1);
    }
    let _ = writeln!(src, "limits: {{max_steps: {}}}", n + 1);
    Arc::new(load_str(&src, "chain.yaml").expect("chain workflow"))
}

fn fan(n: usize) -> Arc<Workflow> {
    let src = format!(
        "name: fan\nchannels:\n  out: {{reducer: append}}\n  total: {{reducer: sum}}\nnodes:\n  f: {{kind: transform, for_each: \"range({n})\", set: {{out: \"item * 2\", total: item}}}}\nedges:\n  - {{from: START, to: f}}\n"
    );
    Arc::new(load_str(&src, "fan.yaml").expect("fan workflow"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[divan::bench(args = [10, 100, 1000])]
fn chain_in_memory(bencher: divan::Bencher, n: usize) {
    let wf = chain(n);
    let rt = runtime();
    let engine = Engine::in_memory(Host::default());
    bencher.bench_local(|| {
        let out = rt
            .block_on(engine.start(wf.clone(), json!({}), RunOptions::default()))
            .expect("run");
        assert_eq!(out.state["x"], json!(n));
    });
}

#[divan::bench(args = [10, 100, 1000], sample_count = 20)]
fn chain_durable(bencher: divan::Bencher, n: usize) {
    let wf = chain(n);
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::durable(
        Host::default(),
        Arc::new(RunStore::open(dir.path()).expect("store")),
    );
    bencher.bench_local(|| {
        let out = rt
            .block_on(engine.start(wf.clone(), json!({}), RunOptions::default()))
            .expect("run");
        assert_eq!(out.state["x"], json!(n));
    });
}

#[divan::bench(args = [10, 100])]
fn fan_out_in_memory(bencher: divan::Bencher, n: usize) {
    let wf = fan(n);
    let rt = runtime();
    let engine = Engine::in_memory(Host::default());
    bencher.bench_local(|| {
        let out = rt
            .block_on(engine.start(wf.clone(), json!({}), RunOptions::default()))
            .expect("run");
        assert_eq!(out.state["out"].as_array().map(Vec::len), Some(n));
    });
}

#[divan::bench(args = [10, 100], sample_count = 20)]
fn fan_out_durable(bencher: divan::Bencher, n: usize) {
    let wf = fan(n);
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::durable(
        Host::default(),
        Arc::new(RunStore::open(dir.path()).expect("store")),
    );
    bencher.bench_local(|| {
        let out = rt
            .block_on(engine.start(wf.clone(), json!({}), RunOptions::default()))
            .expect("run");
        assert_eq!(out.state["out"].as_array().map(Vec::len), Some(n));
    });
}
