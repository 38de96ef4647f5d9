//! Runs that outlive the call that started them: what a long-lived front end (the MCP server)
//! needs on top of [`Service`]'s run-to-the-end calls.
//!
//! - [`Service::start_detached`] / [`Service::resume_detached`]: the run goes on in the
//!   background of this process; the call returns once the run is stored (its input checked)
//!   or taken over (its answer accepted), so a bad request is still an error of the call.
//! - [`Service::wait_for_run`]: a long-poll over the store until the run leaves `running` or
//!   a deadline passes. It reads the store, so it works for runs driven by any process.
//! - [`Service::resume_once`]: an answer given under a caller's request id is given once; a
//!   repeated id returns the first result (kept in the run's records, see
//!   [`records::RESUME_REQUEST`]) and never answers twice, across processes.
//! - [`Service::cancel_run`]: a cancel that records who asked and why.
//! - [`Jobs`]: the runs this process drives in the background, so they can be cancelled at
//!   once and stopped (resumable) when the front end goes away.
//! - [`Modes`]: the write ceiling of a server: dry-run for every caller, apply only where the
//!   operator allowed it.
//!
//! Nothing here parses arguments or renders output.

use crate::error::Error;
use crate::records::{self, ResumeSlot};
use crate::service::{CancelResult, RootCheck, Service};
use crate::view::RunDetail;
use ao_core::config::{Config, Source, Sourced};
use ao_core::redact::Redactor;
use ao_core::run::RunStatus;
use ao_graph::{CancelToken, RunEnd, RunError, RunOptions, Workflow, is_active, process_alive};
use ao_tools::Mode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// How often a waiter first looks at the store; the interval doubles up to [`POLL_MAX`].
const POLL_FIRST: Duration = Duration::from_millis(20);
const POLL_MAX: Duration = Duration::from_millis(250);

/// The runs this process drives in the background ([`Service::start_detached`]). Cheap to
/// clone; clones share the registry.
#[derive(Clone, Default)]
pub struct Jobs {
    inner: Arc<Mutex<BTreeMap<String, Job>>>,
}

struct Job {
    cancel: CancelToken,
    /// Turns `true` when the task driving the run has ended (the run's status is stored).
    done: watch::Receiver<bool>,
}

impl Jobs {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Job>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The runs still driven here, oldest id first.
    pub fn active(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, j)| !*j.done.borrow())
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Cancels a run driven here for good; `false` when it is not one of ours (or has ended).
    pub fn cancel(&self, run_id: &str, by: &str) -> bool {
        match self.lock().get(run_id) {
            Some(job) if !*job.done.borrow() => {
                job.cancel.cancel(by);
                true
            }
            _ => false,
        }
    }

    /// Whether a task of this process is (still) driving the run.
    fn driving(&self, run_id: &str) -> bool {
        self.lock().get(run_id).is_some_and(|j| !*j.done.borrow())
    }

    fn done_signal(&self, run_id: &str) -> Option<watch::Receiver<bool>> {
        self.lock().get(run_id).map(|j| j.done.clone())
    }

    /// Stops every run still driven here at its next safe point, leaving it resumable
    /// (`failed`, kind `stopped`, naming `by`), and waits up to `grace` for each to be
    /// recorded. Returns the runs it stopped.
    pub async fn stop_all(&self, by: &str, grace: Duration) -> Vec<String> {
        let jobs: Vec<(String, CancelToken, watch::Receiver<bool>)> = self
            .lock()
            .iter()
            .filter(|(_, j)| !*j.done.borrow())
            .map(|(id, j)| (id.clone(), j.cancel.clone(), j.done.clone()))
            .collect();
        for (_, cancel, _) in &jobs {
            cancel.stop(by);
        }
        let deadline = Instant::now() + grace;
        for (_, _, done) in &jobs {
            let mut done = done.clone();
            let _ = tokio::time::timeout_at(deadline, done.wait_for(|d| *d)).await;
        }
        jobs.into_iter().map(|(id, _, _)| id).collect()
    }

    fn insert(&self, run_id: &str, cancel: CancelToken) -> watch::Sender<bool> {
        let (tx, rx) = watch::channel(false);
        let mut jobs = self.lock();
        // Ended jobs are dropped as new ones come, so the registry stays as small as what runs.
        jobs.retain(|_, j| !*j.done.borrow());
        // A run already driven here keeps its entry: the second driver is refused by the
        // engine, and must not take the first one's cancel token away.
        jobs.entry(run_id.to_string())
            .or_insert(Job { cancel, done: rx });
        tx
    }
}

