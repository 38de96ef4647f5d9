//! The runner of `llm` nodes: renders nothing itself (the engine hands it the rendered system
//! and prompt), calls the model through `ao-models`, and keeps the run's record of it.
//!
//! For each call it stores, with the run: every HTTP exchange (redacted), the completed result
//! (so a resumed run reuses it instead of paying again), the usage totals per role, and an
//! `llm_call` event with tokens and latency. It also persists the structured-output mode
//! learned per endpoint, so the next process does not probe again.

use crate::engine::events::EventKind;
use crate::engine::host::{BoxFuture, LlmRequest, LlmRunner, NodeCall, NodeFailure};
use crate::engine::store::{RunStore, TaskKey};
use crate::tool_node::ToolNodeRunner;
use ao_core::redact::Redactor;
use ao_models::{
    CallError, Completion, CompletionRequest, Exchange, ExchangeRecorder, LearnedModes, Message,
    ModelClient, OutputSchema, ToolCall, UsageTotals,
};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

const LEARNED_MODES_KEY: &str = "models.learned_modes";

/// Runs `llm` nodes against the configured models.
pub struct ModelRunner {
    client: ModelClient,
    store: Option<Arc<RunStore>>,
    redactor: Redactor,
    /// The learned modes last written to the store (written again only when they change).
    saved_modes: Mutex<LearnedModes>,
    /// Runs the tool calls of nodes that offer tools.
    tools: Option<Arc<ToolNodeRunner>>,
}

impl ModelRunner {
    pub fn new(client: ModelClient, store: Option<Arc<RunStore>>, redactor: Redactor) -> Self {
        let mut saved = LearnedModes::default();
        if let Some(store) = &store
            && let Ok(Some(value)) = store.kv_get(LEARNED_MODES_KEY)
            && let Ok(modes) = serde_json::from_value::<LearnedModes>(value)
        {
            client.import_learned_modes(modes.clone());
            saved = modes;
        }
        ModelRunner {
            client,
            store,
            redactor,
            saved_modes: Mutex::new(saved),
            tools: None,
        }
    }

    /// Lets nodes with `tools` call them, through `tools`' policy gate.
    pub fn with_tools(mut self, tools: Arc<ToolNodeRunner>) -> Self {
        self.tools = Some(tools);
        self
    }

    fn save_learned_modes(&self, store: &RunStore) -> Result<(), crate::engine::store::StoreError> {
        let current = self.client.learned_modes();
        let mut saved = self.saved_modes.lock().unwrap_or_else(|p| p.into_inner());
        if *saved != current {
            store.kv_put(
                LEARNED_MODES_KEY,
                &serde_json::to_value(&current).unwrap_or(Value::Null),
            )?;
            *saved = current;
        }
        Ok(())
    }

    pub fn client(&self) -> &ModelClient {
        &self.client
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
                return Ok(Some(OutputSchema::new(name, schema)));
            }
            Err(format!("unsupported output {output}"))
        }
        other => Err(format!("unsupported output {other}")),
    }
}

/// A failed model call as a node failure. Never retried by the node: the model layer is the
/// one retry layer of a model call and has already spent its budget (retries, fallbacks,
/// repairs) on it.
fn failure(e: &CallError, redactor: &Redactor) -> NodeFailure {
    NodeFailure {
        message: redactor.redact_str(&e.to_string()),
        retryable: false,
        kind: "model",
    }
}

/// Stores each exchange with the run, through the redactor.
struct StoreRecorder<'a> {
    redactor: &'a Redactor,
    /// Redacted exchanges, written with the call's record (one commit per call).
    pending: std::sync::Mutex<Vec<Value>>,
}

impl StoreRecorder<'_> {
    fn take(&self) -> Vec<Value> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl ExchangeRecorder for StoreRecorder<'_> {
    fn record(&self, exchange: Exchange) {
        let mut value = serde_json::to_value(&exchange).unwrap_or(Value::Null);
        self.redactor.redact_value_in_place(&mut value);
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(value);
    }
}

/// Rounds of tool calls one `llm` node may make before it is stopped.
pub const MAX_TOOL_ROUNDS: u32 = 8;

