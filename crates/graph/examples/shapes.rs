//! Times whole runs of simple workflow shapes and prints the figures: the engine's side of the
//! LangGraph comparison (`benches/langgraph/compare.py`) and of the scale curve in
//! `docs/benchmarks.md` (run it under `/usr/bin/time -v` for peak memory).
//!
//! ```text
//! cargo run --release -p ao-graph --example shapes -- SHAPE N [--durable] [--reps R] [--bytes B] [--store DIR] [--json]
//!   chain N   N transform nodes in a line, each doing x = x + 1 (N supersteps)
//!   fan N     one node over `for_each: range(N)`, appending item * 2 and summing item
//!   state N   N supersteps over a state holding B bytes (default 1 MiB): the first step
//!             appends them to a list channel as chunks of at most 1 MiB (one `for_each` task
//!             per chunk, copying the input's chunk: one expression's value is capped at
//!             8 MiB), the others increment a counter
//! ```
//!
//! `--durable` runs with the SQLite run store in a temporary directory (one store for all
//! repetitions, as a long-lived process would; `--store DIR` keeps it in DIR for inspection);
//! otherwise in memory. The workflow is compiled
//! once, outside the timing.

use ao_graph::{Engine, Host, RunOptions, RunStore, Workflow, load_str};
use serde_json::{Value, json};
use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    shape: String,
    n: usize,
    durable: bool,
    reps: usize,
    bytes: usize,
    json: bool,
    store: Option<std::path::PathBuf>,
}

fn usage() -> ! {
    eprintln!(
        "usage: shapes (chain|fan|state) N [--durable] [--reps R] [--bytes B] [--store DIR] [--json]\n\
         see the comment at the top of crates/graph/examples/shapes.rs"
    );
    std::process::exit(2)
}

fn parse() -> Args {
    let mut args = Args {
        shape: String::new(),
        n: 0,
        durable: false,
        reps: 5,
        bytes: 1 << 20,
        json: false,
        store: None,
    };
    let mut it = std::env::args().skip(1);
    let mut positional = Vec::new();
    while let Some(a) = it.next() {
        let mut number = |what: &str| -> usize {
            it.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
                eprintln!("{what} needs a number");
                usage()
            })
        };
        match a.as_str() {
            "--durable" => args.durable = true,
            "--json" => args.json = true,
            "--reps" => args.reps = number("--reps").max(1),
            "--bytes" => args.bytes = number("--bytes"),
            "--store" => match it.next() {
                Some(dir) => args.store = Some(dir.into()),
                None => {
                    eprintln!("--store needs a directory");
                    usage()
                }
            },
            "--help" | "-h" => usage(),
            _ if a.starts_with("--") => {
                eprintln!("unknown option {a}");
                usage()
            }
            _ => positional.push(a),
        }
    }
    let [shape, n] = positional.as_slice() else {
        usage()
    };
    args.shape = shape.clone();
    args.n = n.parse().unwrap_or_else(|_| usage());
    args
}

fn chain(n: usize) -> String {
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
    src
}

fn fan(n: usize) -> String {
    format!(
        "name: fan\nchannels:\n  out: {{reducer: append}}\n  total: {{reducer: sum}}\nnodes:\n  f: {{kind: transform, for_each: \"range({n})\", set: {{out: \"item * 2\", total: item}}}}\nedges:\n  - {{from: START, to: f}}\nlimits: {{concurrency: {}}}\n",
        n.max(1)
    )
}

/// The size of one chunk of the `state` shape's data, and how many chunks make `bytes`.
fn chunks(bytes: usize) -> (usize, usize) {
    let chunk = bytes.clamp(1, 1 << 20);
    (chunk, bytes.div_ceil(chunk))
}

fn state(n: usize, bytes: usize) -> String {
    format!(
        "name: state\nchannels:\n  blob: {{reducer: append}}\n  x: {{default: 0}}\nnodes:\n  load: {{kind: transform, for_each: \"range({})\", set: {{blob: \"input.chunk\"}}}}\n  inc: {{kind: transform, set: {{x: \"state.x + 1\"}}}}\nedges:\n  - {{from: START, to: load}}\n  - {{from: load, to: inc}}\n  - from: inc\n    when: [{{if: \"state.x < {}\", to: inc}}]\nlimits: {{max_steps: {}}}\n",
        chunks(bytes).1,
        n.saturating_sub(1),
        n + 1
    )
}

