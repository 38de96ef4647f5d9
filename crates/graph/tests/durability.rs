//! The durability contract under SIGKILL: a process running a fan-out of 1 000 tasks is killed
//! at random points, over and over, and resumed each time. Every task the process reported
//! complete (its `task_finished` event reached the event sink) must be in the store when the
//! process is gone, and no task the store holds as completed may run again.
//!
//! The process under test is this test binary itself, started again with `KILL_TEST_CHILD` set
//! (see [`child_process_of_the_kill_test`]): it runs the fan-out with the durable engine,
//! prints each reported task on stdout, and logs every execution of a task to a file (one
//! `write` per line, so a line survives the kill).

use ao_graph::{Engine, EventKind, FnBuiltin, Host, RunOptions, RunStore, load_str};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "KILL_TEST_CHILD";
const TASKS: u64 = 1000;

const FAN: &str = "
name: fan
channels:
  done: {reducer: append}
nodes:
  work: {kind: builtin, name: work, for_each: \"range(1000)\", with: {i: item}, writes: done}
edges:
  - {from: START, to: work}
limits: {concurrency: 8}
";

/// Not a test of its own: the process the kill test starts (a no-op without `KILL_TEST_CHILD`).
#[test]
fn child_process_of_the_kill_test() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = spec.splitn(3, '\n');
    let (Some(dir), Some(run_id), Some(log)) = (parts.next(), parts.next(), parts.next()) else {
        panic!("bad {CHILD_ENV}");
    };
    let log = Arc::new(Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap(),
    ));
    let pid = std::process::id();
    let work = {
        let log = log.clone();
        FnBuiltin(move |with: Value| {
            let log = log.clone();
            async move {
                let i = with["i"].as_u64().unwrap();
                // Each line is one write(2) on an O_APPEND file: it is there even if the
                // process is killed right after. Lines are 32 bytes, so none crosses a page
                // boundary: a write spanning two pages can be cut short by SIGKILL between
                // them, which would leave half a line.
                let note = |what: &str| {
                    let line = format!("{:<31}\n", format!("{what} {pid} {i}"));
                    log.lock().unwrap().write_all(line.as_bytes()).unwrap();
                };
                note("start");
                tokio::time::sleep(Duration::from_micros(fastrand::u64(2000..10_000))).await;
                note("end");
                Ok(json!(i))
            }
        })
    };
    let host = Host::default().with_builtin("work", Arc::new(work));
    let store = Arc::new(RunStore::open(Path::new(dir)).unwrap());
    let sink = |e: &ao_graph::Event| {
        if let EventKind::TaskFinished {
            node,
            index: Some(i),
            ..
        } = &e.kind
            && node == "work"
        {
            // stdout is line-buffered: the line is out before the next event.
            println!("reported {i}");
        }
    };
    let engine = Engine::durable(host, store.clone()).with_sink(Arc::new(sink));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let outcome = rt.block_on(async {
        if store.run(run_id).unwrap().is_some() {
            engine.resume(run_id, None, RunOptions::default()).await
        } else {
            let wf = Arc::new(load_str(FAN, "fan.yaml").unwrap());
            let opts = RunOptions {
                run_id: Some(run_id.to_string()),
                ..Default::default()
            };
            engine.start(wf, json!({}), opts).await
        }
    });
    let outcome = outcome.unwrap();
    println!("outcome {}", outcome.status);
}

/// The completed tasks of the fan-out step, as the store has them.
fn stored(store: &RunStore, run_id: &str) -> BTreeSet<u64> {
    store
        .completed_tasks(run_id, 1)
        .unwrap()
        .iter()
        .map(|t| t.index.unwrap() as u64)
        .collect()
}

/// `start`/`end` lines of the execution log per pid: pid → (indexes started, indexes ended).
fn executions(log: &Path) -> BTreeMap<u32, (Vec<u64>, Vec<u64>)> {
    let mut out: BTreeMap<u32, (Vec<u64>, Vec<u64>)> = BTreeMap::new();
    let text = std::fs::read_to_string(log).unwrap_or_default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some(what), Some(pid), Some(i)) = (words.next(), words.next(), words.next()) else {
            panic!("bad log line {line:?}");
        };
        let bad = |e: std::num::ParseIntError| -> ! { panic!("bad log line {line:?}: {e}") };
        let entry = out
            .entry(pid.parse().unwrap_or_else(|e| bad(e)))
            .or_default();
        let i: u64 = i.parse().unwrap_or_else(|e| bad(e));
        match what {
            "start" => entry.0.push(i),
            _ => entry.1.push(i),
        }
    }
    out
}

