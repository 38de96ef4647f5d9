//! The runner of `llm` nodes: renders nothing itself (the engine hands it the rendered system
//! and prompt), calls the model through `ao-models`, and keeps the run's record of it.
//!
//! For each call it stores, with the run (see [`crate::records`]): every HTTP exchange
//! (redacted), the completed round (so a resumed run reuses it instead of paying again), the
//! usage totals, and an `llm_call` event with tokens and latency. Tool calls a model makes are
//! run through the policy gate and their results stored one by one with the round, so a
//! resumed task runs none of them again.
//!
//! Recording is fail-closed: an exchange, a completed call or a tool result that cannot be
//! stored, or stored calls that cannot be read, fail the task instead of going on.

use crate::cassette::{self, Reply};
use crate::records::{self, CallRecord, RequestCost};
use crate::replay::{INVALID_REPLAY, Lookup, REPLAY_MISMATCH, Replay, ReplayMiss};
use crate::tool_node::{ToolCallError, ToolNodeRunner};
use ao_core::redact::Redactor;
use ao_graph::{
    BoxFuture, EventKind, LlmRequest, LlmRunner, NodeCall, NodeFailure, RunStore, TaskKey,
    TaskRecords, WriteRecords,
};
use ao_models::{
    CallError, Completion, CompletionRequest, Exchange, ExchangeRecorder, LearnedModes, Message,
    ModelClient, OutputSchema, StreamEvent, ToolCall, Usage,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Where the structured-output modes learned per endpoint are kept, in the state dir.
pub const LEARNED_MODES_FILE: &str = "learned-modes.json";

/// Runs `llm` nodes against the configured models.
pub struct ModelRunner {
    client: ModelClient,
    store: Option<Arc<RunStore>>,
    redactor: Redactor,
    /// The file the learned modes are kept in (none for an in-memory host).
    modes_file: Option<PathBuf>,
    /// The learned modes last written (written again only when they change).
    saved_modes: Mutex<LearnedModes>,
    /// Runs the tool calls of nodes that offer tools.
    tools: Option<Arc<ToolNodeRunner>>,
    /// Where streamed reply text goes while a node's call runs (a progress display); `llm`
    /// nodes stream only when one is set.
    tokens: Mutex<Option<Arc<dyn TokenSink>>>,
    /// What calls in flight have reserved against their run's budget.
    budgets: Arc<crate::budget::BudgetGuard>,
    /// The cassettes that answer the calls of top-level runs being replayed, by run id.
    replays: Arc<Mutex<HashMap<String, Arc<Replay>>>>,
    /// Top-level runs this process is starting (not resuming), with the budget they were
    /// created with ([`ModelRunner::fresh_run`]).
    fresh: Arc<Mutex<HashMap<String, ao_graph::Budget>>>,
}

/// Keeps what a runner holds for one run (in one of its maps by run id) until it is dropped.
pub struct RunEntry<V> {
    map: Arc<Mutex<HashMap<String, V>>>,
    run_id: String,
}

impl<V> RunEntry<V> {
    fn insert(map: &Arc<Mutex<HashMap<String, V>>>, run_id: &str, value: V) -> Self {
        map.lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(run_id.to_string(), value);
        RunEntry {
            map: map.clone(),
            run_id: run_id.to_string(),
        }
    }
}

impl<V> Drop for RunEntry<V> {
    fn drop(&mut self) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.run_id);
    }
}

/// Keeps a run's cassette in use until it is dropped ([`ModelRunner::replay_run`]).
pub type ReplayGuard = RunEntry<Arc<Replay>>;

/// Marks a run as being started in this process until it is dropped
/// ([`ModelRunner::fresh_run`]).
pub type FreshGuard = RunEntry<ao_graph::Budget>;

/// Receives a running `llm` node's reply text as it streams in.
pub trait TokenSink: Send + Sync {
    /// New text of `node`'s reply.
    fn text(&self, node: &str, text: &str);
    /// `node`'s call sends another request (a retry, a fallback, a repair): the text so far
    /// belonged to an earlier reply.
    fn restart(&self, node: &str);
}

