//! The engine through its public API: loading, every edge kind, reducers, fan-out, failures,
//! interrupts, resume, cancel and sub-workflows.

use ao_core::run::RunStatus;
use ao_graph::CancelToken;
use ao_graph::EngineError;
use ao_graph::RunStore;
use ao_graph::Workflow;
use ao_graph::load_str;
use ao_graph::{Engine, RunOptions};
use ao_graph::{FnBuiltin, Host, NodeFailure, WorkflowResolver};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn wf(src: &str) -> Arc<Workflow> {
    Arc::new(load_str(src, "test.yaml").unwrap_or_else(|e| panic!("load failed:\n{e}")))
}

fn load_err(src: &str) -> String {
    load_str(src, "test.yaml")
        .expect_err("the workflow should not load")
        .to_string()
}

async fn run(engine: &Engine, w: &Arc<Workflow>, input: Value) -> ao_graph::RunOutcome {
    engine
        .start(w.clone(), input, RunOptions::default())
        .await
        .unwrap()
}

fn hello() -> Arc<Workflow> {
    let src = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello-graph.yaml"),
    )
    .unwrap();
    wf(&src)
}

fn durable(dir: &Path, host: Host) -> Engine {
    Engine::durable(host, Arc::new(RunStore::open(dir).unwrap()))
}