impl ModelRunner {
    /// One model round of a task (`round` counts from 0): a stored result is reused when the
    /// task runs again (first attempt in this process) with the same conversation so far.
    async fn round(
        &self,
        call: &NodeCall<'_>,
        request: &LlmRequest,
        round: u32,
        completion_request: CompletionRequest,
    ) -> Result<Value, NodeFailure> {
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
        // A stored round is reused when the task runs again with the same conversation so far:
        // always for a round that called tools (its results are stored with it), and for the
        // answer only on a first attempt in this process (a retry asks again, since the stored
        // answer may be what failed).
        if let Some(store) = &self.store
            && let Ok(Some((stored, result))) = store.cached_call(&key, round)
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
            });
            return Ok(result);
        }
        let structured = completion_request.schema.is_some();
        let recorder = StoreRecorder {
            redactor: &self.redactor,
            pending: std::sync::Mutex::new(Vec::new()),
        };
        let completion: Completion = match self
            .client
            .complete(&request.role, completion_request, &recorder)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                // A failed call's attempts are kept too: they say what went wrong. What it
                // learned about the endpoint is kept as well.
                if let Some(store) = &self.store
                    && let Err(err) = store
                        .record_exchanges(&key, &recorder.take())
                        .and_then(|()| self.save_learned_modes(store))
                {
                    eprintln!(
                        "warning: model exchanges of node `{}` not recorded: {err}",
                        call.node
                    );
                }
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
        call.events.emit(EventKind::LlmCall {
            node: call.node.to_string(),
            role: request.role.clone(),
            model: completion.model.clone(),
            input_tokens: completion.usage.prompt_tokens,
            output_tokens: completion.usage.completion_tokens,
            latency_ms: completion.latency.as_millis() as u64,
            cached: false,
        });
        if let Some(store) = &self.store {
            let stored = store.store_call(
                &key,
                round,
                &fingerprint,
                &result,
                &recorder.take(),
                |current| {
                    let mut totals: UsageTotals = current
                        .and_then(|v| serde_json::from_value(v).ok())
                        .unwrap_or_default();
                    totals.add(&request.role, &completion.usage);
                    serde_json::to_value(&totals).unwrap_or(Value::Null)
                },
            );
            // The call itself succeeded; failing to keep its record must not lose it.
            if let Err(e) = stored.and_then(|()| self.save_learned_modes(store)) {
                eprintln!(
                    "warning: the record of model call `{}` was not stored: {e}",
                    call.node
                );
            }
        }
        Ok(result)
    }
}

impl ModelRunner {
    /// Runs one tool call of the model through the policy gate; whatever fails goes back to the
    /// model as the tool's result (model output is data, never a command).
    async fn tool_reply(
        &self,
        call: &NodeCall<'_>,
        request: &LlmRequest,
        tools: &ToolNodeRunner,
        tc: &ToolCall,
    ) -> Value {
        let offered = request
            .tools
            .iter()
            .any(|t| t == &tc.name || t.replace('.', "_") == tc.name);
        if !offered {
            return json!({"decision": "denied", "reason": format!("tool `{}` is not offered to this node (offered: {})", tc.name, request.tools.join(", "))});
        }
        match serde_json::from_str::<Value>(&tc.arguments) {
            Err(e) => json!({"error": format!("the arguments are not valid JSON: {e}")}),
            Ok(args) => tools
                .call(call, &tc.name, args)
                .await
                .unwrap_or_else(|e| json!({"error": e.to_string()})),
        }
    }

    /// Keeps a round's tool results with it, so a resumed task reuses them.
    fn store_tool_results(
        &self,
        call: &NodeCall<'_>,
        round: u32,
        result: &Value,
        replies: &[Value],
    ) {
        let Some(store) = &self.store else { return };
        let mut with_results = result.clone();
        with_results["tool_results"] = Value::Array(replies.to_vec());
        let key = TaskKey {
            run_id: call.run_id,
            step: call.step,
            node: call.node,
            index: call.index,
        };
        if let Err(e) = store.update_call_result(&key, round, &with_results) {
            eprintln!(
                "warning: the tool results of node `{}` were not stored: {e}",
                call.node
            );
        }
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
                let result = self
                    .round(&call, &request, round, completion_request)
                    .await?;
                let Some(calls) = result.get("tool_calls") else {
                    return Ok(result.get("answer").cloned().unwrap_or(Value::Null));
                };
                let calls: Vec<ToolCall> = serde_json::from_value(calls.clone()).map_err(|e| {
                    NodeFailure::permanent(format!("stored tool calls are unreadable: {e}"))
                })?;
                let Some(tools) = &self.tools else {
                    return Err(NodeFailure::permanent(
                        "the model called tools, but this node offers none",
                    ));
                };
                let content = result
                    .get("content")
                    .and_then(Value::as_str)
                    .map(String::from);
                messages.push(Message::assistant_tool_calls(content, calls.clone()));
                // Results stored with the round (a resumed task) are reused, never run again.
                let stored: Option<Vec<Value>> = result
                    .get("tool_results")
                    .and_then(|r| serde_json::from_value(r.clone()).ok())
                    .filter(|r: &Vec<Value>| r.len() == calls.len());
                let replies = match stored {
                    Some(replies) => replies,
                    None => {
                        let mut replies = Vec::with_capacity(calls.len());
                        for tc in &calls {
                            replies.push(self.tool_reply(&call, &request, tools, tc).await);
                        }
                        self.store_tool_results(&call, round, &result, &replies);
                        replies
                    }
                };
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
