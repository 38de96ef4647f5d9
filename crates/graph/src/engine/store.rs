//! The durable run store: one SQLite database (WAL) under the state dir.
//!
//! What is kept, and why it stays linear in the data written:
//! - `runs`: one row per run (the workflow's YAML text, input, status, final fields);
//! - `tasks`: each completed task's writes, stored the moment the task completes;
//! - `checkpoints`: one row per step boundary holding only the next nodes and join progress,
//!   plus, now and then, a snapshot of the whole state. The state at any checkpoint is the
//!   latest snapshot before it with the stored task writes of the steps after it replayed —
//!   so a step costs its writes, not the size of the state;
//! - `events`: the event stream.
//!
//! Several processes may use one store: WAL mode, a busy timeout, and short transactions.

use super::channel::TaskWrites;
use super::error::RunError;
use super::events::{Event, now_ms};
use ao_core::run::RunStatus;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the run store at {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the run store at {path} has layout {found}, written by a newer version of ao; this one reads layout {supported} and older: upgrade ao, or point AO_STATE_DIR at another directory"
    )]
    NewerLayout {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("cannot create the state dir {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Sql {
        context: &'static str,
        source: rusqlite::Error,
    },
    #[error("cannot store {context}: {detail}")]
    Unserializable {
        context: &'static str,
        detail: String,
    },
    #[error("corrupt record in the run store ({context}): {detail}")]
    Corrupt {
        context: &'static str,
        detail: String,
    },
}

/// Version 2 moved the application's records (model calls, exchanges, tool calls, changesets,
/// usage) out of tables of their own into the generic `records` table.
const SCHEMA_VERSION: i64 = 3;

/// Puts a new database in WAL mode and creates the tables, once; migrates an older store; a
/// no-op on a current one.
fn init_schema(conn: &Connection) -> rusqlite::Result<()> {
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        // WAL lets readers and one writer in other processes proceed together.
        conn.pragma_update(None, "journal_mode", "WAL")?;
    }
    // NORMAL is durable against a killed process (only an OS crash can lose the last commits).
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version >= SCHEMA_VERSION {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    // Read again under the write lock: another process may have just done it.
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let created = if version >= SCHEMA_VERSION {
        Ok(())
    } else if version == 1 {
        conn.execute_batch(MIGRATE_1_TO_2)
            .and_then(|()| conn.execute_batch(MIGRATE_2_TO_3))
            .and_then(|()| conn.pragma_update(None, "user_version", SCHEMA_VERSION))
    } else if version == 2 {
        conn.execute_batch(MIGRATE_2_TO_3)
            .and_then(|()| conn.pragma_update(None, "user_version", SCHEMA_VERSION))
    } else {
        conn.execute_batch(SCHEMA)
            .and_then(|()| conn.pragma_update(None, "user_version", SCHEMA_VERSION))
    };
    match created {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// From the first layout: every application table becomes records of one kind; nothing a run
/// recorded is lost. (Structured-output modes learned per endpoint are not kept: they are
/// learned again.)
const MIGRATE_1_TO_2: &str = "
ALTER TABLE runs ADD COLUMN meta TEXT;
CREATE TABLE records (
  run_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  step INTEGER NOT NULL,
  node TEXT NOT NULL,
  idx INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  data TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (run_id, kind, step, node, idx, seq)
);
INSERT INTO records (run_id, kind, step, node, idx, seq, data, created_ms)
  SELECT run_id, 'llm_call', step, node, idx, call_no, json_object('request', request, 'result', json(result)), created_ms
  FROM llm_calls;
INSERT INTO records (run_id, kind, step, node, idx, seq, data, created_ms)
  SELECT run_id, 'exchange', step, node, idx, id, data, created_ms FROM exchanges ORDER BY id;
INSERT INTO records (run_id, kind, step, node, idx, seq, data, created_ms)
  SELECT run_id, 'tool_call', step, node, idx, id, data, created_ms FROM tool_calls ORDER BY id;
INSERT INTO records (run_id, kind, step, node, idx, seq, data, created_ms)
  SELECT run_id, 'changeset', 0, '', -1, 0, data, updated_ms FROM changesets;
INSERT INTO records (run_id, kind, step, node, idx, seq, data, created_ms)
  SELECT id, 'usage', 0, '', -1, 0, usage, updated_ms FROM runs WHERE usage IS NOT NULL;
DROP TABLE llm_calls;
DROP TABLE exchanges;
DROP TABLE tool_calls;
DROP TABLE changesets;
DROP TABLE kv;
";

/// The columns of the layout-3 tables, shared by [`SCHEMA`] and [`MIGRATE_2_TO_3`] so the two
/// cannot drift apart.
macro_rules! runs_table {
    () => {
        "(
  num INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  parent_id TEXT,
  parent_task TEXT,
  workflow TEXT NOT NULL,
  origin TEXT NOT NULL,
  source TEXT NOT NULL,
  input TEXT NOT NULL,
  status TEXT NOT NULL,
  step INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  error TEXT,
  interrupt TEXT,
  output TEXT,
  owner_pid INTEGER,
  cancel_requested TEXT,
  meta TEXT
)"
    };
}
macro_rules! tasks_table {
    () => {
        "(
  run_id TEXT NOT NULL,
  step INTEGER NOT NULL,
  node TEXT NOT NULL,
  idx INTEGER NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  writes TEXT,
  spill INTEGER,
  error TEXT,
  finished_ms INTEGER NOT NULL,
  PRIMARY KEY (run_id, step, node, idx)
) WITHOUT ROWID"
    };
}
macro_rules! task_writes_table {
    () => {
        "(
  id INTEGER PRIMARY KEY,
  data TEXT NOT NULL
)"
    };
}
macro_rules! checkpoints_table {
    () => {
        "(
  key INTEGER PRIMARY KEY,
  next TEXT NOT NULL,
  joins TEXT NOT NULL,
  snapshot TEXT,
  created_ms INTEGER NOT NULL
)"
    };
}
macro_rules! events_table {
    () => {
        "(
  key INTEGER PRIMARY KEY,
  data TEXT NOT NULL
)"
    };
}
macro_rules! runs_parent_index {
    () => {
        "ON runs(parent_id, parent_task) WHERE parent_id IS NOT NULL"
    };
}