impl ModelRunner {
    /// A runner recording into `store`; the learned structured-output modes are read from and
    /// kept in `state_dir`.
    pub fn new(
        client: ModelClient,
        store: Option<Arc<RunStore>>,
        redactor: Redactor,
        state_dir: Option<&std::path::Path>,
    ) -> Self {
        let modes_file = state_dir.map(|d| d.join(LEARNED_MODES_FILE));
        let saved = modes_file
            .as_deref()
            .and_then(|f| std::fs::read(f).ok())
            .and_then(|bytes| serde_json::from_slice::<LearnedModes>(&bytes).ok())
            .unwrap_or_default();
        client.import_learned_modes(saved.clone());
        ModelRunner {
            client,
            store,
            redactor,
            modes_file,
            saved_modes: Mutex::new(saved),
            tools: None,
            tokens: Mutex::new(None),
            budgets: Arc::default(),
            replays: Arc::default(),
            fresh: Arc::default(),
        }
    }

    /// Answers the model calls of the top-level run `run_id` (its sub-runs included) from
    /// `replay` until the guard is dropped.
    pub fn replay_run(&self, run_id: &str, replay: Arc<Replay>) -> ReplayGuard {
        RunEntry::insert(&self.replays, run_id, replay)
    }

    /// Tells the runner that the top-level run `run_id` is being created by this process, with
    /// `budget` in its record, until the guard is dropped (when the call that started it
    /// returns). Such a run has no stored model call a first attempt could reuse, and its
    /// budget cannot change meanwhile (only a resume raises it), so neither is read back from
    /// the store on every call.
    pub fn fresh_run(&self, run_id: &str, budget: ao_graph::Budget) -> FreshGuard {
        RunEntry::insert(&self.fresh, run_id, budget)
    }

    /// The budget of `run_id` if it is being started by this process ([`Self::fresh_run`]).
    fn fresh_budget(&self, run_id: &str) -> Option<ao_graph::Budget> {
        self.fresh
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(run_id)
            .copied()
    }

    /// The cassette answering `call`'s run, with the top-level run's id, if it is replayed.
    fn replay_for(
        &self,
        call: &NodeCall<'_>,
    ) -> Result<Option<(Arc<Replay>, String)>, NodeFailure> {
        let replays = || self.replays.lock().unwrap_or_else(|p| p.into_inner());
        {
            let replays = replays();
            if replays.is_empty() {
                return Ok(None);
            }
            if let Some(r) = replays.get(call.run_id) {
                return Ok(Some((r.clone(), call.run_id.to_string())));
            }
        }
        // A sub-run: its top-level run's cassette (the store is read without the lock held).
        let Some(store) = &self.store else {
            return Ok(None);
        };
        let top = store
            .root_run_id(call.run_id)
            .map_err(|e| record_failure("(reading) the run's lineage", e))?;
        Ok(replays().get(&top).map(|r| (r.clone(), top)))
    }

    /// Streams the replies of `llm` nodes to `sink` from now on (the assembled result is the
    /// same as without streaming).
    pub fn stream_to(&self, sink: Arc<dyn TokenSink>) {
        *self.tokens.lock().unwrap_or_else(|p| p.into_inner()) = Some(sink);
    }

    /// Lets nodes with `tools` call them, through `tools`' policy gate.
    pub fn with_tools(mut self, tools: Arc<ToolNodeRunner>) -> Self {
        self.tools = Some(tools);
        self
    }

    /// Keeps what the client learned about its endpoints for the next process. It is a cache
    /// (a lost write means a mode is learned again), so a failure is a warning, not a failed
    /// task.
    fn save_learned_modes(&self, call: &NodeCall<'_>) {
        let Some(file) = &self.modes_file else { return };
        let current = self.client.learned_modes();
        let mut saved = self.saved_modes.lock().unwrap_or_else(|p| p.into_inner());
        if *saved == current {
            return;
        }
        match crate::files::write_private_json(file, &current) {
            Ok(()) => *saved = current,
            Err(e) => call.events.emit(EventKind::Warning {
                node: Some(call.node.to_string()),
                message: format!(
                    "the structured-output modes learned from the endpoints could not be saved to {}: {e}",
                    file.display()
                ),
            }),
        }
    }

    pub fn client(&self) -> &ModelClient {
        &self.client
    }
}

/// A structured answer of a built-in type (`output: {type: NAME}`) with its optional fields
/// filled in (`ao_core::types::normalize`), so expressions over it never meet a missing field.
fn normalized(output: &Value, answer: Value) -> Result<Value, NodeFailure> {
    let Some(name) = output.get("type").and_then(Value::as_str) else {
        return Ok(answer);
    };
    match ao_core::types::normalize(name, &answer) {
        None => Ok(answer),
        Some(Ok(v)) => Ok(v),
        Some(Err(why)) => Err(NodeFailure::permanent(format!(
            "the answer is not a `{name}`: {why}"
        ))),
    }
}