fn check(shape: &str, n: usize, bytes: usize, state: &Value) {
    let ok = match shape {
        "chain" => state["x"] == json!(n),
        "fan" => {
            state["out"].as_array().map(Vec::len) == Some(n)
                && state["total"] == json!(n * n.saturating_sub(1) / 2)
        }
        _ => {
            state["x"] == json!(n.saturating_sub(1))
                && state["blob"].as_array().map(|chunks| {
                    chunks
                        .iter()
                        .map(|c| c.as_str().map_or(0, str::len))
                        .sum::<usize>()
                }) == Some(chunks(bytes).0 * chunks(bytes).1)
        }
    };
    if !ok {
        eprintln!("unexpected final state for {shape} {n}");
        std::process::exit(1);
    }
}

/// The process's resident set size now (Linux: `VmRSS` in `/proc/self/status`).
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn main() {
    let args = parse();
    let src = match args.shape.as_str() {
        "chain" => chain(args.n),
        "fan" => fan(args.n),
        "state" => state(args.n.max(1), args.bytes),
        _ => usage(),
    };
    let wf: Arc<Workflow> = Arc::new(load_str(&src, "shapes.yaml").unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    }));
    // What the process holds before any run: the loaded workflow (and the runtime's libraries).
    let rss_loaded = rss_bytes();
    let input = if args.shape == "state" {
        json!({"chunk": "a".repeat(chunks(args.bytes).0)})
    } else {
        json!({})
    };
    let dir = tempfile::tempdir().unwrap_or_else(|e| {
        eprintln!("cannot create a temporary directory: {e}");
        std::process::exit(1)
    });
    let store_dir = args.store.as_deref().unwrap_or(dir.path());
    let engine = if args.durable {
        let store = RunStore::open(store_dir).unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(1)
        });
        Engine::durable(Host::default(), Arc::new(store))
    } else {
        Engine::in_memory(Host::default())
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| {
            eprintln!("cannot start the runtime: {e}");
            std::process::exit(1)
        });
    let mut times: Vec<Duration> = Vec::with_capacity(args.reps);
    for _ in 0..args.reps {
        let input = input.clone();
        let began = Instant::now();
        let out = rt
            .block_on(engine.start(wf.clone(), input, RunOptions::default()))
            .unwrap_or_else(|e| {
                eprintln!("run failed: {e}");
                std::process::exit(1)
            });
        times.push(began.elapsed());
        if out.status != ao_core::run::RunStatus::Completed {
            eprintln!("run ended {}: {:?}", out.status, out.error);
            std::process::exit(1);
        }
        check(&args.shape, args.n.max(1), args.bytes, &out.state);
    }
    times.sort();
    let median = times[times.len() / 2].as_secs_f64();
    let min = times[0].as_secs_f64();
    let units = args.n.max(1) as f64;
    let store_bytes: u64 = ["runs.db", "runs.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(store_dir.join(f)).ok())
        .map(|m| m.len())
        .sum();
    if args.json {
        println!(
            "{}",
            json!({
                "shape": args.shape,
                "n": args.n,
                "bytes": (args.shape == "state").then_some(args.bytes),
                "durable": args.durable,
                "reps": args.reps,
                "median_s": median,
                "min_s": min,
                "per_unit_us": median / units * 1e6,
                "store_bytes": args.durable.then_some(store_bytes),
                "rss_loaded_bytes": rss_loaded,
            })
        );
    } else {
        println!(
            "{} {}{} {}: median {:.3} ms over {} runs ({:.2} µs per {}){}",
            args.shape,
            args.n,
            if args.shape == "state" {
                format!(" ({} bytes)", args.bytes)
            } else {
                String::new()
            },
            if args.durable { "durable" } else { "in memory" },
            median * 1e3,
            args.reps,
            median / units * 1e6,
            if args.shape == "fan" { "task" } else { "step" },
            if args.durable {
                format!(", store {} bytes", store_bytes)
            } else {
                String::new()
            }
        );
    }
}
