//! The scheduler: runs a workflow in supersteps, persists as it goes, resumes from the store.
//!
//! One step: every triggered node (each `for_each` item a task of its own) runs against the
//! same state snapshot, at most `concurrency` at once. When all tasks are done, the writes are
//! applied in node-name then index order, edges are evaluated on the new state, and the step
//! boundary is checkpointed.
//!
//! Durable runs commit in groups (see "Durability model" in docs/ARCHITECTURE.md): task ends
//! are staged and committed together — at the latest [`BATCH_WINDOW`] after the first of them,
//! or once [`BATCH_MAX_TASKS`] or [`BATCH_MAX_BYTES`] are staged — and the last ones of a step
//! with its checkpoint. An event that reports something stored (`task_finished`,
//! `task_failed`, `checkpoint_saved`, `run_finished`) is written in the transaction that
//! stores it and reaches the event sink only after that commit; the next step starts only
//! after the checkpoint's commit. The last step's checkpoint is committed with the run's end.

use super::cancel::CancelToken;
use super::channel::{State, TaskWrites, check_write, sort_task_writes};
use super::compile::{load_file, load_str};
use super::error::{EngineError, RunError};
use super::events::{Event, EventKind, SharedSink, now_ms};
use super::expr::{Scope, from_json};
use super::graph::{ArgValue, Edge, Node, NodeKind, Output, Role, Target, Workflow};
use super::host::{EventEmitter, Host, LlmRequest, NodeCall, NodeFailure, TaskRecords};
use super::store::{
    Checkpoint, Commit, InterruptInfo, JoinProgress, RunEnd, RunRecord, RunStore, StagedTask,
    StoreError,
};
use ao_core::run::RunStatus;
use futures_util::stream::{FuturesUnordered, StreamExt};
use minijinja::value::Value as JValue;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// The result of starting or resuming a run.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run_id: String,
    pub workflow: String,
    pub status: RunStatus,
    pub state: Value,
    /// The workflow's output (completed runs only).
    pub output: Option<Value>,
    /// Steps completed so far.
    pub steps: u64,
    pub interrupt: Option<InterruptInfo>,
    pub error: Option<RunError>,
}

/// Options of one start or resume.
#[derive(Clone, Default)]
pub struct RunOptions {
    pub cancel: CancelToken,
    /// Use this id for a new run (so a caller can report it before the run ends).
    pub run_id: Option<String>,
    /// Stored with a new run as it is created ([`super::store::RunRecord::meta`]): what the
    /// host needs to know about the run later, e.g. the project it belongs to.
    pub meta: Option<Value>,
    /// On resume: continue with this definition of the run's workflow instead of the one
    /// stored with the run, if it is compatible with what already ran (the completed nodes and
    /// the channels they wrote still exist, with the same kinds and reducers).
    pub reload: Option<Arc<Workflow>>,
}

/// Snapshots are taken when the writes since the last one reach its size (and at least this
/// much), so snapshot bytes stay within a constant factor of the data written.
const SNAPSHOT_MIN_BYTES: usize = 256 * 1024;

/// Task ends are committed together when they come close together: a staged task waits at most
/// this long for others before its commit.
const BATCH_WINDOW: Duration = Duration::from_millis(2);
/// At most this many task ends in one commit…
const BATCH_MAX_TASKS: usize = 512;
/// …and at most about this many bytes of task writes.
const BATCH_MAX_BYTES: usize = 4 << 20;

/// How deep sub-runs may nest (a workflow that calls itself stops here with a clear error).
pub const MAX_SUBRUN_DEPTH: u32 = 16;

/// Runs workflows. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    host: Host,
    store: Option<Arc<RunStore>>,
    sink: Option<SharedSink>,
}

impl Engine {
    /// An engine whose runs live only in memory (no resume).
    pub fn in_memory(host: Host) -> Self {
        Engine {
            host,
            store: None,
            sink: None,
        }
    }

    /// An engine that persists every run in `store`.
    pub fn durable(host: Host, store: Arc<RunStore>) -> Self {
        Engine {
            host,
            store: Some(store),
            sink: None,
        }
    }

    pub fn with_sink(mut self, sink: SharedSink) -> Self {
        self.sink = Some(sink);
        self
    }