/// Events and checkpoints become keyed by one integer, the run's number in the high 32 bits and
/// the event's sequence number (the checkpoint's step) in the low ones: SQLite appends to such a
/// table by adding a page when the last one is full, where a composite key made it rebalance
/// three pages every few steps (about 2 more pages written per step of a chain). The run's number
/// is the runs table's integer key (kept by `VACUUM`, unlike a plain rowid), and only sub-runs
/// are indexed by parent. Tasks are kept by their key alone (no second index beside the table,
/// one page less per step); writes longer than [`TASK_WRITES_INLINE`] bytes go to `task_writes`,
/// since in such a table a row past about 1 KB would spill into an overflow page of its own.
const MIGRATE_2_TO_3: &str = concat!(
    "\nCREATE TABLE task_writes ",
    task_writes_table!(),
    ";
INSERT INTO task_writes (id, data)
  SELECT rowid, writes FROM tasks WHERE length(CAST(writes AS BLOB)) > 512;
",
    "CREATE TABLE tasks3 ",
    tasks_table!(),
    ";
INSERT INTO tasks3 (run_id, step, node, idx, status, attempts, writes, spill, error, finished_ms)
  SELECT run_id, step, node, idx, status, attempts,
    CASE WHEN length(CAST(writes AS BLOB)) > 512 THEN NULL ELSE writes END,
    CASE WHEN length(CAST(writes AS BLOB)) > 512 THEN rowid END,
    error, finished_ms
  FROM tasks;
DROP TABLE tasks;
ALTER TABLE tasks3 RENAME TO tasks;
",
    "CREATE TABLE runs3 ",
    runs_table!(),
    ";
INSERT INTO runs3 (num, id, parent_id, parent_task, workflow, origin, source, input, status, step,
    created_ms, updated_ms, error, interrupt, output, owner_pid, cancel_requested, meta)
  SELECT rowid, id, parent_id, parent_task, workflow, origin, source, input, status, step,
    created_ms, updated_ms, error, interrupt, output, owner_pid, cancel_requested, meta
  FROM runs;
DROP INDEX IF EXISTS runs_parent;
DROP TABLE runs;
ALTER TABLE runs3 RENAME TO runs;
",
    "CREATE INDEX runs_parent ",
    runs_parent_index!(),
    ";
CREATE TABLE events3 ",
    events_table!(),
    ";
INSERT INTO events3 (key, data)
  SELECT r.num * 4294967296 + e.seq, e.data FROM events e JOIN runs r ON r.id = e.run_id;
DROP TABLE events;
ALTER TABLE events3 RENAME TO events;
",
    "CREATE TABLE checkpoints3 ",
    checkpoints_table!(),
    ";
INSERT INTO checkpoints3 (key, next, joins, snapshot, created_ms)
  SELECT r.num * 4294967296 + c.step, c.next, c.joins, c.snapshot, c.created_ms
  FROM checkpoints c JOIN runs r ON r.id = c.run_id;
DROP TABLE checkpoints;
ALTER TABLE checkpoints3 RENAME TO checkpoints;
"
);

/// A task's writes up to this many bytes are kept in its row, longer ones in `task_writes`
/// (see [`MIGRATE_2_TO_3`], which has the same number).
const TASK_WRITES_INLINE: usize = 512;

/// The low part of an event's or a checkpoint's key (see [`MIGRATE_2_TO_3`]).
const KEY_SPAN: i64 = 1 << 32;

/// `n` (an event's sequence number, a step) as the low part of a key, if it fits.
fn key_part(n: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(n)
        .ok()
        .filter(|n| *n < KEY_SPAN)
        .ok_or_else(|| StoreError::Corrupt {
            context: what,
            detail: format!("{n} is beyond what the store numbers ({})", KEY_SPAN - 1),
        })
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn sql(context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sql { context, source }
}

fn corrupt(context: &'static str) -> impl FnOnce(serde_json::Error) -> StoreError {
    move |e| StoreError::Corrupt {
        context,
        detail: e.to_string(),
    }
}

/// Progress of each join: edge index → the sources completed since its target last ran.
pub type JoinProgress = BTreeMap<usize, BTreeSet<String>>;

/// A step boundary.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Checkpoint {
    /// The step that just ended (0: before the first step).
    pub step: u64,
    /// The nodes the next step runs, sorted.
    pub next: Vec<String>,
    pub joins: JoinProgress,
    /// The whole state after this step, when a snapshot is taken.
    pub snapshot: Option<BTreeMap<String, Value>>,
}

/// The pending question of an interrupted run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InterruptInfo {
    pub node: String,
    pub prompt: String,
    pub schema: Value,
    /// The step and task that asked (internal: where the answer goes).
    pub step: u64,
    pub index: Option<usize>,
    /// Set when the question comes from a sub-run: the answer is given to that run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_run: Option<String>,
}

/// A run as stored.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub id: String,
    pub parent_id: Option<String>,
    pub parent_task: Option<String>,
    pub workflow: String,
    pub origin: String,
    pub source: String,
    pub input: Value,
    pub status: RunStatus,
    /// The last completed step.
    pub step: u64,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub error: Option<RunError>,
    pub interrupt: Option<InterruptInfo>,
    pub output: Option<Value>,
    pub owner_pid: Option<u32>,
    pub cancel_requested: Option<String>,
    /// What the host attached to the run when it started ([`super::scheduler::RunOptions`]'s
    /// `meta`), e.g. the project it belongs to.
    pub meta: Option<Value>,
}

/// Where a run stands for resuming: the state at the last checkpoint and the tasks of the
/// following step that already completed.
#[derive(Debug, Clone)]
pub struct ResumePoint {
    pub checkpoint: Checkpoint,
    /// The latest snapshot at or before the checkpoint.
    pub snapshot: BTreeMap<String, Value>,
    /// Task writes of the steps between the snapshot and the checkpoint, per step, in order:
    /// folding them into the snapshot gives the state at the checkpoint.
    pub replay: Vec<(u64, Vec<TaskWrites>)>,
    /// Tasks of the step after the checkpoint that completed before the run stopped.
    pub completed: Vec<TaskWrites>,
}

/// Which task of which run a record belongs to.
#[derive(Debug, Clone, Copy)]
pub struct TaskKey<'a> {
    pub run_id: &'a str,
    pub step: u64,
    pub node: &'a str,
    pub index: Option<usize>,
}

/// Filters for [`RunStore::list_runs`].
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub status: Option<RunStatus>,
    pub workflow: Option<String>,
    pub limit: Option<usize>,
    /// Include sub-runs (default: top-level runs only).
    pub include_children: bool,
}

/// The final fields of a run, set when its status changes. (The state is not stored here: it
/// is rebuilt from the checkpoints, so it is never stored twice.)
#[derive(Debug, Clone, Default)]
pub struct RunEnd {
    pub error: Option<RunError>,
    pub interrupt: Option<InterruptInfo>,
    pub output: Option<Value>,
}

/// A task's end, kept in memory until the next commit of its run ([`RunStore::commit`]).
#[derive(Debug, Clone)]
pub(crate) struct StagedTask {
    pub step: u64,
    pub node: String,
    pub index: Option<usize>,
    pub attempts: u32,
    /// A completed task's writes as stored (JSON), or a failed task's error.
    pub outcome: Result<String, String>,
    pub finished_ms: u64,
}

impl StagedTask {
    /// A completed task; its writes are serialized now (a value that cannot be fails here).
    pub(crate) fn completed(
        step: u64,
        task: &TaskWrites,
        attempts: u32,
    ) -> Result<Self, StoreError> {
        Ok(StagedTask {
            step,
            node: task.node.clone(),
            index: task.index,
            attempts,
            outcome: Ok(json("task writes", &task.writes)?),
            finished_ms: now_ms(),
        })
    }

    /// A task whose attempts are exhausted.
    pub(crate) fn failed(
        step: u64,
        node: &str,
        index: Option<usize>,
        attempts: u32,
        error: &str,
    ) -> Self {
        StagedTask {
            step,
            node: node.to_string(),
            index,
            attempts,
            outcome: Err(error.to_string()),
            finished_ms: now_ms(),
        }
    }

    /// Bytes this task adds to its commit (roughly).
    pub(crate) fn bytes(&self) -> usize {
        64 + self.node.len()
            + match &self.outcome {
                Ok(s) | Err(s) => s.len(),
            }
    }
}

/// A commit that failed: nothing of it was written. `records`: the host records
/// ([`Commit::records`]) whose writing failed, if that is what failed.
#[derive(Debug)]
pub(crate) struct CommitError {
    pub records: Option<usize>,
    pub error: StoreError,
}