/// What waiting for a run saw.
#[derive(Debug, Clone)]
pub struct Waited {
    pub run: RunDetail,
    /// The run shows `running` but no live process drives it (its process died): it will not
    /// move until someone resumes it.
    pub abandoned: bool,
}

/// An answer (or a plain continue) for [`Service::resume_once`].
pub struct ResumeRequest<'a> {
    pub run_id: &'a str,
    /// The answer to the run's interrupt; `None` continues a failed or stopped run.
    pub answer: Option<Value>,
    /// The caller's id for this answer: the same id is answered once.
    pub request_id: Option<&'a str>,
    pub opts: RunOptions,
    pub root_check: RootCheck,
    /// How long to wait for the run to leave `running` before returning.
    pub wait: Duration,
}

/// What an idempotent resume gave.
#[derive(Debug, Clone)]
pub struct ResumeOutcome {
    /// The run as the call that gave the answer saw it when it returned (without its state).
    pub run: RunDetail,
    /// This request id was seen before: nothing was answered now, this is the first result.
    pub replayed: bool,
}

impl Service {
    /// Starts a run that goes on in the background of this process and returns its id as soon
    /// as it is stored. A bad input is an error of this call; what happens later is the run's.
    pub async fn start_detached(
        &self,
        wf: Arc<Workflow>,
        input: Value,
        mut opts: RunOptions,
        jobs: &Jobs,
    ) -> Result<String, Error> {
        // The engine checks again after redacting; checking here makes a bad input this
        // call's error rather than a run that never got stored.
        ao_graph::Engine::check_input(&wf, input.clone())?;
        let run_id = opts
            .run_id
            .get_or_insert_with(|| ao_core::ids::RunId::new().to_string())
            .clone();
        let service = self.clone();
        let task = self.detach(&run_id, opts.cancel.clone(), jobs, async move {
            service.start(wf, input, opts, None).await.map(|_| ())
        });
        // Stored and registered as driven here (the engine stores a run a moment before it
        // registers it), so a waiter never mistakes it for abandoned.
        self.until_taken(&run_id, task, |record| {
            record.is_some() && is_active(&run_id)
        })
        .await?;
        Ok(run_id)
    }

    /// Resumes a run in the background of this process (see [`Service::resume`]); returns
    /// once this process has taken the run over, so an invalid answer or a run that cannot be
    /// resumed is an error of this call.
    pub async fn resume_detached(
        &self,
        run_id: &str,
        answer: Option<Value>,
        opts: RunOptions,
        root_check: RootCheck,
        jobs: &Jobs,
    ) -> Result<(), Error> {
        let service = self.clone();
        let id = run_id.to_string();
        let task = self.detach(run_id, opts.cancel.clone(), jobs, async move {
            service
                .resume(&id, answer, opts, None, root_check)
                .await
                .map(|_| ())
        });
        let me = std::process::id();
        self.until_taken(run_id, task, |record| {
            record.is_some_and(|r| r.status == RunStatus::Running && r.owner_pid == Some(me))
        })
        .await
    }

    /// Spawns `drive` for `run_id` under a supervisor that registers it in `jobs`, marks the
    /// run failed if the driver died without recording an end (so it never stays `running`),
    /// and signals the end. Returns the driver's first error, if it fails early.
    fn detach(
        &self,
        run_id: &str,
        cancel: CancelToken,
        jobs: &Jobs,
        drive: impl Future<Output = Result<(), Error>> + Send + 'static,
    ) -> tokio::sync::oneshot::Receiver<Result<(), Error>> {
        let done = jobs.insert(run_id, cancel);
        let (first_tx, first_rx) = tokio::sync::oneshot::channel();
        let service = self.clone();
        let run_id = run_id.to_string();
        tokio::spawn(async move {
            let result = match tokio::spawn(drive).await {
                Ok(r) => r,
                Err(e) => Err(Error::Usage(format!(
                    "the task driving run {run_id} ended: {e}"
                ))),
            };
            if let Err(e) = &result {
                service.settle_orphan(&run_id, e);
            }
            let _ = first_tx.send(result);
            let _ = done.send(true);
        });
        first_rx
    }