    pub fn store(&self) -> Option<&Arc<RunStore>> {
        self.store.as_ref()
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Validates `input` against the workflow's schema, applying its defaults.
    pub fn check_input(wf: &Workflow, input: Value) -> Result<Value, EngineError> {
        let mut input = if input.is_null() {
            Value::Object(Default::default())
        } else {
            input
        };
        if let Some(schema) = &wf.input_schema {
            apply_defaults(&schema.source, &mut input);
            let errors = schema.errors(&input);
            if !errors.is_empty() {
                return Err(EngineError::InvalidInput {
                    workflow: wf.name.clone(),
                    errors,
                });
            }
        }
        Ok(input)
    }

    /// Starts a run and drives it until it completes, fails, is interrupted or cancelled.
    pub async fn start(
        &self,
        wf: Arc<Workflow>,
        input: Value,
        opts: RunOptions,
    ) -> Result<RunOutcome, EngineError> {
        // Secrets never enter the store: a secret's value in the input is replaced before the
        // run begins (commands get secrets from the environment, not from run input).
        let input = match &self.host.redactor {
            Some(r) => r.redact_value(&input),
            None => input,
        };
        let input = Self::check_input(&wf, input)?;
        self.start_checked(wf, input, opts, None, 0).await
    }

    async fn start_checked(
        &self,
        wf: Arc<Workflow>,
        input: Value,
        opts: RunOptions,
        parent: Option<(&str, &str)>,
        depth: u32,
    ) -> Result<RunOutcome, EngineError> {
        let run_id = opts
            .run_id
            .clone()
            .unwrap_or_else(|| ao_core::ids::RunId::new().to_string());
        let state = State::initial(&wf);
        let ctx = RunCtx::new(
            self,
            wf.clone(),
            run_id,
            input.clone(),
            opts.cancel.clone(),
            0,
            depth,
        );
        let mut first = Checkpoint {
            step: 0,
            next: wf.entry.clone(),
            joins: JoinProgress::new(),
            // The base every stored state is rebuilt from (an in-memory run needs none).
            snapshot: self.store.is_some().then(|| state.values().clone()),
        };
        ctx.emit(EventKind::RunStarted {
            workflow: wf.name.clone(),
            input: input.clone(),
        });
        if let Some(store) = &self.store {
            store.create_run(
                &ctx.run_id,
                parent,
                &wf.name,
                &wf.origin,
                &wf.source,
                &input,
                opts.meta.as_ref(),
                &first,
                &ctx.take_events(),
            )?;
            first.snapshot = None;
        }
        let _active = ActiveRun::register(&ctx.run_id);
        ctx.drive(state, first, Vec::new()).await
    }

    /// Continues a stored run: an interrupted one with `answer`, a failed or crashed one from
    /// its last checkpoint. Only tasks that had not completed run again.
    pub async fn resume(
        &self,
        run_id: &str,
        answer: Option<Value>,
        opts: RunOptions,
    ) -> Result<RunOutcome, EngineError> {
        self.resume_inner(run_id, answer, opts, false, 0).await
    }

    fn resume_inner<'a>(
        &'a self,
        run_id: &'a str,
        answer: Option<Value>,
        opts: RunOptions,
        internal: bool,
        depth: u32,
    ) -> super::host::BoxFuture<'a, Result<RunOutcome, EngineError>> {
        Box::pin(async move {
            let store = self
                .store
                .clone()
                .ok_or_else(|| EngineError::NotResumable {
                    run_id: run_id.to_string(),
                    reason: "was not stored (in-memory engine)".into(),
                })?;
            let record = store
                .run(run_id)?
                .ok_or_else(|| EngineError::RunNotFound(run_id.to_string()))?;
            let not = |reason: String| EngineError::NotResumable {
                run_id: run_id.to_string(),
                reason,
            };
            match record.status {
                RunStatus::Completed => {
                    return Err(not("is already completed; nothing to resume".into()));
                }
                RunStatus::Cancelled => {
                    return Err(not(format!(
                        "was cancelled{}; start a new run",
                        record
                            .cancel_requested
                            .map(|b| format!(" by {b}"))
                            .unwrap_or_default()
                    )));
                }
                RunStatus::Running => {
                    if let Some(pid) = record.owner_pid
                        && pid != std::process::id()
                        && process_alive(pid)
                    {
                        return Err(not(format!(
                            "is still running in process {pid}; cancel it first or wait"
                        )));
                    }
                }
                RunStatus::Interrupted if answer.is_none() && !internal => {
                    let node = record
                        .interrupt
                        .as_ref()
                        .map(|i| i.node.clone())
                        .unwrap_or_default();
                    return Err(EngineError::AnswerRequired {
                        run_id: run_id.to_string(),
                        node,
                    });
                }
                RunStatus::Interrupted | RunStatus::Failed => {}
            }
            if answer.is_some() && record.status != RunStatus::Interrupted {
                return Err(not(format!(
                    "is {}, not interrupted; it takes no answer",
                    record.status
                )));
            }

            if active_runs().contains(run_id) {
                return Err(not("is already being run by this process".into()));
            }
            let stored_wf = Arc::new(self.reload(&record.source, &record.origin)?);
            let (state, point) = self.stored_state(&store, &stored_wf, run_id)?;
            // `--reload`: the current definition, when what already ran still fits it.
            let (wf, state) = match opts.reload.clone().filter(|_| depth == 0) {
                Some(new) => {
                    let conflicts = reload_conflicts(&store, &record, &stored_wf, &new, &point)?;
                    if !conflicts.is_empty() {
                        return Err(not(format!(
                            "cannot continue with the current definition of its workflow: {}",
                            conflicts.join("; ")
                        )));
                    }
                    let state = state.adapted_to(&new);
                    (new, state)
                }
                None => (stored_wf.clone(), state),
            };
            let reloaded = !Arc::ptr_eq(&wf, &stored_wf);
            let mut completed = point.completed;

            let seq = store.last_event_seq(run_id)?.map(|s| s + 1).unwrap_or(0);
            let ctx = RunCtx::new(
                self,
                wf.clone(),
                run_id.to_string(),
                record.input.clone(),
                opts.cancel.clone(),
                seq,
                depth,
            );

            let mut answered: Option<TaskWrites> = None;
            if let (Some(answer), Some(interrupt)) = (answer, record.interrupt.as_ref()) {
                if let Some(child) = &interrupt.child_run {
                    // The question came from a sub-run: the answer is that run's.
                    Box::pin(self.resume_inner(
                        child,
                        Some(answer),
                        opts.clone(),
                        false,
                        depth + 1,
                    ))
                    .await?;
                } else {
                    let node = wf.nodes.get(&interrupt.node).ok_or_else(|| {
                        not(format!(
                            "asked at node `{}`, which the workflow no longer has",
                            interrupt.node
                        ))
                    })?;
                    let NodeKind::Interrupt { schema, writes, .. } = &node.kind else {
                        return Err(not(format!(
                            "node `{}` is not an interrupt",
                            interrupt.node
                        )));
                    };
                    let errors = schema.errors(&answer);
                    if !errors.is_empty() {
                        return Err(EngineError::InvalidAnswer {
                            run_id: run_id.to_string(),
                            node: interrupt.node.clone(),
                            errors,
                        });
                    }
                    // Answers are data like any other: a secret in one goes no further.
                    let answer = match &self.host.redactor {
                        Some(r) => r.redact_value(&answer),
                        None => answer,
                    };
                    answered = Some(TaskWrites {
                        node: interrupt.node.clone(),
                        index: interrupt.index,
                        writes: vec![(writes.clone(), answer)],
                    });
                }
            }

            // Events of the resumed run carry the step it continues from.
            ctx.step.store(point.checkpoint.step, Ordering::SeqCst);
            ctx.emit(EventKind::RunResumed {
                workflow: wf.name.clone(),
                from_step: point.checkpoint.step,
            });
            if let Some(task) = &answered {
                for (_, answer) in &task.writes {
                    ctx.emit(EventKind::Answered {
                        node: task.node.clone(),
                        answer: answer.clone(),
                    });
                }
            }
            let _active = ActiveRun::register(run_id)
                .ok_or_else(|| not("is already being run by this process".into()))?;
            if !store.claim(run_id, record.status, record.owner_pid, &ctx.take_events())? {
                return Err(not(
                    "was resumed or changed by another process just now".into()
                ));
            }
            if reloaded {
                // Later resumes (and `runs show`) use the definition the run now follows.
                store.set_workflow(run_id, &wf.source, &wf.origin)?;
            }
            // The answer is stored only once this process owns the run, so two answers to one
            // question can never both be taken.
            if let (Some(task), Some(interrupt)) = (answered, record.interrupt.as_ref()) {
                store.task_completed(run_id, interrupt.step, &task, 1, &[])?;
                completed.retain(|t| !(t.node == task.node && t.index == task.index));
                completed.push(task);
            }
            ctx.drive(state, point.checkpoint, completed).await
        })
    }

    /// The state of a stored run at its last checkpoint: the latest snapshot with the task
    /// writes after it folded in.
    fn stored_state(
        &self,
        store: &RunStore,
        wf: &Workflow,
        run_id: &str,
    ) -> Result<(State, super::store::ResumePoint), EngineError> {
        let not = |reason: String| EngineError::NotResumable {
            run_id: run_id.to_string(),
            reason,
        };
        let mut point = store
            .resume_point(run_id)?
            .ok_or_else(|| not("has no checkpoint".into()))?;
        let mut state = State::from_values(std::mem::take(&mut point.snapshot));
        for (_, tasks) in &mut point.replay {
            sort_task_writes(tasks);
            state
                .apply(wf, tasks)
                .map_err(|e| not(format!("cannot be rebuilt from the store: {e}")))?;
        }
        Ok((state, point))
    }

    /// A stored run as an outcome, its state rebuilt from the store.
    pub fn outcome_of(&self, record: &RunRecord) -> Result<RunOutcome, EngineError> {
        let store = self
            .store
            .clone()
            .ok_or_else(|| EngineError::RunNotFound(record.id.clone()))?;
        let wf = self.reload(&record.source, &record.origin)?;
        let (state, _) = self.stored_state(&store, &wf, &record.id)?;
        let state = state.to_json();
        let output = match (&record.output, record.status) {
            (None, RunStatus::Completed) if wf.output.is_none() => Some(state.clone()),
            (out, _) => out.clone(),
        };
        Ok(RunOutcome {
            run_id: record.id.clone(),
            workflow: record.workflow.clone(),
            status: record.status,
            state,
            output,
            steps: record.step,
            interrupt: record.interrupt.clone(),
            error: record.error.clone(),
        })
    }

    fn reload(&self, source: &str, origin: &str) -> Result<Workflow, EngineError> {
        let mut wf = load_str(source, origin)?;
        let path = Path::new(origin);
        if path.is_file() {
            wf.dir = path.parent().map(Path::to_path_buf);
        }
        Ok(wf)
    }

    /// Runs `wf` as a sub-run of a task, or continues the sub-run that task already started.
    async fn sub_run(
        &self,
        parent: &RunCtx,
        task_key: &str,
        wf: Arc<Workflow>,
        input: Value,
    ) -> Result<RunOutcome, EngineError> {
        let depth = parent.depth + 1;
        let opts = RunOptions {
            cancel: parent.cancel.clone(),
            ..Default::default()
        };
        if let Some(store) = &self.store
            && let Some(child) = store.child_run(&parent.run_id, task_key)?
        {
            return match child.status {
                RunStatus::Completed | RunStatus::Cancelled => self.outcome_of(&child),
                _ => self.resume_inner(&child.id, None, opts, true, depth).await,
            };
        }
        let input = Self::check_input(&wf, input)?;
        Box::pin(self.start_checked(wf, input, opts, Some((&parent.run_id, task_key)), depth)).await
    }
}

