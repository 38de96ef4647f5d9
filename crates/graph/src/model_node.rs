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
use ao_core::redact::Redactor;
use ao_models::{
    Completion, CompletionRequest, Exchange, ExchangeRecorder, LearnedModes, Message, ModelClient,
    ModelError, OutputSchema, UsageTotals,
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
        }
    }

    fn save_learned_modes(&self, store: &RunStore) -> Result<(), crate::engine::store::StoreError> {
        let current = self.client.learned_modes();
        let mut saved = self.saved_modes.lock().unwrap_or_else(|p| p.into_inner());
        if *saved != current {
            store.kv_put(LEARNED_MODES_KEY, &serde_json::to_value(&current).unwrap_or(Value::Null))?;
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

/// Whether another attempt of the node could succeed.
fn failure(e: &ModelError, redactor: &Redactor) -> NodeFailure {
    let message = redactor.redact_str(&e.to_string());
    match e {
        ModelError::RateLimited { .. }
        | ModelError::ServerError { .. }
        | ModelError::Connect { .. }
        | ModelError::Timeout { .. }
        | ModelError::InvalidReply { .. }
        | ModelError::SchemaViolation { .. } => NodeFailure {
            message,
            retryable: true,
            kind: "model",
        },
        _ => NodeFailure {
            message,
            retryable: false,
            kind: "model",
        },
    }
}

/// Stores each exchange with the run, through the redactor.
struct StoreRecorder<'a> {
    store: &'a RunStore,
    key: TaskKey<'a>,
    redactor: &'a Redactor,
}

impl ExchangeRecorder for StoreRecorder<'_> {
    fn record(&self, exchange: Exchange) {
        let mut value = serde_json::to_value(&exchange).unwrap_or(Value::Null);
        self.redactor.redact_value_in_place(&mut value);
        if let Err(e) = self.store.record_exchange(&self.key, &value) {
            eprintln!(
                "warning: model exchange of node `{}` not recorded: {e}",
                self.key.node
            );
        }
    }
}

struct NoRecorder;

impl ExchangeRecorder for NoRecorder {
    fn record(&self, _exchange: Exchange) {}
}

impl LlmRunner for ModelRunner {
    fn run<'a>(
        &'a self,
        call: NodeCall<'a>,
        request: LlmRequest,
    ) -> BoxFuture<'a, Result<Value, NodeFailure>> {
        Box::pin(async move {
            let schema = output_schema(&request.output).map_err(NodeFailure::permanent)?;
            let key = TaskKey {
                run_id: call.run_id,
                step: call.step,
                node: call.node,
                index: call.index,
            };
            // What identifies this call: reused on resume only if the request is the same.
            let fingerprint = json!({
                "role": request.role,
                "system": request.system,
                "prompt": request.prompt,
                "output": request.output,
            })
            .to_string();
            // A first attempt in this process may be a resume: reuse a stored result. Retries
            // within one process ask again (the stored reply may be what failed).
            if call.attempt == 1
                && let Some(store) = &self.store
                && let Ok(Some((stored, result))) = store.cached_call(&key, 0)
                && stored == fingerprint
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

            let mut messages = Vec::with_capacity(2);
            if let Some(system) = &request.system {
                messages.push(Message::system(system.clone()));
            }
            messages.push(Message::user(request.prompt.clone()));
            let mut completion_request = CompletionRequest::new(messages);
            let structured = schema.is_some();
            if let Some(schema) = schema {
                completion_request = completion_request.with_schema(schema);
            }

            let completion: Completion = match &self.store {
                Some(store) => {
                    let recorder = StoreRecorder {
                        store,
                        key,
                        redactor: &self.redactor,
                    };
                    self.client
                        .complete(&request.role, completion_request, &recorder)
                        .await
                }
                None => {
                    self.client
                        .complete(&request.role, completion_request, &NoRecorder)
                        .await
                }
            }
            .map_err(|e| failure(&e, &self.redactor))?;

            let result = if structured {
                completion.json.clone().unwrap_or(Value::Null)
            } else {
                Value::String(completion.text.clone())
            };
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
                let stored = store.store_call(&key, 0, &fingerprint, &result, |current| {
                    let mut totals: UsageTotals = current.and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default();
                    totals.add(&request.role, &completion.usage);
                    serde_json::to_value(&totals).unwrap_or(Value::Null)
                });
                // The call itself succeeded; failing to keep its record must not lose it.
                if let Err(e) = stored.and_then(|()| self.save_learned_modes(store)) {
                    eprintln!("warning: the record of model call `{}` was not stored: {e}", call.node);
                }
            }
            Ok(result)
        })
    }
}