impl From<CommitError> for StoreError {
    fn from(e: CommitError) -> Self {
        e.error
    }
}

/// What one commit of a running run writes ([`RunStore::commit`]).
#[derive(Default, Clone, Copy)]
pub(crate) struct Commit<'a> {
    pub tasks: &'a [StagedTask],
    /// Host records to write with the task ends ([`super::host::TaskRecords`]).
    pub records: &'a [super::host::TaskRecords],
    pub checkpoint: Option<&'a Checkpoint>,
    pub status: Option<(RunStatus, &'a RunEnd)>,
    pub events: &'a [Event],
}

/// How many runs' links [`RunStore`] keeps in memory (a long-lived MCP server starts many).
const LINK_CACHE: usize = 4096;

#[derive(Clone)]
struct RunLink {
    parent_id: Option<String>,
    parent_task: Option<String>,
}

pub struct RunStore {
    /// Declared (so dropped) before the connection: see [`super::wal`].
    checkpointer: super::wal::Checkpointer,
    conn: Mutex<Connection>,
    /// Each run's parent and the task that started it, as read from the store: they never
    /// change once a run exists, and every model call asks for its run's lineage.
    links: Mutex<HashMap<String, RunLink>>,
    path: PathBuf,
}

impl std::fmt::Debug for RunStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RunStore({})", self.path.display())
    }
}

const SCHEMA: &str = concat!(
    "\nCREATE TABLE IF NOT EXISTS runs ",
    runs_table!(),
    ";\nCREATE INDEX IF NOT EXISTS runs_parent ",
    runs_parent_index!(),
    ";\nCREATE TABLE IF NOT EXISTS tasks ",
    tasks_table!(),
    ";\nCREATE TABLE IF NOT EXISTS task_writes ",
    task_writes_table!(),
    ";\nCREATE TABLE IF NOT EXISTS checkpoints ",
    checkpoints_table!(),
    ";
CREATE TABLE IF NOT EXISTS records (
  run_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  step INTEGER NOT NULL,
  node TEXT NOT NULL,
  idx INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  data TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (run_id, kind, step, node, idx, seq)
);
",
    "CREATE TABLE IF NOT EXISTS events ",
    events_table!(),
    ";\n"
);

/// Creates `dir` (and its parents) if needed and makes it `0700`.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if !dir.is_dir() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode != 0o700 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)
}

/// Creates `path` empty with mode `0600` if it does not exist; makes an existing one `0600`.
fn private_file(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
        if mode != 0o600 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// `None` (no `for_each`) is stored as -1 so the primary key stays simple.
fn idx_to_sql(i: Option<usize>) -> i64 {
    i.map(|i| i as i64).unwrap_or(-1)
}

fn idx_from_sql(i: i64) -> Option<usize> {
    (i >= 0).then_some(i as usize)
}

/// A value as stored: never a stand-in (`null`) for a value that cannot be written.
fn json<T: Serialize>(context: &'static str, v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Unserializable {
        context,
        detail: e.to_string(),
    })
}

