//! The run store as a file on disk: private to its owner, migrated from the first layout
//! without losing a record, and generic records that plug-ins keep with a run.

use ao_graph::{Engine, Host, RecordScope, RunOptions, RunStore, TaskKey, load_str};
use serde_json::json;
use std::sync::Arc;

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[tokio::test]
async fn the_state_dir_and_its_database_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let store = Arc::new(RunStore::open(&state).unwrap());
    let wf = Arc::new(
        load_str(
            "name: t\nchannels:\n  c: {}\nnodes:\n  a: {kind: transform, set: {c: \"1\"}}\nedges:\n  - {from: START, to: a}\n",
            "t.yaml",
        )
        .unwrap(),
    );
    Engine::durable(Host::default(), store)
        .start(wf, json!({}), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(mode(&state), 0o700);
    for name in ["runs.db", "runs.db-wal", "runs.db-shm"] {
        let path = state.join(name);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{name}");
        }
    }
    // An existing state dir and database that were world-readable are tightened on open.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        state.join("runs.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    RunStore::open(&state).unwrap();
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join("runs.db")), 0o600);
}

#[test]
fn records_are_kept_per_task_and_per_run_and_written_together_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let store = RunStore::open(dir.path()).unwrap();
    let task = TaskKey {
        run_id: "r1",
        step: 2,
        node: "ask",
        index: Some(3),
    };
    store
        .write_records("test", |r| {
            r.put(RecordScope::Task(task), "call", 0, &json!({"a": 1}))?;
            assert_eq!(r.append(RecordScope::Task(task), "log", &json!("x"))?, 0);
            assert_eq!(r.append(RecordScope::Task(task), "log", &json!("y"))?, 1);
            r.put(RecordScope::Run("r1"), "totals", 0, &json!(5))?;
            Ok(())
        })
        .unwrap();
    assert_eq!(
        store.record(RecordScope::Task(task), "call", 0).unwrap(),
        Some(json!({"a": 1}))
    );
    assert_eq!(
        store.task_records(&task, "log").unwrap(),
        vec![(0, json!("x")), (1, json!("y"))]
    );
    let all = store.records("r1", "log").unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(
        (all[0].step, all[0].node.as_str(), all[0].index),
        (2, "ask", Some(3))
    );
    assert_eq!(
        store.record(RecordScope::Run("r1"), "totals", 0).unwrap(),
        Some(json!(5))
    );
    // A failing transaction leaves nothing behind.
    let failed: Result<(), _> = store.write_records("test", |r| {
        r.put(RecordScope::Run("r1"), "totals", 0, &json!(6))?;
        Err(ao_graph::StoreError::Corrupt {
            context: "test",
            detail: "abort".into(),
        })
    });
    assert!(failed.is_err());
    assert_eq!(
        store.record(RecordScope::Run("r1"), "totals", 0).unwrap(),
        Some(json!(5))
    );
}

