//! `ao worker interview` through the binary: the full built-in suite with 3 trials against a
//! stub endpoint whose every reply takes 200 ms.
//! Run: `cargo bench -p ao-cli --bench worker_interview`.
//!
//! The interview asks 29 cases × 3 trials = 87 questions, at most 8 at once (the workflow's
//! `limits.concurrency`), so it needs `ceil(87 / 8) = 11` rounds of 200 ms: 2.2 s plus the
//! process, the run store and the scoring. Each run is a fresh project (its own state dir).

use ao_orchestrator::interview::suite::Suite;
use ao_testkit::{StubModel, completion};
use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

const RUNS: usize = 5;
const REPLY_DELAY: Duration = Duration::from_millis(200);

fn main() {
    let suite = Suite::builtin().expect("the built-in suite");
    let answers: HashMap<String, String> = suite
        .cases()
        .iter()
        .map(|c| {
            let prompt = c
                .messages()
                .iter()
                .rev()
                .find(|m| m.role.as_str() == "user")
                .map(|m| m.content.clone())
                .unwrap_or_default();
            (
                prompt,
                c.reference().map(|r| r.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    let stub = StubModel::start(move |req| {
        std::thread::sleep(REPLY_DELAY);
        let prompt = req["messages"]
            .as_array()
            .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default();
        let answer = answers.get(prompt).cloned().unwrap_or_default();
        (200, completion(&answer))
    });
    let calls = suite.cases().len() * 3;
    let rounds = calls.div_ceil(8);
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let dir = tempfile::tempdir().expect("a temporary project");
        let started = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_ao"))
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .env_remove("AO_STATE_DIR")
            .args([
                "worker",
                "interview",
                "--provider",
                "openai-compatible",
                "--model",
                "bench",
                "--base-url",
                &stub.base_url,
                "--json",
            ])
            .output()
            .expect("run ao");
        let took = started.elapsed();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let run: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("one JSON document");
        assert_eq!(run["output"]["status"], "active");
        times.push(took);
    }
    times.sort();
    let median = times[RUNS / 2];
    let floor = REPLY_DELAY * rounds as u32;
    println!(
        "worker_interview: {calls} calls, {rounds} rounds x {} ms = {:.2} s at least; \
         median {:.3} s (min {:.3} s, max {:.3} s) over {RUNS} runs; overhead {:.0} ms",
        REPLY_DELAY.as_millis(),
        floor.as_secs_f64(),
        median.as_secs_f64(),
        times[0].as_secs_f64(),
        times[RUNS - 1].as_secs_f64(),
        median.saturating_sub(floor).as_secs_f64() * 1000.0,
    );
}
