//! Spawn of `ao mcp serve` to the first `tools/list` answer, as a client sees it: the clock
//! starts before the process is spawned and stops when the `tools/list` response line is read.
//!
//! `cargo bench -p ao-cli --bench mcp_startup` (build profile: bench, i.e. release).
//! Two shapes: `legacy` writes `initialize`, `notifications/initialized` and `tools/list` at
//! once (pipelined, as clients do); `2026-07-28` sends one `tools/list` carrying the revision's
//! `_meta` (no handshake). The project is a temporary folder whose state dir already exists
//! (the usual case: the store is opened, not created).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 200;

const LEGACY: &str = concat!(
    r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"0"}}}"#,
    "\n",
    r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    "\n",
    r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
    "\n"
);

const MODERN: &str = concat!(
    r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#,
    "\n"
);

/// A leader model configured (nothing is called: the server builds its model client at start).
const LEADER: &[(&str, &str)] = &[
    ("LEADER_MODEL_PROVIDER", "openai-compatible"),
    ("LEADER_MODEL_NAME", "some-model"),
    ("LEADER_MODEL_BASE_URL", "http://127.0.0.1:9/v1"),
    ("LEADER_MODEL_API_KEY", "sk-bench"),
];

fn once(root: &std::path::Path, input: &str, env: &[(&str, &str)]) -> Duration {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ao"))
        .args(["mcp", "serve"])
        .current_dir(root)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AO_STATE_DIR", root.join(".ao"))
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ao mcp serve");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("write requests");
    stdin.flush().expect("flush");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    loop {
        let line = lines
            .next()
            .expect("the server answered tools/list")
            .expect("read a line");
        let msg: serde_json::Value = serde_json::from_str(&line).expect("a JSON-RPC message");
        if msg["id"] == 2 {
            assert!(
                msg["result"]["tools"]
                    .as_array()
                    .is_some_and(|t| t.len() == 19),
                "{line}"
            );
            break;
        }
    }
    let elapsed = start.elapsed();
    drop(stdin);
    let _ = child.wait();
    elapsed
}

fn report(name: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<40} runs={} min={:.2} ms median={:.2} ms p90={:.2} ms max={:.2} ms",
        times.len(),
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() * 9 / 10]),
        ms(times[times.len() - 1]),
    );
}

fn main() {
    // `cargo test --benches` runs this with `--test`-like flags; one quick round suffices then.
    let runs = if std::env::args().any(|a| a == "--bench") {
        RUNS
    } else {
        3
    };
    let dir = tempfile::tempdir().expect("temp dir");
    once(dir.path(), LEGACY, &[]); // creates the state dir
    for (name, input, env) in [
        ("legacy", LEGACY, &[][..]),
        ("2026-07-28", MODERN, &[][..]),
        ("legacy, with a leader model configured", LEGACY, LEADER),
    ] {
        let times = (0..runs).map(|_| once(dir.path(), input, env)).collect();
        report(name, times);
    }
}