/// The first store layout: application tables of their own.
const V1: &str = "
CREATE TABLE runs (id TEXT PRIMARY KEY, parent_id TEXT, parent_task TEXT, workflow TEXT NOT NULL, origin TEXT NOT NULL, source TEXT NOT NULL, input TEXT NOT NULL, status TEXT NOT NULL, step INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, error TEXT, interrupt TEXT, output TEXT, usage TEXT, owner_pid INTEGER, cancel_requested TEXT);
CREATE TABLE tasks (run_id TEXT NOT NULL, step INTEGER NOT NULL, node TEXT NOT NULL, idx INTEGER NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL, writes TEXT, error TEXT, finished_ms INTEGER NOT NULL, PRIMARY KEY (run_id, step, node, idx));
CREATE TABLE checkpoints (run_id TEXT NOT NULL, step INTEGER NOT NULL, next TEXT NOT NULL, joins TEXT NOT NULL, snapshot TEXT, created_ms INTEGER NOT NULL, PRIMARY KEY (run_id, step)) WITHOUT ROWID;
CREATE TABLE llm_calls (run_id TEXT NOT NULL, step INTEGER NOT NULL, node TEXT NOT NULL, idx INTEGER NOT NULL, call_no INTEGER NOT NULL, request TEXT NOT NULL, result TEXT NOT NULL, created_ms INTEGER NOT NULL, PRIMARY KEY (run_id, step, node, idx, call_no));
CREATE TABLE exchanges (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, step INTEGER NOT NULL, node TEXT NOT NULL, idx INTEGER NOT NULL, data TEXT NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE tool_calls (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, step INTEGER NOT NULL, node TEXT NOT NULL, idx INTEGER NOT NULL, data TEXT NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE changesets (run_id TEXT PRIMARY KEY, data TEXT NOT NULL, updated_ms INTEGER NOT NULL);
CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE events (run_id TEXT NOT NULL, seq INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (run_id, seq)) WITHOUT ROWID;
INSERT INTO runs VALUES ('r1', NULL, NULL, 'w', 'w.yaml', 'name: w', '{}', 'completed', 1, 1, 2, NULL, NULL, NULL, '{\"calls\":1}', 1, NULL);
INSERT INTO llm_calls VALUES ('r1', 1, 'ask', -1, 0, 'fingerprint', '{\"answer\":\"hi\"}', 1);
INSERT INTO exchanges VALUES (1, 'r1', 1, 'ask', -1, '{\"status\":200}', 1);
INSERT INTO exchanges VALUES (2, 'r1', 1, 'ask', -1, '{\"status\":500}', 1);
INSERT INTO tool_calls VALUES (1, 'r1', 1, 'ask', -1, '{\"tool\":\"fs.read\"}', 1);
INSERT INTO changesets VALUES ('r1', '{\"files\":[]}', 1);
INSERT INTO kv VALUES ('models.learned_modes', '{}');
PRAGMA user_version = 1;
";

#[test]
fn a_store_of_the_first_layout_is_migrated_without_losing_a_record() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = rusqlite::Connection::open(dir.path().join("runs.db")).unwrap();
        conn.execute_batch(V1).unwrap();
    }
    let store = RunStore::open(dir.path()).unwrap();
    let run = store.run("r1").unwrap().unwrap();
    assert_eq!(run.workflow, "w");
    let task = TaskKey {
        run_id: "r1",
        step: 1,
        node: "ask",
        index: None,
    };
    assert_eq!(
        store
            .record(RecordScope::Task(task), "llm_call", 0)
            .unwrap(),
        Some(json!({"request": "fingerprint", "result": {"answer": "hi"}}))
    );
    let exchanges = store.records("r1", "exchange").unwrap();
    assert_eq!(
        exchanges.iter().map(|r| r.data.clone()).collect::<Vec<_>>(),
        vec![json!({"status": 200}), json!({"status": 500})],
        "in their original order"
    );
    assert_eq!(store.records("r1", "tool_call").unwrap().len(), 1);
    assert_eq!(
        store
            .record(RecordScope::Run("r1"), "changeset", 0)
            .unwrap(),
        Some(json!({"files": []}))
    );
    assert_eq!(
        store.record(RecordScope::Run("r1"), "usage", 0).unwrap(),
        Some(json!({"calls": 1}))
    );
    // Opening again is a no-op.
    drop(store);
    RunStore::open(dir.path()).unwrap();
}