/// Why a run cannot continue with `new` in place of the definition it ran with (`old`):
/// every completed node must still exist with the same kind, every channel they wrote with the
/// same reducer, the next step's nodes must exist, a pending join must be the same join, and a
/// pending question must still be an interrupt. Empty when it can.
fn reload_conflicts(
    store: &RunStore,
    record: &RunRecord,
    old: &Workflow,
    new: &Workflow,
    point: &super::store::ResumePoint,
) -> Result<Vec<String>, EngineError> {
    let mut out = Vec::new();
    if new.name != old.name {
        out.push(format!(
            "it now defines workflow `{}`, not `{}`",
            new.name, old.name
        ));
        return Ok(out);
    }
    for (node, channels) in store.written_channels(&record.id)? {
        match (old.nodes.get(&node), new.nodes.get(&node)) {
            (_, None) => out.push(format!(
                "node `{node}` already ran but the workflow no longer has it"
            )),
            (Some(o), Some(n)) if o.kind.name() != n.kind.name() => out.push(format!(
                "node `{node}` already ran as a `{}` node but is now a `{}` node",
                o.kind.name().as_str(),
                n.kind.name().as_str()
            )),
            _ => {}
        }
        for channel in channels {
            match (old.channels.get(&channel), new.channels.get(&channel)) {
                (_, None) => out.push(format!(
                    "channel `{channel}` (written by `{node}`) no longer exists"
                )),
                (Some(o), Some(n)) if o.reducer != n.reducer => out.push(format!(
                    "channel `{channel}` (written by `{node}`) had reducer `{}` and now has `{}`",
                    o.reducer.as_str(),
                    n.reducer.as_str()
                )),
                _ => {}
            }
        }
    }
    for node in &point.checkpoint.next {
        if !new.nodes.contains_key(node) {
            out.push(format!(
                "the next step runs `{node}`, which the workflow no longer has"
            ));
        }
    }
    let join_of = |wf: &Workflow, i: usize| match wf.edges.get(i) {
        Some(Edge::Join { from, to }) => {
            let mut from = from.clone();
            from.sort();
            Some((from, to.label().to_string()))
        }
        _ => None,
    };
    for (&i, waiting) in &point.checkpoint.joins {
        if !waiting.is_empty() && join_of(old, i) != join_of(new, i) {
            out.push(format!("a join it was waiting on (edge {}) changed", i + 1));
        }
    }
    if let Some(pending) = &record.interrupt
        && !matches!(
            new.nodes.get(&pending.node).map(|n| &n.kind),
            Some(NodeKind::Interrupt { .. })
        )
    {
        out.push(format!(
            "it waits at interrupt `{}`, which is no longer an interrupt node",
            pending.node
        ));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The runs this process is driving right now, so one process never drives a run twice
/// (the store's claim guards against other processes).
fn active_runs() -> std::sync::MutexGuard<'static, std::collections::HashSet<String>> {
    static ACTIVE: std::sync::LazyLock<Mutex<std::collections::HashSet<String>>> =
        std::sync::LazyLock::new(Default::default);
    ACTIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether this process is driving `run_id` right now.
pub fn is_active(run_id: &str) -> bool {
    active_runs().contains(run_id)
}

/// Membership in [`active_runs`] for as long as it lives.
struct ActiveRun(String);

impl ActiveRun {
    fn register(run_id: &str) -> Option<ActiveRun> {
        active_runs()
            .insert(run_id.to_string())
            .then(|| ActiveRun(run_id.to_string()))
    }
}

impl Drop for ActiveRun {
    fn drop(&mut self) {
        active_runs().remove(&self.0);
    }
}

/// Whether a process with this id exists (Linux `/proc`; elsewhere assume it does, which only
/// makes `resume` more cautious).
pub fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// Fills in `default`s of the input schema's top-level properties.
fn apply_defaults(schema: &Value, input: &mut Value) {
    let (Some(props), Value::Object(obj)) =
        (schema.get("properties").and_then(Value::as_object), input)
    else {
        return;
    };
    for (key, prop) in props {
        if let Some(default) = prop.get("default") {
            obj.entry(key.clone()).or_insert_with(|| default.clone());
        }
    }
}

/// How one task ended.
enum TaskEnd {
    Done(TaskWrites),
    Interrupted(InterruptInfo),
    Failed(RunError),
}

/// A task to run: a node, and for `for_each` its item.
struct TaskSpec<'w> {
    node: &'w Node,
    item: Option<(Value, usize)>,
}

/// A run's event numbering, and the events not yet in the store.
struct EventLog {
    next_seq: u64,
    unstored: Vec<Event>,
}

/// What the next commit of a durable run writes besides the events emitted so far.
#[derive(Default)]
struct Staged {
    tasks: Vec<StagedTask>,
    /// Host records written with the task ends.
    records: Vec<TaskRecords>,
    /// Bytes of the staged tasks (about).
    bytes: usize,
    /// When the first staged task ended.
    first: Option<Instant>,
    /// Events reporting what this commit stores; numbered when it is made.
    reports: Vec<Event>,
    /// The run's last checkpoint waits for the commit of its end.
    checkpoint_pending: bool,
}

/// The state of one run while it executes.
struct RunCtx {
    engine: Engine,
    wf: Arc<Workflow>,
    run_id: String,
    input_view: JValue,
    cancel: CancelToken,
    step: AtomicU64,
    /// Event numbering and the events not yet written to the store (shared with the
    /// background flusher).
    events: Arc<Mutex<EventLog>>,
    /// What the next commit writes (durable runs).
    staged: Mutex<Staged>,
    /// Why the run fails when a host's records could not be written with their task's end.
    failed_records: Mutex<Option<RunError>>,
    /// Writes (in bytes) since the last snapshot, and that snapshot's size.
    since_snapshot: AtomicU64,
    snapshot_size: AtomicU64,
    record_events: bool,
    /// 0 for a top-level run, 1 for its sub-runs, and so on.
    depth: u32,
}

impl EventEmitter for RunCtx {
    fn emit(&self, kind: EventKind) {
        RunCtx::emit(self, kind)
    }

    fn with_task_end(&self, records: TaskRecords) -> Result<(), TaskRecords> {
        if self.engine.store.is_none() {
            return Err(records);
        }
        self.staged
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .records
            .push(records);
        Ok(())
    }
}

impl RunCtx {
    fn new(
        engine: &Engine,
        wf: Arc<Workflow>,
        run_id: String,
        input: Value,
        cancel: CancelToken,
        seq: u64,
        depth: u32,
    ) -> Self {
        let record_events = engine.store.is_some() || engine.sink.is_some();
        RunCtx {
            engine: engine.clone(),
            input_view: from_json(&input),
            wf,
            run_id,
            cancel,
            step: AtomicU64::new(0),
            events: Arc::new(Mutex::new(EventLog {
                next_seq: seq,
                unstored: Vec::new(),
            })),
            staged: Mutex::new(Staged::default()),
            failed_records: Mutex::new(None),
            since_snapshot: AtomicU64::new(0),
            snapshot_size: AtomicU64::new(0),
            record_events,
            depth,
        }
    }

    fn emit(&self, kind: EventKind) {
        if !self.record_events {
            return;
        }
        let stored = self.engine.store.is_some();
        let mut log = self.events.lock().unwrap_or_else(|p| p.into_inner());
        // Numbered under the lock that orders the writes: events reach the store in order.
        let event = Event {
            run_id: self.run_id.clone(),
            seq: log.next_seq,
            ts_ms: now_ms(),
            step: self.step.load(Ordering::SeqCst),
            kind,
        };
        log.next_seq += 1;
        match &self.engine.sink {
            Some(sink) => {
                if stored {
                    log.unstored.push(event.clone());
                }
                drop(log);
                sink.event(&event);
            }
            None if stored => log.unstored.push(event),
            None => {}
        }
    }

    /// An event that reports something stored (a task's end, a checkpoint, the run's end):
    /// with a store it waits for the commit that stores what it reports, is written in that
    /// transaction and reaches the sink after it; without one it is emitted at once.
    fn report(&self, kind: EventKind) {
        if self.engine.store.is_none() {
            return self.emit(kind);
        }
        let event = Event {
            run_id: self.run_id.clone(),
            // Numbered when it is committed.
            seq: 0,
            ts_ms: now_ms(),
            step: self.step.load(Ordering::SeqCst),
            kind,
        };
        self.staged
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .reports
            .push(event);
    }

    /// Stages a task's end for the next commit, with the event that reports it.
    fn stage(&self, task: StagedTask, report: EventKind) {
        let mut staged = self.staged.lock().unwrap_or_else(|p| p.into_inner());
        staged.bytes += task.bytes();
        staged.first.get_or_insert_with(Instant::now);
        staged.tasks.push(task);
        drop(staged);
        self.report(report);
    }

    /// When the staged task ends must be committed at the latest (none staged: `None`).
    fn batch_due(&self) -> Option<Instant> {
        let staged = self.staged.lock().unwrap_or_else(|p| p.into_inner());
        staged.first.map(|first| first + BATCH_WINDOW)
    }

    /// Whether the staged task ends must be committed now.
    fn batch_full(&self) -> bool {
        let staged = self.staged.lock().unwrap_or_else(|p| p.into_inner());
        staged.tasks.len() >= BATCH_MAX_TASKS
            || staged.bytes >= BATCH_MAX_BYTES
            || staged
                .first
                .is_some_and(|first| first.elapsed() >= BATCH_WINDOW)
    }

    /// Commits, in one transaction, the staged task ends, `checkpoint` and `status` with every
    /// event not yet stored; the reports among them then go to the sink. On failure nothing
    /// is lost from memory: the next commit tries again. (In-memory runs: nothing to do.)
    fn commit(
        &self,
        checkpoint: Option<&Checkpoint>,
        status: Option<(RunStatus, &RunEnd)>,
    ) -> Result<(), StoreError> {
        let Some(store) = self.store() else {
            return Ok(());
        };
        let mut staged = self.staged.lock().unwrap_or_else(|p| p.into_inner());
        let mut log = self.events.lock().unwrap_or_else(|p| p.into_inner());
        let mut events = std::mem::take(&mut log.unstored);
        let emitted = events.len();
        for mut report in std::mem::take(&mut staged.reports) {
            report.seq = log.next_seq;
            log.next_seq += 1;
            events.push(report);
        }
        let result = store.commit(
            &self.run_id,
            &Commit {
                tasks: &staged.tasks,
                records: &staged.records,
                checkpoint,
                status,
                events: &events,
            },
        );
        if let Err(e) = result {
            staged.reports = events.split_off(emitted);
            events.append(&mut log.unstored);
            log.unstored = events;
            if let Some(i) = e.records {
                // A host's records could not be written: their task's end is not stored
                // either (it runs again on resume), and the run fails naming it.
                let bad = staged.records.remove(i);
                let ours =
                    |node: &str, index: Option<usize>| node == bad.node && index == bad.index;
                staged.tasks.retain(|t| !ours(&t.node, t.index));
                staged.reports.retain(|r| match &r.kind {
                    EventKind::TaskFinished { node, index, .. }
                    | EventKind::TaskFailed { node, index, .. } => !ours(node, *index),
                    _ => true,
                });
                *self
                    .failed_records
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(RunError {
                    node: Some(bad.node.clone()),
                    kind: "store".into(),
                    message: format!(
                        "{} could not be recorded with the run: {}",
                        bad.what, e.error
                    ),
                });
            }
            return Err(e.error);
        }
        drop(log);
        staged.tasks.clear();
        staged.records.clear();
        staged.bytes = 0;
        staged.first = None;
        drop(staged);
        if let Some(sink) = &self.engine.sink {
            for event in &events[emitted..] {
                sink.event(event);
            }
        }
        Ok(())
    }

    fn take_failed_records(&self) -> Option<RunError> {
        self.failed_records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    fn take_events(&self) -> Vec<Event> {
        std::mem::take(
            &mut self
                .events
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .unstored,
        )
    }

    fn store(&self) -> Option<&RunStore> {
        self.engine.store.as_deref()
    }

    /// Runs steps from `cp` on. `done`: tasks of the next step that already completed.
    async fn drive(
        &self,
        mut state: State,
        mut cp: Checkpoint,
        mut done: Vec<TaskWrites>,
    ) -> Result<RunOutcome, EngineError> {
        let started = Instant::now();
        let steps = self.drive_steps(&mut state, &mut cp, &mut done, started);
        let result = match self.engine.store.clone() {
            Some(store) => tokio::select! {
                biased;
                result = steps => result,
                never = self.watch_store(&store) => match never {},
            },
            None => steps.await,
        };
        let end = match result {
            Ok(end) => end,
            Err(EngineError::Store(e)) => {
                StepsEnd::Failed(self.take_failed_records().unwrap_or(RunError {
                    node: None,
                    kind: "store".into(),
                    message: e.to_string(),
                }))
            }
            Err(other) => return Err(other),
        };
        self.finish(state, &cp, end)
    }

    /// Every 200 ms: writes buffered events (so `ao runs events --follow` sees a long task
    /// start without a commit per event) and polls for `ao runs cancel` from another process.
    /// Runs inside the run's own task, beside its steps (no task of its own to spawn and wake
    /// on another thread); never ends.
    async fn watch_store(&self, store: &RunStore) -> std::convert::Infallible {
        let mut cancel_seen = false;
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            {
                // The lock is held across the write, so events are stored in order.
                let mut log = self.events.lock().unwrap_or_else(|p| p.into_inner());
                if !log.unstored.is_empty() {
                    let events = std::mem::take(&mut log.unstored);
                    // A failure here leaves the events for the run's next commit.
                    if store.append_events(&events).is_err() {
                        log.unstored = events;
                    }
                }
            }
            if !cancel_seen && let Ok(Some(by)) = store.cancel_requested(&self.run_id) {
                self.cancel.cancel(&by);
                cancel_seen = true;
            }
        }
    }

    /// Secrets out of text the engine stores or emits (messages can quote tool output, model
    /// replies, environment values).
    fn redact(&self, text: String) -> String {
        match &self.engine.host.redactor {
            Some(r) => r.redact_str(&text),
            None => text,
        }
    }

    fn finish(
        &self,
        state: State,
        cp: &Checkpoint,
        end: StepsEnd,
    ) -> Result<RunOutcome, EngineError> {
        let steps = cp.step;
        let state_json = state.to_json();
        let end = match end {
            StepsEnd::Failed(mut e) => {
                e.message = self.redact(e.message);
                StepsEnd::Failed(e)
            }
            StepsEnd::Interrupted(mut i) => {
                i.prompt = self.redact(i.prompt);
                StepsEnd::Interrupted(i)
            }
            other => other,
        };
        let (mut status, mut output, mut interrupt, mut error) = match end {
            StepsEnd::Completed => match self.output(&state) {
                Ok(out) => (RunStatus::Completed, Some(out), None, None),
                Err(e) => (RunStatus::Failed, None, None, Some(e)),
            },
            StepsEnd::Interrupted(i) => (RunStatus::Interrupted, None, Some(i), None),
            StepsEnd::Failed(e) => (RunStatus::Failed, None, None, Some(e)),
            StepsEnd::Cancelled(by) if !self.cancel.is_final() => (
                RunStatus::Failed,
                None,
                None,
                Some(RunError {
                    node: None,
                    kind: "stopped".into(),
                    message: format!(
                        "stopped by {by} at a safe point; completed tasks are kept and the run can be resumed"
                    ),
                }),
            ),
            StepsEnd::Cancelled(by) => (
                RunStatus::Cancelled,
                None,
                None,
                Some(RunError {
                    node: None,
                    kind: "cancelled".into(),
                    message: format!("cancelled by {by}"),
                }),
            ),
        };
        // The last step's checkpoint, when it waited for the run's end.
        let mut checkpoint = std::mem::take(
            &mut self
                .staged
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .checkpoint_pending,
        )
        .then_some(cp);
        loop {
            self.report(EventKind::RunFinished {
                status: status.as_str().into(),
                error: error.as_ref().map(|e| e.to_string()),
            });
            if self.store().is_none() {
                break;
            }
            let end = RunEnd {
                error: error.clone(),
                interrupt: interrupt.clone(),
                // Without an `output` mapping the output is the state, which the store rebuilds
                // on read; storing it again would double the run's size.
                output: if self.wf.output.is_some() {
                    output.clone()
                } else {
                    None
                },
            };
            let Err(e) = self.commit(checkpoint, Some((status, &end))) else {
                break;
            };
            // A host's records could not be written with their task's end: the run fails
            // instead, without the checkpoint of a step whose task end was not stored. (Each
            // time round, one set of records less: this ends.)
            let Some(mut failure) = self.take_failed_records() else {
                return Err(e.into());
            };
            failure.message = self.redact(failure.message);
            self.staged
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .reports
                .retain(|r| !matches!(r.kind, EventKind::RunFinished { .. }));
            checkpoint = None;
            status = RunStatus::Failed;
            output = None;
            interrupt = None;
            error = Some(failure);
        }
        Ok(RunOutcome {
            run_id: self.run_id.clone(),
            workflow: self.wf.name.clone(),
            status,
            state: state_json,
            output,
            steps,
            interrupt,
            error,
        })
    }

    fn output(&self, state: &State) -> Result<Value, RunError> {
        let scope = Scope::new(
            self.input_view.clone(),
            state.view(),
            &self.run_id,
            self.step.load(Ordering::SeqCst),
        );
        let fail = |source: &str, e: String| RunError {
            node: None,
            kind: "expression".into(),
            message: format!("output expression `{source}` failed: {e}"),
        };
        match &self.wf.output {
            None => Ok(state.to_json()),
            Some(Output::Expr(e)) => e.eval(&scope).map_err(|m| fail(e.source(), m)),
            Some(Output::Map(items)) => {
                let mut out = serde_json::Map::new();
                for (k, e) in items {
                    out.insert(k.clone(), e.eval(&scope).map_err(|m| fail(e.source(), m))?);
                }
                Ok(Value::Object(out))
            }
        }
    }

    async fn drive_steps(
        &self,
        state: &mut State,
        cp: &mut Checkpoint,
        done: &mut Vec<TaskWrites>,
        started: Instant,
    ) -> Result<StepsEnd, EngineError> {
        let wf = self.wf.clone();
        loop {
            if self.cancel.is_cancelled() {
                return Ok(StepsEnd::Cancelled(
                    self.cancel.cancelled_by().unwrap_or_default(),
                ));
            }
            if cp.next.is_empty() {
                return Ok(StepsEnd::Completed);
            }
            let step = cp.step + 1;
            if step > wf.limits.max_steps {
                return Ok(StepsEnd::Failed(RunError {
                    node: None,
                    kind: "max_steps".into(),
                    message: format!(
                        "the run exceeded limits.max_steps ({}); nodes still active: {}",
                        wf.limits.max_steps,
                        cp.next.join(", ")
                    ),
                }));
            }
            self.step.store(step, Ordering::SeqCst);

            let step_fut = self.run_step(state, cp, std::mem::take(done), step);
            let result = match wf.limits.timeout {
                Some(limit) => {
                    let remaining = limit.saturating_sub(started.elapsed());
                    match tokio::time::timeout(remaining, step_fut).await {
                        Ok(r) => r,
                        Err(_) => {
                            return Ok(StepsEnd::Failed(RunError {
                                node: None,
                                kind: "timeout".into(),
                                message: format!(
                                    "the run exceeded limits.timeout_s ({}s) in step {step}; completed tasks are kept, resume to continue",
                                    limit.as_secs_f64()
                                ),
                            }));
                        }
                    }
                }
                None => step_fut.await,
            }?;
            match result {
                StepResult::Next(next_cp) => *cp = next_cp,
                StepResult::End(end) => return Ok(end),
            }
        }
    }

    /// Expands the triggered nodes into tasks (evaluating `for_each` on the step's state).
    fn tasks<'w>(
        &self,
        wf: &'w Workflow,
        next: &[String],
        scope: &Scope,
    ) -> Result<(Vec<TaskSpec<'w>>, Vec<String>), RunError> {
        let mut tasks = Vec::new();
        let mut nodes = Vec::new();
        for name in next {
            let Some(node) = wf.nodes.get(name) else {
                return Err(RunError {
                    node: Some(name.clone()),
                    kind: "node".into(),
                    message: "the checkpoint names a node the workflow does not have".into(),
                });
            };
            nodes.push(name.clone());
            match &node.for_each {
                None => tasks.push(TaskSpec { node, item: None }),
                Some(expr) => {
                    let items = expr.eval(scope).map_err(|e| RunError {
                        node: Some(name.clone()),
                        kind: "expression".into(),
                        message: format!("for_each `{}` failed: {e}", expr.source()),
                    })?;
                    let Value::Array(items) = items else {
                        return Err(RunError {
                            node: Some(name.clone()),
                            kind: "expression".into(),
                            message: format!(
                                "for_each `{}` must give a list, it gave {items}",
                                expr.source()
                            ),
                        });
                    };
                    for (i, item) in items.into_iter().enumerate() {
                        tasks.push(TaskSpec {
                            node,
                            item: Some((item, i)),
                        });
                    }
                }
            }
        }
        Ok((tasks, nodes))
    }

    async fn run_step(
        &self,
        state: &mut State,
        cp: &Checkpoint,
        done: Vec<TaskWrites>,
        step: u64,
    ) -> Result<StepResult, EngineError> {
        let wf = self.wf.clone();
        let scope = Scope::new(self.input_view.clone(), state.view(), &self.run_id, step);
        let (tasks, nodes) = match self.tasks(&wf, &cp.next, &scope) {
            Ok(t) => t,
            Err(e) => return Ok(StepResult::End(StepsEnd::Failed(e))),
        };
        self.emit(EventKind::StepStarted {
            nodes: nodes.clone(),
            tasks: tasks.len(),
        });

        let mut results: Vec<TaskWrites> = Vec::with_capacity(tasks.len());
        let mut interrupts: Vec<InterruptInfo> = Vec::new();
        let mut failures: Vec<RunError> = Vec::new();
        let mut to_run = Vec::new();
        for t in tasks {
            let index = t.item.as_ref().map(|(_, i)| *i);
            match done
                .iter()
                .find(|d| d.node == t.node.name && d.index == index)
            {
                Some(d) => results.push(d.clone()),
                None => to_run.push(t),
            }
        }

        let mut record = |end: TaskEnd, results: &mut Vec<TaskWrites>| match end {
            TaskEnd::Done(w) => results.push(w),
            TaskEnd::Interrupted(i) => interrupts.push(i),
            TaskEnd::Failed(e) => failures.push(e),
        };
        if to_run.len() == 1 {
            // The common case of a chain: no need for the concurrent machinery.
            let t = to_run.pop().into_iter().next();
            if let Some(t) = t {
                let end = tokio::select! {
                    end = self.run_task(t, &scope, step) => Some(end?),
                    _ = self.cancel.cancelled() => None,
                };
                match end {
                    Some(end) => record(end, &mut results),
                    None => {
                        return Ok(StepResult::End(StepsEnd::Cancelled(
                            self.cancel.cancelled_by().unwrap_or_default(),
                        )));
                    }
                }
            }
        } else if !to_run.is_empty() {
            let limit = Arc::new(Semaphore::new(wf.limits.concurrency));
            let mut running: FuturesUnordered<_> = to_run
                .into_iter()
                .map(|t| {
                    let limit = limit.clone();
                    let scope = &scope;
                    async move {
                        let _permit = limit.acquire_owned().await;
                        self.run_task(t, scope, step).await
                    }
                })
                .collect();
            loop {
                // Staged task ends are committed when the batch is full or its window is over,
                // whichever comes first; the last ones of the step go with its checkpoint.
                let due = self.batch_due();
                let window = async move {
                    match due {
                        Some(due) => tokio::time::sleep_until(due.into()).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    next = running.next() => match next {
                        Some(end) => {
                            record(end?, &mut results);
                            if !running.is_empty() && self.batch_full() {
                                self.commit(None, None)?;
                            }
                        }
                        None => break,
                    },
                    _ = window => self.commit(None, None)?,
                    _ = self.cancel.cancelled() => {
                        return Ok(StepResult::End(StepsEnd::Cancelled(self.cancel.cancelled_by().unwrap_or_default())));
                    }
                }
            }
        }

        if let Some(first) = failures.into_iter().min_by(|a, b| a.node.cmp(&b.node)) {
            return Ok(StepResult::End(StepsEnd::Failed(first)));
        }
        if !interrupts.is_empty() {
            interrupts.sort_by(|a, b| a.node.cmp(&b.node).then(a.index.cmp(&b.index)));
            let first = interrupts.swap_remove(0);
            self.emit(EventKind::Interrupted {
                node: first.node.clone(),
                prompt: self.redact(first.prompt.clone()),
            });
            return Ok(StepResult::End(StepsEnd::Interrupted(first)));
        }

        sort_task_writes(&mut results);
        if let Err(e) = state.apply(&wf, &results) {
            return Ok(StepResult::End(StepsEnd::Failed(e)));
        }

        // Edges, evaluated on the new state, node by node in name order.
        let scope = Scope::new(self.input_view.clone(), state.view(), &self.run_id, step);
        let mut next: BTreeSet<String> = BTreeSet::new();
        let mut joins = cp.joins.clone();
        // A join counts the arrivals since its target last ran: a target that ran this step
        // (through any edge) starts its joins afresh.
        joins.retain(|idx, _| !matches!(&wf.edges[*idx], Edge::Join { to: Target::Node(t), .. } if nodes.contains(t)));
        for name in &nodes {
            for (idx, edge) in wf.edges_from(name) {
                match edge {
                    Edge::Static { to, .. } => add_target(&mut next, to),
                    Edge::Conditional { branches, .. } => {
                        for b in branches {
                            let taken = match &b.condition {
                                None => true,
                                Some(cond) => match cond.eval_truthy(&scope) {
                                    Ok(t) => t,
                                    Err(e) => {
                                        return Ok(StepResult::End(StepsEnd::Failed(RunError {
                                            node: Some(name.clone()),
                                            kind: "expression".into(),
                                            message: format!(
                                                "edge condition `{}` failed: {e}",
                                                cond.source()
                                            ),
                                        })));
                                    }
                                },
                            };
                            if taken {
                                add_target(&mut next, &b.to);
                                break;
                            }
                        }
                    }
                    Edge::Join { from, to } => {
                        let arrived = joins.entry(idx).or_default();
                        arrived.insert(name.clone());
                        if from.iter().all(|f| arrived.contains(f)) {
                            joins.remove(&idx);
                            add_target(&mut next, to);
                        }
                    }
                }
            }
        }

        let written: u64 = if self.store().is_some() {
            results
                .iter()
                .flat_map(|t| t.writes.iter())
                .map(|(_, v)| approx_size(v))
                .sum()
        } else {
            0
        };
        let since = self.since_snapshot.fetch_add(written, Ordering::Relaxed) + written;
        let snapshot = if since as usize >= SNAPSHOT_MIN_BYTES
            && since >= self.snapshot_size.load(Ordering::Relaxed)
        {
            let values = state.values().clone();
            self.snapshot_size
                .store(approx_size(&state.to_json()), Ordering::Relaxed);
            self.since_snapshot.store(0, Ordering::Relaxed);
            Some(values)
        } else {
            None
        };
        let mut next_cp = Checkpoint {
            step,
            next: next.into_iter().collect(),
            joins,
            snapshot,
        };
        self.report(EventKind::CheckpointSaved {
            next: next_cp.next.clone(),
        });
        if self.store().is_some() {
            if next_cp.next.is_empty() {
                // No step follows: the checkpoint is committed with the run's end.
                self.staged
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .checkpoint_pending = true;
            } else {
                // The step's last task ends with its boundary, before the next step starts.
                self.commit(Some(&next_cp), None)?;
                next_cp.snapshot = None;
            }
        }
        Ok(StepResult::Next(next_cp))
    }

    /// Runs one task with its retries, persisting its writes when it completes.
    async fn run_task(
        &self,
        t: TaskSpec<'_>,
        step_scope: &Scope,
        step: u64,
    ) -> Result<TaskEnd, EngineError> {
        let node = t.node;
        let index = t.item.as_ref().map(|(_, i)| *i);
        let scope = match &t.item {
            Some((item, i)) => step_scope.with_item(item, *i),
            None => step_scope.clone(),
        };
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            self.emit(EventKind::TaskStarted {
                node: node.name.clone(),
                index,
                attempt,
            });
            let began = Instant::now();
            let result = match node.timeout {
                Some(limit) => match tokio::time::timeout(
                    limit,
                    self.attempt(node, index, &scope, step, attempt),
                )
                .await
                {
                    Ok(r) => r,
                    Err(_) => Err(NodeFailure::retryable(format!(
                        "timed out after {}s (timeout_s)",
                        limit.as_secs_f64()
                    ))),
                },
                None => self.attempt(node, index, &scope, step, attempt).await,
            };
            let result = result.and_then(|outcome| match outcome {
                Attempt::Writes(writes) => {
                    for (channel, value) in &writes {
                        if let Some(ch) = self.wf.channels.get(channel) {
                            check_write(ch, value).map_err(|e| NodeFailure {
                                message: format!("the value written to channel `{channel}` does not match its schema: {e}"),
                                retryable: false,
                                kind: "channel",
                            })?;
                        }
                    }
                    Ok(Attempt::Writes(writes))
                }
                other => Ok(other),
            });
            match result {
                Ok(Attempt::Writes(writes)) => {
                    // What a node computed enters the state and the store only through the
                    // redactor: a secret assembled by an expression is stored as `[REDACTED]`.
                    let writes = match &self.engine.host.redactor {
                        Some(r) => writes
                            .into_iter()
                            .map(|(c, v)| (c, r.redact_value(&v)))
                            .collect(),
                        None => writes,
                    };
                    let task = TaskWrites {
                        node: node.name.clone(),
                        index,
                        writes,
                    };
                    let report = EventKind::TaskFinished {
                        node: node.name.clone(),
                        index,
                        attempt,
                        duration_ms: began.elapsed().as_millis() as u64,
                        channels: task.writes.iter().map(|(c, _)| c.clone()).collect(),
                    };
                    if self.store().is_some() {
                        self.stage(StagedTask::completed(step, &task, attempt)?, report);
                    } else {
                        self.emit(report);
                    }
                    return Ok(TaskEnd::Done(task));
                }
                Ok(Attempt::Interrupt(info)) => return Ok(TaskEnd::Interrupted(info)),
                Err(failure) => {
                    if failure.retryable && attempt < node.retry.max_attempts {
                        let delay = node.retry.delay_after(attempt);
                        self.emit(EventKind::TaskRetrying {
                            node: node.name.clone(),
                            index,
                            attempt,
                            delay_ms: delay.as_millis() as u64,
                            error: self.redact(failure.message.clone()),
                        });
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    let at = match index {
                        Some(i) => format!("{}[{i}]", node.name),
                        None => node.name.clone(),
                    };
                    // Attempts are worth naming only when the task was retried (a failure that
                    // is not retryable ends the first attempt).
                    let message = self.redact(if attempt > 1 {
                        format!(
                            "{} (attempt {attempt} of {}, task {at}, step {step})",
                            failure.message, node.retry.max_attempts
                        )
                    } else {
                        format!("{} (task {at}, step {step})", failure.message)
                    });
                    let report = EventKind::TaskFailed {
                        node: node.name.clone(),
                        index,
                        attempts: attempt,
                        error: message.clone(),
                    };
                    if self.store().is_some() {
                        self.stage(
                            StagedTask::failed(step, &node.name, index, attempt, &message),
                            report,
                        );
                    } else {
                        self.emit(report);
                    }
                    return Ok(TaskEnd::Failed(RunError {
                        node: Some(node.name.clone()),
                        kind: failure.kind.into(),
                        message,
                    }));
                }
            }
        }
    }

    /// One attempt of one task.
    async fn attempt(
        &self,
        node: &Node,
        index: Option<usize>,
        scope: &Scope,
        step: u64,
        attempt: u32,
    ) -> Result<Attempt, NodeFailure> {
        let expr_fail = |what: &str, source: &str, e: String| NodeFailure {
            message: format!("{what} `{source}` failed: {e}"),
            retryable: false,
            kind: "expression",
        };
        let call = NodeCall {
            run_id: &self.run_id,
            step,
            node: &node.name,
            index,
            attempt,
            events: self,
        };
        // `key:` is evaluated before the node's work, so a bad key costs no model call.
        let task_key = match &node.key {
            None => None,
            Some(k) => Some(
                match k.eval(scope).map_err(|m| expr_fail("key", k.source(), m))? {
                    Value::String(s) => s,
                    Value::Number(n) => n.to_string(),
                    other => {
                        return Err(expr_fail(
                            "key",
                            k.source(),
                            format!("a key must be text or a number, it gave {other}"),
                        ));
                    }
                },
            ),
        };
        let written = |writes: &Option<String>, value: Value| -> Attempt {
            let value = match &task_key {
                Some(k) => Value::Object(serde_json::Map::from_iter([(k.clone(), value)])),
                None => value,
            };
            Attempt::Writes(writes.iter().map(|w| (w.clone(), value.clone())).collect())
        };
        let eval_map = |items: &[(String, super::expr::Expr)]| -> Result<Value, NodeFailure> {
            let mut out = serde_json::Map::new();
            for (k, e) in items {
                out.insert(
                    k.clone(),
                    e.eval(scope)
                        .map_err(|m| expr_fail("expression", e.source(), m))?,
                );
            }
            Ok(Value::Object(out))
        };
        match &node.kind {
            NodeKind::Transform { set } => {
                let mut writes = Vec::with_capacity(set.len());
                for (channel, e) in set {
                    writes.push((
                        channel.clone(),
                        e.eval(scope)
                            .map_err(|m| expr_fail("expression", e.source(), m))?,
                    ));
                }
                Ok(Attempt::Writes(writes))
            }
            NodeKind::Interrupt { prompt, schema, .. } => {
                let text = self
                    .wf
                    .templates
                    .render(prompt, scope)
                    .map_err(|m| expr_fail("prompt template", prompt, m))?;
                Ok(Attempt::Interrupt(InterruptInfo {
                    node: node.name.clone(),
                    prompt: text,
                    schema: schema.source.clone(),
                    step,
                    index,
                    child_run: None,
                }))
            }
            NodeKind::Builtin { name, with, writes } => {
                let Some(builtin) = self.engine.host.builtins.get(name) else {
                    let known: Vec<&str> = self
                        .engine
                        .host
                        .builtins
                        .keys()
                        .map(String::as_str)
                        .collect();
                    return Err(NodeFailure {
                        message: format!(
                            "builtin `{name}` is not available in this host (available: {})",
                            if known.is_empty() {
                                "none".into()
                            } else {
                                known.join(", ")
                            }
                        ),
                        retryable: false,
                        kind: "not_available",
                    });
                };
                let args = eval_map(with)?;
                Ok(written(writes, builtin.call(call, args).await?))
            }
            NodeKind::Llm(llm) => {
                let Some(runner) = &self.engine.host.llm else {
                    return Err(NodeFailure {
                        message: "`llm` nodes are not available in this host: no model layer is configured".into(),
                        retryable: false,
                        kind: "not_available",
                    });
                };
                let render = |key: &str| {
                    self.wf
                        .templates
                        .render(key, scope)
                        .map_err(|m| expr_fail("template", key, m))
                };
                let request = LlmRequest {
                    role: match &llm.role {
                        Role::Fixed(r) => r.clone(),
                        Role::Template(key) => render(key)?.trim().to_string(),
                    },
                    system: llm.system.as_deref().map(render).transpose()?,
                    prompt: render(&llm.prompt)?,
                    output: llm.output.clone(),
                    tools: llm.tools.clone(),
                };
                Ok(written(&llm.writes, runner.run(call, request).await?))
            }
            NodeKind::Tool { tool, args, writes } => {
                let Some(runner) = &self.engine.host.tools else {
                    return Err(NodeFailure {
                        message: format!(
                            "`tool` nodes are not available in this host: tool `{tool}` cannot run"
                        ),
                        retryable: false,
                        kind: "not_available",
                    });
                };
                let args = self.render_args(args, scope)?;
                Ok(written(writes, runner.run(call, tool, args).await?))
            }
            NodeKind::Workflow {
                workflow,
                input,
                writes,
            } => {
                let Some(resolver) = &self.engine.host.resolver else {
                    return Err(NodeFailure {
                        message: format!(
                            "sub-workflow `{workflow}` cannot be resolved: this host has no workflow resolver"
                        ),
                        retryable: false,
                        kind: "not_available",
                    });
                };
                if self.depth >= MAX_SUBRUN_DEPTH {
                    return Err(NodeFailure::permanent(format!(
                        "sub-workflow `{workflow}` would nest deeper than {MAX_SUBRUN_DEPTH} runs; does a workflow call itself?"
                    )));
                }
                let child = resolver
                    .resolve(workflow, self.wf.dir.as_deref())
                    .map_err(NodeFailure::permanent)?;
                let input = eval_map(input)?;
                let key = format!(
                    "{step}/{}/{}",
                    node.name,
                    index.map(|i| i as i64).unwrap_or(-1)
                );
                let outcome = self
                    .engine
                    .sub_run(self, &key, child, input)
                    .await
                    .map_err(|e| {
                        NodeFailure::permanent(format!("sub-workflow `{workflow}`: {e}"))
                    })?;
                match outcome.status {
                    RunStatus::Completed => {
                        Ok(written(writes, outcome.output.unwrap_or(Value::Null)))
                    }
                    RunStatus::Interrupted => {
                        let inner = outcome.interrupt.unwrap_or_else(|| InterruptInfo {
                            node: String::new(),
                            prompt: String::new(),
                            schema: Value::Bool(true),
                            step,
                            index,
                            child_run: None,
                        });
                        Ok(Attempt::Interrupt(InterruptInfo {
                            node: node.name.clone(),
                            prompt: inner.prompt,
                            schema: inner.schema,
                            step,
                            index,
                            child_run: Some(outcome.run_id),
                        }))
                    }
                    _ => Err(NodeFailure::permanent(format!(
                        "sub-run {} of `{workflow}` {}: {}",
                        outcome.run_id,
                        outcome.status,
                        outcome.error.map(|e| e.to_string()).unwrap_or_default()
                    ))),
                }
            }
        }
    }

    fn render_args(&self, arg: &ArgValue, scope: &Scope) -> Result<Value, NodeFailure> {
        let fail = |what: &str, m: String| NodeFailure {
            message: format!("tool argument {what} failed: {m}"),
            retryable: false,
            kind: "expression",
        };
        Ok(match arg {
            ArgValue::Literal(v) => v.clone(),
            ArgValue::Template(key) => Value::String(
                self.wf
                    .templates
                    .render(key, scope)
                    .map_err(|m| fail(key, m))?,
            ),
            ArgValue::Expr(e) => e.eval(scope).map_err(|m| fail(e.source(), m))?,
            ArgValue::List(items) => Value::Array(
                items
                    .iter()
                    .map(|a| self.render_args(a, scope))
                    .collect::<Result<_, _>>()?,
            ),
            ArgValue::Map(m) => Value::Object(
                m.iter()
                    .map(|(k, a)| Ok((k.clone(), self.render_args(a, scope)?)))
                    .collect::<Result<_, NodeFailure>>()?,
            ),
        })
    }
}

enum Attempt {
    Writes(Vec<(String, Value)>),
    Interrupt(InterruptInfo),
}

enum StepResult {
    Next(Checkpoint),
    End(StepsEnd),
}

enum StepsEnd {
    Completed,
    Interrupted(InterruptInfo),
    Failed(RunError),
    Cancelled(String),
}

fn add_target(next: &mut BTreeSet<String>, to: &Target) {
    if let Target::Node(n) = to {
        next.insert(n.clone());
    }
}

/// An estimate of a value's stored size, without serializing it.
fn approx_size(v: &Value) -> u64 {
    match v {
        Value::Null | Value::Bool(_) => 5,
        Value::Number(_) => 8,
        Value::String(s) => s.len() as u64 + 2,
        Value::Array(a) => 2 + a.iter().map(approx_size).sum::<u64>(),
        Value::Object(o) => {
            2 + o
                .iter()
                .map(|(k, v)| k.len() as u64 + 3 + approx_size(v))
                .sum::<u64>()
        }
    }
}

/// Loads a workflow from a path (file, or folder holding `workflow.yaml`).
pub fn load_path(path: &Path) -> Result<Workflow, EngineError> {
    let file = if path.is_dir() {
        path.join("workflow.yaml")
    } else {
        path.to_path_buf()
    };
    Ok(load_file(&file)?)
}

/// Hosts spawn runs on a multi-threaded runtime: the futures must be `Send`.
#[allow(dead_code)]
fn assert_futures_are_send(e: &Engine, wf: Arc<Workflow>) {
    fn is_send<T: Send>(_: T) {}
    is_send(e.start(wf, Value::Null, RunOptions::default()));
    is_send(e.resume("", None, RunOptions::default()));
}
