//! The model layer: one client for every OpenAI-compatible chat-completions endpoint.
//!
//! `ao-models` sends `POST {base_url}/chat/completions` for the leader and the named workers
//! configured in [`ao_core::config`] (OpenAI, a LiteLLM proxy, Ollama, vLLM, LM Studio, the
//! llama.cpp server, anything that speaks the protocol) and returns a [`Completion`]: the text,
//! the parsed and validated JSON when a schema was asked for, tool calls, usage and cost, the
//! model that actually answered and the latency.
//!
//! What it does on top of one HTTP call:
//!
//! - **structured output** ([`structured`], [`strict`]): `json_schema` (strict when the schema
//!   can be rewritten for OpenAI's strict mode, the reply mapped back to the caller's schema) →
//!   `json_object` with the schema (llama.cpp constrains the output with it; where the `llamacpp`
//!   preset starts) → `json_object` with the schema in the system prompt → the schema in the
//!   prompt only. Only a rejection that concerns the response format (a 400 naming it,
//!   llama.cpp's 500 on `json_schema`) moves to the next mode; 5xx bursts, 429s and timeouts are
//!   retried in the same mode. The working mode is learned per endpoint (base URL + model) with
//!   the time it was learned, trusted for [`LEARNED_MODE_LIFETIME`] and then probed again;
//!   [`ModelClient::learned_modes`] exports it (to persist and show),
//!   [`ModelClient::forget_learned_modes`] resets it. Lenient JSON extraction (fences, leading
//!   prose, `<think>` blocks), validation with `jsonschema`, and bounded repair rounds
//!   ([`DEFAULT_MAX_REPAIRS`]) that send the validation errors back;
//! - **one retry budget per call** ([`retry`]): the role's `max_retries` counts every request
//!   sent after a failed one (a retry, a switch to a fallback model, a structured-output
//!   step-down), so a call sends at most `1 + max_retries + max_repairs` requests. 408/409/429,
//!   5xx, connection errors and timeouts are retried with exponential back-off and full jitter,
//!   never before a model's cool-down (its `Retry-After`, or a default after a 429) is over;
//!   400/401/403/404 fail at once with a message that says what is wrong. A failed call is a
//!   [`CallError`] with what it cost and whether the budget ran out: callers do not retry it;
//! - **fallback models** tried in order when the primary is rate-limited or down, said so in
//!   [`Completion::fallback`];
//! - **`max_tokens`** on every call (the role's, default
//!   [`ao_core::config::DEFAULT_MAX_TOKENS`]); a structured or tool-call reply cut off at the
//!   limit is a [`ModelError::CutOff`], a cut-off text is returned with [`Completion::truncated`];
//! - **streaming** ([`ModelClient::complete_streaming`]) with an idle timeout between chunks,
//!   assembled into the same [`Completion`];
//! - **recording**: every HTTP attempt becomes an [`Exchange`] (with its usage when it got a
//!   reply, and why it was sent) handed to a caller-supplied [`ExchangeRecorder`], with API keys
//!   redacted;
//! - **probing** ([`ModelClient::probe`]): two tiny calls per role for `ao models list --check`.
//!
//! What it is not: it stores nothing (the caller records exchanges and persists learned modes),
//! runs no tools (it passes tool schemas and returns tool calls; the loop lives above it), and
//! has no mock provider.
//!
//! Design choice: `async-openai` is used for its *request types* only (feature
//! `chat-completion-types`, no HTTP client of its own). Requests are sent with `reqwest` and
//! replies parsed into our own lenient types ([`wire`]), because its strict response types
//! reject what real servers send (`finish_reason: "eos"`, float `created`, tool calls without
//! `type`, …) and because our retry policy, per-attempt recording and error messages need the
//! status code, the headers and the raw body, which its client hides behind its own retries.
//!
//! ```no_run
//! use ao_core::config::{Config, ConfigInputs};
//! use ao_models::{CompletionRequest, DiscardExchanges, Message, ModelClient, OutputSchema};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::load(&ConfigInputs::from_process_env("."))?;
//! let client = ModelClient::new(&config)?;
//! let request = CompletionRequest::new(vec![
//!     Message::system("You plan software changes."),
//!     Message::user("Plan: add a --verbose flag."),
//! ])
//! .with_schema(OutputSchema::new(
//!     "plan",
//!     serde_json::json!({"type": "object", "required": ["steps"],
//!                        "properties": {"steps": {"type": "array"}}}),
//! ));
//! let done = client.complete("leader", request, &DiscardExchanges).await?;
//! let steps = done.json.as_ref().and_then(|j| j["steps"].as_array()).map_or(0, Vec::len);
//! println!("{steps} steps, {} tokens from {}", done.usage.total_tokens(), done.model);
//! # Ok(()) }
//! ```

mod client;
mod error;
pub mod exchange;
mod request;
pub mod retry;
pub mod strict;
pub mod structured;
mod usage;
pub mod wire;

pub use client::{
    MAX_ERROR_BODY_BYTES, MAX_REPLY_BYTES, ModelClient, PROBE_MAX_TOKENS,
    PROBE_STRUCTURED_MAX_TOKENS, ProbeReport,
};
pub use error::{CallError, ModelError, SchemaIssue, Target, TimeoutKind};
pub use exchange::{AttemptKind, DiscardExchanges, Exchange, ExchangeRecorder, MemoryRecorder};
pub use request::{
    Completion, CompletionRequest, DEFAULT_MAX_REPAIRS, FallbackNote, Message, OutputSchema,
    ReplyCheck, StreamEvent, ToolCall, ToolSpec,
};
pub use retry::RetryTiming;
pub use structured::{LEARNED_MODE_LIFETIME, LearnedMode, LearnedModes, StructuredMode};
pub use usage::{Usage, UsageTotals};