/// The second store layout (events and checkpoints keyed by run id and number, tasks with a
/// separate key index): a chain `a → b → c` that failed at `c` after `a` and `b` completed, with
/// a snapshot at step 0 only, so resuming must replay the stored task writes.
const V2: &str = r#"
CREATE TABLE runs (id TEXT PRIMARY KEY, parent_id TEXT, parent_task TEXT, workflow TEXT NOT NULL, origin TEXT NOT NULL, source TEXT NOT NULL, input TEXT NOT NULL, status TEXT NOT NULL, step INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, error TEXT, interrupt TEXT, output TEXT, owner_pid INTEGER, cancel_requested TEXT, meta TEXT);
CREATE INDEX runs_parent ON runs(parent_id, parent_task);
CREATE TABLE tasks (run_id TEXT NOT NULL, step INTEGER NOT NULL, node TEXT NOT NULL, idx INTEGER NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL, writes TEXT, error TEXT, finished_ms INTEGER NOT NULL, PRIMARY KEY (run_id, step, node, idx));
CREATE TABLE checkpoints (run_id TEXT NOT NULL, step INTEGER NOT NULL, next TEXT NOT NULL, joins TEXT NOT NULL, snapshot TEXT, created_ms INTEGER NOT NULL, PRIMARY KEY (run_id, step)) WITHOUT ROWID;
CREATE TABLE records (run_id TEXT NOT NULL, kind TEXT NOT NULL, step INTEGER NOT NULL, node TEXT NOT NULL, idx INTEGER NOT NULL, seq INTEGER NOT NULL, data TEXT NOT NULL, created_ms INTEGER NOT NULL, PRIMARY KEY (run_id, kind, step, node, idx, seq));
CREATE TABLE events (run_id TEXT NOT NULL, seq INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (run_id, seq)) WITHOUT ROWID;
INSERT INTO runs VALUES ('other', NULL, NULL, 'w', 'w.yaml', 'name: w', '{}', 'completed', 7, 1, 2, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO runs VALUES ('r2', NULL, NULL, 'chain', 'chain.yaml', 'SOURCE', '{}', 'failed', 0, 1, 5, '{"node":"c","kind":"node","message":"c failed"}', NULL, NULL, 4242, NULL, '{"project":"p"}');
INSERT INTO checkpoints VALUES ('other', 7, '[]', '{}', NULL, 2);
INSERT INTO checkpoints VALUES ('r2', 0, '["a"]', '{}', '{"x":0}', 1);
INSERT INTO checkpoints VALUES ('r2', 1, '["b"]', '{}', NULL, 2);
INSERT INTO checkpoints VALUES ('r2', 2, '["c"]', '{}', NULL, 3);
INSERT INTO tasks VALUES ('r2', 1, 'a', -1, 'completed', 1, '[["x",1]]', NULL, 2);
INSERT INTO tasks VALUES ('r2', 2, 'b', -1, 'completed', 1, '[["x",2]]', NULL, 3);
INSERT INTO records VALUES ('r2', 'usage', 0, '', -1, 0, '{"calls":0}', 1);
INSERT INTO events VALUES ('other', 0, '{"seq":0,"ts_ms":1,"step":0,"type":"run_started","workflow":"w","input":{}}');
INSERT INTO events VALUES ('r2', 0, '{"seq":0,"ts_ms":1,"step":0,"type":"run_started","workflow":"chain","input":{}}');
INSERT INTO events VALUES ('r2', 1, '{"seq":1,"ts_ms":2,"step":1,"type":"checkpoint_saved","next":["b"]}');
INSERT INTO events VALUES ('r2', 2, '{"seq":2,"ts_ms":3,"step":2,"type":"checkpoint_saved","next":["c"]}');
PRAGMA user_version = 2;
"#;

const CHAIN: &str = "name: chain\nchannels:\n  x: {default: 0}\nnodes:\n  a: {kind: transform, set: {x: \"state.x + 1\"}}\n  b: {kind: transform, set: {x: \"state.x + 1\"}}\n  c: {kind: transform, set: {x: \"state.x + 1\"}}\nedges:\n  - {from: START, to: a}\n  - {from: a, to: b}\n  - {from: b, to: c}\n";

#[tokio::test]
async fn a_store_of_the_second_layout_is_migrated_and_its_runs_resume() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = rusqlite::Connection::open(dir.path().join("runs.db")).unwrap();
        conn.execute_batch(&V2.replace("SOURCE", CHAIN)).unwrap();
    }
    let store = Arc::new(RunStore::open(dir.path()).unwrap());
    let run = store.run("r2").unwrap().unwrap();
    assert_eq!(
        (run.step, run.meta.clone()),
        (2, Some(json!({"project": "p"}))),
        "the step comes from the migrated checkpoints"
    );
    assert_eq!(store.run("other").unwrap().unwrap().step, 7);
    let seqs: Vec<u64> = store
        .events("r2", None)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, vec![0, 1, 2], "a run's own events, in order");
    assert_eq!(store.events("r2", Some(1)).unwrap().len(), 1);
    assert_eq!(store.last_event_seq("r2").unwrap(), Some(2));
    assert_eq!(store.last_event_seq("other").unwrap(), Some(0));
    assert_eq!(
        store.record(RecordScope::Run("r2"), "usage", 0).unwrap(),
        Some(json!({"calls": 0}))
    );
    // The failed run resumes from its migrated checkpoint: `a` and `b` are not run again (their
    // stored writes are replayed), `c` runs once.
    let out = Engine::durable(Host::default(), store.clone())
        .resume("r2", None, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(out.status, ao_core::run::RunStatus::Completed);
    assert_eq!(out.state["x"], json!(3));
    let events = store.events("r2", Some(2)).unwrap();
    assert!(
        events.first().is_some_and(|e| e.seq == 3),
        "numbering goes on"
    );
    // Deleting a run removes its events and checkpoints, not its neighbour's.
    assert_eq!(store.delete_runs(&["r2".to_string()]).unwrap(), 1);
    assert!(store.events("r2", None).unwrap().is_empty());
    assert_eq!(store.events("other", None).unwrap().len(), 1);
    assert_eq!(store.run("other").unwrap().unwrap().step, 7);
    // A new run after the migration gets a number of its own.
    let new = Engine::durable(Host::default(), store.clone())
        .start(
            Arc::new(load_str(CHAIN, "chain.yaml").unwrap()),
            json!({}),
            RunOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(store.run(&new.run_id).unwrap().unwrap().step, 3);
    assert_eq!(store.events("other", None).unwrap().len(), 1);
}

/// The names of this process's threads.
#[cfg(target_os = "linux")]
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_string())
        .collect()
}