/// The schema an `llm` node's `output` asks for: `None` for text.
pub fn output_schema(output: &Value) -> Result<Option<OutputSchema>, String> {
    match output {
        Value::String(s) if s == "text" => Ok(None),
        Value::Object(m) => {
            if let Some(schema) = m.get("schema") {
                return Ok(Some(OutputSchema::new("output", schema.clone())));
            }
            if let Some(Value::String(name)) = m.get("type") {
                let schema = ao_core::types::type_schema(name).ok_or_else(|| {
                    format!(
                        "unknown output type `{name}` (known: {})",
                        ao_core::types::TYPE_NAMES.join(", ")
                    )
                })?;
                let mut out = OutputSchema::new(name, schema);
                if let Some(check) = ao_core::types::type_check(name) {
                    out = out.with_check(check);
                }
                return Ok(Some(out));
            }
            Err(format!("unsupported output {output}"))
        }
        other => Err(format!("unsupported output {other}")),
    }
}

/// A failed model call as a node failure. Never retried by the node: the model layer is the
/// one retry layer of a model call and has already spent its budget (retries, fallbacks,
/// step-downs, repairs) on it.
fn failure(e: &CallError, redactor: &Redactor) -> NodeFailure {
    NodeFailure {
        message: redactor.redact_str(&e.to_string()),
        retryable: false,
        kind: "model",
    }
}

/// A record of the task that could not be kept: the task stops (another attempt may succeed).
fn record_failure(what: &str, e: impl std::fmt::Display) -> NodeFailure {
    NodeFailure {
        message: format!("{what} could not be recorded with the run: {e}"),
        retryable: true,
        kind: "store",
    }
}

/// Collects each exchange, redacted, to be written with the call's record (one commit per
/// call). An exchange that cannot be serialized is a failure of the record, not a `null`.
pub(crate) struct PendingExchanges<'a> {
    redactor: &'a Redactor,
    pending: Mutex<Result<Vec<Value>, String>>,
    /// What each request that was sent cost, and how it went (for usage and events).
    sent: Mutex<Vec<SentRequest>>,
}

/// One HTTP request of a model call, as usage and the event stream count it.
pub(crate) struct SentRequest {
    pub(crate) model: String,
    pub(crate) usage: Usage,
    pub(crate) latency_ms: u64,
    pub(crate) kind: String,
    pub(crate) error: Option<String>,
}

