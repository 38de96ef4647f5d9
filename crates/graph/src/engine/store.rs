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
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the run store at {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
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
    #[error("corrupt record in the run store ({context}): {detail}")]
    Corrupt {
        context: &'static str,
        detail: String,
    },
}

const SCHEMA_VERSION: i64 = 1;

/// Puts a new database in WAL mode and creates the tables, once; a no-op on an existing store.
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
    let created = conn
        .execute_batch(SCHEMA)
        .and_then(|()| conn.pragma_update(None, "user_version", SCHEMA_VERSION));
    match created {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
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
    pub usage: Option<Value>,
    pub owner_pid: Option<u32>,
    pub cancel_requested: Option<String>,
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

pub struct RunStore {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for RunStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RunStore({})", self.path.display())
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY,
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
  usage TEXT,
  owner_pid INTEGER,
  cancel_requested TEXT
);
CREATE INDEX IF NOT EXISTS runs_parent ON runs(parent_id, parent_task);
CREATE TABLE IF NOT EXISTS tasks (
  run_id TEXT NOT NULL,
  step INTEGER NOT NULL,
  node TEXT NOT NULL,
  idx INTEGER NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  writes TEXT,
  error TEXT,
  finished_ms INTEGER NOT NULL,
  PRIMARY KEY (run_id, step, node, idx)
);
CREATE TABLE IF NOT EXISTS checkpoints (
  run_id TEXT NOT NULL,
  step INTEGER NOT NULL,
  next TEXT NOT NULL,
  joins TEXT NOT NULL,
  snapshot TEXT,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (run_id, step)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS llm_calls (
  run_id TEXT NOT NULL,
  step INTEGER NOT NULL,
  node TEXT NOT NULL,
  idx INTEGER NOT NULL,
  call_no INTEGER NOT NULL,
  request TEXT NOT NULL,
  result TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (run_id, step, node, idx, call_no)
);
CREATE TABLE IF NOT EXISTS exchanges (
  id INTEGER PRIMARY KEY,
  run_id TEXT NOT NULL,
  step INTEGER NOT NULL,
  node TEXT NOT NULL,
  idx INTEGER NOT NULL,
  data TEXT NOT NULL,
  created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS exchanges_run ON exchanges(run_id, id);
CREATE TABLE IF NOT EXISTS tool_calls (
  id INTEGER PRIMARY KEY,
  run_id TEXT NOT NULL,
  step INTEGER NOT NULL,
  node TEXT NOT NULL,
  idx INTEGER NOT NULL,
  data TEXT NOT NULL,
  created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tool_calls_run ON tool_calls(run_id, id);
CREATE TABLE IF NOT EXISTS changesets (
  run_id TEXT PRIMARY KEY,
  data TEXT NOT NULL,
  updated_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS kv (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
  run_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  data TEXT NOT NULL,
  PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
";

/// `None` (no `for_each`) is stored as -1 so the primary key stays simple.
fn idx_to_sql(i: Option<usize>) -> i64 {
    i.map(|i| i as i64).unwrap_or(-1)
}

fn idx_from_sql(i: i64) -> Option<usize> {
    (i >= 0).then_some(i as usize)
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

impl RunStore {
    /// Opens (creating if needed) `<state_dir>/runs.db`.
    pub fn open(state_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(state_dir).map_err(|source| StoreError::CreateDir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let path = state_dir.join("runs.db");
        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(open_err)?;
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
        Ok(RunStore {
            conn: Mutex::new(conn),
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
            Ok(out)
        })
    }

    fn insert_events(tx: &rusqlite::Transaction<'_>, events: &[Event]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut stmt = tx
            .prepare_cached("INSERT INTO events (run_id, seq, data) VALUES (?1, ?2, ?3)")
            .map_err(sql("store events"))?;
        for e in events {
            // The run id is the row's key; keeping it out of the JSON saves a copy per event.
            let mut data = serde_json::to_value(e).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut data {
                m.remove("run_id");
            }
            stmt.execute(params![e.run_id, e.seq as i64, data.to_string()])
                .map_err(sql("store events"))?;
        }
        Ok(())
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
        first: &Checkpoint,
        events: &[Event],
    ) -> Result<(), StoreError> {
        self.write("create run", |tx| {
            let now = now_ms() as i64;
            tx.execute(
                "INSERT INTO runs (id, parent_id, parent_task, workflow, origin, source, input, status, step, created_ms, updated_ms, owner_pid)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'running', 0, ?8, ?8, ?9)",
                params![
                    id,
                    parent.map(|p| p.0),
                    parent.map(|p| p.1),
                    workflow,
                    origin,
                    source,
                    json(input),
                    now,
                    std::process::id()
                ],
            )
            .map_err(sql("create run"))?;
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
        tx.execute(
            "INSERT OR REPLACE INTO checkpoints (run_id, step, next, joins, snapshot, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                run_id,
                cp.step as i64,
                json(&cp.next),
                json(&cp.joins),
                cp.snapshot.as_ref().map(json),
                now_ms() as i64
            ],
        )
        .map_err(sql("store checkpoint"))?;
        tx.execute(
            "UPDATE runs SET step = ?2, updated_ms = ?3 WHERE id = ?1",
            params![run_id, cp.step as i64, now_ms() as i64],
        )
        .map_err(sql("store checkpoint"))?;
        Ok(())
    }

    /// Stores a completed task's writes (called the moment the task completes).
    pub fn task_completed(
        &self,
        run_id: &str,
        step: u64,
        task: &TaskWrites,
        attempts: u32,
        events: &[Event],
    ) -> Result<(), StoreError> {
        self.write("store task", |tx| {
            tx.execute(
                "INSERT OR REPLACE INTO tasks (run_id, step, node, idx, status, attempts, writes, error, finished_ms)
                 VALUES (?1, ?2, ?3, ?4, 'completed', ?5, ?6, NULL, ?7)",
                params![run_id, step as i64, task.node, idx_to_sql(task.index), attempts, json(&task.writes), now_ms() as i64],
            )
            .map_err(sql("store task"))?;
            Self::insert_events(tx, events)?;
            Ok(())
        })
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
        self.write("store task", |tx| {
            tx.execute(
                "INSERT OR REPLACE INTO tasks (run_id, step, node, idx, status, attempts, writes, error, finished_ms)
                 VALUES (?1, ?2, ?3, ?4, 'failed', ?5, NULL, ?6, ?7)",
                params![run_id, step as i64, node, idx_to_sql(index), attempts, error, now_ms() as i64],
            )
            .map_err(sql("store task"))?;
            Self::insert_events(tx, events)?;
            Ok(())
        })
    }

    /// Stores a step boundary.
    pub fn checkpoint(
        &self,
        run_id: &str,
        cp: &Checkpoint,
        events: &[Event],
    ) -> Result<(), StoreError> {
        self.write("store checkpoint", |tx| {
            Self::insert_checkpoint(tx, run_id, cp)?;
            Self::insert_events(tx, events)?;
            Ok(())
        })
    }

    /// Sets a run's status and its final fields.
    pub fn set_status(
        &self,
        run_id: &str,
        status: RunStatus,
        end: &RunEnd,
        events: &[Event],
    ) -> Result<(), StoreError> {
        self.write("update run", |tx| {
            tx.execute(
                "UPDATE runs SET status = ?2, error = ?3, interrupt = ?4, output = ?5, updated_ms = ?6 WHERE id = ?1",
                params![
                    run_id,
                    status.as_str(),
                    end.error.as_ref().map(json),
                    end.interrupt.as_ref().map(json),
                    end.output.as_ref().map(json),
                    now_ms() as i64
                ],
            )
            .map_err(sql("update run"))?;
            Self::insert_events(tx, events)?;
            Ok(())
        })
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

    pub fn set_usage(&self, run_id: &str, usage: &Value) -> Result<(), StoreError> {
        self.with(|conn| {
            conn.execute(
                "UPDATE runs SET usage = ?2 WHERE id = ?1",
                params![run_id, json(usage)],
            )
            .map_err(sql("store usage"))?;
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
            conn.query_row(
                "SELECT cancel_requested FROM runs WHERE id = ?1",
                params![run_id],
                |r| r.get::<_, Option<String>>(0),
            )
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
            usage: r.get(14)?,
            owner_pid: r.get(15)?,
            cancel_requested: r.get(16)?,
        })
    }

    const RUN_COLUMNS: &'static str = "id, parent_id, parent_task, workflow, origin, source, input, status, step, created_ms, updated_ms, error, interrupt, output, usage, owner_pid, cancel_requested";

    pub fn run(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        let raw = self.with(|conn| {
            conn.query_row(
                &format!("SELECT {} FROM runs WHERE id = ?1", Self::RUN_COLUMNS),
                params![id],
                Self::row_to_run,
            )
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
                "SELECT step, node, idx, writes FROM tasks WHERE run_id = ?1 AND step BETWEEN ?2 AND ?3 AND status = 'completed' ORDER BY step, node, idx",
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

    /// The state at the last checkpoint, rebuilt from the latest snapshot and the task writes
    /// after it, and the tasks of the next step that already completed.
    pub fn resume_point(&self, run_id: &str) -> Result<Option<ResumePoint>, StoreError> {
        self.with(|conn| {
            let last = conn
                .query_row(
                    "SELECT step, next, joins FROM checkpoints WHERE run_id = ?1 ORDER BY step DESC LIMIT 1",
                    params![run_id],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)),
                )
                .optional()
                .map_err(sql("read checkpoint"))?;
            let Some((step, next, joins)) = last else { return Ok(None) };
            let step = step as u64;
            let (snap_step, snapshot) = conn
                .query_row(
                    "SELECT step, snapshot FROM checkpoints WHERE run_id = ?1 AND step <= ?2 AND snapshot IS NOT NULL ORDER BY step DESC LIMIT 1",
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
                    "SELECT data FROM events WHERE run_id = ?1 AND seq > ?2 ORDER BY seq",
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
            conn.query_row(
                "SELECT MAX(seq) FROM events WHERE run_id = ?1",
                params![run_id],
                |r| r.get::<_, Option<i64>>(0),
            )
            .map(|v| v.map(|s| s as u64))
            .map_err(sql("read events"))
        })
    }

    /// A model call a task made earlier (`call_no` counts the task's calls from 0), with the
    /// request it was made for.
    pub fn cached_call(
        &self,
        at: &TaskKey<'_>,
        call_no: u32,
    ) -> Result<Option<(String, Value)>, StoreError> {
        self.with(|conn| {
            let row = conn
                .query_row(
                    "SELECT request, result FROM llm_calls WHERE run_id = ?1 AND step = ?2 AND node = ?3 AND idx = ?4 AND call_no = ?5",
                    params![at.run_id, at.step as i64, at.node, idx_to_sql(at.index), call_no],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                )
                .optional()
                .map_err(sql("read model call"))?;
            row.map(|(req, res)| Ok((req, serde_json::from_str(&res).map_err(corrupt("model call"))?)))
                .transpose()
        })
    }

    /// Stores a completed model call (so a resumed run reuses it instead of paying again) and
    /// updates the usage totals (`usage` gets the current value) of the run and of the runs
    /// above it, in one transaction.
    pub fn store_call(
        &self,
        at: &TaskKey<'_>,
        call_no: u32,
        request: &str,
        result: &Value,
        exchanges: &[Value],
        usage: impl Fn(Option<Value>) -> Value,
    ) -> Result<(), StoreError> {
        self.write("store model call", |tx| {
            tx.execute(
                "INSERT OR REPLACE INTO llm_calls (run_id, step, node, idx, call_no, request, result, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![at.run_id, at.step as i64, at.node, idx_to_sql(at.index), call_no, request, json(result), now_ms() as i64],
            )
            .map_err(sql("store model call"))?;
            // The run's totals, and those of every run above it: a parent's usage includes the
            // calls of its sub-runs.
            let mut next = Some(at.run_id.to_string());
            for _ in 0..64 {
                let Some(run) = next.take() else { break };
                let row: Option<(Option<String>, Option<String>)> = tx
                    .query_row("SELECT usage, parent_id FROM runs WHERE id = ?1", params![run], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
                    .map_err(sql("update usage"))?;
                let Some((current, parent)) = row else { break };
                let current = current.map(|c| serde_json::from_str(&c).map_err(corrupt("run usage"))).transpose()?;
                tx.execute("UPDATE runs SET usage = ?2 WHERE id = ?1", params![run, json(&usage(current))])
                    .map_err(sql("update usage"))?;
                next = parent;
            }
            Self::insert_task_records(tx, "exchanges", at, exchanges)?;
            Ok(())
        })
    }

    /// Replaces the stored result of a model call (to add the results of the tools it called).
    pub fn update_call_result(
        &self,
        at: &TaskKey<'_>,
        call_no: u32,
        result: &Value,
    ) -> Result<(), StoreError> {
        self.with(|conn| {
            conn.execute(
                "UPDATE llm_calls SET result = ?6 WHERE run_id = ?1 AND step = ?2 AND node = ?3 AND idx = ?4 AND call_no = ?5",
                params![at.run_id, at.step as i64, at.node, idx_to_sql(at.index), call_no, json(result)],
            )
            .map_err(sql("store tool results"))?;
            Ok(())
        })
    }

    /// Records model exchanges (HTTP attempts), already redacted by the caller.
    pub fn record_exchanges(
        &self,
        at: &TaskKey<'_>,
        exchanges: &[Value],
    ) -> Result<(), StoreError> {
        if exchanges.is_empty() {
            return Ok(());
        }
        self.write("store exchanges", |tx| {
            Self::insert_task_records(tx, "exchanges", at, exchanges)?;
            Ok(())
        })
    }

    fn insert_task_records(
        tx: &rusqlite::Transaction<'_>,
        table: &'static str,
        at: &TaskKey<'_>,
        records: &[Value],
    ) -> Result<(), StoreError> {
        let mut stmt = tx
            .prepare_cached(&format!("INSERT INTO {table} (run_id, step, node, idx, data, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"))
            .map_err(sql("store record"))?;
        for data in records {
            stmt.execute(params![
                at.run_id,
                at.step as i64,
                at.node,
                idx_to_sql(at.index),
                json(data),
                now_ms() as i64
            ])
            .map_err(sql("store record"))?;
        }
        Ok(())
    }

    /// Records one tool call with its policy decision, already redacted by the caller.
    pub fn record_tool_call(&self, at: &TaskKey<'_>, data: &Value) -> Result<(), StoreError> {
        self.write("store tool call", |tx| {
            Self::insert_task_records(tx, "tool_calls", at, std::slice::from_ref(data))
        })
    }

    /// The model exchanges of a run, oldest first, each with its step, node and index.
    pub fn exchanges(&self, run_id: &str) -> Result<Vec<Value>, StoreError> {
        self.task_records("exchanges", run_id)
    }

    /// The tool calls (with policy decisions) of a run, oldest first.
    pub fn tool_calls(&self, run_id: &str) -> Result<Vec<Value>, StoreError> {
        self.task_records("tool_calls", run_id)
    }

    fn task_records(&self, table: &'static str, run_id: &str) -> Result<Vec<Value>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn
                .prepare(&format!("SELECT step, node, idx, data FROM {table} WHERE run_id = ?1 ORDER BY id"))
                .map_err(sql("read records"))?;
            let rows = stmt
                .query_map(params![run_id], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, String>(3)?))
                })
                .map_err(sql("read records"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql("read records"))?;
            rows.into_iter()
                .map(|(step, node, idx, data)| {
                    let data: Value = serde_json::from_str(&data).map_err(corrupt("record"))?;
                    Ok(serde_json::json!({"step": step, "node": node, "index": idx_from_sql(idx), "data": data}))
                })
                .collect()
        })
    }

    /// Replaces the changeset a run proposes (its top-level run's, for sub-runs).
    pub fn put_changeset(&self, run_id: &str, changeset: &Value) -> Result<(), StoreError> {
        self.with(|conn| {
            conn.execute(
                "INSERT OR REPLACE INTO changesets (run_id, data, updated_ms) VALUES (?1, ?2, ?3)",
                params![run_id, json(changeset), now_ms() as i64],
            )
            .map_err(sql("store changeset"))?;
            Ok(())
        })
    }

    pub fn changeset(&self, run_id: &str) -> Result<Option<Value>, StoreError> {
        self.with(|conn| {
            let v: Option<String> = conn
                .query_row(
                    "SELECT data FROM changesets WHERE run_id = ?1",
                    params![run_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql("read changeset"))?;
            v.map(|v| serde_json::from_str(&v).map_err(corrupt("changeset")))
                .transpose()
        })
    }

    /// The top-level run a (sub-)run belongs to.
    pub fn root_run_id(&self, run_id: &str) -> Result<String, StoreError> {
        let mut current = run_id.to_string();
        // Bounded: sub-run chains are as deep as workflow nesting, never cyclic.
        for _ in 0..64 {
            let parent: Option<String> = self.with(|conn| {
                conn.query_row(
                    "SELECT parent_id FROM runs WHERE id = ?1",
                    params![current],
                    |r| r.get(0),
                )
                .optional()
                .map(Option::flatten)
                .map_err(sql("read run"))
            })?;
            match parent {
                Some(p) => current = p,
                None => break,
            }
        }
        Ok(current)
    }

    /// A small store-wide setting (e.g. the structured-output modes learned per endpoint).
    pub fn kv_get(&self, key: &str) -> Result<Option<Value>, StoreError> {
        self.with(|conn| {
            let v: Option<String> = conn
                .query_row("SELECT value FROM kv WHERE key = ?1", params![key], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(sql("read setting"))?;
            v.map(|v| serde_json::from_str(&v).map_err(corrupt("setting")))
                .transpose()
        })
    }

    pub fn kv_put(&self, key: &str, value: &Value) -> Result<(), StoreError> {
        self.with(|conn| {
            conn.execute(
                "INSERT OR REPLACE INTO kv (key, value) VALUES (?1, ?2)",
                params![key, json(value)],
            )
            .map_err(sql("store setting"))?;
            Ok(())
        })
    }

    /// Bytes the database occupies once its write-ahead log is folded in (for size checks).
    pub fn compacted_size(&self) -> Result<u64, StoreError> {
        self.with(|conn| {
            conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
                .map_err(sql("checkpoint WAL"))?;
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
    usage: Option<String>,
    owner_pid: Option<u32>,
    cancel_requested: Option<String>,
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
            usage: opt(self.usage, "run usage")?,
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