/// The log is checkpointed by a thread of the store's own, started by the first run that commits
/// enough, and stopped before the store's connection closes: closing last, that connection folds
/// the log into the database and removes it.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_log_is_checkpointed_in_the_background_and_removed_on_close() {
    const NAME: &str = "ao-store-checkp"; // as the kernel keeps it (15 bytes)
    let before = thread_names().iter().filter(|n| *n == NAME).count();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RunStore::open(dir.path()).unwrap());
    let nodes: String = (0..80)
        .map(|i| format!("  n{i}: {{kind: transform, set: {{x: \"state.x + 1\"}}}}\n"))
        .collect();
    let edges: String = (0..79)
        .map(|i| format!("  - {{from: n{i}, to: n{}}}\n", i + 1))
        .collect();
    let source = format!(
        "name: long\nchannels:\n  x: {{default: 0}}\nnodes:\n{nodes}edges:\n  - {{from: START, to: n0}}\n{edges}"
    );
    let wf = Arc::new(load_str(&source, "long.yaml").unwrap());
    let out = Engine::durable(Host::default(), store.clone())
        .start(wf, json!({}), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(out.state["x"], json!(80));
    // A new thread takes its name once it runs: wait for it (bounded).
    let count_becomes = |n: usize| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let count = thread_names().iter().filter(|t| *t == NAME).count();
            if count == n || std::time::Instant::now() > deadline {
                return count;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    };
    assert_eq!(
        count_becomes(before + 1),
        before + 1,
        "80 commits start the checkpointing thread"
    );
    assert!(dir.path().join("runs.db-wal").exists());
    drop(store);
    assert_eq!(
        count_becomes(before),
        before,
        "the thread stops with the store"
    );
    assert!(
        !dir.path().join("runs.db-wal").exists(),
        "the last connection closed folded the log in"
    );
    // Everything committed is in the database.
    let store = RunStore::open(dir.path()).unwrap();
    assert_eq!(store.run(&out.run_id).unwrap().unwrap().step, 80);
}