impl RunStore {
    /// Opens (creating if needed) `<state_dir>/runs.db`.
    ///
    /// The store holds prompts, model replies and file contents, so it is private to its
    /// owner: the state dir is made `0700` and the database `0600` (SQLite gives its `-wal`
    /// and `-shm` files the database's mode).
    pub fn open(state_dir: &Path) -> Result<Self, StoreError> {
        let dir_err = |source| StoreError::CreateDir {
            path: state_dir.to_path_buf(),
            source,
        };
        private_dir(state_dir).map_err(dir_err)?;
        let path = state_dir.join("runs.db");
        private_file(&path).map_err(dir_err)?;
        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(open_err)?;
        // Every statement on a run's path is prepared once per connection: parsing and planning
        // SQL cost more than running it (rusqlite keeps 16 by default; the store has more).
        conn.set_prepared_statement_cache_capacity(64);
        // A layout this version does not know is refused before anything is read or written
        // (older versions accepted it and then failed on every query).
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(open_err)?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::NewerLayout {
                path,
                found,
                supported: SCHEMA_VERSION,
            });
        }
        // Another process may be creating the same store right now: switching to WAL and
        // creating the schema take locks the busy handler does not always wait for, so retry.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match init_schema(&conn) {
                Ok(()) => break,
                Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20 + fastrand::u64(0..30)));
                }
                Err(e) => return Err(open_err(e)),
            }
        }
        // The log is checkpointed in the background (see [`super::wal`]); this connection still
        // does it at SQLite's usual threshold, finding most of it done.
        conn.pragma_update(None, "wal_autocheckpoint", super::wal::FALLBACK_PAGES)
            .map_err(open_err)?;
        Ok(RunStore {
            checkpointer: super::wal::Checkpointer::new(path.clone()),
            conn: Mutex::new(conn),
            links: Mutex::default(),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // A panic while holding the lock cannot leave a half-written transaction (rusqlite
        // rolls back on drop), so a poisoned lock is still safe to use.
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn)
    }

    /// Runs `f` in one write (immediate) transaction and commits it: every change a call makes
    /// lands together or not at all.
    fn write<T>(
        &self,
        context: &'static str,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with(|conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sql(context))?;
            let out = f(&tx)?;
            tx.commit().map_err(sql(context))?;
            self.checkpointer.committed();
            Ok(out)
        })
    }

    fn insert_events(tx: &rusqlite::Transaction<'_>, events: &[Event]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        /// An event as stored: the run id is the row's key, so the JSON does not repeat it.
        #[derive(Serialize)]
        struct Stored<'a> {
            seq: u64,
            ts_ms: u64,
            step: u64,
            #[serde(flatten)]
            kind: &'a super::events::EventKind,
        }
        // One row per statement, its key computed here: an `INSERT … SELECT` may write several
        // rows, so SQLite copied every page it touched to a statement journal first.
        let mut stmt = tx
            .prepare_cached("INSERT INTO events (key, data) VALUES (?1, ?2)")
            .map_err(sql("store events"))?;
        let mut run: Option<(&str, i64)> = None;
        for e in events {
            let base = match run {
                Some((id, base)) if id == e.run_id => base,
                _ => {
                    let base = Self::key_base(tx, &e.run_id, "store events")?;
                    run = Some((&e.run_id, base));
                    base
                }
            };
            let data = json(
                "event",
                &Stored {
                    seq: e.seq,
                    ts_ms: e.ts_ms,
                    step: e.step,
                    kind: &e.kind,
                },
            )?;
            let seq = key_part(e.seq, "event number")?;
            stmt.execute(params![base + seq, data])
                .map_err(sql("store events"))?;
        }
        Ok(())
    }

    /// The high half of the keys of `run_id`'s events and checkpoints (see [`MIGRATE_2_TO_3`]).
    fn key_base(
        tx: &rusqlite::Transaction<'_>,
        run_id: &str,
        context: &'static str,
    ) -> Result<i64, StoreError> {
        let num: Option<i64> = tx
            .prepare_cached("SELECT num FROM runs WHERE id = ?1")
            .and_then(|mut stmt| stmt.query_row(params![run_id], |r| r.get(0)))
            .optional()
            .map_err(sql(context))?;
        match num {
            Some(num) if (0..1 << 31).contains(&num) => Ok(num * KEY_SPAN),
            Some(num) => Err(StoreError::Corrupt {
                context,
                detail: format!("run {run_id} has the number {num}, beyond what keys hold"),
            }),
            None => Err(StoreError::Corrupt {
                context,
                detail: format!("run {run_id} is not in the store"),
            }),
        }
    }

    fn touch(tx: &rusqlite::Transaction<'_>, run_id: &str) -> Result<(), StoreError> {
        tx.execute(
            "UPDATE runs SET updated_ms = ?2 WHERE id = ?1",
            params![run_id, now_ms() as i64],
        )
        .map_err(sql("update run"))?;
        Ok(())
    }

    /// Records a new run with its first checkpoint (step 0).
    #[allow(clippy::too_many_arguments)]
    pub fn create_run(
        &self,
        id: &str,
        parent: Option<(&str, &str)>,
        workflow: &str,
        origin: &str,
        source: &str,
        input: &Value,
        meta: Option<&Value>,
        first: &Checkpoint,
        events: &[Event],
    ) -> Result<(), StoreError> {
        let input = json("run input", input)?;
        let meta = meta.map(|m| json("run meta", m)).transpose()?;
        self.write("create run", |tx| {
            let now = now_ms() as i64;
            tx.prepare_cached(
                "INSERT INTO runs (id, parent_id, parent_task, workflow, origin, source, input, status, step, created_ms, updated_ms, owner_pid, meta)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'running', 0, ?8, ?8, ?9, ?10)",
            )
            .and_then(|mut stmt| stmt.execute(
                params![
                    id,
                    parent.map(|p| p.0),
                    parent.map(|p| p.1),
                    workflow,
                    origin,
                    source,
                    input,
                    now,
                    std::process::id(),
                    meta
                ],
            ))
            .map_err(sql("create run"))?;
            // The run's number is the high half of its events' and checkpoints' keys.
            if tx.last_insert_rowid() >= 1 << 31 {
                return Err(StoreError::Corrupt {
                    context: "create run",
                    detail: "the store has numbered 2^31 runs; start a new state dir".into(),
                });
            }
            Self::insert_checkpoint(tx, id, first)?;
            Self::insert_events(tx, events)?;
            Ok(())
        })
    }

    fn insert_checkpoint(
        tx: &rusqlite::Transaction<'_>,
        run_id: &str,
        cp: &Checkpoint,
    ) -> Result<(), StoreError> {
        let snapshot = cp
            .snapshot
            .as_ref()
            .map(|s| json("state snapshot", s))
            .transpose()?;
        let next = json("checkpoint", &cp.next)?;
        let joins = json("checkpoint", &cp.joins)?;
        let key = Self::key_base(tx, run_id, "store checkpoint")? + key_part(cp.step, "step")?;
        tx.prepare_cached(
            "INSERT OR REPLACE INTO checkpoints (key, next, joins, snapshot, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut stmt| stmt.execute(params![key, next, joins, snapshot, now_ms() as i64]))
        .map_err(sql("store checkpoint"))?;
        Ok(())
    }

    fn insert_tasks(
        tx: &rusqlite::Transaction<'_>,
        run_id: &str,
        tasks: &[StagedTask],
    ) -> Result<(), StoreError> {
        if tasks.is_empty() {
            return Ok(());
        }
        for t in tasks {
            let (status, writes, error) = match &t.outcome {
                Ok(writes) => ("completed", Some(writes.as_str()), None),
                Err(error) => ("failed", None, Some(error.as_str())),
            };
            let (writes, spill) = match writes {
                Some(w) if w.len() > TASK_WRITES_INLINE => {
                    tx.prepare_cached("INSERT INTO task_writes (data) VALUES (?1)")
                        .and_then(|mut stmt| stmt.execute(params![w]))
                        .map_err(sql("store task"))?;
                    (None, Some(tx.last_insert_rowid()))
                }
                other => (other, None),
            };
            let (step, idx, finished) = (t.step as i64, idx_to_sql(t.index), t.finished_ms as i64);
            // The key first (?1–?4), then the rest, for each statement below.
            let row: [&dyn rusqlite::ToSql; 10] = [
                &run_id,
                &step,
                &t.node,
                &idx,
                &status,
                &t.attempts,
                &writes,
                &spill,
                &error,
                &finished,
            ];
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO tasks (run_id, step, node, idx, status, attempts, writes, spill, error, finished_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                     ON CONFLICT (run_id, step, node, idx) DO NOTHING",
                )
                .and_then(|mut stmt| stmt.execute(&row[..]))
                .map_err(sql("store task"))?;
            if inserted == 1 {
                continue;
            }
            // A task stored again (its interrupt answered, a failure retried on resume): its row
            // is replaced, and the writes it kept apart go with it.
            let old: Option<i64> = tx
                .prepare_cached(
                    "SELECT spill FROM tasks WHERE run_id = ?1 AND step = ?2 AND node = ?3 AND idx = ?4",
                )
                .and_then(|mut stmt| stmt.query_row(&row[..4], |r| r.get(0)))
                .map_err(sql("store task"))?;
            if let Some(id) = old {
                tx.prepare_cached("DELETE FROM task_writes WHERE id = ?1")
                    .and_then(|mut stmt| stmt.execute(params![id]))
                    .map_err(sql("store task"))?;
            }
            tx.prepare_cached(
                "UPDATE tasks SET status = ?5, attempts = ?6, writes = ?7, spill = ?8, error = ?9, finished_ms = ?10
                 WHERE run_id = ?1 AND step = ?2 AND node = ?3 AND idx = ?4",
            )
            .and_then(|mut stmt| stmt.execute(&row[..]))
            .map_err(sql("store task"))?;
        }
        Ok(())
    }

    /// Writes one commit of a running run in one transaction: task ends, the step boundary, the
    /// run's new status and the events, together or not at all. The run's row is updated
    /// once, whatever the commit holds.
    pub(crate) fn commit(&self, run_id: &str, c: &Commit<'_>) -> Result<(), CommitError> {
        let failed_records = std::cell::Cell::new(None);
        self.commit_inner(run_id, c, &failed_records)
            .map_err(|error| CommitError {
                records: failed_records.get(),
                error,
            })
    }

    fn commit_inner(
        &self,
        run_id: &str,
        c: &Commit<'_>,
        failed_records: &std::cell::Cell<Option<usize>>,
    ) -> Result<(), StoreError> {
        let end = match c.status {
            Some((status, end)) => Some((
                status,
                end.error
                    .as_ref()
                    .map(|v| json("run error", v))
                    .transpose()?,
                end.interrupt
                    .as_ref()
                    .map(|v| json("run interrupt", v))
                    .transpose()?,
                end.output
                    .as_ref()
                    .map(|v| json("run output", v))
                    .transpose()?,
            )),
            None => None,
        };
        let context = match (c.status.is_some(), c.checkpoint.is_some()) {
            (true, _) => "update run",
            (false, true) => "store checkpoint",
            (false, false) => "store task",
        };
        self.write(context, |tx| {
            Self::insert_tasks(tx, run_id, c.tasks)?;
            for (i, records) in c.records.iter().enumerate() {
                if let Err(e) = (records.write)(&Records { tx }) {
                    failed_records.set(Some(i));
                    return Err(e);
                }
            }
            if let Some(cp) = c.checkpoint {
                Self::insert_checkpoint(tx, run_id, cp)?;
            }
            let now = now_ms() as i64;
            match (&end, c.checkpoint) {
                (Some((status, error, interrupt, output)), cp) => tx
                    .prepare_cached(
                        "UPDATE runs SET status = ?2, error = ?3, interrupt = ?4, output = ?5, updated_ms = ?6, step = COALESCE(?7, step) WHERE id = ?1",
                    )
                    .and_then(|mut stmt| {
                        stmt.execute(params![
                            run_id,
                            status.as_str(),
                            error,
                            interrupt,
                            output,
                            now,
                            cp.map(|cp| cp.step as i64)
                        ])
                    })
                    .map_err(sql("update run"))?,
                // A checkpoint alone leaves the run's row as it is (one page less per step):
                // its step and update time are read from the latest checkpoint
                // ([`Self::RUN_COLUMNS`]).
                (None, _) => 0,
            };
            Self::insert_events(tx, c.events)?;
            Ok(())
        })
    }

    /// Stores a completed task's writes.
    pub fn task_completed(
        &self,
        run_id: &str,
        step: u64,
        task: &TaskWrites,
        attempts: u32,
        events: &[Event],
    ) -> Result<(), StoreError> {
        let staged = [StagedTask::completed(step, task, attempts)?];
        Ok(self.commit(
            run_id,
            &Commit {
                tasks: &staged,
                events,
                ..Commit::default()
            },
        )?)
    }

    /// Records a task whose attempts are exhausted.
    #[allow(clippy::too_many_arguments)]
    pub fn task_failed(
        &self,
        run_id: &str,
        step: u64,
        node: &str,
        index: Option<usize>,
        attempts: u32,
        error: &str,
        events: &[Event],
    ) -> Result<(), StoreError> {
        let staged = [StagedTask::failed(step, node, index, attempts, error)];
        Ok(self.commit(
            run_id,
            &Commit {
                tasks: &staged,
                events,
                ..Commit::default()
            },
        )?)
    }

    /// Stores a step boundary.
    pub fn checkpoint(
        &self,
        run_id: &str,
        cp: &Checkpoint,
        events: &[Event],
    ) -> Result<(), StoreError> {
        Ok(self.commit(
            run_id,
            &Commit {
                checkpoint: Some(cp),
                events,
                ..Commit::default()
            },
        )?)
    }

    /// Sets a run's status and its final fields.
    pub fn set_status(
        &self,
        run_id: &str,
        status: RunStatus,
        end: &RunEnd,
        events: &[Event],
    ) -> Result<(), StoreError> {
        Ok(self.commit(
            run_id,
            &Commit {
                status: Some((status, end)),
                events,
                ..Commit::default()
            },
        )?)
    }

    /// Takes a stopped run over for this process, if it is still as the caller read it
    /// (`status`, `owner_pid`): a compare-and-set, so two processes resuming the same run
    /// cannot both proceed. Returns whether this process got it.
    pub fn claim(
        &self,
        run_id: &str,
        status: RunStatus,
        owner_pid: Option<u32>,
        events: &[Event],
    ) -> Result<bool, StoreError> {
        self.write("claim run", |tx| {
            let changed = tx
                .execute(
                    "UPDATE runs SET status = 'running', owner_pid = ?2, error = NULL, interrupt = NULL, updated_ms = ?3
                     WHERE id = ?1 AND status = ?4 AND owner_pid IS ?5",
                    params![run_id, std::process::id(), now_ms() as i64, status.as_str(), owner_pid],
                )
                .map_err(sql("claim run"))?;
            if changed != 1 {
                return Ok(false);
            }
            Self::insert_events(tx, events)?;
            Ok(true)
        })
    }

    pub fn append_events(&self, events: &[Event]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        self.write("store events", |tx| {
            Self::insert_events(tx, events)?;
            if let Some(e) = events.first() {
                Self::touch(tx, &e.run_id)?;
            }
            Ok(())
        })
    }

    /// Asks the process running `run_id` to stop at its next safe point.
    pub fn request_cancel(&self, run_id: &str, by: &str) -> Result<(), StoreError> {
        self.with(|conn| {
            conn.execute(
                "UPDATE runs SET cancel_requested = ?2 WHERE id = ?1",
                params![run_id, by],
            )
            .map_err(sql("request cancel"))?;
            Ok(())
        })
    }

    pub fn cancel_requested(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        self.with(|conn| {
            conn.prepare_cached("SELECT cancel_requested FROM runs WHERE id = ?1")
                .and_then(|mut stmt| {
                    stmt.query_row(params![run_id], |r| r.get::<_, Option<String>>(0))
                })
                .optional()
                .map(Option::flatten)
                .map_err(sql("read cancel request"))
        })
    }

    fn row_to_run(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRun> {
        Ok(RawRun {
            id: r.get(0)?,
            parent_id: r.get(1)?,
            parent_task: r.get(2)?,
            workflow: r.get(3)?,
            origin: r.get(4)?,
            source: r.get(5)?,
            input: r.get(6)?,
            status: r.get(7)?,
            step: r.get(8)?,
            created_ms: r.get(9)?,
            updated_ms: r.get(10)?,
            error: r.get(11)?,
            interrupt: r.get(12)?,
            output: r.get(13)?,
            owner_pid: r.get(14)?,
            cancel_requested: r.get(15)?,
            meta: r.get(16)?,
        })
    }

    /// A run's columns; its step and update time are the latest of its row's and its last
    /// checkpoint's (a step's commit does not touch the run's row).
    const RUN_COLUMNS: &'static str = "id, parent_id, parent_task, workflow, origin, source, input, status,
        MAX(step, COALESCE((SELECT c.key - runs.num * 4294967296 FROM checkpoints c WHERE c.key >= runs.num * 4294967296 AND c.key < (runs.num + 1) * 4294967296 ORDER BY c.key DESC LIMIT 1), 0)),
        created_ms,
        MAX(updated_ms, COALESCE((SELECT c.created_ms FROM checkpoints c WHERE c.key >= runs.num * 4294967296 AND c.key < (runs.num + 1) * 4294967296 ORDER BY c.key DESC LIMIT 1), 0)),
        error, interrupt, output, owner_pid, cancel_requested, meta";

    pub fn run(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        let raw = self.with(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {} FROM runs WHERE id = ?1",
                Self::RUN_COLUMNS
            ))
            .and_then(|mut stmt| stmt.query_row(params![id], Self::row_to_run))
            .optional()
            .map_err(sql("read run"))
        })?;
        raw.map(RawRun::decode).transpose()
    }

    /// The sub-run a task of `parent_id` started, if any.
    pub fn child_run(
        &self,
        parent_id: &str,
        parent_task: &str,
    ) -> Result<Option<RunRecord>, StoreError> {
        let raw = self.with(|conn| {
            conn.query_row(
                &format!("SELECT {} FROM runs WHERE parent_id = ?1 AND parent_task = ?2 ORDER BY id DESC LIMIT 1", Self::RUN_COLUMNS),
                params![parent_id, parent_task],
                Self::row_to_run,
            )
            .optional()
            .map_err(sql("read run"))
        })?;
        raw.map(RawRun::decode).transpose()
    }

    /// The sub-runs a run started, oldest first.
    pub fn child_runs(&self, parent_id: &str) -> Result<Vec<RunRecord>, StoreError> {
        let raws = self.with(|conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {} FROM runs WHERE parent_id = ?1 ORDER BY id",
                    Self::RUN_COLUMNS
                ))
                .map_err(sql("list sub-runs"))?;
            let rows = stmt
                .query_map(params![parent_id], Self::row_to_run)
                .map_err(sql("list sub-runs"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql("list sub-runs"))?;
            Ok(rows)
        })?;
        raws.into_iter().map(RawRun::decode).collect()
    }

    /// Runs, newest first.
    pub fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        let raws = self.with(|conn| {
            let mut q = format!("SELECT {} FROM runs WHERE 1=1", Self::RUN_COLUMNS);
            let mut args: Vec<String> = Vec::new();
            if !filter.include_children {
                q.push_str(" AND parent_id IS NULL");
            }
            if let Some(s) = filter.status {
                args.push(s.as_str().to_string());
                q.push_str(&format!(" AND status = ?{}", args.len()));
            }
            if let Some(w) = &filter.workflow {
                args.push(w.clone());
                q.push_str(&format!(" AND workflow = ?{}", args.len()));
            }
            q.push_str(" ORDER BY id DESC");
            if let Some(limit) = filter.limit {
                q.push_str(&format!(" LIMIT {limit}"));
            }
            let mut stmt = conn.prepare(&q).map_err(sql("list runs"))?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(args.iter()), Self::row_to_run)
                .map_err(sql("list runs"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql("list runs"))?;
            Ok(rows)
        })?;
        raws.into_iter().map(RawRun::decode).collect()
    }

    /// Completed tasks of one step, in write order (node, index).
    pub fn completed_tasks(&self, run_id: &str, step: u64) -> Result<Vec<TaskWrites>, StoreError> {
        self.with(|conn| {
            Ok(Self::completed_tasks_in(conn, run_id, step..=step)?
                .into_iter()
                .map(|(_, t)| t)
                .collect())
        })
    }

    fn completed_tasks_in(
        conn: &Connection,
        run_id: &str,
        steps: std::ops::RangeInclusive<u64>,
    ) -> Result<Vec<(u64, TaskWrites)>, StoreError> {
        let mut stmt = conn
            .prepare_cached(
                "SELECT t.step, t.node, t.idx, COALESCE(t.writes, w.data)
                 FROM tasks t LEFT JOIN task_writes w ON w.id = t.spill
                 WHERE t.run_id = ?1 AND t.step BETWEEN ?2 AND ?3 AND t.status = 'completed'
                 ORDER BY t.step, t.node, t.idx",
            )
            .map_err(sql("read tasks"))?;
        let rows = stmt
            .query_map(
                params![run_id, *steps.start() as i64, *steps.end() as i64],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                },
            )
            .map_err(sql("read tasks"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql("read tasks"))?;
        rows.into_iter()
            .map(|(step, node, idx, writes)| {
                Ok((
                    step as u64,
                    TaskWrites {
                        node,
                        index: idx_from_sql(idx),
                        writes: serde_json::from_str(&writes).map_err(corrupt("task writes"))?,
                    },
                ))
            })
            .collect()
    }

    /// Every node that completed a task in a run, with the channels its tasks wrote.
    pub fn written_channels(
        &self,
        run_id: &str,
    ) -> Result<BTreeMap<String, BTreeSet<String>>, StoreError> {
        self.with(|conn| {
            let tasks = Self::completed_tasks_in(conn, run_id, 0..=u64::MAX >> 1)?;
            let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (_, task) in tasks {
                let channels = out.entry(task.node).or_default();
                channels.extend(task.writes.into_iter().map(|(c, _)| c));
            }
            Ok(out)
        })
    }

    /// What the host keeps with a run ([`RunRecord::meta`]) alone; `None` when the run has
    /// none or does not exist.
    pub fn meta(&self, run_id: &str) -> Result<Option<Value>, StoreError> {
        let raw: Option<String> = self.with(|conn| {
            conn.prepare_cached("SELECT meta FROM runs WHERE id = ?1")
                .and_then(|mut stmt| stmt.query_row(params![run_id], |r| r.get(0)))
                .optional()
                .map(Option::flatten)
                .map_err(sql("read run"))
        })?;
        raw.map(|m| serde_json::from_str(&m).map_err(corrupt("run meta")))
            .transpose()
    }

    /// Replaces what the host keeps with a run ([`RunRecord::meta`]), e.g. a budget raised on
    /// resume.
    pub fn set_meta(&self, run_id: &str, meta: &Value) -> Result<(), StoreError> {
        let meta = json("run meta", meta)?;
        self.write("update run", |tx| {
            tx.execute(
                "UPDATE runs SET meta = ?2 WHERE id = ?1",
                params![run_id, meta],
            )
            .map_err(sql("update run"))?;
            Ok(())
        })
    }

    /// Replaces the workflow a run continues with (`ao runs resume --reload`).
    pub fn set_workflow(&self, run_id: &str, source: &str, origin: &str) -> Result<(), StoreError> {
        self.write("update run", |tx| {
            tx.execute(
                "UPDATE runs SET source = ?2, origin = ?3, updated_ms = ?4 WHERE id = ?1",
                params![run_id, source, origin, now_ms() as i64],
            )
            .map_err(sql("update run"))?;
            Ok(())
        })
    }

    /// The state at the last checkpoint, rebuilt from the latest snapshot and the task writes
    /// after it, and the tasks of the next step that already completed.
    pub fn resume_point(&self, run_id: &str) -> Result<Option<ResumePoint>, StoreError> {
        self.with(|conn| {
            let last = conn
                .query_row(
                    "SELECT c.key - r.num * 4294967296, c.next, c.joins FROM runs r, checkpoints c
                     WHERE r.id = ?1 AND c.key >= r.num * 4294967296 AND c.key < (r.num + 1) * 4294967296
                     ORDER BY c.key DESC LIMIT 1",
                    params![run_id],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)),
                )
                .optional()
                .map_err(sql("read checkpoint"))?;
            let Some((step, next, joins)) = last else { return Ok(None) };
            let step = step as u64;
            let (snap_step, snapshot) = conn
                .query_row(
                    "SELECT c.key - r.num * 4294967296, c.snapshot FROM runs r, checkpoints c
                     WHERE r.id = ?1 AND c.key >= r.num * 4294967296 AND c.key <= r.num * 4294967296 + ?2
                       AND c.snapshot IS NOT NULL
                     ORDER BY c.key DESC LIMIT 1",
                    params![run_id, step as i64],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
                )
                .map_err(sql("read snapshot"))?;
            let state: BTreeMap<String, Value> = serde_json::from_str(&snapshot).map_err(corrupt("snapshot"))?;
            let mut replay: Vec<(u64, Vec<TaskWrites>)> = Vec::new();
            if (snap_step as u64) < step {
                for (task_step, task) in Self::completed_tasks_in(conn, run_id, (snap_step as u64 + 1)..=step)? {
                    match replay.last_mut() {
                        Some((s, tasks)) if *s == task_step => tasks.push(task),
                        _ => replay.push((task_step, vec![task])),
                    }
                }
            }
            let completed = Self::completed_tasks_in(conn, run_id, (step + 1)..=(step + 1))?
                .into_iter()
                .map(|(_, t)| t)
                .collect();
            Ok(Some(ResumePoint {
                checkpoint: Checkpoint {
                    step,
                    next: serde_json::from_str(&next).map_err(corrupt("checkpoint"))?,
                    joins: serde_json::from_str(&joins).map_err(corrupt("checkpoint"))?,
                    snapshot: None,
                },
                snapshot: state,
                replay,
                completed,
            }))
        })
    }

    /// Events of a run after `after_seq`, in order.
    pub fn events(&self, run_id: &str, after_seq: Option<u64>) -> Result<Vec<Event>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT e.data FROM runs r, events e
                     WHERE r.id = ?1 AND e.key > r.num * 4294967296 + ?2 AND e.key < (r.num + 1) * 4294967296
                     ORDER BY e.key",
                )
                .map_err(sql("read events"))?;
            let after = after_seq.map(|s| s as i64).unwrap_or(-1);
            let rows = stmt
                .query_map(params![run_id, after], |r| r.get::<_, String>(0))
                .map_err(sql("read events"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql("read events"))?;
            rows.iter()
                .map(|d| {
                    let mut v: Value = serde_json::from_str(d).map_err(corrupt("event"))?;
                    if let Value::Object(m) = &mut v {
                        m.insert("run_id".into(), Value::String(run_id.to_string()));
                    }
                    serde_json::from_value(v).map_err(corrupt("event"))
                })
                .collect()
        })
    }

    /// The highest event sequence number of a run (to continue numbering on resume).
    pub fn last_event_seq(&self, run_id: &str) -> Result<Option<u64>, StoreError> {
        self.with(|conn| {
            conn.prepare_cached(
                "SELECT MAX(e.key) - r.num * 4294967296 FROM runs r, events e
                 WHERE r.id = ?1 AND e.key >= r.num * 4294967296 AND e.key < (r.num + 1) * 4294967296",
            )
                .and_then(|mut stmt| {
                    stmt.query_row(params![run_id], |r| r.get::<_, Option<i64>>(0))
                })
                .map(|v| v.map(|s| s as u64))
                .map_err(sql("read events"))
        })
    }

    /// Runs `f` in one write transaction over the generic records: everything it puts lands
    /// together or not at all (and nothing, if `f` fails).
    pub fn write_records<T>(
        &self,
        context: &'static str,
        f: impl FnOnce(&Records<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write(context, |tx| f(&Records { tx }))
    }

    /// One record, if it exists.
    pub fn record(
        &self,
        scope: RecordScope<'_>,
        kind: &str,
        seq: u32,
    ) -> Result<Option<Value>, StoreError> {
        self.with(|conn| Records::get_in(conn, scope, kind, seq))
    }

    /// Every record of one kind a task made, by sequence number.
    pub fn task_records(
        &self,
        task: &TaskKey<'_>,
        kind: &str,
    ) -> Result<Vec<(u32, Value)>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT seq, data FROM records WHERE run_id = ?1 AND kind = ?2 AND step = ?3 AND node = ?4 AND idx = ?5 ORDER BY seq",
                )
                .map_err(sql("read records"))?;
            let rows = stmt
                .query_map(
                    params![task.run_id, kind, task.step as i64, task.node, idx_to_sql(task.index)],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
                )
                .map_err(sql("read records"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql("read records"))?;
            rows.into_iter()
                .map(|(seq, data)| Ok((seq as u32, serde_json::from_str(&data).map_err(corrupt("record"))?)))
                .collect()
        })
    }

    /// Every record of one kind in a run (tasks and run scope), in the order they were first
    /// written.
    pub fn records(&self, run_id: &str, kind: &str) -> Result<Vec<StoredRecord>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT step, node, idx, seq, data FROM records WHERE run_id = ?1 AND kind = ?2 ORDER BY rowid",
                )
                .map_err(sql("read records"))?;
            let rows = stmt
                .query_map(params![run_id, kind], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                })
                .map_err(sql("read records"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql("read records"))?;
            rows.into_iter()
                .map(|(step, node, idx, seq, data)| {
                    Ok(StoredRecord {
                        step: step as u64,
                        node,
                        index: idx_from_sql(idx),
                        seq: seq as u32,
                        data: serde_json::from_str(&data).map_err(corrupt("record"))?,
                    })
                })
                .collect()
        })
    }

    /// The run and the runs above it: `run_id` first, its top-level run last.
    pub fn lineage(&self, run_id: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .lineage_links(run_id)?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    /// [`Self::lineage`] with the task (`parent/node[/index]`) that started each run (`None`
    /// for the top-level run, or a run the store does not hold).
    pub fn lineage_links(&self, run_id: &str) -> Result<Vec<(String, Option<String>)>, StoreError> {
        let mut out = Vec::new();
        let mut current = run_id.to_string();
        // Bounded: sub-run chains are as deep as workflow nesting, never cyclic.
        for _ in 0..64 {
            let link = self.link(&current)?;
            let parent = link.as_ref().and_then(|l| l.parent_id.clone());
            out.push((current, link.and_then(|l| l.parent_task)));
            match parent {
                Some(p) => current = p,
                None => break,
            }
        }
        Ok(out)
    }

    /// A run's parent and starting task, from the cache or the store (`None`: no such run).
    fn link(&self, run_id: &str) -> Result<Option<RunLink>, StoreError> {
        let links = || self.links.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(link) = links().get(run_id) {
            return Ok(Some(link.clone()));
        }
        let link = self.with(|conn| {
            conn.prepare_cached("SELECT parent_id, parent_task FROM runs WHERE id = ?1")
                .and_then(|mut stmt| {
                    stmt.query_row(params![run_id], |r| {
                        Ok(RunLink {
                            parent_id: r.get(0)?,
                            parent_task: r.get(1)?,
                        })
                    })
                })
                .optional()
                .map_err(sql("read run"))
        })?;
        if let Some(link) = &link {
            let mut links = links();
            if links.len() >= LINK_CACHE {
                links.clear();
            }
            links.insert(run_id.to_string(), link.clone());
        }
        Ok(link)
    }

    /// The top-level run a (sub-)run belongs to.
    pub fn root_run_id(&self, run_id: &str) -> Result<String, StoreError> {
        Ok(self
            .lineage(run_id)?
            .pop()
            .unwrap_or_else(|| run_id.to_string()))
    }

    /// Deletes runs and everything kept with them (tasks, checkpoints, events, records), and
    /// their sub-runs, in one transaction. Returns how many runs were deleted.
    pub fn delete_runs(&self, ids: &[String]) -> Result<usize, StoreError> {
        self.links.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.write("delete runs", |tx| {
            let mut queue: Vec<String> = ids.to_vec();
            let mut deleted = 0;
            while let Some(id) = queue.pop() {
                let mut children = tx
                    .prepare_cached("SELECT id FROM runs WHERE parent_id = ?1")
                    .map_err(sql("delete runs"))?;
                let found = children
                    .query_map(params![id], |r| r.get::<_, String>(0))
                    .map_err(sql("delete runs"))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(sql("delete runs"))?;
                queue.extend(found);
                tx.execute(
                    "DELETE FROM task_writes WHERE id IN (SELECT spill FROM tasks WHERE run_id = ?1 AND spill IS NOT NULL)",
                    params![id],
                )
                .map_err(sql("delete runs"))?;
                for table in ["tasks", "records"] {
                    tx.execute(
                        &format!("DELETE FROM {table} WHERE run_id = ?1"),
                        params![id],
                    )
                    .map_err(sql("delete runs"))?;
                }
                for table in ["checkpoints", "events"] {
                    tx.execute(
                        &format!(
                            "DELETE FROM {table} WHERE key >= (SELECT num FROM runs WHERE id = ?1) * 4294967296
                               AND key < (SELECT num FROM runs WHERE id = ?1) * 4294967296 + 4294967296"
                        ),
                        params![id],
                    )
                    .map_err(sql("delete runs"))?;
                }
                deleted += tx
                    .execute("DELETE FROM runs WHERE id = ?1", params![id])
                    .map_err(sql("delete runs"))?;
            }
            Ok(deleted)
        })
    }

    /// Gives the space of deleted rows back to the file system (`VACUUM`), and folds the
    /// write-ahead log in.
    pub fn reclaim_space(&self) -> Result<(), StoreError> {
        self.with(|conn| {
            conn.execute_batch("VACUUM;")
                .map_err(sql("reclaim space"))?;
            Self::truncate_log(conn, "reclaim space")
        })
    }

    /// Folds the write-ahead log into the database and empties it. A checkpoint running in
    /// another connection (this store's background one, another process's) makes SQLite report
    /// "busy" in the result instead of waiting, so it is tried again for a while.
    fn truncate_log(conn: &Connection, context: &'static str) -> Result<(), StoreError> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let busy: i64 = conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
                .map_err(sql(context))?;
            if busy == 0 || std::time::Instant::now() > deadline {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Bytes the database occupies once its write-ahead log is folded in (for size checks).
    pub fn compacted_size(&self) -> Result<u64, StoreError> {
        self.with(|conn| {
            Self::truncate_log(conn, "checkpoint WAL")?;
            let pages: i64 = conn
                .query_row("PRAGMA page_count", [], |r| r.get(0))
                .map_err(sql("page count"))?;
            let free: i64 = conn
                .query_row("PRAGMA freelist_count", [], |r| r.get(0))
                .map_err(sql("page count"))?;
            let size: i64 = conn
                .query_row("PRAGMA page_size", [], |r| r.get(0))
                .map_err(sql("page size"))?;
            Ok(((pages - free) * size) as u64)
        })
    }
}

/// Where a generic record belongs: one task of a run, or the run as a whole.
#[derive(Debug, Clone, Copy)]
pub enum RecordScope<'a> {
    Task(TaskKey<'a>),
    Run(&'a str),
}

impl RecordScope<'_> {
    /// (run, step, node, index) as stored; the run scope is step 0 of the node `""`.
    fn key(&self) -> (&str, i64, &str, i64) {
        match self {
            RecordScope::Task(t) => (t.run_id, t.step as i64, t.node, idx_to_sql(t.index)),
            RecordScope::Run(run_id) => (run_id, 0, "", -1),
        }
    }
}

/// One stored generic record.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    pub step: u64,
    /// The task's node (`""` for a record of the whole run).
    pub node: String,
    pub index: Option<usize>,
    pub seq: u32,
    pub data: Value,
}

/// The generic records inside one write transaction ([`RunStore::write_records`]).
///
/// Plug-ins keep what they must persist here, under a `kind` of their own: the engine does
/// not read these records, it only keeps them with the run.
pub struct Records<'t> {
    tx: &'t rusqlite::Transaction<'t>,
}

