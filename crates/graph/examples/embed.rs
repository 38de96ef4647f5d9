//! Embedding the engine in a Rust program: load a workflow, plug in a builtin node of your own,
//! run it in memory, answer its question, and read the result.
//!
//! Run: `cargo run -p ao-graph --example embed`

use ao_core::run::RunStatus;
use ao_graph::RunStore;
use ao_graph::load_str;
use ao_graph::{Engine, RunOptions};
use ao_graph::{FnBuiltin, Host, NodeFailure};
use serde_json::{Value, json};
use std::sync::Arc;

const WORKFLOW: &str = r#"
name: word-lengths
input: {type: object, required: [text], properties: {text: {type: string}}}
channels:
  lengths: {reducer: append}
  approved: {schema: {type: boolean}}
nodes:
  measure:
    kind: builtin
    name: length
    for_each: "input.text | split | list"
    with: {word: item}
    writes: lengths
  confirm:
    kind: interrupt
    prompt: "{{ state.lengths | length }} words measured. Keep them?"
    schema: {type: boolean}
    writes: approved
edges:
  - {from: START, to: measure}
  - {from: measure, to: confirm}
output: {lengths: state.lengths, approved: state.approved}
"#;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let workflow = Arc::new(load_str(WORKFLOW, "word-lengths.yaml")?);

    // A builtin node is any async function from its `with` arguments to a JSON value.
    let host = Host::default().with_builtin(
        "length",
        Arc::new(FnBuiltin(|with: Value| async move {
            let word = with["word"]
                .as_str()
                .ok_or_else(|| NodeFailure::permanent("`word` must be a string"))?;
            Ok(json!({"word": word, "chars": word.chars().count()}))
        })),
    );

    // A durable engine keeps runs in a store, so an interrupted run can be answered later
    // (here a temporary directory; `ao` uses `<root>/.ao`).
    let dir = tempfile::tempdir()?;
    let engine = Engine::durable(host, Arc::new(RunStore::open(dir.path())?));

    let first = engine
        .start(
            workflow,
            json!({"text": "state graphs all the way"}),
            RunOptions::default(),
        )
        .await?;
    assert_eq!(first.status, RunStatus::Interrupted, "{:?}", first.error);
    let question = first
        .interrupt
        .as_ref()
        .map(|i| i.prompt.clone())
        .unwrap_or_default();
    println!("the run asks: {question}");

    let done = engine
        .resume(&first.run_id, Some(json!(true)), RunOptions::default())
        .await?;
    println!(
        "{}: {}",
        done.status,
        serde_json::to_string_pretty(&done.output)?
    );
    Ok(())
}