    /// A run this process was driving whose driver ended with an error while the run still
    /// shows `running` here: recorded as failed, resumable, with the error.
    fn settle_orphan(&self, run_id: &str, e: &Error) {
        let Ok(Some(record)) = self.store().run(run_id) else {
            return;
        };
        if record.status != RunStatus::Running
            || record.owner_pid != Some(std::process::id())
            || is_active(run_id)
        {
            return;
        }
        let end = RunEnd {
            error: Some(RunError {
                node: None,
                kind: e.kind().as_str().to_string(),
                message: e.to_string(),
            }),
            ..Default::default()
        };
        // If the store itself is what failed this may fail too; the run then shows `running`
        // with a live owner until this process exits, after which it reads as abandoned.
        let _ = self
            .store()
            .set_status(run_id, RunStatus::Failed, &end, &[]);
    }

    /// Waits until `taken(record)` holds (the run is stored / taken over) or the driver ends;
    /// a driver that ends with an error before that makes this call fail with it.
    async fn until_taken(
        &self,
        run_id: &str,
        mut first: tokio::sync::oneshot::Receiver<Result<(), Error>>,
        taken: impl Fn(Option<&ao_graph::RunRecord>) -> bool,
    ) -> Result<(), Error> {
        let mut poll = Duration::from_millis(2);
        loop {
            match first.try_recv() {
                Ok(result) => return result,
                Err(tokio::sync::oneshot::error::TryRecvError::Closed) => return Ok(()),
                Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {}
            }
            if taken(self.store().run(run_id)?.as_ref()) {
                return Ok(());
            }
            tokio::select! {
                result = &mut first => return result.unwrap_or(Ok(())),
                _ = tokio::time::sleep(poll) => {}
            }
            poll = (poll * 2).min(POLL_MAX);
        }
    }

    /// Waits until the run is no longer `running`, or `wait` has passed, and returns it. Reads
    /// the store, so it works whichever process drives the run; a run of `jobs` is noticed at
    /// once. A run whose process died is returned at once, marked abandoned.
    pub async fn wait_for_run(
        &self,
        run_id: &str,
        wait: Duration,
        jobs: &Jobs,
    ) -> Result<Waited, Error> {
        let deadline = Instant::now() + wait;
        let mut poll = POLL_FIRST;
        let mut done = jobs.done_signal(run_id);
        loop {
            let record = self.record(run_id)?;
            let me = std::process::id();
            let abandoned = record.status == RunStatus::Running
                && match record.owner_pid {
                    Some(pid) if pid == me => !is_active(run_id) && !jobs.driving(run_id),
                    Some(pid) => !process_alive(pid),
                    None => false,
                };
            let now = Instant::now();
            if record.status != RunStatus::Running || abandoned || now >= deadline {
                return Ok(Waited {
                    run: self.view(run_id)?,
                    abandoned,
                });
            }
            let nap = poll.min(deadline - now);
            let ended = match done.as_mut() {
                // The driver ended: look at the store again at once.
                Some(rx) => tokio::select! {
                    _ = rx.wait_for(|d| *d) => true,
                    _ = tokio::time::sleep(nap) => false,
                },
                None => {
                    tokio::time::sleep(nap).await;
                    false
                }
            };
            if ended {
                done = None;
            }
            poll = (poll * 2).min(POLL_MAX);
        }
    }