impl Records<'_> {
    fn get_in(
        conn: &Connection,
        scope: RecordScope<'_>,
        kind: &str,
        seq: u32,
    ) -> Result<Option<Value>, StoreError> {
        let (run, step, node, idx) = scope.key();
        let data: Option<String> = conn
            .prepare_cached(
                "SELECT data FROM records WHERE run_id = ?1 AND kind = ?2 AND step = ?3 AND node = ?4 AND idx = ?5 AND seq = ?6",
            )
            .and_then(|mut stmt| stmt.query_row(params![run, kind, step, node, idx, seq], |r| r.get(0)))
            .optional()
            .map_err(sql("read record"))?;
        data.map(|d| serde_json::from_str(&d).map_err(corrupt("record")))
            .transpose()
    }

    /// Reads a record in this transaction.
    pub fn get(
        &self,
        scope: RecordScope<'_>,
        kind: &str,
        seq: u32,
    ) -> Result<Option<Value>, StoreError> {
        Self::get_in(self.tx, scope, kind, seq)
    }

    /// Writes (or replaces) record `seq` of `kind`.
    pub fn put(
        &self,
        scope: RecordScope<'_>,
        kind: &str,
        seq: u32,
        data: &Value,
    ) -> Result<(), StoreError> {
        let (run, step, node, idx) = scope.key();
        let data = json("record", data)?;
        // An update keeps the row (and so its place in `records()` order).
        let updated = self
            .tx
            .prepare_cached(
                "UPDATE records SET data = ?7 WHERE run_id = ?1 AND kind = ?2 AND step = ?3 AND node = ?4 AND idx = ?5 AND seq = ?6",
            )
            .and_then(|mut stmt| stmt.execute(params![run, kind, step, node, idx, seq, data]))
            .map_err(sql("store record"))?;
        if updated == 0 {
            self.tx
                .prepare_cached(
                    "INSERT INTO records (run_id, kind, step, node, idx, seq, data, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .and_then(|mut stmt| stmt.execute(params![run, kind, step, node, idx, seq, data, now_ms() as i64]))
                .map_err(sql("store record"))?;
        }
        Ok(())
    }

    /// Adds a record after the last of its kind in that scope; returns its sequence number.
    pub fn append(
        &self,
        scope: RecordScope<'_>,
        kind: &str,
        data: &Value,
    ) -> Result<u32, StoreError> {
        let (run, step, node, idx) = scope.key();
        let next: i64 = self
            .tx
            .prepare_cached(
                "SELECT COALESCE(MAX(seq) + 1, 0) FROM records WHERE run_id = ?1 AND kind = ?2 AND step = ?3 AND node = ?4 AND idx = ?5",
            )
            .and_then(|mut stmt| stmt.query_row(params![run, kind, step, node, idx], |r| r.get(0)))
            .map_err(sql("store record"))?;
        let seq = u32::try_from(next).map_err(|_| StoreError::Unserializable {
            context: "record",
            detail: "too many records in one scope".into(),
        })?;
        self.put(scope, kind, seq, data)?;
        Ok(seq)
    }
}