#[test]
fn a_fan_out_of_1000_killed_at_random_points_loses_no_reported_task_and_runs_none_twice() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("executions.log");
    let run_id = ao_core::ids::RunId::new().to_string();
    let seed = std::env::var("KILL_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("seed {seed} (set KILL_TEST_SEED to repeat)");
    let mut rng = fastrand::Rng::with_seed(seed);
    let store = RunStore::open(dir.path()).unwrap();
    let exe = std::env::current_exe().unwrap();
    let began = Instant::now();

    let mut reported_ever: BTreeMap<u64, u32> = BTreeMap::new();
    let mut kills_mid_step = 0;
    let mut completed = false;
    for round in 0..200 {
        assert!(
            began.elapsed() < Duration::from_secs(45),
            "the test took too long (round {round})"
        );
        let before = stored(&store, &run_id);
        let mut child = Command::new(&exe)
            .args(["--exact", "child_process_of_the_kill_test", "--nocapture"])
            .env(
                CHILD_ENV,
                format!("{}\n{run_id}\n{}", dir.path().display(), log.display()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut reported = Vec::new();
            let mut outcome = None;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(i) = line.strip_prefix("reported ") {
                    reported.push(i.parse::<u64>().unwrap());
                } else if let Some(status) = line.strip_prefix("outcome ") {
                    outcome = Some(status.to_string());
                }
            }
            (reported, outcome)
        });
        // Kills at a random moment of the child's life (from its start-up to the commit of
        // its last batch) until 30 of them landed in the middle of the fan-out, then one run
        // left to finish.
        let kill = kills_mid_step < 30;
        if kill {
            std::thread::sleep(Duration::from_micros(rng.u64(0..60_000)));
            child.kill().unwrap(); // SIGKILL
        }
        let status = child.wait().unwrap();
        let (reported, outcome) = reader.join().unwrap();
        let after = stored(&store, &run_id);

        for i in &reported {
            assert!(
                after.contains(i),
                "round {round}: task {i} was reported complete but is not in the store"
            );
            assert!(
                !before.contains(i),
                "round {round}: task {i} was already stored, yet it ran and was reported again"
            );
            *reported_ever.entry(*i).or_default() += 1;
        }
        let runs = executions(&log);
        if let Some((started, _)) = runs.get(&pid) {
            let again: Vec<&u64> = started.iter().filter(|i| before.contains(i)).collect();
            assert!(
                again.is_empty(),
                "round {round}: tasks already in the store were started again: {again:?}"
            );
        }
        if let Some(outcome) = outcome {
            assert!(status.success(), "round {round}: the child failed");
            assert_eq!(outcome, "completed", "round {round}");
            completed = true;
            break;
        }
        if kill && !after.is_empty() && (after.len() as u64) < TASKS && after.len() > before.len() {
            kills_mid_step += 1;
        }
    }
    assert!(completed, "the run never completed");
    assert!(
        kills_mid_step >= 20,
        "only {kills_mid_step} kills landed in the middle of the fan-out"
    );

    // The end: every task stored once, each result in the state once, none reported twice.
    let done = stored(&store, &run_id);
    assert_eq!(done.len() as u64, TASKS);
    let twice: Vec<_> = reported_ever.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "reported more than once: {twice:?}");
    let engine = Engine::durable(
        Host::default(),
        Arc::new(RunStore::open(dir.path()).unwrap()),
    );
    let record = engine.store().unwrap().run(&run_id).unwrap().unwrap();
    let outcome = engine.outcome_of(&record).unwrap();
    let mut values: Vec<u64> = outcome.state["done"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    values.sort();
    assert_eq!(values, (0..TASKS).collect::<Vec<_>>());
    eprintln!(
        "{kills_mid_step} kills mid-step, {} tasks reported, {:.1}s",
        reported_ever.len(),
        began.elapsed().as_secs_f64()
    );
}