    /// Answers (or continues) a run at most once per `request_id`, then waits up to `wait`
    /// for it to leave `running`.
    ///
    /// With a request id, the first call reserves it in the run's records (atomically, across
    /// processes) and records what it returned; a later call with the same id answers nothing
    /// and returns that first result (`replayed`), or, while the first call has not recorded
    /// one yet, waits for it up to `wait` and then returns the run as it is. The same id with
    /// a different answer is refused. An id whose call failed before the run was taken over
    /// (an invalid answer, a run that cannot be resumed) is freed for a corrected retry.
    pub async fn resume_once(
        &self,
        request: ResumeRequest<'_>,
        jobs: &Jobs,
    ) -> Result<ResumeOutcome, Error> {
        let ResumeRequest {
            run_id,
            answer,
            request_id,
            opts,
            root_check,
            wait,
        } = request;
        self.record(run_id)?;
        let Some(request_id) = request_id else {
            self.resume_detached(run_id, answer, opts, root_check, jobs)
                .await?;
            let waited = self.wait_for_run(run_id, wait, jobs).await?;
            return Ok(ResumeOutcome {
                run: waited.run,
                replayed: false,
            });
        };
        let fingerprint = answer_fingerprint(answer.as_ref());
        let seq = match records::reserve_resume_request(
            self.store(),
            run_id,
            request_id,
            &fingerprint,
        )? {
            ResumeSlot::New(seq) => seq,
            ResumeSlot::Seen(seen) => {
                if seen.get("answer_sha256").and_then(Value::as_str) != Some(&fingerprint) {
                    return Err(Error::Usage(format!(
                        "request id `{request_id}` was already used to answer run {run_id} with a different answer; a new answer needs a new request id"
                    )));
                }
                return self.replay(run_id, request_id, seen, wait).await;
            }
        };
        if let Err(e) = self
            .resume_detached(run_id, answer, opts, root_check, jobs)
            .await
        {
            // Nothing was answered: the id may be used again for a corrected answer.
            records::release_resume_request(self.store(), run_id, seq, request_id)?;
            return Err(e);
        }
        let waited = self.wait_for_run(run_id, wait, jobs).await?;
        let mut run = waited.run;
        run.run.state = Value::Null;
        let result = records::to_value("resume result", &run)?;
        records::finish_resume_request(
            self.store(),
            run_id,
            seq,
            &json!({
                "request_id": request_id,
                "answer_sha256": fingerprint,
                "result": result,
            }),
        )?;
        Ok(ResumeOutcome {
            run,
            replayed: false,
        })
    }

    /// A repeated request id: the first call's result, once it is recorded.
    async fn replay(
        &self,
        run_id: &str,
        request_id: &str,
        mut seen: records::SeenRequest,
        wait: Duration,
    ) -> Result<ResumeOutcome, Error> {
        let deadline = Instant::now() + wait;
        let mut poll = POLL_FIRST;
        loop {
            if let Some(result) = seen.data.get("result") {
                let run: RunDetail = serde_json::from_value(result.clone()).map_err(|e| {
                    Error::from(ao_graph::StoreError::Corrupt {
                        context: "resume request",
                        detail: format!(
                            "the recorded result of request `{request_id}` for run {run_id} is unreadable: {e}"
                        ),
                    })
                })?;
                return Ok(ResumeOutcome {
                    run,
                    replayed: true,
                });
            }
            let now = Instant::now();
            if now >= deadline {
                // The first call has not recorded its result (still going, or its process
                // died): the run as it is now.
                let mut run = self.view(run_id)?;
                run.run.state = Value::Null;
                return Ok(ResumeOutcome {
                    run,
                    replayed: true,
                });
            }
            tokio::time::sleep(poll.min(deadline - now)).await;
            poll = (poll * 2).min(POLL_MAX);
            seen.data =
                records::resume_request(self.store(), run_id, seen.seq)?.unwrap_or(Value::Null);
        }
    }

    /// Cancels a run for good, recording who asked and why (`by` is `who: why`). A run this
    /// process drives in the background stops at once; others as [`Service::cancel`] does.
    pub async fn cancel_run(
        &self,
        run_id: &str,
        who: &str,
        why: Option<&str>,
        wait: Duration,
        jobs: &Jobs,
    ) -> Result<CancelResult, Error> {
        let by = match why.map(str::trim).filter(|w| !w.is_empty()) {
            Some(why) => format!("{who}: {why}"),
            None => who.to_string(),
        };
        jobs.cancel(run_id, &by);
        self.cancel(run_id, &by, wait).await
    }
}