struct RawRun {
    id: String,
    parent_id: Option<String>,
    parent_task: Option<String>,
    workflow: String,
    origin: String,
    source: String,
    input: String,
    status: String,
    step: i64,
    created_ms: i64,
    updated_ms: i64,
    error: Option<String>,
    interrupt: Option<String>,
    output: Option<String>,
    owner_pid: Option<u32>,
    cancel_requested: Option<String>,
    meta: Option<String>,
}

impl RawRun {
    fn decode(self) -> Result<RunRecord, StoreError> {
        fn opt<T: serde::de::DeserializeOwned>(
            s: Option<String>,
            what: &'static str,
        ) -> Result<Option<T>, StoreError> {
            s.map(|s| serde_json::from_str(&s).map_err(corrupt(what)))
                .transpose()
        }
        Ok(RunRecord {
            status: self.status.parse().map_err(|detail| StoreError::Corrupt {
                context: "run status",
                detail,
            })?,
            input: serde_json::from_str(&self.input).map_err(corrupt("run input"))?,
            error: opt(self.error, "run error")?,
            interrupt: opt(self.interrupt, "run interrupt")?,
            output: opt(self.output, "run output")?,
            meta: opt(self.meta, "run meta")?,
            id: self.id,
            parent_id: self.parent_id,
            parent_task: self.parent_task,
            workflow: self.workflow,
            origin: self.origin,
            source: self.source,
            step: self.step as u64,
            created_ms: self.created_ms as u64,
            updated_ms: self.updated_ms as u64,
            owner_pid: self.owner_pid,
            cancel_requested: self.cancel_requested,
        })
    }
}