/// Writes too long to keep in a task's row are kept apart, once, and read back whole — when a
/// run resumes after an interrupt (the stored writes are replayed) — and deleting the run removes
/// them all.
#[tokio::test]
async fn long_task_writes_are_kept_apart_read_back_and_removed_with_their_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RunStore::open(dir.path()).unwrap());
    let wf = Arc::new(
        load_str(
            "name: big\nchannels:\n  blob: {}\n  small: {}\n  answer: {}\n  n: {}\nnodes:\n  a: {kind: transform, set: {blob: \"'é' * 2000\", small: \"'s'\"}}\n  ask: {kind: interrupt, prompt: \"ok?\", schema: {type: string}, writes: answer}\n  b: {kind: transform, set: {n: \"state.blob | length\"}}\nedges:\n  - {from: START, to: a}\n  - {from: a, to: ask}\n  - {from: ask, to: b}\n",
            "big.yaml",
        )
        .unwrap(),
    );
    let engine = Engine::durable(Host::default(), store.clone());
    let out = engine
        .start(wf.clone(), json!({}), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(out.status, ao_core::run::RunStatus::Interrupted);
    let answer = "y".repeat(3000);
    let out = engine
        .resume(&out.run_id, Some(json!(answer)), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(
        out.status,
        ao_core::run::RunStatus::Completed,
        "{:?}",
        out.error
    );
    assert_eq!(
        out.state["n"],
        json!(2000),
        "the long writes were replayed whole"
    );
    assert_eq!(out.state["answer"], json!(answer));
    assert_eq!(out.state["small"], json!("s"));
    let kept = |store: &RunStore| -> i64 {
        let conn = rusqlite::Connection::open(store.path()).unwrap();
        conn.query_row("SELECT COUNT(*) FROM task_writes", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(kept(&store), 2, "a's writes and the answer, once each");
    // A store opened afresh rebuilds the same state from what it kept.
    let again = RunStore::open(dir.path()).unwrap();
    let tasks = again.completed_tasks(&out.run_id, 1).unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(
        tasks[0]
            .writes
            .iter()
            .find(|(c, _)| c == "blob")
            .map(|(_, v)| v.as_str().map(str::len)),
        Some(Some(4000)),
        "2 000 two-byte characters"
    );
    assert_eq!(
        store
            .delete_runs(std::slice::from_ref(&out.run_id))
            .unwrap(),
        1
    );
    assert_eq!(kept(&store), 0);
}

/// A task that failed and then completed on resume (the workflow fixed in between) is stored
/// again: its long writes replace the failure and are read back whole.
#[tokio::test]
async fn a_failed_task_completed_on_resume_keeps_its_long_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RunStore::open(dir.path()).unwrap());
    let source = |expr: &str| {
        format!(
            "name: fix\nchannels:\n  blob: {{}}\n  n: {{}}\nnodes:\n  a: {{kind: transform, set: {{blob: \"{expr}\"}}}}\n  b: {{kind: transform, set: {{n: \"state.blob | length\"}}}}\nedges:\n  - {{from: START, to: a}}\n  - {{from: a, to: b}}\n"
        )
    };
    let broken = source("1 // 0");
    let engine = Engine::durable(Host::default(), store.clone());
    let out = engine
        .start(
            Arc::new(load_str(&broken, "fix.yaml").unwrap()),
            json!({}),
            RunOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(out.status, ao_core::run::RunStatus::Failed);
    store
        .set_workflow(&out.run_id, &source("'z' * 5000"), "fix.yaml")
        .unwrap();
    let out = engine
        .resume(&out.run_id, None, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(
        out.status,
        ao_core::run::RunStatus::Completed,
        "{:?}",
        out.error
    );
    assert_eq!(out.state["n"], json!(5000));
    let tasks = RunStore::open(dir.path())
        .unwrap()
        .completed_tasks(&out.run_id, 1)
        .unwrap();
    assert_eq!(tasks.len(), 1, "one row for `a`, completed");
    assert_eq!(tasks[0].writes[0].1, json!("z".repeat(5000)));
}

/// A store of a layout newer than this version knows is refused with an error that says so,
/// and is left as it was.
#[test]
fn a_store_of_a_newer_layout_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = rusqlite::Connection::open(dir.path().join("runs.db")).unwrap();
        conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;")
            .unwrap();
    }
    let err = RunStore::open(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("layout 99") && err.contains("newer version of ao"),
        "{err}"
    );
    let conn = rusqlite::Connection::open(dir.path().join("runs.db")).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!((version, mode.as_str()), (99, "delete"), "nothing changed");
}