#[tokio::test]
async fn hello_graph_loops_fans_out_joins_and_asks() {
    let dir = tempfile::tempdir().unwrap();
    let engine = durable(dir.path(), Host::default());
    let out = run(&engine, &hello(), json!({"n": 1})).await;
    assert_eq!(out.status, RunStatus::Interrupted);
    let interrupt = out.interrupt.clone().unwrap();
    assert_eq!(interrupt.node, "ask");
    assert_eq!(
        interrupt.prompt,
        "Total of 0..7 is 28. Finish? (true/false)"
    );
    // start, double ×3 (1→2→4→8), fan, describe+measure: 6 steps completed; ask's is pending.
    assert_eq!(out.steps, 6);
    let seen: Vec<&str> = out.state["seen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(seen[..4], ["start", "double", "double", "double"]);
    assert_eq!(
        seen[4..],
        [
            "fan-0", "fan-1", "fan-2", "fan-3", "fan-4", "fan-5", "fan-6", "fan-7"
        ]
    );
    assert_eq!(
        out.state["facts"],
        json!({"largest": 7, "sum": 28, "count": 8})
    );
    assert_eq!(
        out.state["tags"],
        json!(["doubled", "described", "measured"])
    );

    // A wrong answer is rejected with the schema error and the run stays interrupted.
    let err = engine
        .resume(&out.run_id, Some(json!("yes")), RunOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::InvalidAnswer { .. }), "{err}");
    assert!(err.to_string().contains("boolean"), "{err}");
    let still = engine.store().unwrap().run(&out.run_id).unwrap().unwrap();
    assert_eq!(still.status, RunStatus::Interrupted);

    // `false` loops back to start and asks again; `true` finishes.
    let again = engine
        .resume(&out.run_id, Some(json!(false)), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(again.status, RunStatus::Interrupted);
    assert_eq!(
        again.state["total"],
        json!(28),
        "the second round starts its sum from zero again"
    );
    let done = engine
        .resume(&out.run_id, Some(json!(true)), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(done.status, RunStatus::Completed);
    assert_eq!(
        done.output.unwrap(),
        json!({"count": 8, "total": 28, "facts": {"largest": 7, "sum": 28, "count": 8}, "tags": ["doubled", "described", "measured"]})
    );
}

#[tokio::test]
async fn for_each_results_are_ordered_by_index_whatever_the_completion_order() {
    let finished = Arc::new(Mutex::new(Vec::new()));
    let f2 = finished.clone();
    let host = Host::default().with_builtin(
        "slow",
        Arc::new(FnBuiltin(move |with: Value| {
            let finished = f2.clone();
            async move {
                let i = with["i"].as_u64().unwrap();
                // Later items finish first.
                tokio::time::sleep(Duration::from_millis(10 * (6 - i))).await;
                finished.lock().unwrap().push(i);
                Ok(json!(format!("item-{i}")))
            }
        })),
    );
    let w = wf(r#"
name: fan
channels:
  out: {reducer: append}
nodes:
  fan: {kind: builtin, name: slow, for_each: "range(6)", with: {i: item}, writes: out}
edges:
  - {from: START, to: fan}
"#);
    let out = run(&Engine::in_memory(host), &w, json!({})).await;
    assert_eq!(out.status, RunStatus::Completed);
    assert_eq!(
        *finished.lock().unwrap(),
        vec![5, 4, 3, 2, 1, 0],
        "tasks did run concurrently, in reverse"
    );
    assert_eq!(
        out.state["out"],
        json!(["item-0", "item-1", "item-2", "item-3", "item-4", "item-5"])
    );
}

#[tokio::test]
async fn a_key_files_each_task_result_under_its_own_name_in_a_merge_channel() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let host = Host::default().with_builtin(
        "echo",
        Arc::new(FnBuiltin(move |with: Value| {
            c2.fetch_add(1, Ordering::SeqCst);
            async move { Ok(json!({"did": with["step"]["title"]})) }
        })),
    );
    let w = wf(r#"
name: keyed
channels:
  steps: {default: [{id: a, title: first}, {id: b, title: second}, {id: 7, title: third}]}
  results: {reducer: merge}
nodes:
  work: {kind: builtin, name: echo, for_each: state.steps, with: {step: item}, writes: results, key: item.id}
  again: {kind: builtin, name: echo, with: {step: "dict(state.steps[0], title='redo')"}, writes: results, key: "'a'"}
edges:
  - {from: START, to: work}
  - {from: work, to: again}
"#);
    let out = run(&Engine::in_memory(host), &w, json!({})).await;
    assert_eq!(out.status, RunStatus::Completed, "{:?}", out.error);
    assert_eq!(
        out.state["results"],
        json!({"a": {"did": "redo"}, "b": {"did": "second"}, "7": {"did": "third"}})
    );

    // A key that is neither text nor a number fails the task before its work is done.
    let before = calls.load(Ordering::SeqCst);
    let w = wf(r#"
name: keyed
channels:
  results: {reducer: merge}
nodes:
  work: {kind: builtin, name: echo, with: {step: "{}"}, writes: results, key: "[1]"}
edges:
  - {from: START, to: work}
"#);
    let host2 = Host::default().with_builtin(
        "echo",
        Arc::new(FnBuiltin(|_with: Value| async move { Ok(json!(1)) })),
    );
    let out = run(&Engine::in_memory(host2), &w, json!({})).await;
    assert_eq!(out.status, RunStatus::Failed);
    let err = out.error.unwrap();
    assert!(err.message.contains("key `[1]`"), "{}", err.message);
    assert_eq!(calls.load(Ordering::SeqCst), before);
}

#[test]
fn a_key_needs_a_merge_channel_and_a_kind_that_writes() {
    let e = load_err(
        "name: x\nchannels:\n  c: {reducer: append}\nnodes:\n  a: {kind: builtin, name: n, writes: c, key: \"'k'\"}\nedges:\n  - {from: START, to: a}\n",
    );
    assert!(e.contains("`key` needs a `merge` channel"), "{e}");
    assert!(e.contains("test.yaml:5:"), "{e}");
    let e = load_err(
        "name: x\nchannels:\n  c: {reducer: merge}\nnodes:\n  a: {kind: builtin, name: n, key: \"'k'\"}\nedges:\n  - {from: START, to: a}\n",
    );
    assert!(e.contains("`key` needs `writes`"), "{e}");
    let e = load_err(
        "name: x\nchannels:\n  c: {reducer: merge}\nnodes:\n  a: {kind: transform, set: {c: \"{}\"}, key: \"'k'\"}\nedges:\n  - {from: START, to: a}\n",
    );
    assert!(
        e.contains("`key` is not a key of a `transform` node"),
        "{e}"
    );
}

#[tokio::test]
async fn an_empty_for_each_writes_nothing_and_its_edges_still_fire() {
    let w = wf(r#"
name: empty
channels:
  got: {reducer: append}
  after: {default: false}
nodes:
  fan: {kind: transform, for_each: "[]", set: {got: item}}
  next: {kind: transform, set: {after: "true"}}
edges:
  - {from: START, to: fan}
  - {from: fan, to: next}
"#);
    let out = run(&Engine::in_memory(Host::default()), &w, json!({})).await;
    assert_eq!(out.status, RunStatus::Completed);
    assert_eq!(out.state["got"], json!([]));
    assert_eq!(out.state["after"], json!(true));
}

#[tokio::test]
async fn two_nodes_writing_a_replace_channel_in_one_step_fail_naming_both() {
    let w = wf(r#"
name: clash
channels:
  x: {}
nodes:
  alpha: {kind: transform, set: {x: "1"}}
  beta: {kind: transform, set: {x: "2"}}
edges:
  - {from: START, to: alpha}
  - {from: START, to: beta}
"#);
    let out = run(&Engine::in_memory(Host::default()), &w, json!({})).await;
    assert_eq!(out.status, RunStatus::Failed);
    let err = out.error.unwrap();
    assert_eq!(err.kind, "conflict");
    assert!(
        err.message.contains("`alpha`")
            && err.message.contains("`beta`")
            && err.message.contains("`x`"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn a_join_waits_for_every_source() {
    // `slow` reaches the join one step after `fast`: the join fires only then, once.
    let w = wf(r#"
name: join
channels:
  log: {reducer: append}
nodes:
  fast: {kind: transform, set: {log: "'fast'"}}
  slow1: {kind: transform, set: {log: "'slow1'"}}
  slow2: {kind: transform, set: {log: "'slow2'"}}
  joined: {kind: transform, set: {log: "'joined'"}}
edges:
  - {from: START, to: fast}
  - {from: START, to: slow1}
  - {from: slow1, to: slow2}
  - {from: [fast, slow2], to: joined}
"#);
    let out = run(&Engine::in_memory(Host::default()), &w, json!({})).await;
    assert_eq!(out.status, RunStatus::Completed);
    assert_eq!(
        out.state["log"],
        json!(["fast", "slow1", "slow2", "joined"])
    );
    assert_eq!(out.steps, 3);
}

#[tokio::test]
async fn conditional_edges_take_the_first_true_branch_and_end_without_else() {
    let w = wf(r#"
name: branch
input: {type: object, properties: {n: {type: integer, default: 5}}}
channels:
  path: {reducer: append}
nodes:
  check: {kind: transform, set: {path: "'check'"}}
  big: {kind: transform, set: {path: "'big'"}}
  bigger: {kind: transform, set: {path: "'bigger'"}}
edges:
  - {from: START, to: check}
  - from: check
    when:
      - {if: "input.n > 3", to: big}
      - {if: "input.n > 1", to: bigger}
  - {from: big, to: END}
"#);
    let engine = Engine::in_memory(Host::default());
    assert_eq!(
        run(&engine, &w, json!({})).await.state["path"],
        json!(["check", "big"]),
        "default input applied"
    );
    assert_eq!(
        run(&engine, &w, json!({"n": 2})).await.state["path"],
        json!(["check", "bigger"])
    );
    assert_eq!(
        run(&engine, &w, json!({"n": 0})).await.state["path"],
        json!(["check"])
    );
}

#[tokio::test]
async fn exceeding_max_steps_fails_naming_the_limit_and_active_nodes() {
    let w = wf(r#"
name: forever
channels:
  n: {reducer: sum}
nodes:
  spin: {kind: transform, set: {n: "1"}}
edges:
  - {from: START, to: spin}
  - {from: spin, to: spin}
limits: {max_steps: 5}
"#);
    let out = run(&Engine::in_memory(Host::default()), &w, json!({})).await;
    assert_eq!(out.status, RunStatus::Failed);
    let err = out.error.unwrap();
    assert_eq!(err.kind, "max_steps");
    assert!(
        err.message.contains("max_steps (5)") && err.message.contains("spin"),
        "{}",
        err.message
    );
    assert_eq!(out.state["n"], json!(5));
}

#[tokio::test]
async fn invalid_input_is_rejected_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let engine = durable(dir.path(), Host::default());
    let err = engine
        .start(hello(), json!({"n": "three"}), RunOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::InvalidInput { .. }));
    assert!(err.to_string().contains("/n"), "{err}");
    let err = engine
        .start(hello(), json!({}), RunOptions::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("\"n\" is a required property"),
        "{err}"
    );
    assert!(
        engine
            .store()
            .unwrap()
            .list_runs(&Default::default())
            .unwrap()
            .is_empty(),
        "nothing was stored"
    );
}

#[test]
fn yaml_errors_carry_line_and_column() {
    let err = load_err("name: x\nnodes:\n  a: {kind: transform, set: {x: \"1\"}\n");
    assert!(err.starts_with("test.yaml:"), "{err}");
    assert!(err.contains(":3:") || err.contains(":4:"), "{err}");

    let err = load_err(
        "name: x\nchannels: {}\nnodes:\n  a:\n    kind: transform\n    sett: {}\nedges: []\n",
    );
    assert!(
        err.starts_with(
            "test.yaml:6:5: nodes.a: unknown key `sett` for a node of kind `transform`"
        ) && err.ends_with("did you mean `set`?"),
        "{err}"
    );
}

#[test]
fn semantic_errors_name_their_place() {
    let err = load_err(
        r#"name: x
channels:
  c: {}
nodes:
  a:
    kind: transform
    set: {c: "state.missing + 1", d: "1"}
edges:
  - {from: START, to: a}
  - {from: a, to: nowhere}
"#,
    );
    assert!(err.contains("test.yaml:7:"), "{err}");
    assert!(err.contains("no channel `missing`"), "{err}");
    assert!(
        err.contains("nodes.a.set.d: writes the undeclared channel `d`"),
        "{err}"
    );
    assert!(
        err.contains("test.yaml:10:") && err.contains("edges[1].to: unknown node `nowhere`"),
        "{err}"
    );

    let err = load_err(
        "name: x\nchannels:\n  c: {}\nnodes:\n  a:\n    kind: transform\n    set: {c: \"state.c +\"}\nedges:\n  - {from: START, to: a}\n",
    );
    assert!(err.contains("does not compile"), "{err}");

    let err = load_err(
        "name: x\nchannels:\n  c: {}\nnodes:\n  a:\n    kind: transform\n    for_each: \"[1]\"\n    set: {c: item}\nedges:\n  - {from: START, to: a}\n",
    );
    assert!(
        err.contains("cannot write the `replace` channel `c`"),
        "{err}"
    );

    let err = load_err(
        "name: x\nnodes:\n  a:\n    kind: transform\n    prompt: hi\n    set: {}\nedges:\n  - {from: START, to: a}\n",
    );
    assert!(
        err.contains("nodes.a.prompt: `prompt` is not a key of a `transform` node"),
        "{err}"
    );
}

#[tokio::test]
async fn an_expression_failing_at_run_time_fails_the_node_with_the_expression() {
    let w = wf(r#"
name: boom
channels:
  c: {}
nodes:
  a: {kind: transform, set: {c: "input.missing.deeper"}}
edges:
  - {from: START, to: a}
"#);
    let out = run(&Engine::in_memory(Host::default()), &w, json!({})).await;
    assert_eq!(out.status, RunStatus::Failed);
    let err = out.error.unwrap();
    assert_eq!(err.node.as_deref(), Some("a"));
    assert!(
        err.message.contains("input.missing.deeper"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn channel_schemas_are_checked_on_every_write() {
    let w = wf(r#"
name: typed
channels:
  n: {schema: {type: integer}}
nodes:
  a: {kind: transform, set: {n: "'seven'"}}
edges:
  - {from: START, to: a}
"#);
    let out = run(&Engine::in_memory(Host::default()), &w, json!({})).await;
    let err = out.error.unwrap();
    assert_eq!(err.kind, "channel");
    assert!(
        err.message.contains("channel `n`") && err.message.contains("integer"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn llm_and_tool_nodes_fail_clearly_when_the_host_lacks_them() {
    let w = wf(r#"
name: nollm
channels:
  answer: {}
nodes:
  ask: {kind: llm, role: leader, prompt: "hi", writes: answer}
edges:
  - {from: START, to: ask}
"#);
    let out = run(&Engine::in_memory(Host::default()), &w, json!({})).await;
    let err = out.error.unwrap();
    assert_eq!(err.kind, "not_available");
    assert!(err.message.contains("not available"), "{}", err.message);
}

fn counting_host(calls: Arc<AtomicUsize>, fail_first: usize) -> Host {
    Host::default().with_builtin(
        "count",
        Arc::new(FnBuiltin(move |with: Value| {
            let calls = calls.clone();
            async move {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                if n < fail_first {
                    return Err(NodeFailure::retryable(format!("transient failure {n}")));
                }
                Ok(with["v"].clone())
            }
        })),
    )
}

#[tokio::test]
async fn retries_then_fails_then_resume_reruns_only_the_unfinished_task() {
    let dir = tempfile::tempdir().unwrap();
    let w = wf(r#"
name: flaky
channels:
  a: {}
  b: {}
  c: {}
nodes:
  first: {kind: transform, set: {a: "1"}}
  good: {kind: transform, set: {b: "2"}}
  flaky: {kind: builtin, name: count, with: {v: "3"}, writes: c, retry: {max_attempts: 2, backoff_ms: 1}}
edges:
  - {from: START, to: first}
  - {from: first, to: good}
  - {from: first, to: flaky}
"#);
    let calls = Arc::new(AtomicUsize::new(0));
    let engine = durable(dir.path(), counting_host(calls.clone(), 2));
    let out = run(&engine, &w, json!({})).await;
    assert_eq!(out.status, RunStatus::Failed);
    let err = out.error.unwrap();
    assert_eq!(err.node.as_deref(), Some("flaky"));
    assert!(err.message.contains("attempt 2 of 2"), "{}", err.message);
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    let events = engine.store().unwrap().events(&out.run_id, None).unwrap();
    let starts = |node: &str| {
        events.iter().filter(|e| matches!(&e.kind, ao_graph::EventKind::TaskStarted { node: n, .. } if n == node)).count()
    };
    assert_eq!(starts("good"), 1);

    // The cause is gone now: resume runs `flaky` again, not `first` or `good`.
    let out = engine
        .resume(&out.run_id, None, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(out.status, RunStatus::Completed, "{:?}", out.error);
    assert_eq!(out.state, json!({"a": 1, "b": 2, "c": 3}));
    let events = engine.store().unwrap().events(&out.run_id, None).unwrap();
    let starts = |node: &str| {
        events.iter().filter(|e| matches!(&e.kind, ao_graph::EventKind::TaskStarted { node: n, .. } if n == node)).count()
    };
    assert_eq!(starts("first"), 1);
    assert_eq!(starts("good"), 1);
    assert_eq!(starts("flaky"), 3);
}

#[tokio::test]
async fn cancel_stops_the_run_and_records_who() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::default().with_builtin(
        "wait",
        Arc::new(FnBuiltin(|_with: Value| async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(Value::Null)
        })),
    );
    let engine = durable(dir.path(), host);
    let w = wf(
        "name: w\nchannels:\n  x: {}\nnodes:\n  a: {kind: builtin, name: wait, writes: x}\nedges:\n  - {from: START, to: a}\n",
    );
    let cancel = CancelToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        c2.cancel("test");
    });
    let started = std::time::Instant::now();
    let out = engine
        .start(
            w,
            json!({}),
            RunOptions {
                cancel,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(out.status, RunStatus::Cancelled);
    let rec = engine.store().unwrap().run(&out.run_id).unwrap().unwrap();
    assert_eq!(rec.status, RunStatus::Cancelled);
    assert!(rec.error.unwrap().message.contains("cancelled by test"));
    let err = engine
        .resume(&out.run_id, None, RunOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cancelled"), "{err}");
}

struct MapResolver(Vec<(String, Arc<Workflow>)>);

impl WorkflowResolver for MapResolver {
    fn resolve(&self, name: &str, _relative_to: Option<&Path>) -> Result<Arc<Workflow>, String> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, w)| w.clone())
            .ok_or_else(|| format!("no workflow `{name}`"))
    }
}

#[tokio::test]
async fn a_sub_workflow_runs_and_its_interrupt_reaches_the_parent() {
    let dir = tempfile::tempdir().unwrap();
    let child = wf(r#"
name: child
input: {type: object, required: [x], properties: {x: {type: integer}}}
channels:
  y: {}
  approved: {}
nodes:
  twice: {kind: transform, set: {y: "input.x * 2"}}
  confirm: {kind: interrupt, prompt: "Use {{ state.y }}?", schema: {type: boolean}, writes: approved}
edges:
  - {from: START, to: twice}
  - {from: twice, to: confirm}
output: "{'y': state.y, 'approved': state.approved}"
"#);
    let parent = wf(r#"
name: parent
channels:
  result: {}
  done: {default: false}
nodes:
  sub: {kind: workflow, workflow: child, input: {x: "21"}, writes: result}
  after: {kind: transform, set: {done: "state.result.approved"}}
edges:
  - {from: START, to: sub}
  - {from: sub, to: after}
"#);
    let host = Host {
        resolver: Some(Arc::new(MapResolver(vec![("child".into(), child)]))),
        ..Default::default()
    };
    let engine = durable(dir.path(), host);
    let out = run(&engine, &parent, json!({})).await;
    assert_eq!(out.status, RunStatus::Interrupted);
    let i = out.interrupt.unwrap();
    assert_eq!(i.node, "sub");
    assert_eq!(i.prompt, "Use 42?");
    assert!(i.child_run.is_some());

    let out = engine
        .resume(&out.run_id, Some(json!(true)), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(out.status, RunStatus::Completed, "{:?}", out.error);
    assert_eq!(out.state["result"], json!({"y": 42, "approved": true}));
    assert_eq!(out.state["done"], json!(true));
    let child_rec = engine
        .store()
        .unwrap()
        .run(i.child_run.as_deref().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(child_rec.status, RunStatus::Completed);
    assert_eq!(child_rec.parent_id.as_deref(), Some(out.run_id.as_str()));
}

#[tokio::test]
async fn storage_grows_with_the_writes_not_with_steps_times_state() {
    let dir = tempfile::tempdir().unwrap();
    let engine = durable(dir.path(), Host::default());
    let w = wf(r#"
name: chat
channels:
  turns: {reducer: append}
nodes:
  turn: {kind: transform, set: {turns: "'x' * 1000"}}
edges:
  - {from: START, to: turn}
  - from: turn
    when: [{if: "state.turns | length < 50", to: turn}]
"#);
    let store = engine.store().unwrap().clone();
    let empty = store.compacted_size().unwrap();
    let out = run(&engine, &w, json!({})).await;
    assert_eq!(out.state["turns"].as_array().unwrap().len(), 50);
    let used = store.compacted_size().unwrap() - empty;
    let data = 50 * 1000;
    // One copy of the data in the task writes; events and checkpoints add a little per step.
    // Storing the state at every step would be ~25× the data (quadratic).
    eprintln!("store grew by {used} bytes for {data} bytes written");
    assert!(
        used < 3 * data,
        "store grew by {used} bytes for {data} bytes written"
    );
}

#[test]
fn many_processes_worth_of_connections_can_open_a_fresh_store_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let w = wf(
        "name: one\nchannels:\n  x: {}\nnodes:\n  a: {kind: transform, set: {x: \"1\"}}\nedges:\n  - {from: START, to: a}\n",
    );
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let path = path.clone();
            let w = w.clone();
            std::thread::spawn(move || {
                let store = Arc::new(RunStore::open(&path).expect("open while others open too"));
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let out = rt
                    .block_on(Engine::durable(Host::default(), store).start(
                        w,
                        json!({}),
                        RunOptions::default(),
                    ))
                    .unwrap();
                assert_eq!(out.status, RunStatus::Completed);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let store = RunStore::open(&path).unwrap();
    assert_eq!(store.list_runs(&Default::default()).unwrap().len(), 8);
}

#[tokio::test]
async fn a_join_counts_only_arrivals_since_its_target_last_ran() {
    // `c` runs in step 2 through the static edge from `p`; `p`'s earlier arrival at the join
    // is spent by that run, so `b` arriving alone in step 2 does not trigger `c` again.
    let w = wf(r#"
name: join-reset
channels:
  log: {reducer: append}
nodes:
  p: {kind: transform, set: {log: "'p'"}}
  q: {kind: transform, set: {log: "'q'"}}
  b: {kind: transform, set: {log: "'b'"}}
  c: {kind: transform, set: {log: "'c'"}}
edges:
  - {from: START, to: p}
  - {from: START, to: q}
  - {from: p, to: c}
  - {from: q, to: b}
  - {from: [p, b], to: c}
"#);
    let out = run(&Engine::in_memory(Host::default()), &w, json!({})).await;
    assert_eq!(out.state["log"], json!(["p", "q", "b", "c"]));
}

#[tokio::test]
async fn two_resumes_of_one_run_cannot_both_take_it() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::default().with_builtin(
        "pause",
        Arc::new(FnBuiltin(|_with: Value| async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok(json!(true))
        })),
    );
    let engine = durable(dir.path(), host);
    let w = wf(r#"
name: ask-then-work
channels:
  answer: {}
  done: {}
nodes:
  ask: {kind: interrupt, prompt: "go?", schema: {type: boolean}, writes: answer}
  work: {kind: builtin, name: pause, writes: done}
edges:
  - {from: START, to: ask}
  - {from: ask, to: work}
"#);
    let out = run(&engine, &w, json!({})).await;
    assert_eq!(out.status, RunStatus::Interrupted);
    let (a, b) = tokio::join!(
        engine.resume(&out.run_id, Some(json!(true)), RunOptions::default()),
        engine.resume(&out.run_id, Some(json!(false)), RunOptions::default()),
    );
    let oks = [&a, &b].iter().filter(|r| r.is_ok()).count();
    assert_eq!(oks, 1, "exactly one resume takes the run: {a:?} / {b:?}");
    let err = a.err().or(b.err()).expect("one resume was refused");
    assert!(matches!(err, EngineError::NotResumable { .. }), "{err}");
    let done = engine.store().unwrap().events(&out.run_id, None).unwrap();
    let work_started = done
        .iter()
        .filter(
            |e| matches!(&e.kind, ao_graph::EventKind::TaskStarted { node, .. } if node == "work"),
        )
        .count();
    assert_eq!(work_started, 1);
}

#[tokio::test]
async fn a_workflow_that_calls_itself_stops_at_the_nesting_limit() {
    let dir = tempfile::tempdir().unwrap();
    let wf = Arc::new(
        load_str(
            "name: loop\nchannels:\n  r: {}\nnodes:\n  again: {kind: workflow, workflow: loop, writes: r}\nedges:\n  - {from: START, to: again}\n",
            "loop.yaml",
        )
        .unwrap(),
    );
    let host = Host {
        resolver: Some(Arc::new(MapResolver(vec![("loop".into(), wf.clone())]))),
        ..Host::default()
    };
    let engine = durable(dir.path(), host);
    let out = run(&engine, &wf, json!({})).await;
    assert_eq!(out.status, RunStatus::Failed);
    assert!(out.error.unwrap().message.contains("nest deeper than 16"));
}

#[test]
fn absurd_concurrency_is_a_load_error() {
    let err = load_err(
        "name: x\nchannels:\n  c: {}\nnodes:\n  a: {kind: transform, set: {c: \"1\"}}\nedges:\n  - {from: START, to: a}\nlimits: {concurrency: 18446744073709551615}\n",
    );
    assert!(err.contains("concurrency must be at most 10000"), "{err}");
}

#[tokio::test]
async fn claiming_a_run_is_a_compare_and_set() {
    let dir = tempfile::tempdir().unwrap();
    let engine = durable(dir.path(), Host::default());
    let out = run(&engine, &hello(), json!({"n": 1})).await;
    let store = engine.store().unwrap();
    let rec = store.run(&out.run_id).unwrap().unwrap();
    assert_eq!(rec.status, RunStatus::Interrupted);
    // Two processes that both read "interrupted": only the first claim succeeds.
    assert!(
        store
            .claim(&out.run_id, rec.status, rec.owner_pid, &[])
            .unwrap()
    );
    assert!(
        !store
            .claim(&out.run_id, rec.status, rec.owner_pid, &[])
            .unwrap()
    );
}

#[tokio::test]
async fn a_runaway_template_or_expression_fails_its_node_quickly_and_clearly() {
    let cases = [
        // Nested loops: billions of iterations.
        (
            "nodes:\n  t: {kind: interrupt, prompt: \"{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}\", schema: {type: boolean}, writes: c}\n",
            "instructions",
        ),
        // Output that grows without bound.
        (
            "nodes:\n  t: {kind: interrupt, prompt: \"{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}\", schema: {type: boolean}, writes: c}\n",
            "MiB of text",
        ),
        // An expression whose value is huge.
        (
            "nodes:\n  t: {kind: transform, set: {c: \"'x' * 50000000\"}}\n",
            "larger than",
        ),
    ];
    for (nodes, expected) in cases {
        let wf = Arc::new(
            load_str(
                &format!(
                    "name: x\nchannels:\n  c: {{}}\n{nodes}edges:\n  - {{from: START, to: t}}\n"
                ),
                "x.yaml",
            )
            .unwrap(),
        );
        let started = std::time::Instant::now();
        let out = run(&Engine::in_memory(Host::default()), &wf, json!({})).await;
        assert_eq!(out.status, RunStatus::Failed, "{nodes}");
        let message = out.error.unwrap().message;
        assert!(message.contains(expected), "{nodes}: {message}");
        // Generous: the point is seconds, not the minutes an unbounded loop takes.
        assert!(started.elapsed() < Duration::from_secs(30), "{nodes}");
    }
}

#[tokio::test]
async fn a_template_keeps_its_trailing_newline() {
    let wf = Arc::new(
        load_str(
            "name: x\nchannels:\n  c: {}\nnodes:\n  t: {kind: interrupt, prompt: \"line {{ 1 + 1 }}\\n\", schema: {type: boolean}, writes: c}\nedges:\n  - {from: START, to: t}\n",
            "x.yaml",
        )
        .unwrap(),
    );
    let out = run(&Engine::in_memory(Host::default()), &wf, json!({})).await;
    assert_eq!(out.interrupt.unwrap().prompt, "line 2\n");
}

/// Records the role of every `llm` call and answers with it.
struct RoleEcho(Mutex<Vec<String>>);

impl ao_graph::LlmRunner for RoleEcho {
    fn run<'a>(
        &'a self,
        _call: ao_graph::NodeCall<'a>,
        request: ao_graph::LlmRequest,
    ) -> ao_graph::BoxFuture<'a, Result<Value, NodeFailure>> {
        self.0.lock().unwrap().push(request.role.clone());
        Box::pin(async move { Ok(Value::String(request.role)) })
    }
}

#[tokio::test]
async fn a_template_can_choose_each_tasks_role_at_run_time() {
    let echo = Arc::new(RoleEcho(Mutex::new(Vec::new())));
    let host = Host {
        llm: Some(echo.clone()),
        ..Host::default()
    };
    let wf = Arc::new(
        load_str(
            "name: x\nchannels:\n  who: {reducer: append}\nnodes:\n  work:\n    kind: llm\n    for_each: input.steps\n    role: \"{{ item.worker }}\"\n    prompt: \"do {{ item.id }}\"\n    writes: who\nedges:\n  - {from: START, to: work}\n",
            "x.yaml",
        )
        .unwrap(),
    );
    assert_eq!(
        wf.llm_nodes().collect::<Vec<_>>(),
        vec![("work", None)],
        "the role is not known before the run"
    );
    let out = run(
        &Engine::in_memory(host),
        &wf,
        json!({"steps": [{"id": "a", "worker": "qwen"}, {"id": "b", "worker": "leader"}]}),
    )
    .await;
    assert_eq!(out.status, RunStatus::Completed, "{:?}", out.error);
    assert_eq!(out.state["who"], json!(["qwen", "leader"]));
    // A role template that names something undefined is a load error, like any template.
    let err = load_err(
        "name: x\nchannels:\n  who: {}\nnodes:\n  work: {kind: llm, role: \"{{ nope }}\", prompt: p, writes: who}\nedges:\n  - {from: START, to: work}\n",
    );
    assert!(err.contains("nodes.work.role"), "{err}");
}