/// The answer as a request id remembers it: a hash, so the records never hold the answer
/// itself (the run's own records keep it, redacted).
fn answer_fingerprint(answer: Option<&Value>) -> String {
    let text = answer.map(Value::to_string).unwrap_or_default();
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The write ceiling of a long-lived front end: a service in dry-run for every caller, and one
/// in apply mode only when the operator allowed writes (`AO_DRY_RUN=false` with
/// `AO_ALLOW_WRITE=true` in the configuration, or `allow_apply`). A caller can always get
/// dry-run and never more than that.
#[derive(Clone)]
pub struct Modes {
    dry_run: Service,
    apply: Option<Service>,
    /// Why the ceiling is what it is (the policy's mode source).
    ceiling_source: String,
}

impl Modes {
    /// Configures `base` twice over: as the server's own configuration allows (the ceiling),
    /// and forced to dry-run.
    pub fn configure(
        base: &Service,
        config: &Config,
        env: &BTreeMap<String, String>,
        allow_apply: bool,
        redactor: Redactor,
    ) -> Result<Modes, Error> {
        let mut ceiling = base.clone();
        ceiling.configure(config, env, allow_apply, redactor.clone())?;
        let (mode, ceiling_source) = match ceiling.tools() {
            Some(t) => (t.policy().mode(), t.policy().mode_source().to_string()),
            None => (Mode::DryRun, "default".to_string()),
        };
        if mode == Mode::DryRun {
            return Ok(Modes {
                dry_run: ceiling,
                apply: None,
                ceiling_source,
            });
        }
        let mut forced = config.clone();
        forced.policy_env.dry_run = Some(Sourced {
            value: true,
            source: Source::Flag,
            origin: "dry-run requested by the caller".into(),
        });
        let mut env = env.clone();
        env.insert("AO_DRY_RUN".into(), "true".into());
        let mut dry_run = base.clone();
        dry_run.configure(&forced, &env, false, redactor)?;
        Ok(Modes {
            dry_run,
            apply: Some(ceiling),
            ceiling_source,
        })
    }

    /// Whether callers may ask for writes.
    pub fn writes_allowed(&self) -> bool {
        self.apply.is_some()
    }

    /// Why the ceiling is what it is (e.g. `default`, `AO_DRY_RUN=false and AO_ALLOW_WRITE=true`).
    pub fn ceiling_source(&self) -> &str {
        &self.ceiling_source
    }

    pub fn dry_run(&self) -> &Service {
        &self.dry_run
    }

    /// The service that writes, or why there is none.
    pub fn apply(&self) -> Result<&Service, Error> {
        self.apply.as_ref().ok_or_else(|| {
            Error::NotConfigured(format!(
                "writes are not allowed: this server's policy is dry-run ({}); its operator allows them with AO_DRY_RUN=false and AO_ALLOW_WRITE=true in its environment",
                self.ceiling_source
            ))
        })
    }

    /// Dry-run, or apply when asked (and allowed).
    pub fn for_call(&self, apply: bool) -> Result<&Service, Error> {
        if apply {
            self.apply()
        } else {
            Ok(&self.dry_run)
        }
    }

    /// The service a stored run continues with: the mode it was started in (a run keeps its
    /// mode), which for apply must still be allowed.
    pub fn for_run(&self, run_id: &str) -> Result<&Service, Error> {
        let top = self.dry_run.store().root_run_id(run_id)?;
        let record = self.dry_run.record(&top)?;
        let applied = record
            .meta
            .as_ref()
            .and_then(|m| m.get("mode"))
            .and_then(Value::as_str)
            == Some("apply");
        if applied {
            self.apply().map_err(|e| {
                Error::NotConfigured(format!("run {run_id} was started in apply mode, and {e}"))
            })
        } else {
            Ok(&self.dry_run)
        }
    }
}