impl PendingExchanges<'_> {
    pub(crate) fn new(redactor: &Redactor) -> PendingExchanges<'_> {
        PendingExchanges {
            redactor,
            pending: Mutex::new(Ok(Vec::new())),
            sent: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn take(&self) -> Result<Vec<Value>, String> {
        std::mem::replace(
            &mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()),
            Ok(Vec::new()),
        )
    }

    pub(crate) fn take_sent(&self) -> Vec<SentRequest> {
        std::mem::take(&mut *self.sent.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl ExchangeRecorder for PendingExchanges<'_> {
    fn record(&self, exchange: Exchange) {
        let kind = serde_json::to_value(exchange.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let error = match (&exchange.error, exchange.status) {
            (Some(e), _) => Some(self.redactor.redact_str(e)),
            (None, Some(status)) if status >= 400 => Some(format!("HTTP {status}")),
            _ => None,
        };
        self.sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(SentRequest {
                model: exchange.model.clone(),
                usage: exchange.usage.unwrap_or_default(),
                latency_ms: exchange.latency.as_millis() as u64,
                kind,
                error,
            });
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let Ok(list) = pending.as_mut() else { return };
        match serde_json::to_value(&exchange) {
            Ok(mut value) => {
                self.redactor.redact_value_in_place(&mut value);
                list.push(value);
            }
            Err(e) => *pending = Err(format!("an exchange cannot be serialized: {e}")),
        }
    }
}

/// A completed call's records, owned, to be written with the task's end.
fn staged_call(call: &CallRecord<'_>, lineage: Vec<(String, Option<String>)>) -> WriteRecords {
    let (run_id, step, node, index) = (
        call.task.run_id.to_string(),
        call.task.step,
        call.task.node.to_string(),
        call.task.index,
    );
    let (round, role) = (call.round, call.role.to_string());
    let completed = call
        .completed
        .map(|(request, result)| (request.to_string(), result.clone()));
    let (exchanges, requests) = (call.exchanges.to_vec(), call.requests.to_vec());
    let (settings, replayed) = (call.settings.clone(), call.replayed);
    Box::new(move |records| {
        let call = CallRecord {
            task: TaskKey {
                run_id: &run_id,
                step,
                node: &node,
                index,
            },
            round,
            role: &role,
            completed: completed.as_ref().map(|(q, r)| (q.as_str(), r)),
            settings: &settings,
            exchanges: &exchanges,
            requests: &requests,
            replayed,
        };
        records::write_call(records, &call, &lineage)
    })
}

/// Exchanges marked with the model round they belong to (so a cassette can tell them apart).
fn with_round(mut exchanges: Vec<Value>, round: u32) -> Vec<Value> {
    for e in &mut exchanges {
        if let Some(m) = e.as_object_mut() {
            m.insert("round".into(), json!(round));
        }
    }
    exchanges
}

/// Rounds of tool calls one `llm` node may make before it is stopped.
pub const MAX_TOOL_ROUNDS: u32 = 8;

/// One model round as stored with its task: its number, the redacted fingerprint of the
/// request it answered, and its result (`{answer}` or `{tool_calls, content, tool_results}`).
struct Round {
    number: u32,
    fingerprint: String,
    result: Value,
    /// The model settings it was asked with (kept with it, for cassettes).
    settings: Value,
}

/// The stored result of a tool call that was started but whose result was never recorded,
/// with how many policy decisions the task had recorded before it: on resume it runs again
/// only if none was recorded since (it never acted), else it is not run again.
const STARTED: &str = "started";

impl ModelRunner {
    /// One model round of a task (`round` counts from 0): a stored result is reused when the
    /// task runs again (first attempt in this process) with the same conversation so far.
    async fn round(
        &self,
        call: &NodeCall<'_>,
        request: &LlmRequest,
        round: u32,
        completion_request: CompletionRequest,
    ) -> Result<Round, NodeFailure> {
        let key = TaskKey {
            run_id: call.run_id,
            step: call.step,
            node: call.node,
            index: call.index,
        };
        let fingerprint = self.redactor.redact_str(
            &json!({
                "role": request.role,
                "messages": completion_request.messages,
                "output": request.output,
                "tools": request.tools,
            })
            .to_string(),
        );
        let settings = cassette::call_settings(
            self.client.role_config(&request.role),
            &completion_request.tools,
        );
        // A stored round is reused when the task runs again with the same conversation so far:
        // always for a round that called tools (its results are stored with it), and for the
        // answer only on a first attempt in this process (a retry asks again, since the stored
        // answer may be what failed). Stored calls that cannot be read stop the task: asking
        // again would pay twice.
        let nothing_stored = call.attempt == 1 && self.fresh_budget(call.run_id).is_some();
        if let Some(store) = self.store.as_ref().filter(|_| !nothing_stored) {
            let stored = records::stored_round(store, &key, round)
                .map_err(|e| record_failure("(reading) the stored model calls", e))?;
            if let Some((stored, result)) = stored
                && stored == fingerprint
                && (call.attempt == 1 || result.get("tool_calls").is_some())
            {
                call.events.emit(EventKind::LlmCall {
                    node: call.node.to_string(),
                    role: request.role.clone(),
                    model: String::new(),
                    input_tokens: 0,
                    output_tokens: 0,
                    latency_ms: 0,
                    cached: true,
                    replayed: false,
                    request: None,
                    error: None,
                });
                return Ok(Round {
                    number: round,
                    fingerprint,
                    result,
                    settings,
                });
            }
        }
        // A replayed run's calls are answered from its cassette; one it does not answer fails
        // the task, or goes to the model when the replay lets misses through.
        if let Some((replay, top)) = self.replay_for(call)? {
            let prefix = match &self.store {
                Some(store) => cassette::node_prefix(store, call.run_id, &top)
                    .map_err(|e| record_failure("(reading) the run's lineage", e))?,
                None => String::new(),
            };
            let node = format!("{prefix}{}", call.node);
            let normalised =
                cassette::call_request(&fingerprint, &settings).map_err(NodeFailure::permanent)?;
            match replay.lookup(&node, call.index, round, &normalised) {
                Lookup::Hit(recorded) => {
                    let result = self.replayed_reply(call, request, round, &recorded.reply)?;
                    let exchanges: Vec<Value> = recorded
                        .exchanges
                        .iter()
                        .map(|e| {
                            let mut e = e.clone();
                            if let Some(m) = e.as_object_mut() {
                                m.insert("replayed".into(), Value::Bool(true));
                            }
                            self.redactor.redact_value(&e)
                        })
                        .collect();
                    self.keep_round(
                        call,
                        &request.role,
                        round,
                        (&fingerprint, &result, &settings),
                        with_round(exchanges, round),
                        &[],
                        true,
                    )?;
                    call.events.emit(EventKind::LlmCall {
                        node: call.node.to_string(),
                        role: request.role.clone(),
                        model: normalised.model.clone(),
                        input_tokens: 0,
                        output_tokens: 0,
                        latency_ms: 0,
                        cached: false,
                        replayed: true,
                        request: None,
                        error: None,
                    });
                    return Ok(Round {
                        number: round,
                        fingerprint,
                        result,
                        settings,
                    });
                }
                Lookup::Miss(why) if replay.miss() == ReplayMiss::Live => {
                    call.events.emit(EventKind::Warning {
                        node: Some(call.node.to_string()),
                        message: self.redactor.redact_str(&format!(
                            "the cassette {} does not answer this call ({why}); it was sent to the model",
                            replay.source()
                        )),
                    });
                }
                Lookup::Miss(why) => {
                    return Err(NodeFailure {
                        message: self.redactor.redact_str(&format!(
                            "{why}, so the cassette {} does not answer its call ({}round {round}); record the cassette again, or let the calls it does not answer go to the model",
                            replay.source(),
                            call.index.map(|i| format!("task {i}, ")).unwrap_or_default(),
                        )),
                        retryable: false,
                        kind: REPLAY_MISMATCH,
                    });
                }
            }
        }
        // The run's budget, if it has one: this call reserves its share before it is sent.
        let (completion_request, _reservation) =
            self.reserve_budget(call, &request.role, completion_request)?;
        let structured = completion_request.schema.is_some();
        let recorder = PendingExchanges::new(&self.redactor);
        let sink = self
            .tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let completed = match &sink {
            Some(sink) => {
                let node = call.node;
                let on_event = move |e: StreamEvent<'_>| match e {
                    StreamEvent::Text(text) => sink.text(node, text),
                    StreamEvent::Restart { .. } => sink.restart(node),
                };
                self.client
                    .complete_streaming(&request.role, completion_request, &recorder, &on_event)
                    .await
            }
            None => {
                self.client
                    .complete(&request.role, completion_request, &recorder)
                    .await
            }
        };
        self.save_learned_modes(call);
        // Every request that was sent is counted and has its event, whatever the outcome.
        let sent = recorder.take_sent();
        let requests: Vec<RequestCost> = sent
            .iter()
            .map(|r| RequestCost {
                usage: r.usage,
                latency_ms: r.latency_ms,
            })
            .collect();
        let emit_sent = |sent: Vec<SentRequest>| {
            for r in sent {
                call.events.emit(EventKind::LlmCall {
                    node: call.node.to_string(),
                    role: request.role.clone(),
                    model: r.model,
                    input_tokens: r.usage.prompt_tokens,
                    output_tokens: r.usage.completion_tokens,
                    latency_ms: r.latency_ms,
                    cached: false,
                    replayed: false,
                    request: Some(r.kind),
                    error: r.error,
                });
            }
        };
        let completion: Completion = match completed {
            Ok(c) => c,
            Err(e) => {
                // A failed call's attempts are kept too: they say what went wrong and what
                // they cost.
                if let Some(store) = &self.store {
                    let exchanges = with_round(
                        recorder
                            .take()
                            .map_err(|why| record_failure("the model exchanges", why))?,
                        round,
                    );
                    records::store_call(
                        store,
                        &CallRecord {
                            task: key,
                            round,
                            role: &request.role,
                            completed: None,
                            settings: &settings,
                            exchanges: &exchanges,
                            requests: &requests,
                            replayed: false,
                        },
                    )
                    .map_err(|err| record_failure("the model exchanges", err))?;
                }
                emit_sent(sent);
                return Err(failure(&e, &self.redactor));
            }
        };
        // What a round produced: tool calls to make, or the answer. Model output is redacted
        // before it is stored or written anywhere: a secret it repeats goes no further.
        let result = self
            .redactor
            .redact_value(&if !completion.tool_calls.is_empty() {
                json!({"tool_calls": completion.tool_calls, "content": completion.text})
            } else if structured {
                json!({"answer": completion.json.clone().unwrap_or(Value::Null)})
            } else {
                json!({"answer": completion.text})
            });
        let exchanges = recorder
            .take()
            .map_err(|why| record_failure("the model exchanges", why))?;
        self.keep_round(
            call,
            &request.role,
            round,
            (&fingerprint, &result, &settings),
            with_round(exchanges, round),
            &requests,
            false,
        )?;
        emit_sent(sent);
        if let Some(note) = &completion.fallback {
            call.events.emit(EventKind::Warning {
                node: Some(call.node.to_string()),
                message: self.redactor.redact_str(&format!(
                    "the {} model `{}` did not answer ({}); its fallback `{}` did",
                    request.role, note.from, note.reason, completion.model
                )),
            });
        }
        if completion.truncated {
            call.events.emit(EventKind::Warning {
                node: Some(call.node.to_string()),
                message: format!(
                    "the reply of `{}` was cut off at its token limit (finish_reason: length); raise the role's max_tokens for a complete answer",
                    completion.model
                ),
            });
        }
        Ok(Round {
            number: round,
            fingerprint,
            result,
            settings,
        })
    }

    /// Keeps a completed round with its task: a round that called tools now (before any of
    /// them runs), an answer with the task's end (one commit less), or now if the engine
    /// cannot.
    #[allow(clippy::too_many_arguments)]
    fn keep_round(
        &self,
        call: &NodeCall<'_>,
        role: &str,
        round: u32,
        (fingerprint, result, settings): (&str, &Value, &Value),
        exchanges: Vec<Value>,
        requests: &[RequestCost],
        replayed: bool,
    ) -> Result<(), NodeFailure> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let record = CallRecord {
            task: TaskKey {
                run_id: call.run_id,
                step: call.step,
                node: call.node,
                index: call.index,
            },
            round,
            role,
            completed: Some((fingerprint, result)),
            settings,
            exchanges: &exchanges,
            requests,
            replayed,
        };
        if result.get("tool_calls").is_some() {
            return records::store_call(store, &record)
                .map_err(|e| record_failure("the model's answer", e));
        }
        let lineage = records::call_lineage(store, &record)
            .map_err(|e| record_failure("the model's answer", e))?;
        let staged = TaskRecords {
            node: call.node.to_string(),
            index: call.index,
            what: "the model's answer".into(),
            write: staged_call(&record, lineage),
        };
        if let Err(staged) = call.events.with_task_end(staged) {
            store
                .write_records("store model call", |r| (staged.write)(r))
                .map_err(|e| record_failure("the model's answer", e))?;
        }
        Ok(())
    }

    /// A recorded reply as this round's result, if the node can take it: what a model's reply
    /// could not do, a recorded one cannot either (an answer must match the node's output;
    /// tool calls need tools offered this round, and go through the policy gate afterwards).
    fn replayed_reply(
        &self,
        call: &NodeCall<'_>,
        request: &LlmRequest,
        round: u32,
        reply: &Reply,
    ) -> Result<Value, NodeFailure> {
        let invalid = |why: String| NodeFailure {
            message: self
                .redactor
                .redact_str(&format!("the cassette's reply for round {round}: {why}")),
            retryable: false,
            kind: INVALID_REPLAY,
        };
        match reply {
            Reply::ToolCalls { .. } if request.tools.is_empty() || round >= MAX_TOOL_ROUNDS => {
                return Err(invalid(
                    "it calls tools, but none are offered to the node in this round".into(),
                ));
            }
            Reply::ToolCalls { .. } => {}
            Reply::Answer(answer) => match output_schema(&request.output)
                .map_err(NodeFailure::permanent)?
            {
                None if !answer.is_string() => {
                    return Err(invalid(
                        "the node answers text, but it is not a string".into(),
                    ));
                }
                None => {
                    let sink = self
                        .tokens
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone();
                    if let (Some(sink), Some(text)) = (sink, answer.as_str()) {
                        sink.text(call.node, text);
                    }
                }
                Some(schema) => {
                    let validator = jsonschema::validator_for(&schema.schema)
                        .map_err(|e| NodeFailure::permanent(format!("the output schema: {e}")))?;
                    if let Some(e) = validator.iter_errors(answer).next() {
                        return Err(invalid(format!(
                            "the answer does not match the node's output schema at `{}`: {e}",
                            e.instance_path()
                        )));
                    }
                }
            },
        }
        Ok(self.redactor.redact_value(&reply.to_result()))
    }

    /// How many policy decisions the task has recorded (`None` without a store, or when the
    /// store cannot say).
    fn decisions(&self, task: &TaskKey<'_>) -> Option<u64> {
        let store = self.store.as_ref()?;
        store
            .task_records(task, records::TOOL_CALL)
            .ok()
            .map(|r| r.len() as u64)
    }

    /// Reserves this call's share of its run's budget (see [`crate::budget`]) and bounds the
    /// request by it; `None` when the run has no budget (or no store to keep one).
    fn reserve_budget(
        &self,
        call: &NodeCall<'_>,
        role: &str,
        request: CompletionRequest,
    ) -> Result<(CompletionRequest, Option<crate::budget::Reservation>), NodeFailure> {
        let Some(store) = &self.store else {
            return Ok((request, None));
        };
        let read = |what: &str, e: &dyn std::fmt::Display| NodeFailure {
            message: format!("cannot read the run's {what}: {e}"),
            retryable: true,
            kind: "store",
        };
        let top = store
            .root_run_id(call.run_id)
            .map_err(|e| read("lineage", &e))?;
        let budget = match self.fresh_budget(&top) {
            Some(budget) => budget,
            None => crate::budget::stored_budget(store, &top).map_err(|e| read("budget", &e))?,
        };
        if budget.is_empty() {
            return Ok((request, None));
        }
        let used = records::usage(store, &top)
            .map_err(|e| read("usage", &e))?
            .unwrap_or_default();
        let config = self.client.role_config(role);
        let chars: usize = request
            .messages
            .iter()
            .map(|m| serde_json::to_string(m).map_or(0, |t| t.len()))
            .sum();
        let estimate = crate::budget::CallEstimate {
            node: call.node,
            prompt_tokens: (chars as u64).div_ceil(4),
            max_tokens: request
                .max_tokens
                .or(config.map(|c| c.max_tokens.value))
                .map_or(u64::from(ao_core::config::DEFAULT_MAX_TOKENS), u64::from),
            price: config.and_then(|c| c.price.as_ref().map(|p| &p.value)),
        };
        let reservation = self.budgets.reserve(&top, &budget, &used, &estimate)?;
        let mut request = request;
        if let Some(n) = reservation.max_requests {
            request = request.with_max_requests(n);
        }
        if let Some(n) = reservation.max_tokens {
            request = request.with_max_tokens(n);
        }
        Ok((request, Some(reservation)))
    }

    /// Runs one tool call of the model through the policy gate; whatever the tool answers,
    /// even a failure, goes back to the model as the tool's result (model output is data,
    /// never a command). Only a record that cannot be kept stops the task.
    async fn tool_reply(
        &self,
        call: &NodeCall<'_>,
        request: &LlmRequest,
        tools: &ToolNodeRunner,
        tc: &ToolCall,
    ) -> Result<Value, NodeFailure> {
        let offered = request
            .tools
            .iter()
            .any(|t| t == &tc.name || t.replace('.', "_") == tc.name);
        if !offered {
            return Ok(
                json!({"decision": "denied", "reason": format!("tool `{}` is not offered to this node (offered: {})", tc.name, request.tools.join(", "))}),
            );
        }
        let args = match serde_json::from_str::<Value>(&tc.arguments) {
            Ok(args) => args,
            Err(e) => {
                return Ok(json!({"error": format!("the arguments are not valid JSON: {e}")}));
            }
        };
        match tools.call(call, &tc.name, args).await {
            Ok(v) => Ok(v),
            Err(ToolCallError::Tool(e)) => Ok(json!({"error": e.to_string()})),
            Err(ToolCallError::Record(why)) => Err(NodeFailure {
                message: why,
                retryable: true,
                kind: "store",
            }),
        }
    }

    /// The results of a round's tool calls: those stored with the round are reused, the others
    /// run now, each stored as soon as it is known. Every call is marked started before it
    /// runs; one found started but without a result (its task stopped in between) is not run
    /// again — its effect may already have happened — and the model is told so.
    async fn tool_replies(
        &self,
        call: &NodeCall<'_>,
        request: &LlmRequest,
        tools: &ToolNodeRunner,
        round: &mut Round,
        calls: &[ToolCall],
    ) -> Result<Vec<Value>, NodeFailure> {
        let key = TaskKey {
            run_id: call.run_id,
            step: call.step,
            node: call.node,
            index: call.index,
        };
        let mut replies: Vec<Value> = round
            .result
            .get("tool_results")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        replies.truncate(calls.len());
        let store_replies = |round: &mut Round, replies: &[Value]| -> Result<(), NodeFailure> {
            round.result["tool_results"] = Value::Array(replies.to_vec());
            match &self.store {
                Some(store) => records::update_round(
                    store,
                    &key,
                    round.number,
                    &round.fingerprint,
                    &round.result,
                    &round.settings,
                )
                .map_err(|e| record_failure("a tool call's result", e)),
                None => Ok(()),
            }
        };
        for (i, tc) in calls.iter().enumerate() {
            if let Some(stored) = replies.get(i) {
                let Some(before) = stored.get(STARTED) else {
                    continue;
                };
                // A call acts only after its policy decision is recorded: if no decision was
                // recorded since it was marked, it never acted and runs now.
                let acted = before
                    .as_u64()
                    .is_none_or(|before| self.decisions(&key) != Some(before));
                if acted {
                    replies[i] = json!({
                        "error": format!("`{}` was started by an earlier attempt of this task that stopped before its result was recorded; it was not run again, since its effect may already have happened", tc.name),
                    });
                    store_replies(round, &replies)?;
                    continue;
                }
                replies.truncate(i);
            }
            let mut marked = replies.clone();
            let decisions = match &self.store {
                None => 0,
                Some(_) => self.decisions(&key).ok_or_else(|| {
                    record_failure(
                        "(reading) the task's policy decisions",
                        "the store did not answer",
                    )
                })?,
            };
            marked.push(json!({STARTED: decisions}));
            store_replies(round, &marked)?;
            let reply = self.tool_reply(call, request, tools, tc).await?;
            replies.push(reply);
            store_replies(round, &replies)?;
        }
        Ok(replies)
    }
}

