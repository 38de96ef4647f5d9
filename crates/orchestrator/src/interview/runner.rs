//! Asking the model: every case × every trial, concurrently and bounded.
//!
//! The runner knows nothing of HTTP. It talks to a [`CaseModel`], which the host implements
//! over the real model client (and tests implement with scripts). A [`CaseModel`] returns the
//! reply's raw text — judging it is the scorer's job — or a [`HarnessError`] when no reply
//! could be had; the runner turns the latter, its own time limit and a panicking model into
//! inconclusive trials. Records already made (a resumed interview) are not asked again.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ao_core::profile::Capability;
use ao_core::timestamp::Timestamp;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::score::{InterviewOutcome, WorkerIdentity, score_interview};
use super::suite::{Message, Suite};
use super::trial::{HarnessError, HarnessErrorKind, ModelReply, TrialOutcome, TrialRecord};

/// A boxed future, so [`CaseModel`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One question to the model.
#[derive(Debug, Clone, Copy)]
pub struct CaseRequest<'a> {
    pub case_id: &'a str,
    pub capability: Capability,
    /// 1-based.
    pub trial: u32,
    pub messages: &'a [Message],
    /// The JSON Schema the reply should match (for `response_format`). The model layer
    /// must not repair or reject replies against it: a bad reply is the measurement.
    pub output_schema: &'a Value,
}

/// The model under interview.
///
/// Implementations return the reply text as the model gave it, with the latency of the call
/// and the tokens the endpoint reported. Transport failures after the model layer's retries
/// (connection refused, timeouts, 5xx, 429) and endpoint refusals (bad key, unknown model)
/// are `Err(HarnessError)`; a reply the model layer finds malformed is still `Ok` with its
/// text.
pub trait CaseModel: Send + Sync {
    fn ask<'a>(
        &'a self,
        request: CaseRequest<'a>,
    ) -> BoxFuture<'a, Result<ModelReply, HarnessError>>;
}

pub const DEFAULT_TRIALS: u32 = 3;
pub const DEFAULT_CONCURRENCY: usize = 8;

/// How an interview is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// Times every case is asked (at least 1).
    pub trials: u32,
    /// Questions in flight at once (at least 1).
    pub concurrency: usize,
    /// The interview's own limit per call, on top of the model layer's; a call that takes
    /// longer is inconclusive (`timeout`).
    pub call_timeout: Option<Duration>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            trials: DEFAULT_TRIALS,
            concurrency: DEFAULT_CONCURRENCY,
            call_timeout: None,
        }
    }
}

/// Asks every case `options.trials` times, except the (case, trial) pairs in `done`, and
/// returns all records — `done` ones included — in suite order, then trial order. Each new
/// record is handed to `on_record` as soon as it exists, so a caller can store it before the
/// interview ends.
pub async fn run_trials(
    suite: Arc<Suite>,
    model: Arc<dyn CaseModel>,
    options: &RunOptions,
    done: &[TrialRecord],
    mut on_record: impl FnMut(&TrialRecord) + Send,
) -> Vec<TrialRecord> {
    let trials = options.trials.max(1);
    let semaphore = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let mut records: Vec<TrialRecord> = done
        .iter()
        .filter(|r| suite.case(&r.case_id).is_some() && (1..=trials).contains(&r.trial))
        .cloned()
        .collect();
    let have: HashSet<(String, u32)> = records
        .iter()
        .map(|r| (r.case_id.clone(), r.trial))
        .collect();

    let mut tasks = JoinSet::new();
    let mut pending = HashMap::new();
    // Trial-major order: every case's first trial is asked before any second one, so an
    // interview cut short has breadth rather than depth.
    for trial in 1..=trials {
        for (index, case) in suite.cases().iter().enumerate() {
            if have.contains(&(case.id().to_string(), trial)) {
                continue;
            }
            let suite = Arc::clone(&suite);
            let model = Arc::clone(&model);
            let semaphore = Arc::clone(&semaphore);
            let timeout = options.call_timeout;
            let handle = tasks.spawn(async move {
                // The semaphore is never closed, so acquiring only fails if it were.
                let _permit = semaphore.acquire_owned().await.ok();
                let case = &suite.cases()[index];
                let request = CaseRequest {
                    case_id: case.id(),
                    capability: case.capability(),
                    trial,
                    messages: case.messages(),
                    output_schema: case.output_schema(),
                };
                let call = model.ask(request);
                let result = match timeout {
                    Some(limit) => match tokio::time::timeout(limit, call).await {
                        Ok(r) => r,
                        Err(_) => Err(HarnessError::new(
                            HarnessErrorKind::Timeout,
                            format!(
                                "no reply within the interview's limit of {}s per call",
                                limit.as_secs_f64()
                            ),
                        )),
                    },
                    None => call.await,
                };
                TrialRecord {
                    case_id: case.id().to_string(),
                    trial,
                    result: match result {
                        Ok(reply) => TrialOutcome::Reply(reply),
                        Err(e) => TrialOutcome::Inconclusive(e),
                    },
                }
            });
            pending.insert(handle.id(), (case.id().to_string(), trial));
        }
    }

    while let Some(joined) = tasks.join_next_with_id().await {
        let record = match joined {
            Ok((id, record)) => {
                pending.remove(&id);
                record
            }
            Err(e) => {
                let (case_id, trial) = pending.remove(&e.id()).unwrap_or_default();
                TrialRecord {
                    case_id,
                    trial,
                    result: TrialOutcome::Inconclusive(HarnessError::new(
                        HarnessErrorKind::Internal,
                        if e.is_panic() {
                            "the model client panicked"
                        } else {
                            "the call was cancelled"
                        },
                    )),
                }
            }
        };
        on_record(&record);
        records.push(record);
    }

    let order: HashMap<&str, usize> = suite
        .cases()
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id(), i))
        .collect();
    records.sort_by_key(|r| (order.get(r.case_id.as_str()).copied(), r.trial));
    records
}

/// Runs a whole interview and judges it.
pub async fn interview(
    suite: Arc<Suite>,
    model: Arc<dyn CaseModel>,
    worker: &WorkerIdentity,
    options: &RunOptions,
    evaluated_at: Timestamp,
) -> InterviewOutcome {
    let records = run_trials(Arc::clone(&suite), model, options, &[], |_| {}).await;
    score_interview(&suite, worker, &records, evaluated_at)
}