impl LlmRunner for ModelRunner {
    fn run<'a>(
        &'a self,
        call: NodeCall<'a>,
        request: LlmRequest,
    ) -> BoxFuture<'a, Result<Value, NodeFailure>> {
        Box::pin(async move {
            let schema = output_schema(&request.output).map_err(NodeFailure::permanent)?;
            let tool_specs = match (&self.tools, request.tools.is_empty()) {
                (_, true) => Vec::new(),
                (Some(tools), false) => tools
                    .specs_for(&request.tools)
                    .map_err(NodeFailure::permanent)?,
                (None, false) => {
                    return Err(NodeFailure {
                        message: format!(
                            "node asks for tools ({}) but no tool runner is available",
                            request.tools.join(", ")
                        ),
                        retryable: false,
                        kind: "not_available",
                    });
                }
            };
            let mut messages = Vec::with_capacity(2);
            if let Some(system) = &request.system {
                messages.push(Message::system(system.clone()));
            }
            messages.push(Message::user(request.prompt.clone()));
            for round in 0..=MAX_TOOL_ROUNDS {
                let mut completion_request = CompletionRequest::new(messages.clone());
                if let Some(schema) = &schema {
                    completion_request = completion_request.with_schema(schema.clone());
                }
                if !tool_specs.is_empty() && round < MAX_TOOL_ROUNDS {
                    completion_request = completion_request.with_tools(tool_specs.clone());
                }
                let mut done = self
                    .round(&call, &request, round, completion_request)
                    .await?;
                let Some(calls) = done.result.get("tool_calls") else {
                    let answer = done.result.get("answer").cloned().unwrap_or(Value::Null);
                    return normalized(&request.output, answer);
                };
                let calls: Vec<ToolCall> = serde_json::from_value(calls.clone()).map_err(|e| {
                    NodeFailure::permanent(format!("stored tool calls are unreadable: {e}"))
                })?;
                let Some(tools) = &self.tools else {
                    return Err(NodeFailure::permanent(
                        "the model called tools, but this node offers none",
                    ));
                };
                let content = done
                    .result
                    .get("content")
                    .and_then(Value::as_str)
                    .filter(|c| !c.is_empty())
                    .map(str::to_string);
                messages.push(Message::assistant_tool_calls(content, calls.clone()));
                let replies = self
                    .tool_replies(&call, &request, tools, &mut done, &calls)
                    .await?;
                for (tc, reply) in calls.iter().zip(&replies) {
                    messages.push(Message::tool_result(tc.id.clone(), reply.to_string()));
                }
            }
            Err(NodeFailure::permanent(format!(
                "the model was still calling tools after {MAX_TOOL_ROUNDS} rounds"
            )))
        })
    }
}
